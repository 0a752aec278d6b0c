"""Request and response bodies of the HTTP API."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from app.models import JobStatus

SEED_MAX = 2**63 - 1
COUNT_MAX = 2**31 - 1


def _integral_float_to_int(value: object) -> object:
    # JSON (and JSON Schema) treat 2.0 as the integer 2; strict mode alone would refuse it.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# An integer field that refuses strings, booleans and fractions but takes 2.0 as 2.
Integer = Annotated[int, BeforeValidator(_integral_float_to_int)]
# Bounds inside the type, so that they reach the JSON schema also where the field is optional.
Count = Annotated[int, Field(ge=1, le=COUNT_MAX), BeforeValidator(_integral_float_to_int)]
Seed = Annotated[int, Field(ge=0, le=SEED_MAX), BeforeValidator(_integral_float_to_int)]


class JobCreate(BaseModel):
    """A training job; every field is optional and the defaults are the CIFAR-10 tutorial."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {},
                {"epochs": 1, "max_train_samples": 5000, "max_test_samples": 1000, "seed": 7},
                {"optimizer": "adam", "learning_rate": 0.001, "batch_size": 64, "epochs": 5},
            ]
        },
    )

    model: Literal["tutorial_cnn"] = "tutorial_cnn"
    dataset: Literal["cifar10"] = "cifar10"
    epochs: Integer = Field(default=2, ge=1, le=1000)
    batch_size: Integer = Field(default=4, ge=1, le=65536)
    optimizer: Literal["sgd", "adam"] = "sgd"
    learning_rate: float = Field(default=0.001, gt=0, le=10)
    momentum: float = Field(default=0.9, ge=0, lt=1)
    weight_decay: float = Field(default=0.0, ge=0, le=1)
    seed: Seed | None = Field(default=None, description="Random when absent.")
    log_every: Count = Field(default=2000, description="Mini-batches per loss point.")
    max_train_samples: Count | None = None
    max_test_samples: Count | None = None
    device: Literal["auto", "cpu", "cuda"] = "auto"


class Progress(BaseModel):
    epoch: int = Field(description="The epoch being trained, counted from 1; 0 before start.")
    epochs: int
    step: int = Field(description="Mini-batches done in the current epoch.")
    steps_per_epoch: int | None


class JobOut(BaseModel):
    id: int
    status: JobStatus
    config: dict[str, object]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    progress: Progress
    device: str | None
    error: str | None
    test_accuracy: float | None
    attempts: int = Field(
        description="Times a worker has claimed the job (a graceful stop does not count)."
    )
    max_attempts: int = Field(description="Lost workers after which the job fails.")
    heartbeat_at: datetime | None = Field(description="The running job's last heartbeat.")
    cancel_requested: bool
    retry_of: int | None = Field(description="The job this one retries.")


class JobList(BaseModel):
    items: list[JobOut]
    total: int


class LossPointOut(BaseModel):
    epoch: int
    step: int
    loss: float


class EpochOut(BaseModel):
    epoch: int
    train_loss: float
    test_loss: float
    test_accuracy: float


class MetricsOut(BaseModel):
    job_id: int
    status: JobStatus
    classes: list[str] | None
    loss_history: list[LossPointOut]
    epochs: list[EpochOut]
    test_accuracy: float | None
    per_class_accuracy: dict[str, float] | None
    confusion_matrix: list[list[int]] | None


class TopClass(BaseModel):
    label: str
    class_index: int
    probability: float


class ImagePrediction(BaseModel):
    label: str
    class_index: int
    probabilities: dict[str, float] = Field(description="Every class, in the model's order.")
    top_k: list[TopClass] = Field(description="The most likely classes, most likely first.")


class PredictionOut(ImagePrediction):
    job_id: int


class BatchPredictionOut(BaseModel):
    job_id: int
    predictions: list[ImagePrediction] = Field(description="One per image, in the order sent.")


class HealthOut(BaseModel):
    status: str


class ErrorOut(BaseModel):
    detail: str
