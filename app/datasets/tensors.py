"""Where an uploaded dataset's decoded tensors are read: under the key its row records in the
artifact store, fetched through this machine's cache and verified by the sha256 recorded with it
(any machine can read them); or, for a dataset decoded before they went to the store, from its
file under TRAINSERVE_DATA_DIR/datasets/<id>/ as before."""

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from app.datasets.files import legacy_tensors_path
from app.ml.cifar10 import DatasetError
from app.models import Dataset
from app.storage.store import ArtifactMissing, ArtifactStore


@dataclass(frozen=True)
class DecodedTensors:
    """Where one ready dataset's tensors are."""

    dataset_id: str
    kind: str
    key: str | None  # None: decoded before the store, kept under the data folder
    sha256: str | None

    @classmethod
    def of(cls, dataset: Dataset) -> "DecodedTensors":
        return cls(dataset.id, dataset.kind, dataset.tensors_key, dataset.tensors_sha256)

    @classmethod
    def find(cls, session: Session, dataset_id: str) -> "DecodedTensors":
        """The dataset's tensors; DatasetError when its row is gone."""
        dataset = session.get(Dataset, dataset_id)
        if dataset is None:
            raise DatasetError(f"dataset {dataset_id} was deleted")
        return cls.of(dataset)

    def legacy_path(self, data_dir: Path) -> Path:
        return legacy_tensors_path(data_dir, self.dataset_id, self.kind)


@contextlib.contextmanager
def open_tensors(store: ArtifactStore, data_dir: Path, tensors: DecodedTensors) -> Iterator[Path]:
    """A verified local copy of the tensors' file, whole while the context is open; DatasetError
    when they are gone (or, decoded before the store, not on this machine), the store's
    ArtifactDamaged when their bytes are not those recorded."""
    if tensors.key is None or tensors.sha256 is None:
        path = tensors.legacy_path(data_dir)
        if not path.is_file():
            raise DatasetError(
                f"dataset {tensors.dataset_id} was decoded before datasets went to the artifact "
                f"store, and its tensors are not on this machine's disk ({path}): upload it "
                "again, or run this process where TRAINSERVE_DATA_DIR holds them"
            )
        yield path
        return
    with contextlib.ExitStack() as held:
        try:
            path = held.enter_context(store.open_path(tensors.key, tensors.sha256))
        except ArtifactMissing as exc:
            raise DatasetError(
                f"dataset {tensors.dataset_id}'s decoded tensors are gone ({exc}); upload it again"
            ) from None
        # Outside the try: what the caller's own work raises is not taken for missing tensors.
        yield path
