"""The API's answers to predictions."""

from typing import Any

from pydantic import BaseModel, Field

from app.errors import ErrorOut
from app.ml.predictor import Prediction
from app.serving.service import Served

# The errors every prediction route can answer, for the OpenAPI document.
PREDICTION_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {
        "model": ErrorOut,
        "description": "The job, model, alias or version named does not exist.",
    },
    409: {"model": ErrorOut, "description": "The job named has no trained model."},
    422: {
        "model": ErrorOut,
        "description": "Not an image, empty, truncated, too many pixels, or (with "
        "resize=false) not the model's size; or a model trained on the other kind of input "
        "(images, rows).",
    },
    503: {
        "model": ErrorOut,
        "description": "The default model is not registered or has no production version "
        "yet, or the model file is missing or fails its checksum.",
    },
}


class TopClass(BaseModel):
    label: str
    class_index: int
    probability: float


class ImageSize(BaseModel):
    width: int
    height: int


class ImagePrediction(BaseModel):
    label: str
    class_index: int
    probabilities: dict[str, float] = Field(description="Every class, in the model's order.")
    top_k: list[TopClass] = Field(description="The most likely classes, most likely first.")
    original_size: ImageSize | None = Field(
        default=None,
        description="The uploaded image's size, before it was resized to the model's; absent "
        "for table rows.",
    )


class AnsweredBy(BaseModel):
    model: str | None = Field(description="The registered model; null when named by job_id.")
    version: int | None = Field(description="Its version; null when named by job_id.")
    job_id: int = Field(description="The job that trained the model that answered.")


class PredictionOut(AnsweredBy, ImagePrediction):
    pass


class BatchPredictionOut(AnsweredBy):
    predictions: list[ImagePrediction] = Field(description="One per image, in the order sent.")


TOP_K_MAX = 1000  # the most classes a request may ask `top_k` to list


def prediction_json(prediction: Prediction, top_k: int | None) -> dict[str, Any]:
    """One input's answer as plain JSON data, in the shape of ImagePrediction (built without
    validation: validating our own output would cost more than the forward pass)."""
    ranked = sorted(
        enumerate(prediction.probabilities.items()), key=lambda item: item[1][1], reverse=True
    )
    answer: dict[str, Any] = {
        "label": prediction.label,
        "class_index": prediction.class_index,
        "probabilities": prediction.probabilities,
        "top_k": [
            {"label": label, "class_index": index, "probability": probability}
            for index, (label, probability) in ranked[: top_k or len(ranked)]
        ],
    }
    if prediction.original_size is not None:
        width, height = prediction.original_size
        answer["original_size"] = {"width": width, "height": height}
    return answer


def batch_json(served: Served, top_k: int | None) -> dict[str, Any]:
    """A batch's answer as plain JSON data, in the shape of BatchPredictionOut."""
    return {
        **served.json(),
        "predictions": [prediction_json(p, top_k) for p in served.predictions],
    }
