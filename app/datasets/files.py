"""Where an uploaded dataset's files live: its upload while it is received and checked, then its
upload and the tensors a worker decodes it to."""

import secrets
from pathlib import Path

ID_PREFIX = "ds-"
DATASETS_FOLDER = "datasets"
# Uploads being received and checked, before their row exists: a crash leaves one here, where
# no row points and the sweep (app/sweep.py) removes it.
INCOMING_FOLDER = "incoming"


def new_dataset_id() -> str:
    return ID_PREFIX + secrets.token_hex(6)


def dataset_folder(data_dir: Path, dataset_id: str) -> Path:
    """Where a dataset's upload and decoded tensors live."""
    return data_dir / DATASETS_FOLDER / dataset_id


def incoming_path(data_dir: Path, dataset_id: str) -> Path:
    """Where an upload is written and checked, until its row is created."""
    return data_dir / INCOMING_FOLDER / dataset_id


def upload_path(data_dir: Path, dataset_id: str) -> Path:
    return dataset_folder(data_dir, dataset_id) / "upload"


def images_path(data_dir: Path, dataset_id: str) -> Path:
    return dataset_folder(data_dir, dataset_id) / "images.pt"


def table_path(data_dir: Path, dataset_id: str) -> Path:
    return dataset_folder(data_dir, dataset_id) / "table.pt"
