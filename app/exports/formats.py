"""Each export format made from a saved model: the bytes of the file a user downloads."""

import io
import json
import warnings
from typing import Literal

import torch
from safetensors.torch import save as save_safetensors

from app.exports.module import input_name, serving_module
from app.ml.checkpoints import SavedModel
from app.ml.images import NORMALIZE_MEAN, NORMALIZE_STD

ExportFormat = Literal["safetensors", "torchscript", "onnx", "card"]
EXTENSIONS: dict[str, str] = {
    "safetensors": "safetensors",
    "torchscript": "pt",
    "onnx": "onnx",
    "card": "md",
}
MEDIA_TYPES: dict[str, str] = {
    "safetensors": "application/octet-stream",
    "torchscript": "application/octet-stream",
    "onnx": "application/octet-stream",
    "card": "text/markdown; charset=utf-8",
}
ONNX_OPSET = 18


def safetensors_bytes(saved: SavedModel, hidden_layers: list[int] | None) -> bytes:
    """The weights, with what a fresh model needs to use them in the header's metadata (all
    strings, as the format wants): architecture, classes, input size, normalisation and, for a
    table, the feature columns and their statistics."""
    metadata = {
        "format": "pt",
        "arch": saved.arch,
        "classes": json.dumps(saved.classes),
        "image_size": json.dumps(list(saved.image_size)),
        "normalize_mean": json.dumps(list(NORMALIZE_MEAN)),
        "normalize_std": json.dumps(list(NORMALIZE_STD)),
        "hidden_layers": json.dumps(hidden_layers),
    }
    standardizer = saved.standardizer
    if standardizer is not None:
        metadata["feature_columns"] = json.dumps(standardizer.columns)
        metadata["feature_mean"] = json.dumps(standardizer.mean.tolist())
        metadata["feature_std"] = json.dumps(standardizer.std.tolist())
    state = {
        name: value.detach().cpu().contiguous() for name, value in saved.model.state_dict().items()
    }
    return save_safetensors(state, metadata=metadata)


def torchscript_bytes(saved: SavedModel) -> bytes:
    """A traced module: torch.jit.load(file)(batch) gives the probabilities."""
    module, example = serving_module(saved)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # torch now calls TorchScript deprecated, but it is what TorchServe and libtorch users
        # load, and torch.jit.load still reads it.
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.trace(module, example), buffer)
    return buffer.getvalue()


def onnx_bytes(saved: SavedModel) -> bytes:
    """The same signature as ONNX, any batch size."""
    module, example = serving_module(saved)
    name = input_name(saved)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript-based exporter: it needs no extra packages and takes a fraction of a
        # second for these models; torch warns that a newer one exists. It writes to a file
        # object too, though its annotation names paths only.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example,),
            buffer,  # type: ignore[arg-type]
            input_names=[name],
            output_names=["probabilities"],
            dynamic_axes={name: {0: "batch"}, "probabilities": {0: "batch"}},
            opset_version=ONNX_OPSET,
            dynamo=False,
        )
    return buffer.getvalue()
