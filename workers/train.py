"""The training loop: a config and data in, a trained model and metrics out, no database.

The loop can stop between any two steps and hand out everything needed to continue exactly where
it was (see `snapshot`), and it can start from such a snapshot.
"""

import math
import random
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from app.ml.images import ImageSet, normalize
from app.ml.nets import build_model

EVAL_BATCH_SIZE = 1000
SNAPSHOT_FORMAT = 1


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


def _finite(value: float, what: str, epoch: int, step: int) -> float:
    if not math.isfinite(value):
        raise TrainingDiverged(
            f"training diverged: the {what} became {value} in epoch {epoch} by step {step}; "
            "try a lower learning_rate"
        )
    return value


@dataclass(frozen=True)
class TrainConfig:
    model: str = "tutorial_cnn"
    epochs: int = 2
    batch_size: int = 4
    optimizer: str = "sgd"
    learning_rate: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 0.0
    seed: int = 0
    log_every: int = 2000
    device: str = "auto"

    @classmethod
    def from_job_config(cls, config: dict[str, Any]) -> "TrainConfig":
        """The training fields of a job's resolved config."""
        names = cls.__dataclass_fields__.keys()
        return cls(**{name: config[name] for name in names if name in config})


@dataclass(frozen=True)
class Evaluation:
    loss: float
    accuracy: float
    per_class_accuracy: dict[str, float]
    confusion_matrix: list[list[int]]


@dataclass(frozen=True)
class EpochMetrics:
    epoch: int
    steps: int
    train_loss: float
    evaluation: Evaluation

    def summary(self) -> dict[str, float | int]:
        return {
            "epoch": self.epoch,
            "train_loss": self.train_loss,
            "test_loss": self.evaluation.loss,
            "test_accuracy": self.evaluation.accuracy,
        }


@dataclass(frozen=True)
class TrainResult:
    model: nn.Module
    device: str
    final: Evaluation


class TrainingHooks(Protocol):
    """How the loop reports progress and asks about stopping; the worker stores it."""

    def started(self, device: str, classes: list[str], steps_per_epoch: int) -> None: ...
    def progress(self, epoch: int, step: int) -> None: ...
    def loss_point(self, epoch: int, step: int, loss: float) -> None: ...
    def epoch_done(self, metrics: EpochMetrics) -> None: ...
    def stop_reason(self) -> StopReason | None: ...
    def checkpoint_due(self) -> bool: ...
    def save_checkpoint(self, snapshot: dict[str, Any], epoch: int, step: int) -> None: ...


def resolve_device(requested: str) -> torch.device:
    """The torch device for a job's `device` option."""
    if requested == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    if requested == "cuda":
        raise RuntimeError("the job asks for device 'cuda' but this worker has no usable CUDA GPU")
    return torch.device("cpu")


def _make_optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(),
            lr=config.learning_rate,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
        )
    if config.optimizer == "adam":
        return torch.optim.Adam(
            model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
        )
    raise ValueError(f"unknown optimizer {config.optimizer!r}")


def evaluate(model: nn.Module, data: ImageSet, classes: list[str]) -> Evaluation:
    """Mean loss, accuracy, per-class accuracy and confusion matrix on a whole set."""
    num_classes = len(classes)
    model.eval()
    loss_sum = torch.zeros((), device=data.images.device)
    confusion = torch.zeros(num_classes * num_classes, dtype=torch.long, device=data.images.device)
    with torch.no_grad():
        for start in range(0, len(data), EVAL_BATCH_SIZE):
            images = normalize(data.images[start : start + EVAL_BATCH_SIZE])
            labels = data.labels[start : start + EVAL_BATCH_SIZE]
            logits = model(images)
            loss_sum += nn.functional.cross_entropy(logits, labels, reduction="sum")
            predicted = logits.argmax(dim=1)
            confusion += torch.bincount(labels * num_classes + predicted, minlength=num_classes**2)
    matrix = confusion.view(num_classes, num_classes).cpu()
    per_class_totals = matrix.sum(dim=1)
    correct = matrix.diagonal()
    return Evaluation(
        loss=loss_sum.item() / len(data),
        accuracy=correct.sum().item() / len(data),
        per_class_accuracy={
            name: (correct[i].item() / per_class_totals[i].item()) if per_class_totals[i] else 0.0
            for i, name in enumerate(classes)
        },
        confusion_matrix=matrix.tolist(),
    )


def _rng_states(shuffle: torch.Generator) -> dict[str, Any]:
    kind, keys, position, has_gauss, cached = np.random.get_state(legacy=True)
    assert isinstance(keys, np.ndarray)
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "shuffle": shuffle.get_state(),
        "python": random.getstate(),
        "numpy": [kind, keys.tolist(), position, has_gauss, cached],
    }


def _restore_rng_states(states: dict[str, Any], shuffle: torch.Generator) -> None:
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    shuffle.set_state(states["shuffle"])
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, position, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), position, has_gauss, cached))


