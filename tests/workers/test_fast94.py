"""The fast94 recipe's parts in the training loop: the warmup_linear schedule, alternating flips,
fast_cnn resumed at an epoch's end and inside an epoch, ending as the uninterrupted run, and
trained by two data-parallel processes."""

import os
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from app.jobs.config import JobCreate
from app.ml.images import normalize
from app.ml.whitening import WHITEN_EPS, initialise_from_data, patch_moments
from tests.workers.test_train import CLASSES, Collector, image_set
from workers.training import data_parallel, loop, run_state
from workers.training.augment import AlternatingFlips, AugmentPlan
from workers.training.hooks import TrainingInterrupted, TrainInputs
from workers.training.lookahead import Lookahead
from workers.training.optim import WarmupLinear


def test_warmup_linear_rises_from_a_fifth_then_falls_to_seven_percent() -> None:
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=2.0)
    schedule = WarmupLinear(optimizer, total_steps=101)  # warm-up: int(0.23 * 101) = 23 steps
    rates = []
    for _ in range(101):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert rates[0] == pytest.approx(0.4)
    assert rates[23] == pytest.approx(2.0) and max(rates) == rates[23]
    assert rates[100] == pytest.approx(0.14)
    assert rates[11] == pytest.approx(0.4 + 1.6 * 11 / 23)
    assert rates[50] == pytest.approx(2.0 - 1.86 * 27 / 77)

    restored = WarmupLinear(torch.optim.SGD([parameter], lr=2.0), total_steps=101)
    restored.load_state_dict(schedule.state_dict())
    assert restored.get_last_lr() == schedule.get_last_lr()


def test_alternating_flips_flip_every_image_every_other_epoch() -> None:
    first, second, third = (AlternatingFlips(1000, seed=4, epoch=e).flips() for e in (1, 2, 3))
    assert torch.equal(second, ~first) and torch.equal(third, first)
    assert 450 < int(first.sum()) < 550  # a random half
    assert not torch.equal(AlternatingFlips(1000, seed=5, epoch=1).flips(), first)
    generator = torch.Generator().manual_seed(0)
    plan = AugmentPlan.draw(
        1000, generator, flip=True, padding=0, alternating=AlternatingFlips(1000, 4, 2)
    )
    assert plan is not None and plan.flip is not None and torch.equal(plan.flip, second)


def test_lookahead_averages_every_fifth_step_and_ends_on_the_average() -> None:
    model = torch.nn.Linear(2, 1)
    lookahead = Lookahead(model, total_steps=10)
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    lookahead.after_step(4)  # not a fifth step: nothing happens
    torch.testing.assert_close(model.weight, start + 1)
    lookahead.after_step(5)
    decay = 0.95**5 * 0.5**3
    average = decay * start + (1 - decay) * (start + 1)
    torch.testing.assert_close(model.weight, average)
    with torch.no_grad():
        model.weight.add_(1.0)
    lookahead.finish()  # the weights since the last update are left out, as in the paper
    torch.testing.assert_close(model.weight, average)


