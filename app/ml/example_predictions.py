"""A model's answer for every example of a test set, kept with its job: the class it predicted
and that class's probability, so its mistakes can be listed without running it again."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import torch

from app.ml.checkpoints import atomic_torch_save

FORMAT_VERSION = 1


@dataclass(frozen=True)
class ExamplePredictions:
    """One row an example, as four aligned tensors on the CPU, in the order it was tested."""

    index: torch.Tensor  # int64: the example's position in its dataset's test split
    true: torch.Tensor  # int64: its class
    predicted: torch.Tensor  # int64: the class the model gave it
    confidence: torch.Tensor  # float32: the probability the model gave that class

    def __post_init__(self) -> None:
        sizes = {tuple(t.shape) for t in (self.index, self.true, self.predicted, self.confidence)}
        if len(sizes) != 1 or len(next(iter(sizes))) != 1:
            raise ValueError(f"example predictions need four tensors of one length, got {sizes}")

    def __len__(self) -> int:
        return int(self.index.shape[0])


def predictions_payload(predictions: ExamplePredictions) -> dict[str, Any]:
    """What their file holds."""
    return {
        "format_version": FORMAT_VERSION,
        "index": predictions.index.to("cpu", torch.int64),
        "true": predictions.true.to("cpu", torch.int64),
        "predicted": predictions.predicted.to("cpu", torch.int64),
        "confidence": predictions.confidence.to("cpu", torch.float32),
    }


def save_example_predictions(path: Path, predictions: ExamplePredictions) -> str:
    """Write them atomically (the old file or the whole new one); the file's sha256."""
    return atomic_torch_save(predictions_payload(predictions), path)


def load_example_predictions(source: Path | BinaryIO) -> ExamplePredictions:
    """What predictions_payload made, from a path or an open file (only tensors and plain
    values are unpickled)."""
    payload = torch.load(source, map_location="cpu", weights_only=True)
    return ExamplePredictions(
        index=payload["index"],
        true=payload["true"],
        predicted=payload["predicted"],
        confidence=payload["confidence"],
    )


def rank_mistakes(
    predictions: ExamplePredictions, true: int | None = None, predicted: int | None = None
) -> torch.Tensor:
    """Rows of the wrongly predicted examples (of class `true`, given class `predicted`, when
    these are set), most confident first; equally confident ones in test order."""
    wrong = predictions.predicted != predictions.true
    if true is not None:
        wrong &= predictions.true == true
    if predicted is not None:
        wrong &= predictions.predicted == predicted
    rows = torch.nonzero(wrong).flatten()
    order = torch.sort(predictions.confidence[rows], descending=True, stable=True).indices
    return rows[order]
