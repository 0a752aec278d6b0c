import http.server
import os
import pickle
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from app.ml.cifar10 import ALL_FILES, DatasetError, ensure_cifar10, load_cifar10
from app.ml.images import balanced_indices
from tests.conftest import CIFAR_CLASSES, synthetic_split, write_cifar_layout

OFFICIAL = "https://official.invalid/cifar-10-python.tar.gz"


def test_reads_real_rebuilt_cifar10(real_cifar_subset: Path) -> None:
    train, test, classes = load_cifar10(real_cifar_subset / "cifar-10-batches-py")
    assert classes == CIFAR_CLASSES
    assert train.images.shape == (2000, 3, 32, 32) and train.images.dtype == torch.uint8
    assert test.images.shape == (500, 3, 32, 32)
    assert torch.bincount(train.labels).tolist() == [200] * 10
    assert torch.bincount(test.labels).tolist() == [50] * 10


def test_reads_python2_style_pickles_with_bytes_keys(tmp_path: Path) -> None:
    folder = write_cifar_layout(tmp_path, synthetic_split(20, 1), synthetic_split(10, 2))
    images, labels = synthetic_split(10, 3)
    with (folder / "test_batch").open("wb") as f:
        pickle.dump({b"data": images.reshape(10, -1), b"labels": labels.tolist()}, f, protocol=2)
    _, test, _ = load_cifar10(folder)
    assert torch.equal(test.images, torch.from_numpy(images))
    assert test.labels.tolist() == labels.tolist()


def test_missing_files_name_the_folder(tmp_path: Path) -> None:
    folder = write_cifar_layout(tmp_path, synthetic_split(20, 1), synthetic_split(10, 2))
    (folder / "data_batch_3").unlink()
    with pytest.raises(DatasetError, match=f"missing from {folder}: data_batch_3"):
        load_cifar10(folder)


def test_download_off_names_the_expected_folder(tmp_path: Path) -> None:
    folder = write_cifar_layout(tmp_path, synthetic_split(20, 1), synthetic_split(10, 2))
    for name in ("data_batch_2", "batches.meta"):
        (folder / name).unlink()
    with pytest.raises(DatasetError) as caught:
        ensure_cifar10(tmp_path, download=False, url=OFFICIAL, official_url=OFFICIAL)
    root = tmp_path.resolve()
    assert str(caught.value) == (
        "CIFAR-10 not found and TRAINSERVE_DOWNLOAD is off: put data_batch_2, batches.meta in "
        f"{root}/cifar-10-batches-py/ (tar -xzf cifar-10-python.tar.gz -C {root} puts them "
        "there), or set TRAINSERVE_DOWNLOAD=1 to download them"
    )


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch /tmp/trainserve-pwned",))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a readable CIFAR-10 batch file"),
        (b"\x00garbage\xff" * 10, "not a readable CIFAR-10 batch file"),
        (pickle.dumps(_Evil()), "refusing to load posix.system"),
        (pickle.dumps([1, 2, 3]), "it holds a list"),
        (pickle.dumps({"labels": [0]}), "no 'data' and 'labels'"),
        (
            pickle.dumps({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]}),
            "must be uint8 rows of 3072 pixels",
        ),
        (
            pickle.dumps({"data": np.zeros((2, 3072), np.float32), "labels": [0, 1]}),
            "must be uint8 rows of 3072 pixels",
        ),
        (
            pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0]}),
            "2 images but 1 labels",
        ),
        (
            pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 10]}),
            "labels must lie in 0..9",
        ),
    ],
)
def test_malformed_batches_fail_with_a_clear_message(
    tmp_path: Path, content: bytes, message: str
) -> None:
    folder = write_cifar_layout(tmp_path, synthetic_split(20, 1), synthetic_split(10, 2))
    (folder / "data_batch_2").write_bytes(content)
    with pytest.raises(DatasetError, match=message) as caught:
        load_cifar10(folder)
    assert str(folder / "data_batch_2") in str(caught.value)
    assert not Path("/tmp/trainserve-pwned").exists()


