"""One image of a dataset as training reads it: an uploaded dataset's decoded tensors (from the
artifact store, verified by their sha256 once per process, then memory-mapped: app/datasets/
mapped.py), or a CIFAR-10 batch under the data folder. Only keys and paths made from settings
and a dataset row found in the database are ever opened."""

import threading
from functools import lru_cache
from pathlib import Path
from typing import Literal

import torch
from sqlalchemy.orm import Session

from app.datasets.mapped import MAPPED_TENSORS
from app.datasets.tensors import DecodedTensors
from app.datasets.usage import find_dataset
from app.errors import Conflict, NotFound, Unavailable
from app.ml.cifar10 import FOLDER_NAME, META_FILE, TEST_FILE, TRAIN_FILES, DatasetError, read_batch
from app.ml.images import ImageSet
from app.models import DatasetStatus
from app.storage.store import ArtifactStore, StoreError

Split = Literal["train", "test"]
CIFAR10 = "cifar10"
# Decoded CIFAR-10 batches kept by the API (about 30 MB each): the test batch a gallery reads,
# and one more.
CIFAR_BATCHES_KEPT = 2

FileIdentity = tuple[int, int]  # size and modification time: a replaced file is read again
_CIFAR_DECODING = threading.Lock()


def dataset_image(
    session: Session,
    store: ArtifactStore,
    data_dir: Path,
    dataset_id: str,
    split: Split,
    index: int,
) -> torch.Tensor:
    """Image `index` of the dataset's `split` as uint8 (3, H, W): 404 for no such dataset or
    image, 409 while it is not ready, 404 for a table (rows, not images)."""
    if dataset_id == CIFAR10:
        return _cifar10_image(data_dir, split, index)
    dataset = find_dataset(session, dataset_id)
    if dataset.status != DatasetStatus.READY:
        reason = f": {dataset.error}" if dataset.error else ""
        raise Conflict(
            f"dataset {dataset_id} is {dataset.status}{reason}; its images are served once it "
            "is ready"
        )
    if dataset.kind == "tabular":
        raise NotFound(f"dataset {dataset_id} is a table: it has rows, not images")
    try:
        payload = MAPPED_TENSORS.get(store, data_dir, DecodedTensors.of(dataset))
    except DatasetError as exc:
        raise NotFound(f"dataset {dataset_id}'s images are gone: {exc}") from None
    except StoreError as exc:  # damaged, or the store does not answer
        raise Unavailable(f"dataset {dataset_id}'s images cannot be read: {exc}") from None
    images: torch.Tensor = payload[f"{split}_images"]
    return _at(images, index, f"dataset {dataset_id}'s {split} split").clone()


def _at(images: torch.Tensor, index: int, where: str) -> torch.Tensor:
    if index >= len(images):
        raise _out_of_range(where, len(images), index)
    return images[index]


def _out_of_range(where: str, count: int, index: int) -> NotFound:
    return NotFound(f"{where} has {count} images: index {index} is not among 0 to {count - 1}")


def _cifar10_image(data_dir: Path, split: Split, index: int) -> torch.Tensor:
    folder = data_dir / FOLDER_NAME
    names = TRAIN_FILES if split == "train" else [TEST_FILE]
    try:
        _identity(folder / META_FILE)  # the class names, read with each batch
        identities = [_identity(folder / name) for name in names]
    except FileNotFoundError:
        raise NotFound(
            "CIFAR-10 is not on this server's disk: a job on cifar10 downloads it (with "
            "TRAINSERVE_DOWNLOAD on), or see docs/datasets.md to put its files in place"
        ) from None
    start = 0
    try:
        # A batch's size is remembered once read: later requests decode only index's batch.
        for name, identity in zip(names, identities, strict=True):
            size = _cifar_batch_size(folder, name, identity)
            if index < start + size:
                return _cifar_batch(folder, name, identity).images[index - start]
            start += size
    except DatasetError as exc:
        raise Conflict(f"CIFAR-10's files cannot be read: {exc}") from None
    raise _out_of_range(f"CIFAR-10's {split} split", start, index)


def _identity(path: Path) -> FileIdentity:
    status = path.stat()
    return status.st_size, status.st_mtime_ns


def _cifar_batch(folder: Path, name: str, identity: FileIdentity) -> ImageSet:
    # One decode at a time: a gallery asks for several images at once, and each miss would
    # otherwise decode its own 30 MB copy of the same batch in another thread.
    with _CIFAR_DECODING:
        return _decoded_cifar_batch(folder, name, identity)


@lru_cache(maxsize=CIFAR_BATCHES_KEPT)
def _decoded_cifar_batch(folder: Path, name: str, _file: FileIdentity) -> ImageSet:
    return read_batch(folder, name)


@lru_cache(maxsize=64)
def _cifar_batch_size(folder: Path, name: str, identity: FileIdentity) -> int:
    return len(_cifar_batch(folder, name, identity))
