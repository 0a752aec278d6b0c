"""Making a version's export: its model file verified and loaded, then the format asked for."""

from dataclasses import dataclass
from pathlib import Path

import torch

from app.exports.card import model_card
from app.exports.formats import (
    EXTENSIONS,
    MEDIA_TYPES,
    ExportFormat,
    onnx_bytes,
    safetensors_bytes,
    torchscript_bytes,
)
from app.exports.store import export_path, kept
from app.registry.schemas import VersionOut
from app.serving.lookup import ServedModel
from app.serving.model_cache import load_verified


@dataclass(frozen=True)
class Export:
    data: bytes
    filename: str
    media_type: str


def export(version: VersionOut, model_path: str, artifacts_dir: Path, fmt: ExportFormat) -> Export:
    """The export of `version` in `fmt`; the model formats are made once and kept (the card is
    made each time: it shows the version's description and tags, which can change)."""
    served = ServedModel(
        version.job_id, model_path, version.model_sha256, version.model, version.version
    )
    filename = f"{version.model}-v{version.version}.{EXTENSIONS[fmt]}"

    def make() -> bytes:
        saved = load_verified(served, artifacts_dir, torch.device("cpu")).saved
        if fmt == "card":
            return model_card(version, saved).encode()
        if fmt == "safetensors":
            return safetensors_bytes(saved, version.lineage["config"].get("hidden_layers"))
        if fmt == "torchscript":
            return torchscript_bytes(saved)
        return onnx_bytes(saved)

    if fmt == "card":
        data = make()
    else:
        path = export_path(artifacts_dir, version.model, version.version, EXTENSIONS[fmt])
        data = kept(path, make)
    return Export(data, filename, MEDIA_TYPES[fmt])
