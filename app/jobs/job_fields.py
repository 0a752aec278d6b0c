"""The fields of a job's config and their defaults: the CIFAR-10 tutorial's, with the options
that change how, what and where a job trains."""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.jobs.fields import (
    BatchSize,
    Count,
    DatasetName,
    Fraction,
    Integer,
    ModelName,
    Patience,
    Processes,
    Seed,
    Toggle,
    Width,
)
from app.jobs.init_from import Freeze, InitFrom
from app.jobs.recipes import RecipeName
from app.registry.names import Name
from app.registry.promotion import PromotePolicy


class JobFields(BaseModel):
    """Every field of a job with its default; the defaults are the CIFAR-10 tutorial."""

    model_config = ConfigDict(extra="forbid", strict=True)

    recipe: RecipeName = Field(
        default="tutorial",
        description="Starting values for the other fields; fields the job gives still win. "
        '"fast": batch 256, 6 epochs, SGD with Nesterov momentum and a one-cycle learning '
        "rate of 0.1, weight decay 5e-4, label smoothing 0.1, random flips and 2-pixel crops. "
        '"fast94": the fast_cnn model with the airbench paper\'s recipe (see docs/api.md).',
    )
    model: ModelName = Field(
        default="tutorial_cnn",
        description='"tutorial_cnn", "fast_cnn" (a record-class CIFAR network: recipe '
        '"fast94") or a torchvision architecture by its torchvision name '
        '("resnet18", "mobilenet_v3_small", ...: GET /architectures lists them with the '
        'image sizes they take) for images; "mlp" for a tabular (CSV) dataset.',
        examples=["tutorial_cnn", "fast_cnn", "resnet18", "mlp"],
    )
    hidden_layers: Annotated[list[Width], Field(min_length=1, max_length=8)] | None = Field(
        default=None,
        description="The mlp's hidden layer widths, input side first (ignored by image "
        "models). Default: [64, 32].",
    )
    dataset: DatasetName = Field(
        default="cifar10",
        description='"cifar10", or the id of a ready uploaded dataset (POST /datasets).',
    )
    init_from: InitFrom | None = Field(
        default=None,
        description="Fine-tune: start from these weights rather than random ones. A registered "
        'version, {"model": "cifar10", "version": 3} or {"model": "cifar10", "alias": '
        '"production"} (the job stores the version the alias names at submit, with its '
        'sha256), or an uploaded weights file, {"weights": "wt-..."} (POST /weights). A '
        "version's architecture is the job's model unless the job names one (it must be the "
        "same). The weights must fit the model built for this dataset (422 naming the tensors "
        "that do not); the classifier head is replaced by a fresh one when it does not fit "
        "the dataset's classes (a version's head also when its classes are others).",
    )
    freeze: Freeze | None = Field(
        default=None,
        description='"backbone": train only the classifier head; everything else keeps '
        "init_from's weights, its batch norms their running statistics (they stay in eval "
        "mode). null: train everything.",
    )
    backbone_learning_rate: float | None = Field(
        default=None,
        gt=0,
        le=10,
        description="With init_from: the learning rate of everything but the classifier head, "
        "which trains at learning_rate (two parameter groups; schedules scale both). Absent: "
        "learning_rate for all.",
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
    lr_schedule: Literal["constant", "onecycle", "cosine", "warmup_linear"] = Field(
        default="constant",
        description="onecycle: warm up to learning_rate over the first quarter of the steps, "
        "then anneal; cosine: anneal from learning_rate to 0; warmup_linear: rise linearly "
        "from a fifth of learning_rate to it over the first 23% of the steps, then fall "
        "linearly to 7% of it at the last.",
    )
    label_smoothing: float = Field(default=0.0, ge=0, lt=1)
    random_flip: bool = Field(default=False, description="Flip training images left-right.")
    alternating_flip: bool = Field(
        default=False,
        description="With random_flip: flip a random half of the images in epochs 1, 3, 5, "
        "... and exactly the other half in epochs 2, 4, ... (the airbench paper's alternating "
        "flip).",
    )
    random_crop_padding: Integer = Field(
        default=0, ge=0, le=8, description="Shift training images by up to this many pixels."
    )
    lookahead: bool = Field(
        default=False,
        description="Every 5 steps, reset the weights to an average of them moved towards "
        "them; the average is the trained model (the airbench paper's lookahead).",
    )
    seed: Seed | None = Field(default=None, description="Random when absent.")
    log_every: Count | None = Field(
        default=None,
        description="Mini-batches per loss point. Unset: the tutorial's 2,000 when an epoch has "
        "at least 6,000 mini-batches (3 points or more), else a tenth of an epoch (at least 1), "
        "so that every job has a curve of about 10 points an epoch.",
    )
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
    register_as: Name | None = Field(
        default=None,
        description="When the job succeeds, register its model as the next version of this "
        'model (see /models). Absent: "cifar10" for the CIFAR-10 dataset, no registration for '
        "an uploaded one; null: no registration.",
    )
    promote: PromotePolicy = Field(
        default="if_better",
        description="Whether the registered version takes the model's production alias (which "
        '/predict serves): "if_better" when no version holds it or when its test accuracy is '
        'strictly higher than the production version\'s on the same test set; "always"; '
        '"never". Only for a job that registers (register_as).',
    )
