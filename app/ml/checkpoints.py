"""Models and training checkpoints as files: plain dicts of tensors and names."""

import hashlib
import io
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import torch
from torch import nn

from app.fsync import fsync_folder
from app.ml.images import NORMALIZE_MEAN, NORMALIZE_STD
from app.ml.nets import build_model
from app.ml.standardizer import Standardizer

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
TEMP_SUFFIX = ".tmp"


@dataclass(frozen=True)
class SavedModel:
    model: nn.Module
    arch: str
    classes: list[str]
    image_size: tuple[int, int]
    standardizer: Standardizer | None = None  # tabular models: their feature columns


def write_torch_file(payload: dict[str, Any], path: Path, *, pause_s: float = 0.0) -> str:
    """Write payload to `path` (created, or emptied first) and fsync it; its sha256.

    `pause_s` holds the write open half-way, for fault-injection tests.
    """
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    with path.open("wb") as f:
        half = len(data) // 2
        f.write(data[:half])
        if pause_s:
            f.flush()
            time.sleep(pause_s)
        f.write(data[half:])
        f.flush()
        os.fsync(f.fileno())
    return hashlib.sha256(data).hexdigest()


def atomic_torch_save(payload: dict[str, Any], path: Path, *, pause_s: float = 0.0) -> str:
    """Write payload so that readers see the old file or the whole new one; its sha256.

    The bytes go to a temporary file beside `path`, are fsynced, then renamed into place. On any
    failure (a full disk, say) the temporary file is removed and `path` is left as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    os.close(fd)
    try:
        sha256 = write_torch_file(payload, Path(tmp_name), pause_s=pause_s)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)  # makes the rename itself durable
    return sha256


def model_payload(
    model: nn.Module,
    *,
    arch: str,
    classes: list[str],
    image_size: tuple[int, int],
    standardizer: Standardizer | None = None,
    hidden_layers: list[int] | None = None,
) -> dict[str, Any]:
    """The trained weights with what is needed to serve them; a tabular model keeps its feature
    columns and their standardisation."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return {
        "format_version": FORMAT_VERSION,
        "arch": arch,
        "classes": list(classes),
        "image_size": list(image_size),
        "normalize_mean": list(NORMALIZE_MEAN),
        "normalize_std": list(NORMALIZE_STD),
        "standardizer": None if standardizer is None else standardizer.state(),
        "hidden_layers": hidden_layers,
        "state_dict": state,
    }


def save_model(path: Path, model: nn.Module, **described: Any) -> str:
    """Save a model (model_payload's fields) to `path` atomically; the file's sha256."""
    return atomic_torch_save(model_payload(model, **described), path)


def load_model(source: Path | BinaryIO, device: torch.device | str = "cpu") -> SavedModel:
    """Load a saved model (a path or an open file) for inference; only tensors and plain
    values are unpickled."""
    payload = torch.load(source, map_location=device, weights_only=True)
    classes = list(payload["classes"])
    height, width = payload["image_size"]
    state = payload.get("standardizer")
    standardizer = None if state is None else Standardizer.from_state(state)
    model = build_model(
        payload["arch"],
        num_classes=len(classes),
        image_size=width,
        in_features=None if standardizer is None else len(standardizer.columns),
        hidden_layers=payload.get("hidden_layers"),
    )
    model.load_state_dict(payload["state_dict"])
    model.to(device).eval()
    return SavedModel(
        model=model,
        arch=payload["arch"],
        classes=classes,
        image_size=(height, width),
        standardizer=standardizer,
    )


@dataclass(frozen=True)
class SavedWeights:
    """A saved model's weights and what they were trained as, without a model built."""

    arch: str
    classes: list[str]
    hidden_layers: list[int] | None
    state_dict: dict[str, torch.Tensor]


def read_saved_weights(source: Path | bytes) -> SavedWeights:
    """The weights of a model file written by save_model: from its bytes, or from its path with
    the tensors mapped rather than read (their shapes cost nothing; their values are read when
    used)."""
    if isinstance(source, Path):
        payload = torch.load(source, map_location="cpu", weights_only=True, mmap=True)
    else:
        payload = torch.load(io.BytesIO(source), map_location="cpu", weights_only=True)
    return SavedWeights(
        arch=payload["arch"],
        classes=list(payload["classes"]),
        hidden_layers=payload.get("hidden_layers"),
        state_dict=dict(payload["state_dict"]),
    )


def load_checkpoint(source: BinaryIO) -> dict[str, Any]:
    """A training checkpoint (RunState.snapshot), onto the CPU; only tensors and plain values
    are unpickled."""
    payload: dict[str, Any] = torch.load(source, map_location="cpu", weights_only=True)
    return payload
