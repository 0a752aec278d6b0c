"""Where an uploaded weights file lives: under incoming/ while it is received and checked, then
in weights/<id>/, named for its format."""

from pathlib import Path

from app.datasets.files import INCOMING_FOLDER
from app.ml.weight_files import WeightsFormat

WEIGHTS_FOLDER = "weights"
FILE_NAMES: dict[str, str] = {"safetensors": "weights.safetensors", "pytorch": "weights.pt"}


def weights_folder(data_dir: Path, weights_id: str) -> Path:
    return data_dir / WEIGHTS_FOLDER / weights_id


def weights_path(data_dir: Path, weights_id: str, fmt: WeightsFormat | str) -> Path:
    """The stored file of the weights `weights_id`, in format `fmt`."""
    return weights_folder(data_dir, weights_id) / FILE_NAMES[fmt]


def incoming_weights_path(data_dir: Path, weights_id: str) -> Path:
    """Where an upload is written and checked until its row is created; the sweep removes one
    a crash left there (app/sweep.py), as it does a dataset's."""
    return data_dir / INCOMING_FOLDER / weights_id
