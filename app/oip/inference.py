"""Inference for the protocol: the request's input checked against the model's signature, the
same batcher and model as /predict, and the outputs the request asks for."""

from dataclasses import dataclass

import numpy as np
import torch

from app.errors import AppError
from app.ml.predictor import Prediction
from app.oip.errors import BadRequest, from_app_error
from app.oip.request import InferenceRequest, RequestedOutput
from app.oip.signature import LABEL, OUTPUTS, PROBABILITIES, Signature
from app.serving.batcher import Batcher
from app.serving.lookup import ServedModel, Target
from app.serving.service import Predictions


@dataclass(frozen=True)
class Output:
    name: str
    datatype: str
    shape: list[int]
    data: np.ndarray | list[str]
    binary: bool


@dataclass(frozen=True)
class Inferred:
    served: ServedModel
    outputs: list[Output]


async def loaded_model(predictions: Predictions, target: Target) -> tuple[ServedModel, Batcher]:
    """The model `target` names, loaded: the API's errors in the protocol's form."""
    try:
        return await predictions.model_for(target)
    except AppError as exc:
        raise from_app_error(exc) from None


async def infer(
    predictions: Predictions, target: Target, request: InferenceRequest, max_items: int
) -> Inferred:
    served, batcher = await loaded_model(predictions, target)
    signature = Signature.of(batcher.predictor)
    array = _checked_input(signature, request, max_items)
    if signature.columns is None:
        # (N, H, W, 3) as sent to (N, 3, H, W) as trained; copied, since a binary input's array
        # is a read-only view of the request body.
        pixels = torch.from_numpy(np.array(array)).permute(0, 3, 1, 2)
        result = await predictions.classify_pixels(served, batcher, pixels)
    else:
        values = torch.from_numpy(array.astype(np.float64))
        result = await predictions.classify_features(served, batcher, values)
    return Inferred(served, _outputs(result.predictions, request.outputs))


def _checked_input(signature: Signature, request: InferenceRequest, max_items: int) -> np.ndarray:
    expected = signature.input_name
    unknown = sorted(name for name in request.inputs if name != expected)
    if unknown:
        raise BadRequest(f"unknown input '{unknown[0]}': this model takes one input, '{expected}'")
    if expected not in request.inputs:
        raise BadRequest(f"input '{expected}' is missing")
    datatype, array = request.inputs[expected]
    if datatype != signature.datatype:
        raise BadRequest(
            f"input '{expected}': datatype {datatype}; this model takes {signature.datatype}"
        )
    fits = array.ndim == len(signature.shape) and all(
        want in (-1, got) for want, got in zip(signature.shape, array.shape, strict=True)
    )
    if not fits:
        raise BadRequest(
            f"input '{expected}': shape {list(array.shape)}; this model takes {signature.shape}"
        )
    if not 1 <= len(array) <= max_items:
        raise BadRequest(
            f"input '{expected}': {len(array)} items; send 1 to {max_items} in one request"
        )
    return array


def _outputs(
    predictions: list[Prediction], requested: list[RequestedOutput] | None
) -> list[Output]:
    wanted = requested or [RequestedOutput(name, False) for name in OUTPUTS]
    outputs = []
    for output in wanted:
        if output.name == PROBABILITIES:
            table = np.array(
                [list(p.probabilities.values()) for p in predictions], dtype=np.dtype("<f4")
            )
            outputs.append(Output(PROBABILITIES, "FP32", list(table.shape), table, output.binary))
        elif output.name == LABEL:
            labels = [p.label for p in predictions]
            outputs.append(Output(LABEL, "BYTES", [len(labels)], labels, output.binary))
        else:
            raise BadRequest(
                f"unknown output '{output.name}': this model gives {', '.join(OUTPUTS)}"
            )
    return outputs
