import io
import math
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
from torch import nn

from app.jobs.config import JobConfig
from app.ml.images import ImageSet
from tests.conftest import job_config, synthetic_split
from workers.training.devices import resolve_device
from workers.training.evaluate import evaluate
from workers.training.hooks import (
    EpochMetrics,
    StopReason,
    TrainingDiverged,
    TrainingInterrupted,
    TrainInputs,
)
from workers.training.loop import train
from workers.training.runtime import UnsupportedOption

CLASSES = [f"class{i}" for i in range(10)]


def image_set(count: int, seed: int) -> ImageSet:
    images, labels = synthetic_split(count, seed)
    return ImageSet(images=torch.from_numpy(images), labels=torch.from_numpy(labels))


@dataclass
class Collector:
    """Hooks that keep everything in memory; stops (as a shutdown) once stop_at is reached."""

    stop_at: tuple[int, int] | None = None
    stop_as: StopReason = StopReason.SHUTDOWN
    checkpoint_every: int | None = None
    device: str = ""
    steps_per_epoch: int = 0
    losses: list[tuple[int, int, float]] = field(default_factory=list)
    epochs: list[EpochMetrics] = field(default_factory=list)
    last_progress: tuple[int, int] = (0, 0)
    checkpoints: list[tuple[int, int, dict[str, Any]]] = field(default_factory=list)

    def started(self, device: str, classes: list[str], steps_per_epoch: int) -> None:
        self.device, self.steps_per_epoch = device, steps_per_epoch

    def progress(self, epoch: int, step: int) -> None:
        self.last_progress = (epoch, step)

    def loss_point(self, epoch: int, step: int, loss: float) -> None:
        self.losses.append((epoch, step, loss))
        self.last_progress = (epoch, step)

    def epoch_done(self, metrics: EpochMetrics) -> None:
        self.epochs.append(metrics)

    def stop_reason(self) -> StopReason | None:
        if self.stop_at is not None and self.last_progress >= self.stop_at:
            return self.stop_as
        return None

    def checkpoint_due(self) -> bool:
        every = self.checkpoint_every
        return every is not None and self.last_progress[1] % every == 0

    def save_checkpoint(self, snapshot: dict[str, Any], epoch: int, step: int) -> None:
        # Through bytes, as on disk, so that nothing is shared with the running loop.
        buffer = io.BytesIO()
        torch.save(snapshot, buffer)
        buffer.seek(0)
        self.checkpoints.append((epoch, step, torch.load(buffer, weights_only=True)))


def run(config: JobConfig, hooks: Collector | None = None) -> tuple[Collector, float]:
    hooks = hooks or Collector()
    result = train(TrainInputs(config, image_set(400, 1), image_set(100, 2), CLASSES), hooks)
    return hooks, result.final.accuracy


