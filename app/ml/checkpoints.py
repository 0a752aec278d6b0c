"""Trained models on disk: a plain dict of tensors and names, written atomically."""

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from app.ml.images import NORMALIZE_MEAN, NORMALIZE_STD
from app.ml.nets import build_model

FORMAT_VERSION = 1


@dataclass(frozen=True)
class SavedModel:
    model: nn.Module
    arch: str
    classes: list[str]
    image_size: tuple[int, int]


def atomic_torch_save(payload: dict[str, Any], path: Path) -> None:
    """Write payload to path so that a reader sees the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # makes the rename itself durable
    finally:
        os.close(dir_fd)


def save_model(
    path: Path, model: nn.Module, *, arch: str, classes: list[str], image_size: tuple[int, int]
) -> None:
    """Save the trained weights with what is needed to serve them."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_torch_save(
        {
            "format_version": FORMAT_VERSION,
            "arch": arch,
            "classes": list(classes),
            "image_size": list(image_size),
            "normalize_mean": list(NORMALIZE_MEAN),
            "normalize_std": list(NORMALIZE_STD),
            "state_dict": state,
        },
        path,
    )


def load_model(path: Path, device: torch.device | str = "cpu") -> SavedModel:
    """Load a saved model for inference; only tensors and plain values are unpickled."""
    payload = torch.load(path, map_location=device, weights_only=True)
    classes = list(payload["classes"])
    model = build_model(payload["arch"], num_classes=len(classes))
    model.load_state_dict(payload["state_dict"])
    model.to(device).eval()
    height, width = payload["image_size"]
    return SavedModel(
        model=model, arch=payload["arch"], classes=classes, image_size=(height, width)
    )
