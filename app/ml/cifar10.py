"""CIFAR-10 in its official python layout, read without torchvision's checksum gate.

The batches are pickles; they are read with an unpickler that only builds dicts, lists, strings
and numpy arrays, so a tampered file cannot run code.
"""

import logging
import pickle
import tarfile
from pathlib import Path
from typing import Any
from urllib.error import HTTPError, URLError

import numpy as np
import torch

from app.ml.images import ImageSet

log = logging.getLogger(__name__)

FOLDER_NAME = "cifar-10-batches-py"
TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_FILE = "test_batch"
META_FILE = "batches.meta"
ALL_FILES = [*TRAIN_FILES, TEST_FILE, META_FILE]
ARCHIVE_NAME = "cifar-10-python.tar.gz"
OFFICIAL_ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
IMAGE_SHAPE = (3, 32, 32)
PIXELS_PER_IMAGE = 3 * 32 * 32

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class DatasetError(Exception):
    """The dataset is missing or malformed; the message says what and where."""


class _ArraysOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _load_pickle(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            # latin1 reads the official Python 2 pickles; keys may then be bytes.
            raw = _ArraysOnlyUnpickler(f, encoding="latin1").load()
    except Exception as exc:
        raise DatasetError(f"{path} is not a readable CIFAR-10 batch file: {exc}") from exc
    if not isinstance(raw, dict):
        raise DatasetError(f"{path} is not a CIFAR-10 batch file: it holds a {type(raw).__name__}")
    return {k.decode() if isinstance(k, bytes) else str(k): v for k, v in raw.items()}


def _read_batch(path: Path, num_classes: int) -> ImageSet:
    batch = _load_pickle(path)
    labels = batch.get("labels", batch.get("fine_labels"))
    data = batch.get("data")
    if data is None or labels is None:
        raise DatasetError(f"{path} has no 'data' and 'labels' entries")
    data = np.asarray(data)
    labels_array = np.asarray(labels, dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != PIXELS_PER_IMAGE:
        raise DatasetError(
            f"{path}: 'data' must be uint8 rows of {PIXELS_PER_IMAGE} pixels, "
            f"got {data.dtype} with shape {data.shape}"
        )
    if labels_array.shape != (data.shape[0],):
        raise DatasetError(f"{path}: {data.shape[0]} images but {labels_array.size} labels")
    if labels_array.size and (labels_array.min() < 0 or labels_array.max() >= num_classes):
        raise DatasetError(f"{path}: labels must lie in 0..{num_classes - 1}")
    images = torch.from_numpy(data.reshape(-1, *IMAGE_SHAPE).copy())
    return ImageSet(images=images, labels=torch.from_numpy(labels_array))


def read_class_names(folder: Path) -> list[str]:
    """The class names stored in batches.meta."""
    meta = _load_pickle(folder / META_FILE)
    names = meta.get("label_names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise DatasetError(f"{folder / META_FILE} has no list of label_names")
    return names


def read_batch(folder: Path, name: str) -> ImageSet:
    """One batch file of a cifar-10-batches-py folder (its labels checked against the classes)."""
    return _read_batch(folder / name, len(read_class_names(folder)))


def load_cifar10(folder: Path) -> tuple[ImageSet, ImageSet, list[str]]:
    """The train and test sets and class names from a cifar-10-batches-py folder."""
    missing = [name for name in ALL_FILES if not (folder / name).is_file()]
    if missing:
        raise DatasetError(f"CIFAR-10 files missing from {folder}: {', '.join(missing)}")
    classes = read_class_names(folder)
    train = ImageSet.concat([_read_batch(folder / name, len(classes)) for name in TRAIN_FILES])
    test = _read_batch(folder / TEST_FILE, len(classes))
    if len(train) == 0 or len(test) == 0:
        raise DatasetError(f"{folder} holds {len(train)} training and {len(test)} test images")
    return train, test, classes


def ensure_cifar10(data_dir: Path, *, download: bool, url: str, official_url: str) -> Path:
    """The CIFAR-10 folder under data_dir, downloading only the files that are missing."""
    folder = data_dir / FOLDER_NAME
    missing = [name for name in ALL_FILES if not (folder / name).is_file()]
    if not missing:
        return folder
    if not download:
        raise DatasetError(
            "CIFAR-10 not found and TRAINSERVE_DOWNLOAD is off: "
            f"{_where_files_go(data_dir, missing)}, or set TRAINSERVE_DOWNLOAD=1 to download them"
        )
    _download_missing(data_dir, missing, url=url, verify_md5=url == official_url)
    return folder


def _where_files_go(data_dir: Path, missing: list[str]) -> str:
    """Where a user puts the files by hand: the resolved folder, and the command that fills it."""
    root = data_dir.resolve()
    return (
        f"put {', '.join(missing)} in {root / FOLDER_NAME}/ "
        f"(tar -xzf {ARCHIVE_NAME} -C {root} puts them there)"
    )


def _reason(exc: Exception) -> str:
    # urllib's URLError reads "<urlopen error [Errno 111] ...>"; its reason alone is plainer.
    if isinstance(exc, URLError) and not isinstance(exc, HTTPError):
        return str(exc.reason)
    return str(exc)


def _download_missing(data_dir: Path, missing: list[str], *, url: str, verify_md5: bool) -> None:
    from torchvision.datasets.utils import download_url

    data_dir.mkdir(parents=True, exist_ok=True)
    log.info("downloading CIFAR-10 from %s (missing: %s)", url, ", ".join(missing))
    try:
        download_url(url, str(data_dir), ARCHIVE_NAME, OFFICIAL_ARCHIVE_MD5 if verify_md5 else None)
    except Exception as exc:
        raise DatasetError(
            f"could not download CIFAR-10 from {url} ({_reason(exc)}); without internet, "
            f"{_where_files_go(data_dir, missing)} and set TRAINSERVE_DOWNLOAD=0 to turn "
            "downloads off"
        ) from exc
    archive = data_dir / ARCHIVE_NAME
    wanted = {f"{FOLDER_NAME}/{name}" for name in missing}
    try:
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers() if m.name.lstrip("./") in wanted]
            # Only the missing files: a present (perhaps curated) file is never overwritten.
            tar.extractall(data_dir, members=members, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise DatasetError(f"downloaded CIFAR-10 archive {archive} is unreadable: {exc}") from exc
    finally:
        archive.unlink(missing_ok=True)
