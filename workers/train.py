"""The training loop: a config and data in, a trained model and metrics out, no database."""

import math
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn

from app.ml.images import ImageSet, normalize
from app.ml.nets import build_model

EVAL_BATCH_SIZE = 1000


class TrainingInterrupted(Exception):
    """Training stopped early because the worker was asked to stop."""


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


@dataclass(frozen=True)
class TrainResult:
    model: nn.Module
    device: str
    final: Evaluation


class TrainingHooks(Protocol):
    """How the loop reports progress; the worker stores it, tests may just collect it."""

    def started(self, device: str, steps_per_epoch: int) -> None: ...
    def progress(self, epoch: int, step: int) -> None: ...
    def loss_point(self, epoch: int, step: int, loss: float) -> None: ...
    def epoch_done(self, metrics: EpochMetrics) -> None: ...
    def should_stop(self) -> bool: ...


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


def train(
    config: TrainConfig,
    train_set: ImageSet,
    test_set: ImageSet,
    classes: list[str],
    hooks: TrainingHooks,
) -> TrainResult:
    """Train config.model on train_set, evaluating on test_set after every epoch."""
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    shuffle = torch.Generator().manual_seed(config.seed)
    model = build_model(config.model, num_classes=len(classes)).to(device)
    optimizer = _make_optimizer(config, model)
    criterion = nn.CrossEntropyLoss()
    train_data, test_data = train_set.to(device), test_set.to(device)
    size, batch_size = len(train_data), config.batch_size
    steps_per_epoch = math.ceil(size / batch_size)
    hooks.started(str(device), steps_per_epoch)

    evaluation: Evaluation | None = None
    for epoch in range(1, config.epochs + 1):
        model.train()
        order = torch.randperm(size, generator=shuffle).to(device)
        # Losses stay on the device and are read back only at log points.
        window_loss = torch.zeros((), device=device)
        epoch_loss = torch.zeros((), device=device)
        for step in range(1, steps_per_epoch + 1):
            batch = order[(step - 1) * batch_size : step * batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = criterion(model(normalize(train_data.images[batch])), train_data.labels[batch])
            loss.backward()
            optimizer.step()
            window_loss += loss.detach()
            epoch_loss += loss.detach()
            if step % config.log_every == 0:
                mean_loss = _finite(window_loss.item() / config.log_every, "loss", epoch, step)
                hooks.loss_point(epoch, step, mean_loss)
                window_loss.zero_()
            else:
                hooks.progress(epoch, step)
            if hooks.should_stop():
                raise TrainingInterrupted(f"stopped in epoch {epoch} at step {step}")
        evaluation = evaluate(model, test_data, classes)
        hooks.epoch_done(
            EpochMetrics(
                epoch=epoch,
                steps=steps_per_epoch,
                train_loss=epoch_loss.item() / steps_per_epoch,
                evaluation=evaluation,
            )
        )
    assert evaluation is not None  # epochs >= 1
    return TrainResult(model=model, device=str(device), final=evaluation)
