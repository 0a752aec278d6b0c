"""Request and response bodies of the HTTP API."""

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from app.jobs.recipes import RECIPES, RecipeName
from app.jobs.rules import broken_rule, rules_json_schema
from app.models import DatasetStatus, JobStatus

SEED_MAX = 2**63 - 1
COUNT_MAX = 2**31 - 1
PROCESSES_MAX = 64
# Held out for early stopping when the job names no validation_fraction.
DEFAULT_VALIDATION_FRACTION = 0.1


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
Processes = Annotated[int, Field(ge=1, le=PROCESSES_MAX), BeforeValidator(_integral_float_to_int)]
Patience = Annotated[int, Field(ge=1, le=1000), BeforeValidator(_integral_float_to_int)]
BatchSize = Annotated[int, Field(ge=1, le=65536), BeforeValidator(_integral_float_to_int)]
Width = Annotated[int, Field(ge=1, le=4096), BeforeValidator(_integral_float_to_int)]
Fraction = Annotated[float, Field(gt=0, le=0.5)]


DATASET_NAME = re.compile(r"^(cifar10|ds-[0-9a-f]{12})$")


def _dataset_name(value: object) -> object:
    # Before the pattern check, to say what is meant rather than quote the regular expression.
    if isinstance(value, str) and not DATASET_NAME.match(value):
        raise ValueError(
            f'{value[:40]!r} is neither "cifar10" nor a dataset id (ds- and 12 hex digits; '
            "see GET /datasets)"
        )
    return value


def _true_false_or_auto(value: object) -> object:
    # A Literal of booleans alone would take 1 and 0 as true and false; JSON does not.
    if type(value) is bool or value == "auto":
        return value
    raise ValueError('Input should be true, false or "auto"')


# A speed option the worker may decide for itself ("auto") or that the job fixes.
Toggle = Annotated[Literal["auto", True, False], BeforeValidator(_true_false_or_auto)]


def _describe_job_schema(schema: dict[str, Any], cls: type[BaseModel]) -> None:
    schema["examples"] = [
        {},
        {"epochs": 1, "max_train_samples": 5000, "max_test_samples": 1000, "seed": 7},
        {"optimizer": "adam", "learning_rate": 0.001, "batch_size": 64, "epochs": 5},
        {"recipe": "fast"},
    ]
    defaults = {name: field.default for name, field in cls.model_fields.items()}
    schema["allOf"] = rules_json_schema(defaults)


