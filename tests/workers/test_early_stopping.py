"""Early stopping: a held-out split per class, a stop `patience` epochs after the best one, the
best epoch's weights kept (and tested), and all of it surviving a resume."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from app.ml.images import ImageSet, stratified_split
from tests.conftest import job_config, synthetic_split
from tests.workers.test_train import CLASSES, Collector, image_set
from workers.training.early_stopping import EarlyStopping
from workers.training.evaluate import evaluate
from workers.training.hooks import StopReason, TrainingInterrupted, TrainInputs
from workers.training.loop import train

# Random labels: nothing to learn, so the held-out loss rises as the model memorises noise.
NOISE_CONFIG = job_config(
    epochs=40,
    batch_size=16,
    optimizer="adam",
    learning_rate=0.003,
    log_every=25,
    seed=4,
    device="cpu",
    early_stopping_patience=3,
)


def noise(count: int, seed: int) -> ImageSet:
    images, _ = synthetic_split(count, seed)
    labels = np.random.default_rng(seed).integers(0, 10, size=count)
    return ImageSet(images=torch.from_numpy(images), labels=torch.from_numpy(labels))


def test_the_held_out_split_takes_a_share_of_every_class_by_seed() -> None:
    labels = torch.tensor([0] * 10 + [1] * 25 + [2] * 1 + [3] * 2)
    kept, held = stratified_split(labels, 0.2, seed=7)
    assert [int((labels[held] == c).sum()) for c in range(4)] == [2, 5, 0, 1]
    assert sorted([*kept.tolist(), *held.tolist()]) == list(range(len(labels)))
    again_kept, again_held = stratified_split(labels, 0.2, seed=7)
    assert torch.equal(held, again_held) and torch.equal(kept, again_kept)
    assert not torch.equal(stratified_split(labels, 0.2, seed=8)[1], held)


def test_it_stops_patience_epochs_after_the_best_and_restores_those_weights() -> None:
    model = nn.Linear(1, 1)
    stopping = EarlyStopping(patience=2)
    for epoch, loss in enumerate([1.0, 0.8, 0.9, 0.85, 0.95], start=1):
        nn.init.constant_(model.weight, float(epoch))
        stopping.observe(epoch, loss, model)
        assert stopping.stopped == (epoch == 4)
        if stopping.stopped:
            break
    assert (stopping.best_epoch, stopping.best_loss) == (2, 0.8)
    assert stopping.restore_best(model)
    assert model.weight.item() == 2.0
    assert not stopping.restore_best(model)  # it has them now
    never = EarlyStopping(patience=None)
    never.observe(1, 1.0, model)
    assert never.state() is None and not never.stopped


def test_training_on_noise_stops_early_and_keeps_the_best_epoch() -> None:
    train_set, held_out, test_set = noise(400, 1), noise(100, 3), image_set(100, 2)
    hooks = Collector()
    inputs = TrainInputs(NOISE_CONFIG, train_set, test_set, CLASSES, validation_set=held_out)
    result = train(inputs, hooks)

    losses = [m.validation.loss for m in hooks.epochs if m.validation is not None]
    assert len(losses) == len(hooks.epochs) < NOISE_CONFIG.epochs
    best = int(np.argmin(losses)) + 1
    assert result.best_epoch == best
    assert len(hooks.epochs) == best + 3  # three epochs without improvement
    # The model returned (and saved) is the best epoch's: its test results are that epoch's.
    assert result.final == hooks.epochs[best - 1].evaluation
    assert evaluate(result.model, held_out, CLASSES).loss == losses[best - 1]


def test_a_resumed_job_keeps_its_early_stopping_state() -> None:
    train_set, held_out, test_set = noise(400, 1), noise(100, 3), image_set(100, 2)
    whole = Collector()
    inputs = TrainInputs(NOISE_CONFIG, train_set, test_set, CLASSES, validation_set=held_out)
    expected = train(inputs, whole)
    # Interrupted in the middle of the last epoch it trains, then resumed from its checkpoint.
    stop_at = (len(whole.epochs), 10)
    first = Collector(stop_at=stop_at, stop_as=StopReason.SHUTDOWN)
    with pytest.raises(TrainingInterrupted):
        train(inputs, first)
    snapshot = first.checkpoints[-1][2]
    assert snapshot["early_stopping"]["best_epoch"] == expected.best_epoch
    resumed = Collector()
    result = train(replace(inputs, resume=snapshot), resumed)
    assert [m.epoch for m in resumed.epochs] == [len(whole.epochs)]
    assert result.best_epoch == expected.best_epoch
    assert result.final == expected.final
