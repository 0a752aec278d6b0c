import math
from dataclasses import dataclass, field

import pytest
import torch
from torch import nn

from app.ml.images import ImageSet
from tests.conftest import synthetic_split
from workers.train import (
    EpochMetrics,
    TrainConfig,
    TrainingDiverged,
    TrainingInterrupted,
    evaluate,
    resolve_device,
    train,
)

CLASSES = [f"class{i}" for i in range(10)]


def image_set(count: int, seed: int) -> ImageSet:
    images, labels = synthetic_split(count, seed)
    return ImageSet(images=torch.from_numpy(images), labels=torch.from_numpy(labels))


@dataclass
class Collector:
    stop_at: tuple[int, int] | None = None
    device: str = ""
    steps_per_epoch: int = 0
    losses: list[tuple[int, int, float]] = field(default_factory=list)
    epochs: list[EpochMetrics] = field(default_factory=list)
    last_progress: tuple[int, int] = (0, 0)

    def started(self, device: str, steps_per_epoch: int) -> None:
        self.device, self.steps_per_epoch = device, steps_per_epoch

    def progress(self, epoch: int, step: int) -> None:
        self.last_progress = (epoch, step)

    def loss_point(self, epoch: int, step: int, loss: float) -> None:
        self.losses.append((epoch, step, loss))
        self.last_progress = (epoch, step)

    def epoch_done(self, metrics: EpochMetrics) -> None:
        self.epochs.append(metrics)

    def should_stop(self) -> bool:
        return self.stop_at is not None and self.last_progress >= self.stop_at


def run(config: TrainConfig, hooks: Collector | None = None) -> tuple[Collector, float]:
    hooks = hooks or Collector()
    result = train(config, image_set(400, 1), image_set(100, 2), CLASSES, hooks)
    return hooks, result.final.accuracy


def test_loss_points_follow_the_tutorial_schedule() -> None:
    hooks, _ = run(TrainConfig(epochs=2, batch_size=4, log_every=20, device="cpu", seed=3))
    assert hooks.device == "cpu"
    assert hooks.steps_per_epoch == 100
    assert [(e, s) for e, s, _ in hooks.losses] == [
        (e, s) for e in (1, 2) for s in (20, 40, 60, 80, 100)
    ]
    assert [m.epoch for m in hooks.epochs] == [1, 2]
    assert all(m.steps == 100 for m in hooks.epochs)
    # The epoch's training loss is the mean of its (equal-sized) loss windows.
    first_epoch = [loss for e, _, loss in hooks.losses if e == 1]
    assert hooks.epochs[0].train_loss == pytest.approx(sum(first_epoch) / 5, rel=1e-5)


def test_a_fixed_seed_reproduces_the_run_exactly() -> None:
    config = TrainConfig(epochs=1, batch_size=8, log_every=10, device="cpu", seed=11)
    first, accuracy_1 = run(config)
    second, accuracy_2 = run(config)
    assert first.losses == second.losses
    assert accuracy_1 == accuracy_2
    third, _ = run(TrainConfig(epochs=1, batch_size=8, log_every=10, device="cpu", seed=12))
    assert third.losses != first.losses


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_training_learns_an_easy_task(optimizer: str) -> None:
    config = TrainConfig(
        epochs=8,
        batch_size=16,
        optimizer=optimizer,
        learning_rate=0.01,
        log_every=25,
        seed=5,
        device="cpu",
    )
    hooks, accuracy = run(config)
    assert accuracy >= 0.9, hooks.epochs
    assert hooks.epochs[-1].train_loss < hooks.epochs[0].train_loss


def test_a_partial_last_batch_counts_as_a_step() -> None:
    hooks, _ = run(TrainConfig(epochs=1, batch_size=64, log_every=1000, device="cpu", seed=1))
    assert hooks.steps_per_epoch == math.ceil(400 / 64) == 7


def test_stop_request_interrupts_training() -> None:
    hooks = Collector(stop_at=(1, 30))
    with pytest.raises(TrainingInterrupted, match="stopped in epoch 1 at step 30"):
        run(TrainConfig(epochs=2, batch_size=4, log_every=10, device="cpu"), hooks)
    assert hooks.epochs == []


def test_divergence_fails_with_advice() -> None:
    with pytest.raises(TrainingDiverged, match=r"loss became nan in epoch 1 by step .*lower"):
        run(TrainConfig(epochs=1, learning_rate=5.0, log_every=10, device="cpu", seed=0))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_cuda_without_a_gpu_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="asks for device 'cuda' but this worker has no"):
        resolve_device("cuda")
    assert resolve_device("auto") == torch.device("cpu")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_trains_on_cuda() -> None:
    hooks, accuracy = run(TrainConfig(epochs=2, batch_size=16, log_every=10, device="cuda"))
    assert hooks.device.startswith("cuda:")
    assert accuracy > 0.5


class FixedLogits(nn.Module):
    """Predicts class (label + shift) % 10 for the i-th image, whatever it looks like."""

    def __init__(self, predictions: torch.Tensor) -> None:
        super().__init__()
        self.predictions = predictions
        self.offset = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        chosen = self.predictions[self.offset : self.offset + len(x)]
        self.offset += len(x)
        return nn.functional.one_hot(chosen, 10).float() * 100


def test_evaluate_counts_exactly() -> None:
    data = image_set(20, 3)  # labels 0..9, twice
    predicted = data.labels.clone()
    predicted[0] = 1  # one airplane called automobile
    predicted[13] = 0  # one cat (label 3) called airplane
    result = evaluate(FixedLogits(predicted), data, CLASSES)
    assert result.accuracy == 18 / 20
    assert result.per_class_accuracy["class0"] == 0.5
    assert result.per_class_accuracy["class3"] == 0.5
    assert result.per_class_accuracy["class1"] == 1.0
    matrix = result.confusion_matrix
    assert matrix[0][1] == 1 and matrix[0][0] == 1 and matrix[3][0] == 1 and matrix[3][3] == 1
    assert sum(map(sum, matrix)) == 20
    assert result.loss == pytest.approx(2 * 100 / 20)  # two wrong answers cost 100 nats each