def test_balanced_indices_interleave_classes_in_data_order() -> None:
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 2, 0, 1, 2])
    assert balanced_indices(labels, 3).tolist() == [0, 4, 6]
    assert balanced_indices(labels, 6).tolist() == [0, 1, 4, 5, 6, 9]
    # Class 2 has only two examples; the others fill the remaining places.
    assert balanced_indices(labels, 8).tolist() == [0, 1, 2, 4, 5, 6, 8, 9]
    assert balanced_indices(labels, None).tolist() == list(range(10))
    assert balanced_indices(labels, 50).tolist() == list(range(10))


@pytest.fixture
def archive_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on loopback serving a cifar-10-python.tar.gz built from synthetic data."""
    source = write_cifar_layout(tmp_path / "src", synthetic_split(50, 5), synthetic_split(10, 6))
    served = tmp_path / "served"
    served.mkdir()
    with tarfile.open(served / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(source, arcname="cifar-10-batches-py")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(served), **kwargs)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/cifar-10-python.tar.gz", source
    server.shutdown()
    server.server_close()


def test_download_fetches_only_missing_files(
    tmp_path: Path, archive_server: tuple[str, Path]
) -> None:
    url, source = archive_server
    data_dir = tmp_path / "data"
    # A curated local copy of one file must survive the download untouched.
    curated = write_cifar_layout(data_dir, synthetic_split(30, 9), synthetic_split(10, 9))
    for name in ALL_FILES:
        if name != "data_batch_1":
            (curated / name).unlink()
    curated_bytes = (curated / "data_batch_1").read_bytes()

    folder = ensure_cifar10(data_dir, download=True, url=url, official_url=OFFICIAL)

    assert (folder / "data_batch_1").read_bytes() == curated_bytes
    for name in ALL_FILES:
        if name != "data_batch_1":
            assert (folder / name).read_bytes() == (source / name).read_bytes()
    assert not (data_dir / "cifar-10-python.tar.gz").exists()
    train, _, _ = load_cifar10(folder)
    assert len(train) == 6 + 4 * 10  # 30 curated / 5 batches = 6, then the served 10 per batch


@pytest.mark.parametrize(
    ("served", "reason"),
    [
        # Nothing listens on port 9 of loopback: a first run without internet, offline for real.
        (False, "[Errno 111] Connection refused"),
        (True, "HTTP Error 404: File not found"),  # a mirror without the archive
    ],
)
def test_a_failed_download_says_where_the_files_go(
    tmp_path: Path, archive_server: tuple[str, Path], served: bool, reason: str
) -> None:
    url = archive_server[0] + ".missing" if served else "http://127.0.0.1:9/cifar.tar.gz"
    data_dir = tmp_path / "data"
    with pytest.raises(DatasetError) as caught:
        ensure_cifar10(data_dir, download=True, url=url, official_url=OFFICIAL)
    root = data_dir.resolve()
    assert str(caught.value) == (
        f"could not download CIFAR-10 from {url} ({reason}); without internet, put "
        "data_batch_1, data_batch_2, data_batch_3, data_batch_4, data_batch_5, test_batch, "
        f"batches.meta in {root}/cifar-10-batches-py/ (tar -xzf cifar-10-python.tar.gz -C "
        f"{root} puts them there) and set TRAINSERVE_DOWNLOAD=0 to turn downloads off"
    )


def test_download_of_a_non_archive_is_a_dataset_error(
    tmp_path: Path, archive_server: tuple[str, Path]
) -> None:
    url, _ = archive_server
    bogus_url = url.replace("cifar-10-python.tar.gz", "")  # the directory listing, HTML
    data_dir = tmp_path / "data"
    with pytest.raises(DatasetError, match=r"archive .* is unreadable"):
        ensure_cifar10(data_dir, download=True, url=bogus_url, official_url=OFFICIAL)
    assert list(data_dir.iterdir()) == []
