"""What a served model takes and gives, in the protocol's terms."""

import json
from dataclasses import dataclass
from typing import Any

from app.ml.predictor import Predictor

IMAGE_INPUT = "image"
FEATURES_INPUT = "features"
PROBABILITIES = "probabilities"
LABEL = "label"
OUTPUTS = (PROBABILITIES, LABEL)


@dataclass(frozen=True)
class Signature:
    input_name: str
    datatype: str
    shape: list[int]  # -1: any batch size
    classes: list[str]
    columns: list[str] | None  # a table model's feature columns, in order

    @staticmethod
    def of(predictor: Predictor) -> "Signature":
        standardizer = predictor.standardizer
        if standardizer is not None:
            columns = standardizer.columns
            return Signature(FEATURES_INPUT, "FP32", [-1, len(columns)], predictor.classes, columns)
        height, width = predictor.image_size
        return Signature(IMAGE_INPUT, "UINT8", [-1, height, width, 3], predictor.classes, None)

    def metadata(self, name: str, versions: list[int]) -> dict[str, Any]:
        """The protocol's $metadata_model_response, with the classes and the input's meaning
        in `parameters` (JSON-encoded where a list)."""
        parameters: dict[str, Any] = {"classes": json.dumps(self.classes)}
        if self.columns is not None:
            parameters["feature_columns"] = json.dumps(self.columns)
            parameters["input"] = "raw feature values in this column order; standardised here"
        else:
            parameters["input"] = "RGB pixels as decoded (0-255); normalised here as in training"
        return {
            "name": name,
            "versions": [str(v) for v in versions],
            "platform": "pytorch_torchscript",
            "inputs": [{"name": self.input_name, "datatype": self.datatype, "shape": self.shape}],
            "outputs": [
                {"name": PROBABILITIES, "datatype": "FP32", "shape": [-1, len(self.classes)]},
                {"name": LABEL, "datatype": "BYTES", "shape": [-1]},
            ],
            "parameters": parameters,
        }
