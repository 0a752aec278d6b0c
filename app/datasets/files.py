"""Where an uploaded dataset's files live: its archive (or CSV) and the tensors a worker decodes
it to, each in the artifact store under a key of its own (recorded on its row with its sha256).

Datasets uploaded before they went to the store kept both under TRAINSERVE_DATA_DIR/datasets/<id>/
(`legacy_*`): a row without keys is read from there (app/datasets/tensors.py).
"""

import secrets
from pathlib import Path

ID_PREFIX = "ds-"
DATASETS_FOLDER = "datasets"
# Uploads received and checked before their row existed, in installations before the store: a
# crash left one here, where no row points and the sweep (app/sweep.py) removes it.
INCOMING_FOLDER = "incoming"


def new_dataset_id() -> str:
    return ID_PREFIX + secrets.token_hex(6)


def dataset_prefix(dataset_id: str) -> str:
    """Everything of the dataset in the artifact store is under this prefix."""
    return f"{DATASETS_FOLDER}/{dataset_id}"


def upload_key(dataset_id: str) -> str:
    """The uploaded archive or CSV (its id is new to each upload: no two share the key)."""
    return f"{dataset_prefix(dataset_id)}/upload"


def tensors_key(dataset_id: str, kind: str, attempt: int) -> str:
    """The decoded tensors that decoding `attempt` writes: a worker that lost its lease a moment
    ago cannot overwrite what its successor records."""
    name = "table" if kind == "tabular" else "images"
    return f"{dataset_prefix(dataset_id)}/{name}-attempt{attempt}.pt"


def legacy_folder(data_dir: Path, dataset_id: str) -> Path:
    """Where a dataset uploaded before the artifact store kept its upload and tensors."""
    return data_dir / DATASETS_FOLDER / dataset_id


def legacy_upload_path(data_dir: Path, dataset_id: str) -> Path:
    return legacy_folder(data_dir, dataset_id) / "upload"


def legacy_tensors_path(data_dir: Path, dataset_id: str, kind: str) -> Path:
    name = "table.pt" if kind == "tabular" else "images.pt"
    return legacy_folder(data_dir, dataset_id) / name