class JobCreate(BaseModel):
    """A training job; every field is optional and the defaults are the CIFAR-10 tutorial."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra=lambda schema, cls: _describe_job_schema(schema, cls),
    )

    recipe: RecipeName = Field(
        default="tutorial",
        description="Starting values for the other fields; fields the job gives still win. "
        '"fast": batch 256, 6 epochs, SGD with Nesterov momentum and a one-cycle learning '
        "rate of 0.1, weight decay 5e-4, label smoothing 0.1, random flips and 2-pixel crops.",
    )
    model: Literal["tutorial_cnn", "mlp"] = Field(
        default="tutorial_cnn",
        description='"tutorial_cnn" for images; "mlp" for a tabular (CSV) dataset.',
    )
    hidden_layers: Annotated[list[Width], Field(min_length=1, max_length=8)] | None = Field(
        default=None,
        description="The mlp's hidden layer widths, input side first (ignored by "
        "tutorial_cnn). Default: [64, 32].",
    )
    dataset: Annotated[str, BeforeValidator(_dataset_name)] = Field(
        default="cifar10",
        pattern=DATASET_NAME.pattern,
        description='"cifar10", or the id of a ready uploaded dataset (POST /datasets).',
    )
    epochs: Integer = Field(default=2, ge=1, le=1000)
    batch_size: BatchSize | None = Field(
        default=4, description="null: the whole training set at every step (full batch)."
    )
    optimizer: Literal["sgd", "adam"] = "sgd"
    learning_rate: float = Field(default=0.001, gt=0, le=10)
    momentum: float = Field(default=0.9, ge=0, lt=1)
    nesterov: bool = Field(
        default=False,
        description="Nesterov momentum (SGD; no effect with momentum 0, ignored by Adam).",
    )
    weight_decay: float = Field(default=0.0, ge=0, le=1)
    lr_schedule: Literal["constant", "onecycle", "cosine"] = Field(
        default="constant",
        description="onecycle: warm up to learning_rate over the first quarter of the steps, "
        "then anneal; cosine: anneal from learning_rate to 0.",
    )
    label_smoothing: float = Field(default=0.0, ge=0, lt=1)
    random_flip: bool = Field(default=False, description="Flip training images left-right.")
    random_crop_padding: Integer = Field(
        default=0, ge=0, le=8, description="Shift training images by up to this many pixels."
    )
    seed: Seed | None = Field(default=None, description="Random when absent.")
    log_every: Count = Field(default=2000, description="Mini-batches per loss point.")
    max_train_samples: Count | None = None
    max_test_samples: Count | None = None
    validation_fraction: Fraction | None = Field(
        default=None,
        description="Hold out this fraction of each class's training images (drawn with the "
        "seed) and report the loss and accuracy on them after every epoch. Default: 0.1 with "
        "early_stopping_patience, none otherwise.",
    )
    early_stopping_patience: Patience | None = Field(
        default=None,
        description="Stop when the validation loss has not improved for this many epochs; the "
        "model saved (and tested) has the weights of the epoch with the lowest validation loss.",
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    gpus: Processes | None = Field(
        default=None,
        description="GPUs of one worker to train on; from 2, DistributedDataParallel (NCCL) "
        "with batch_size split across them (it stays the global batch). Only a worker with "
        "this many GPUs claims the job. Absent: one device, as `device` says.",
    )
    cpu_processes: Processes | None = Field(
        default=None,
        description="Train on the CPU in this many DistributedDataParallel processes (gloo), "
        "batch_size split across them: the multi-GPU code path, runnable without GPUs.",
    )
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        default="auto",
        description="Autocast precision; fp16 adds a gradient scaler. auto: bf16 on a GPU "
        "with batches of 64 or more, fp32 otherwise.",
    )
    channels_last: Toggle = Field(
        default="auto", description="NHWC memory layout. auto: on a GPU with batches of 64+."
    )
    compile: Toggle = Field(
        default="auto",
        description="torch.compile the model. auto: off, since compiling takes longer than "
        "a recipe of this model trains.",
    )
    cuda_graphs: Toggle = Field(
        default="auto",
        description="Capture the training step as a CUDA graph. auto: on a GPU for batches "
        "under 64 with a constant learning rate and no fp16 or compile.",
    )

    @model_validator(mode="after")
    def _options_fit_together(self) -> "JobCreate":
        values = self.resolved()
        problem = broken_rule(values, self.model_fields_set)
        if problem is not None:
            raise ValueError(problem)
        return self

    def resolved(self) -> dict[str, object]:
        """Every field's value: the recipe's where the job gives none, the job's own otherwise."""
        recipe = RECIPES[self.recipe]
        given = self.model_fields_set
        values = {
            name: recipe[name] if name in recipe and name not in given else value
            for name, value in self.model_dump().items()
        }
        if values["early_stopping_patience"] and values["validation_fraction"] is None:
            values["validation_fraction"] = DEFAULT_VALIDATION_FRACTION
        return values


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
    waiting_reason: str | None = Field(
        default=None,
        description="Why no live worker can run this queued job (it needs GPUs none of them "
        "has, or no worker is running); null when one can, or the job is not queued.",
    )


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
    validation_loss: float | None = Field(
        default=None, description="On the held-out training images (validation_fraction)."
    )
    validation_accuracy: float | None = None
    elapsed_s: float | None = Field(
        description="Seconds of training (evaluation included) from the job's start to the end "
        "of this epoch, summed over attempts; null for epochs recorded before this was kept."
    )


class MetricsOut(BaseModel):
    job_id: int
    status: JobStatus
    best_epoch: int | None = Field(
        default=None,
        description="With early stopping: the epoch whose weights were kept (lowest validation "
        "loss).",
    )
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


class GpuOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    index: int
    name: str
    memory_mb: int


class WorkerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    hostname: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime = Field(description="Renewed every few seconds while it lives.")
    cpus: int = Field(description="CPU cores the worker may use.")
    gpus: list[GpuOut]
    torch_version: str
    current_job_id: int | None = Field(description="The job it is training, if any.")


class WorkerList(BaseModel):
    items: list[WorkerOut] = Field(description="Live workers, oldest first.")
    total: int


class DatasetOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str = Field(description='What a job names in its "dataset" field.')
    name: str = Field(description="The uploaded file's name.")
    kind: Literal["images", "tabular"]
    status: DatasetStatus = Field(
        description="queued (waits for a worker to decode it), ingesting, ready or failed."
    )
    options: dict[str, object] = Field(
        description="image_size, test_fraction and seed; target and drop for a CSV."
    )
    upload_bytes: int
    created_at: datetime
    finished_at: datetime | None
    error: str | None = Field(
        description="Why it failed (for example, the files that are not images)."
    )
    classes: list[str] | None = Field(description="Class names: train/'s folder names, sorted.")
    counts: dict[str, dict[str, int]] | None = Field(
        description='Images per class in each split: {"train": {...}, "test": {...}}.'
    )
    image_size: int | None = Field(description="Every image was resized to this square size.")
    feature_columns: list[str] | None = Field(
        description="A CSV's feature columns: what a row sent to /predict/rows must give."
    )
    test_split: Literal["archive", "drawn"] | None = Field(
        description="archive: its own test/ folders; drawn: test_fraction of each class of "
        "train/, drawn with the seed."
    )
    ignored_files: int | None = Field(
        description="Entries skipped: folders, files beside the splits and desktop junk."
    )


class DatasetList(BaseModel):
    items: list[DatasetOut] = Field(description="Newest first.")
    total: int


class HealthOut(BaseModel):
    status: str


class ErrorOut(BaseModel):
    detail: str
