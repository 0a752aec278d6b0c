"""Datasets as a job names them, decoded once and kept while their files are unchanged."""

import hashlib
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from app.datasets.tensors import DecodedTensors, open_tensors
from app.jobs.config import JobConfig
from app.ml.cifar10 import ALL_FILES, DatasetError, ensure_cifar10, load_cifar10
from app.ml.image_folders import load_image_folders
from app.ml.images import ImageSet, balanced_indices, stratified_split
from app.ml.standardizer import Standardizer
from app.ml.table_datasets import load_table_dataset
from app.settings import OFFICIAL_CIFAR10_URL, Settings
from app.storage.store import ArtifactStore

IMAGE_SIZE = (32, 32)


@dataclass(frozen=True)
class LoadedDataset:
    train: ImageSet
    test: ImageSet
    classes: list[str]
    image_size: tuple[int, int]  # (0, 0) for a table
    # The sha256 of the files it was read from: with the number of test images, it names the
    # test set that two models' accuracies can be compared on.
    content_sha256: str
    standardizer: Standardizer | None = None  # a table's feature columns and statistics
    # Where each of `test`'s examples is in the dataset's own test split (the images
    # GET /datasets/{id}/images/test/{index}.png serves); None: all of it, in its order.
    test_index: torch.Tensor | None = None

    def test_positions(self) -> torch.Tensor:
        """Each test example's position in the dataset's test split."""
        return torch.arange(len(self.test)) if self.test_index is None else self.test_index


FileIdentity = tuple[tuple[str, int, int], ...]


def _identity(folder: Path) -> FileIdentity:
    stats = [(name, (folder / name).stat()) for name in ALL_FILES]
    return tuple((name, st.st_size, st.st_mtime_ns) for name, st in stats)


class DatasetCache:
    """Keeps the last decoded dataset, so back-to-back jobs skip decoding."""

    def __init__(self, settings: Settings, store: ArtifactStore) -> None:
        self.settings, self.store = settings, store
        self._key: Hashable | None = None
        self._value: LoadedDataset | None = None

    def load(self, name: str, uploaded: DecodedTensors | None = None) -> LoadedDataset:
        """The full dataset called `name`: "cifar10", or an uploaded one, whose tensors are
        `uploaded` (from the artifact store: a store that fails raises its StoreError)."""
        if name != "cifar10":
            assert uploaded is not None and uploaded.dataset_id == name
            return self._load_uploaded(uploaded)
        folder = ensure_cifar10(
            self.settings.data_dir,
            download=self.settings.download,
            url=self.settings.cifar10_url,
            official_url=OFFICIAL_CIFAR10_URL,
        )
        return self._cached((folder.resolve(), _identity(folder)), lambda: _read_cifar10(folder))

    def _cached(self, key: Hashable, read: Callable[[], LoadedDataset]) -> LoadedDataset:
        if key != self._key or self._value is None:
            self._value = None  # frees the old copy before the new one is decoded
            self._key, self._value = key, read()
        return self._value

    def _load_uploaded(self, tensors: DecodedTensors) -> LoadedDataset:
        if tensors.key is not None:
            # Written once under its key: the same sha256 is the same bytes, not read again.
            key: Hashable = (tensors.key, tensors.sha256)
        else:
            path = tensors.legacy_path(self.settings.data_dir)
            try:
                stat = path.stat()
            except FileNotFoundError:
                return self._read_uploaded(tensors)  # which says where it was looked for
            key = (path.resolve(), stat.st_size, stat.st_mtime_ns)
        return self._cached(key, lambda: self._read_uploaded(tensors))

    def _read_uploaded(self, tensors: DecodedTensors) -> LoadedDataset:
        with open_tensors(self.store, self.settings.data_dir, tensors) as path:
            content = tensors.sha256 or _sha256_of([path])
            if tensors.kind == "tabular":
                rows = load_table_dataset(path)
                return LoadedDataset(
                    rows.train, rows.test, rows.classes, (0, 0), content, rows.standardizer
                )
            train, test, classes, size = load_image_folders(path)
            return LoadedDataset(train, test, classes, (size, size), content)


def _read_cifar10(folder: Path) -> LoadedDataset:
    train, test, classes = load_cifar10(folder)
    content = _sha256_of(folder / name for name in ALL_FILES)
    return LoadedDataset(train, test, classes, IMAGE_SIZE, content)


def _sha256_of(files: Iterable[Path]) -> str:
    """One sha256 over the files' bytes, in the order given."""
    digest = hashlib.sha256()
    for file in files:
        with file.open("rb") as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def limit_samples(
    dataset: LoadedDataset, max_train: int | None, max_test: int | None
) -> LoadedDataset:
    """A class-balanced prefix of each split, when the job asks for fewer samples: the same
    examples, in the same order, every time (balanced_indices depends on the labels alone)."""
    train, test = dataset.train, dataset.test
    if max_train is not None and max_train < len(train):
        train = train.subset(balanced_indices(train.labels, max_train))
    if max_test is None or max_test >= len(test):
        return replace(dataset, train=train)
    kept = balanced_indices(test.labels, max_test)
    return replace(dataset, train=train, test=test.subset(kept), test_index=kept)


def hold_out(train: ImageSet, config: JobConfig) -> tuple[ImageSet, ImageSet | None]:
    """The training images to train on and those held out for validation, as the job's
    validation_fraction and seed say (none held out without a fraction)."""
    fraction = config.validation_fraction
    if not fraction:
        return train, None
    kept, held = stratified_split(train.labels, fraction, config.seed)
    if held.numel() == 0:
        raise DatasetError(
            f"validation_fraction {fraction} holds out no image: every class has fewer than "
            "2 training images"
        )
    return train.subset(kept), train.subset(held)
