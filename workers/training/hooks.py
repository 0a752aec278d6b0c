"""What goes into a training run and what comes out: its inputs, the hooks through which it
reports progress and asks whether to stop, its epochs' metrics, its result and how it can end."""

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from torch import nn

from app.jobs.config import JobConfig
from app.jobs.records import EpochRecord
from app.ml.images import ImageSet
from app.ml.transfer import InitialWeights
from workers.training.evaluate import Evaluation


class StopReason(StrEnum):
    SHUTDOWN = "shutdown"  # the worker is stopping; checkpoint and hand the job back
    CANCEL = "cancel"  # the user cancelled the job
    LOST = "lost"  # the worker lost its lease; another may be running the job


class TrainingInterrupted(Exception):
    """Training stopped between two steps; `reason` says why."""

    def __init__(self, reason: StopReason, epoch: int, step: int) -> None:
        super().__init__(f"stopped ({reason}) in epoch {epoch} at step {step}")
        self.reason = reason


class TrainingDiverged(Exception):
    """The loss stopped being a finite number; the message says when."""


@dataclass(frozen=True)
class TrainInputs:
    """Everything a run trains from: the job's config and its data, and a snapshot to resume."""

    config: JobConfig
    train_set: ImageSet
    test_set: ImageSet
    classes: list[str]
    validation_set: ImageSet | None = None  # held-out training images, when the job has some
    resume: dict[str, Any] | None = None  # a snapshot the loop handed to save_checkpoint
    # Fine-tuning: the weights to start from, loaded once before the first step (a resumed run
    # continues from its snapshot's weights instead).
    initial_weights: InitialWeights | None = None

    @property
    def batch_size(self) -> int:
        """The global batch size; a job without one trains on the whole training set at once."""
        return self.config.batch_size or len(self.train_set)


@dataclass(frozen=True)
class EpochMetrics:
    epoch: int
    steps: int
    train_loss: float
    evaluation: Evaluation
    elapsed_s: float  # training time from the job's start to this epoch's end, over attempts
    validation: Evaluation | None = None  # on the held-out training images, when there are some

    def record(self) -> EpochRecord:
        """What the job keeps of this epoch (its checkpoint, its tables, the API)."""
        return EpochRecord(
            epoch=self.epoch,
            train_loss=self.train_loss,
            test_loss=self.evaluation.loss,
            test_accuracy=self.evaluation.accuracy,
            elapsed_s=self.elapsed_s,
            validation_loss=None if self.validation is None else self.validation.loss,
            validation_accuracy=None if self.validation is None else self.validation.accuracy,
        )


@dataclass(frozen=True)
class TrainResult:
    model: nn.Module
    device: str
    final: Evaluation
    best_epoch: int | None = None  # early stopping: the epoch whose weights `model` has


class TrainingHooks(Protocol):
    """How the loop reports progress and asks about stopping; the worker stores it."""

    def started(self, device: str, classes: list[str], steps_per_epoch: int) -> None: ...
    def progress(self, epoch: int, step: int) -> None: ...
    def loss_point(self, epoch: int, step: int, loss: float) -> None: ...
    def epoch_done(self, metrics: EpochMetrics) -> None: ...
    def stop_reason(self) -> StopReason | None: ...
    def checkpoint_due(self) -> bool: ...
    def save_checkpoint(self, snapshot: dict[str, Any], epoch: int, step: int) -> None: ...