@dataclass
class _Position:
    """Where the loop is: `step` mini-batches of `epoch` are done."""

    epoch: int
    step: int


def train(
    config: TrainConfig,
    train_set: ImageSet,
    test_set: ImageSet,
    classes: list[str],
    hooks: TrainingHooks,
    resume: dict[str, Any] | None = None,
) -> TrainResult:
    """Train config.model on train_set, evaluating on test_set after every epoch.

    With `resume` (a snapshot the loop handed to `hooks.save_checkpoint`), training continues
    from that exact point: same weights, optimizer state, batch order, random state and history.
    """
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    shuffle = torch.Generator().manual_seed(config.seed)
    model = build_model(config.model, num_classes=len(classes)).to(device)
    optimizer = _make_optimizer(config, model)
    criterion = nn.CrossEntropyLoss()
    train_data, test_data = train_set.to(device), test_set.to(device)
    size, batch_size = len(train_data), config.batch_size
    steps_per_epoch = math.ceil(size / batch_size)

    at = _Position(epoch=1, step=0)
    order: torch.Tensor | None = None
    window_loss = torch.zeros((), device=device)  # stays on the device between log points
    epoch_loss = torch.zeros((), device=device)
    loss_history: list[dict[str, float | int]] = []
    epoch_history: list[dict[str, float | int]] = []
    if resume is not None:
        if resume["train_size"] != size or resume["steps_per_epoch"] != steps_per_epoch:
            raise ValueError("the checkpoint was made with other data; it cannot be resumed")
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        _restore_rng_states(resume["rng"], shuffle)
        at = _Position(epoch=resume["epoch"], step=resume["step"])
        loss_history, epoch_history = list(resume["loss_history"]), list(resume["epochs"])
        if at.step == steps_per_epoch:  # that epoch was finished and evaluated: start the next
            at = _Position(epoch=at.epoch + 1, step=0)
        else:
            order = resume["order"].to(device)
            window_loss = resume["window_loss"].to(device)
            epoch_loss = resume["epoch_loss"].to(device)

    def snapshot() -> dict[str, Any]:
        return {
            "format": SNAPSHOT_FORMAT,
            "epoch": at.epoch,
            "step": at.step,
            "train_size": size,
            "steps_per_epoch": steps_per_epoch,
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "optimizer": optimizer.state_dict(),
            "rng": _rng_states(shuffle),
            "order": order.cpu() if order is not None else torch.empty(0, dtype=torch.long),
            "window_loss": window_loss.detach().cpu(),
            "epoch_loss": epoch_loss.detach().cpu(),
            "loss_history": loss_history,
            "epochs": epoch_history,
        }

    hooks.started(str(device), classes, steps_per_epoch)
    evaluation: Evaluation | None = None
    while at.epoch <= config.epochs:
        model.train()
        if order is None:
            order = torch.randperm(size, generator=shuffle).to(device)
        while at.step < steps_per_epoch:
            batch = order[at.step * batch_size : (at.step + 1) * batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = criterion(model(normalize(train_data.images[batch])), train_data.labels[batch])
            loss.backward()
            optimizer.step()
            window_loss += loss.detach()
            epoch_loss += loss.detach()
            at.step += 1
            if at.step % config.log_every == 0:
                mean = _finite(window_loss.item() / config.log_every, "loss", at.epoch, at.step)
                window_loss.zero_()
                loss_history.append({"epoch": at.epoch, "step": at.step, "loss": mean})
                hooks.loss_point(at.epoch, at.step, mean)
            else:
                hooks.progress(at.epoch, at.step)
            reason = hooks.stop_reason()
            if reason is not None:
                if reason is StopReason.SHUTDOWN:
                    hooks.save_checkpoint(snapshot(), at.epoch, at.step)
                raise TrainingInterrupted(reason, at.epoch, at.step)
            if at.step < steps_per_epoch and hooks.checkpoint_due():
                hooks.save_checkpoint(snapshot(), at.epoch, at.step)

        train_loss = _finite(epoch_loss.item() / steps_per_epoch, "loss", at.epoch, at.step)
        evaluation = evaluate(model, test_data, classes)
        _finite(evaluation.loss, "test loss", at.epoch, at.step)
        metrics = EpochMetrics(at.epoch, steps_per_epoch, train_loss, evaluation)
        epoch_history.append(metrics.summary())
        hooks.epoch_done(metrics)
        hooks.save_checkpoint(snapshot(), at.epoch, at.step)
        at = _Position(epoch=at.epoch + 1, step=0)
        order = None
        window_loss.zero_()
        epoch_loss.zero_()

    if evaluation is None:  # resumed after the last epoch had already finished
        evaluation = evaluate(model, test_data, classes)
    return TrainResult(model=model, device=str(device), final=evaluation)
