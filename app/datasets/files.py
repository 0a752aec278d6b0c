"""Where an uploaded dataset's files live: its upload, then the tensors a worker decodes it to."""

import secrets
from pathlib import Path

ID_PREFIX = "ds-"


def new_dataset_id() -> str:
    return ID_PREFIX + secrets.token_hex(6)


def dataset_folder(data_dir: Path, dataset_id: str) -> Path:
    """Where a dataset's upload and decoded tensors live."""
    return data_dir / "datasets" / dataset_id


def upload_path(data_dir: Path, dataset_id: str) -> Path:
    return dataset_folder(data_dir, dataset_id) / "upload"


def images_path(data_dir: Path, dataset_id: str) -> Path:
    return dataset_folder(data_dir, dataset_id) / "images.pt"


def table_path(data_dir: Path, dataset_id: str) -> Path:
    return dataset_folder(data_dir, dataset_id) / "table.pt"
