"""Where an uploaded weights file lives: in the artifact store (app/storage) under weights/<id>/,
named for its format, so that a fine-tuning worker on any machine can fetch it."""

from app.ml.weight_files import WeightsFormat

WEIGHTS_FOLDER = "weights"
FILE_NAMES: dict[str, str] = {"safetensors": "weights.safetensors", "pytorch": "weights.pt"}


def weights_prefix(weights_id: str) -> str:
    """Everything of the weights `weights_id` is under this key prefix."""
    return f"{WEIGHTS_FOLDER}/{weights_id}"


def weights_key(weights_id: str, fmt: WeightsFormat | str) -> str:
    """The stored file of the weights `weights_id`, in format `fmt`."""
    return f"{weights_prefix(weights_id)}/{FILE_NAMES[fmt]}"