def test_fast_cnn_with_lookahead_resumes_to_the_uninterrupted_run() -> None:
    # 48 images in batches of 8: six steps an epoch, twelve in all; lookahead updates after
    # steps 5 and 10 and ends on its average. Checkpoints inside epoch 1 before the first
    # update, at its end after it, and inside epoch 2 (a shutdown); the second epoch's flips
    # are the first's mirror image, computed again from the seed.
    config = JobCreate(recipe="fast94", epochs=2, batch_size=8, log_every=1, seed=3).resolved()
    assert config.lookahead

    def inputs(resume: dict[str, object] | None = None) -> TrainInputs:
        return TrainInputs(config, image_set(48, 1), image_set(10, 2), CLASSES, resume=resume)

    straight = Collector()
    straight_result = loop.train(inputs(), straight)
    interrupted = Collector(stop_at=(2, 2), checkpoint_every=4)
    with pytest.raises(TrainingInterrupted):
        loop.train(inputs(), interrupted)
    assert [(epoch, step) for epoch, step, _ in interrupted.checkpoints] == [(1, 4), (1, 6), (2, 2)]
    losses = [p[2] for p in straight.losses]
    for epoch, step, snapshot in interrupted.checkpoints:
        torch.manual_seed(999)  # whatever happened meanwhile must not matter
        resumed = Collector()
        result = loop.train(inputs(snapshot), resumed)
        combined = [p for p in interrupted.losses if p[:2] <= (epoch, step)] + resumed.losses
        assert [p[:2] for p in combined] == [(e, s) for e in (1, 2) for s in range(1, 7)]
        assert [p[2] for p in combined] == pytest.approx(losses, abs=1e-6)
        for name, value in straight_result.model.state_dict().items():
            torch.testing.assert_close(result.model.state_dict()[name], value, rtol=0, atol=1e-6)

    # Without lookahead: the same until its first update, after step 5.
    plain = Collector()
    unaveraged = config.model_copy(update={"lookahead": False})
    loop.train(TrainInputs(unaveraged, image_set(48, 1), image_set(10, 2), CLASSES), plain)
    assert [p[2] for p in plain.losses[:5]] == pytest.approx(losses[:5], abs=1e-6)
    assert plain.losses[5][2] != pytest.approx(losses[5], abs=1e-6)


# Where a spawned rank of the data-parallel test saves its final weights.
FOLLOWER_WEIGHTS_ENV = "TRAINSERVE_TEST_FOLLOWER_WEIGHTS"


def _follow_with_another_whitening(*args: Any) -> None:
    """data_parallel._follow in a spawned rank whose own whitening differs from rank 0's (twice
    as large), and which saves its final weights where FOLLOWER_WEIGHTS_ENV says."""

    def doubled_whitening(model: nn.Module, images: torch.Tensor) -> None:
        initialise_from_data(model, images)
        with torch.no_grad():
            model.get_parameter("whiten.weight").mul_(2)

    real_train = loop._train

    def train_and_save(*train_args: Any) -> Any:
        run, evaluation = real_train(*train_args)
        torch.save(run.model.state_dict(), os.environ[FOLLOWER_WEIGHTS_ENV])
        return run, evaluation

    run_state.initialise_from_data = doubled_whitening  # type: ignore[assignment]
    loop._train = train_and_save  # type: ignore[assignment]
    data_parallel._follow(*args)


def test_fast_cnn_in_two_data_parallel_processes_keeps_rank_0s_whitening(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Rank 1 computes another whitening; DistributedDataParallel must replace it with rank 0's
    # before lookahead starts its average, or the ranks would part at its first update (step 5).
    config = JobCreate(
        recipe="fast94", epochs=1, batch_size=8, log_every=1, seed=3, cpu_processes=2
    ).resolved()
    monkeypatch.setattr(data_parallel, "_follow", _follow_with_another_whitening)
    monkeypatch.setenv(FOLLOWER_WEIGHTS_ENV, str(tmp_path / "rank1.pt"))
    hooks = Collector()
    train_set = image_set(48, 1)
    inputs = TrainInputs(config, train_set, image_set(10, 2), CLASSES)
    result = data_parallel.train_data_parallel(inputs, hooks)
    assert [(e, s) for e, s, _ in hooks.losses] == [(1, step) for step in range(1, 7)]
    assert all(loss == loss and loss > 0 for *_, loss in hooks.losses)  # finite, not NaN
    follower = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for name, value in result.model.named_parameters():
        assert torch.equal(follower[name], value.detach()), name
    # The whitening never trained: it still whitens the training patches. (Not compared with
    # one computed here: white noise's eigenvalues are nearly equal, so a rounding difference
    # rotates its eigenvectors.)
    whitening = result.model.get_parameter("whiten.weight")[:12]
    images = normalize(train_set.images)
    values = F.conv2d(images, whitening).transpose(0, 1).reshape(12, -1).double()
    eigenvalues = torch.linalg.eigvalsh(patch_moments(images, 2)).flip(0)
    expected = torch.diag(eigenvalues / (eigenvalues + WHITEN_EPS))
    torch.testing.assert_close(values @ values.T / values.shape[1], expected, rtol=0, atol=1e-3)
