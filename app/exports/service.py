"""Making a version's export: its model file verified and loaded, then the format asked for."""

from dataclasses import dataclass

import torch

from app.errors import Unavailable
from app.exports.card import model_card
from app.exports.formats import (
    EXTENSIONS,
    MEDIA_TYPES,
    ExportFormat,
    onnx_bytes,
    safetensors_bytes,
    torchscript_bytes,
)
from app.exports.store import export_key, kept
from app.registry.schemas import VersionOut
from app.serving.lookup import ServedModel
from app.serving.model_cache import load_verified
from app.storage.store import ArtifactStore, StoreError


@dataclass(frozen=True)
class Export:
    data: bytes
    filename: str
    media_type: str


def export(version: VersionOut, model_path: str, store: ArtifactStore, fmt: ExportFormat) -> Export:
    """The export of `version` in `fmt`; the model formats are made once and kept (the card is
    made each time: it shows the version's description and tags, which can change)."""
    served = ServedModel(
        version.job_id, model_path, version.model_sha256, version.model, version.version
    )
    filename = f"{version.model}-v{version.version}.{EXTENSIONS[fmt]}"

    def make() -> bytes:
        saved = load_verified(served, store, torch.device("cpu")).saved
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
        key = export_key(version.model, version.version, EXTENSIONS[fmt])
        try:
            data = kept(store, key, make)
        except StoreError as exc:
            raise Unavailable(f"{served.label}: its {fmt} export cannot be kept: {exc}") from None
    return Export(data, filename, MEDIA_TYPES[fmt])
