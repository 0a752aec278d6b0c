"""Every training option runs on the CPU, learns, and resumes exactly; batches follow the seed."""

from typing import Any

import pytest
import torch
from torch.optim.lr_scheduler import OneCycleLR

from app.jobs.config import JobConfig
from app.jobs.recipes import RECIPES
from tests.conftest import job_config
from tests.workers.test_train import CLASSES, Collector, image_set, run
from workers.training.hooks import TrainingInterrupted, TrainInputs
from workers.training.loop import train
from workers.training.optim import OneCycle, make_optimizer
from workers.training.run_state import RunState
from workers.training.runtime import resolve_runtime

EASY: dict[str, Any] = {
    "epochs": 8,
    "batch_size": 16,
    "learning_rate": 0.01,
    "log_every": 25,
    "device": "cpu",
}
# What the fast recipe adds to the tutorial, at this test's scale (its own batch size and rate).
FAST_FEATURES: dict[str, Any] = {
    name: value
    for name, value in RECIPES["fast"].items()
    if name not in ("epochs", "batch_size", "learning_rate", "log_every")
}


@pytest.mark.parametrize(
    "options",
    [
        {"precision": "bf16"},
        {"precision": "fp16"},
        {"channels_last": True},
        {**FAST_FEATURES, "learning_rate": 0.05},
        {"lr_schedule": "cosine", "optimizer": "adam", "learning_rate": 0.003},
    ],
    ids=["bf16", "fp16", "channels_last", "fast-recipe-features", "cosine-adam"],
)
def test_each_option_trains_on_the_cpu(options: dict[str, Any]) -> None:
    hooks, accuracy = run(job_config(**{**EASY, "seed": 5, **options}))
    assert accuracy >= 0.9, hooks.epochs
    assert hooks.epochs[-1].train_loss < hooks.epochs[0].train_loss


def test_a_compiled_model_computes_what_the_eager_one_does_and_saves_plain_weights() -> None:
    config = job_config(**{**EASY, "epochs": 2, "seed": 5})
    eager, eager_accuracy = run(config)
    compiled = Collector()
    result = train(
        TrainInputs(
            job_config(**{**EASY, "epochs": 2, "seed": 5, "compile": True}),
            image_set(400, 1),
            image_set(100, 2),
            CLASSES,
        ),
        compiled,
    )
    # Fused kernels may round differently; the run must still be the same run.
    assert [p[:2] for p in compiled.losses] == [p[:2] for p in eager.losses]
    assert [p[2] for p in compiled.losses] == pytest.approx([p[2] for p in eager.losses], abs=1e-3)
    assert result.final.accuracy == pytest.approx(eager_accuracy, abs=0.02)
    plain = {"conv1.weight", "conv1.bias", "fc3.weight", "fc3.bias"}
    assert plain <= set(result.model.state_dict())
    assert plain <= set(compiled.checkpoints[-1][2]["model"])  # no "_orig_mod." prefix


def test_a_one_cycle_schedule_ends_near_zero() -> None:
    config = job_config(**{**EASY, "epochs": 2, "seed": 5, "lr_schedule": "onecycle"})
    hooks, _ = run(config)
    schedule = hooks.checkpoints[-1][2]["lr_schedule"]
    assert schedule["_step_count"] == 2 * 25 + 1  # every mini-batch, plus the initial call
    assert schedule["_last_lr"][0] < 0.01 / 100  # under 1% of the peak


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_resuming_with_schedule_augmentation_and_scaler_is_exact(precision: str) -> None:
    config = job_config(
        **{**EASY, "epochs": 3, "batch_size": 8, "log_every": 5, "seed": 21},
        **FAST_FEATURES,
        precision=precision,
    )
    straight, straight_accuracy = run(config)
    interrupted = Collector(stop_at=(2, 17))
    with pytest.raises(TrainingInterrupted):
        run(config, interrupted)
    _, _, snapshot = interrupted.checkpoints[-1]
    assert (snapshot["grad_scaler"] is not None) == (precision == "fp16")
    assert snapshot["augment"] is not None

    torch.manual_seed(999)
    resumed = Collector()
    inputs = TrainInputs(config, image_set(400, 1), image_set(100, 2), CLASSES, resume=snapshot)
    result = train(inputs, resumed)
    combined = [p for p in interrupted.losses if p[:2] <= (2, 17)] + resumed.losses
    assert [p[:2] for p in combined] == [p[:2] for p in straight.losses]
    assert [p[2] for p in combined] == [p[2] for p in straight.losses]
    assert result.final.accuracy == straight_accuracy