def test_loss_points_follow_the_tutorial_schedule() -> None:
    hooks, _ = run(job_config(epochs=2, batch_size=4, log_every=20, device="cpu", seed=3))
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
    config = job_config(epochs=1, batch_size=8, log_every=10, device="cpu", seed=11)
    first, accuracy_1 = run(config)
    second, accuracy_2 = run(config)
    assert first.losses == second.losses
    assert accuracy_1 == accuracy_2
    third, _ = run(job_config(epochs=1, batch_size=8, log_every=10, device="cpu", seed=12))
    assert third.losses != first.losses


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_training_learns_an_easy_task(optimizer: str) -> None:
    config = job_config(
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
    hooks, _ = run(job_config(epochs=1, batch_size=64, log_every=1000, device="cpu", seed=1))
    assert hooks.steps_per_epoch == math.ceil(400 / 64) == 7


def test_shutdown_checkpoints_and_interrupts() -> None:
    hooks = Collector(stop_at=(1, 30))
    with pytest.raises(TrainingInterrupted, match=r"stopped \(shutdown\) in epoch 1 at step 30"):
        run(job_config(epochs=2, batch_size=4, log_every=10, device="cpu"), hooks)
    assert hooks.epochs == []
    assert [(e, s) for e, s, _ in hooks.checkpoints] == [(1, 30)]


@pytest.mark.parametrize("reason", [StopReason.CANCEL, StopReason.LOST])
def test_cancel_and_lost_lease_stop_without_a_checkpoint(reason: StopReason) -> None:
    hooks = Collector(stop_at=(1, 12), stop_as=reason)
    with pytest.raises(TrainingInterrupted) as caught:
        run(job_config(epochs=2, batch_size=4, log_every=10, device="cpu"), hooks)
    assert caught.value.reason is reason
    assert hooks.checkpoints == []


def test_a_checkpoint_is_written_at_the_end_of_every_epoch() -> None:
    hooks, _ = run(job_config(epochs=3, batch_size=8, log_every=10, device="cpu"))
    assert [(e, s) for e, s, _ in hooks.checkpoints] == [(1, 50), (2, 50), (3, 50)]
    last = hooks.checkpoints[-1][2]
    assert [e["epoch"] for e in last["epochs"]] == [1, 2, 3]
    assert len(last["loss_history"]) == 15


@pytest.mark.parametrize("stop_at", [(1, 7), (1, 20), (1, 50), (2, 1), (2, 33)])
def test_resuming_a_checkpoint_reproduces_the_straight_run_exactly(
    stop_at: tuple[int, int],
) -> None:
    config = job_config(epochs=3, batch_size=8, log_every=5, device="cpu", seed=21)
    straight, straight_accuracy = run(config)

    interrupted = Collector(stop_at=stop_at)
    with pytest.raises(TrainingInterrupted):
        run(config, interrupted)
    epoch, step, snapshot = interrupted.checkpoints[-1]
    assert (epoch, step) == stop_at

    torch.manual_seed(999)  # whatever the process did meanwhile must not matter
    resumed = Collector()
    inputs = TrainInputs(config, image_set(400, 1), image_set(100, 2), CLASSES, resume=snapshot)
    result = train(inputs, resumed)

    combined = [p for p in interrupted.losses if p[:2] <= stop_at] + resumed.losses
    assert [p[:2] for p in combined] == [p[:2] for p in straight.losses]  # no gaps, no repeats
    assert [p[2] for p in combined] == pytest.approx([p[2] for p in straight.losses], abs=1e-6)
    assert result.final.accuracy == straight_accuracy
    # Training time carries on from the checkpoint's, it does not restart at 0.
    assert resumed.epochs[0].elapsed_s > snapshot["elapsed_s"] > 0
    assert snapshot["loss_history"] == [
        {"epoch": e, "step": s, "loss": loss} for e, s, loss in interrupted.losses
    ]


def test_resuming_after_the_last_epoch_only_evaluates() -> None:
    config = job_config(epochs=1, batch_size=8, log_every=5, device="cpu", seed=2)
    first, accuracy = run(config)
    _, _, snapshot = first.checkpoints[-1]
    again = Collector()
    inputs = TrainInputs(config, image_set(400, 1), image_set(100, 2), CLASSES, resume=snapshot)
    result = train(inputs, again)
    assert again.losses == [] and again.epochs == []
    assert result.final.accuracy == accuracy


def test_divergence_fails_with_advice() -> None:
    with pytest.raises(TrainingDiverged, match=r"loss became nan in epoch 1 by step .*lower"):
        run(job_config(epochs=1, learning_rate=5.0, log_every=10, device="cpu", seed=0))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_cuda_without_a_gpu_is_a_clear_error() -> None:
    with pytest.raises(UnsupportedOption, match="asks for device 'cuda' but this worker has no"):
        resolve_device("cuda")
    assert resolve_device("auto") == torch.device("cpu")


class GivenLogits(nn.Module):
    """Answers the i-th image with the i-th row of `logits`, whatever it looks like."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits
        self.offset = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = self.logits[self.offset : self.offset + len(x)]
        self.offset += len(x)
        return rows


def test_evaluate_counts_exactly() -> None:
    data = image_set(20, 3)  # labels 0..9, twice
    predicted = data.labels.clone()
    predicted[0] = 1  # one airplane called automobile
    predicted[13] = 0  # one cat (label 3) called airplane
    certain = nn.functional.one_hot(predicted, 10).float() * 100
    result = evaluate(GivenLogits(certain), data, CLASSES)
    assert result.accuracy == 18 / 20
    assert result.per_class_accuracy["class0"] == 0.5
    assert result.per_class_accuracy["class3"] == 0.5
    assert result.per_class_accuracy["class1"] == 1.0
    matrix = result.confusion_matrix
    assert matrix[0][1] == 1 and matrix[0][0] == 1 and matrix[3][0] == 1 and matrix[3][3] == 1
    assert sum(map(sum, matrix)) == 20
    assert result.loss == pytest.approx(2 * 100 / 20)  # two wrong answers cost 100 nats each


def test_evaluate_keeps_each_example_s_prediction_and_its_probability() -> None:
    data = image_set(2500, 4)  # three evaluation batches, the last one partial
    logits = torch.randn(2500, 10, generator=torch.Generator().manual_seed(0)) * 3
    result = evaluate(GivenLogits(logits), data, CLASSES)
    expected = logits.softmax(dim=1).max(dim=1)
    assert torch.equal(result.predicted, expected.indices)
    assert torch.allclose(result.confidence, expected.values, rtol=0, atol=1e-6)
    # The confusion matrix counts exactly these predictions.
    counted = torch.zeros(10, 10, dtype=torch.long)
    counted.index_put_((data.labels, result.predicted), torch.tensor(1), accumulate=True)
    assert result.confusion_matrix == counted.tolist()