def epoch_batches(config: JobConfig) -> list[tuple[torch.Tensor, torch.Tensor]]:
    inputs = TrainInputs(config, image_set(100, 1), image_set(20, 2), CLASSES)
    runtime = resolve_runtime(
        torch.device("cpu"),
        batch_size=inputs.batch_size,
        lr_schedule=config.lr_schedule,
        precision="auto",
        channels_last="auto",
        compile="auto",
        cuda_graphs="auto",
        bf16_supported=False,
    )
    training = RunState(inputs, runtime)
    training.start_epoch()
    batches = []
    for step in range(training.steps_per_epoch):
        training.at.step = step
        images, labels, scale = training.batch()
        assert scale is None  # one process: a mean loss, unscaled
        batches.append((images, labels))
    return batches


@pytest.mark.parametrize("augment", [{}, {"random_flip": True, "random_crop_padding": 3}])
def test_the_same_seed_gives_the_same_batches(augment: dict[str, Any]) -> None:
    config = job_config(batch_size=16, seed=7, device="cpu", **augment)
    first, again = epoch_batches(config), epoch_batches(config)
    other = epoch_batches(job_config(batch_size=16, seed=8, device="cpu", **augment))
    assert len(first) == 7 and first[-1][0].shape == (4, 3, 32, 32)
    for (images, labels), (images_again, labels_again) in zip(first, again, strict=True):
        assert torch.equal(images, images_again) and torch.equal(labels, labels_again)
    assert not torch.equal(first[0][1], other[0][1])
    # Every image is used exactly once an epoch.
    assert sorted(torch.cat([labels for _, labels in first]).tolist()) == sorted(
        image_set(100, 1).labels.tolist()
    )


def test_nesterov_without_momentum_is_plain_sgd_and_adam_ignores_it() -> None:
    def groups() -> list[dict[str, Any]]:  # an optimizer writes its settings into its groups
        return [{"params": list(torch.nn.Linear(2, 2).parameters())}]

    plain = make_optimizer(job_config(momentum=0.0, nesterov=True), groups(), capturable=False)
    assert plain.param_groups[0]["nesterov"] is False  # PyTorch refuses nesterov without it
    with_momentum = make_optimizer(job_config(nesterov=True), groups(), capturable=False)
    assert with_momentum.param_groups[0]["nesterov"] is True
    adam = make_optimizer(job_config(optimizer="adam", nesterov=True), groups(), capturable=False)
    assert isinstance(adam, torch.optim.Adam)


def one_cycle_rates(schedule: type, total_steps: int, **options: Any) -> list[float]:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1, momentum=0.9)
    scheduler = schedule(optimizer, total_steps=total_steps, **options)
    rates = [optimizer.param_groups[0]["lr"]]
    for _ in range(total_steps):
        optimizer.step()
        scheduler.step()
        rates.append(optimizer.param_groups[0]["lr"])
    return rates


@pytest.mark.parametrize("total_steps", [1, 2, 3, 5, 8, 50, 1176])
def test_the_one_cycle_schedule_is_pytorchs_exactly(total_steps: int) -> None:
    theirs = one_cycle_rates(
        OneCycleLR, total_steps, max_lr=0.1, pct_start=0.25, cycle_momentum=False
    )
    assert one_cycle_rates(OneCycle, total_steps) == theirs


def test_the_one_cycle_schedule_also_runs_where_pytorchs_divides_by_zero() -> None:
    with pytest.raises(ZeroDivisionError):
        one_cycle_rates(OneCycleLR, 4, max_lr=0.1, pct_start=0.25, cycle_momentum=False)
    used = one_cycle_rates(OneCycle, 4)[:4]  # the last one is set after the run
    assert used[0] == 0.1  # the warm-up ends at step 0: the run starts at the peak
    assert used == sorted(used, reverse=True) and used[-1] < 0.1 / 100
    # A whole job of 4 steps (1 per epoch) with the fast recipe's schedule trains.
    hooks, _ = run(
        job_config(**{**EASY, "epochs": 4, "batch_size": 400, "lr_schedule": "onecycle"})
    )
    assert len(hooks.epochs) == 4
