"""The fast94 recipe's parts in the training loop: the warmup_linear schedule, alternating flips,
fast_cnn resumed at an epoch's end and inside an epoch, ending as the uninterrupted run, and
trained by two data-parallel processes."""

import pytest
import torch
import torch.nn.functional as F

from app.jobs.config import JobCreate
from app.ml.images import normalize
from app.ml.whitening import WHITEN_EPS, patch_moments
from tests.workers.test_train import CLASSES, Collector, image_set
from workers.training.augment import AlternatingFlips, AugmentPlan
from workers.training.data_parallel import train_data_parallel
from workers.training.hooks import TrainingInterrupted, TrainInputs
from workers.training.loop import train
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


def test_fast_cnn_resumes_at_and_after_an_epoch_end_to_the_uninterrupted_run() -> None:
    # 32 images in batches of 16: two steps an epoch, the second epoch's flips the first's
    # mirror image, computed again from the seed when a run resumes at the epoch's start.
    config = JobCreate(recipe="fast94", epochs=2, batch_size=16, log_every=1, seed=3).resolved()

    def inputs(resume: dict[str, object] | None = None) -> TrainInputs:
        return TrainInputs(config, image_set(32, 1), image_set(10, 2), CLASSES, resume=resume)

    straight = Collector()
    straight_result = train(inputs(), straight)
    interrupted = Collector(stop_at=(2, 0))
    with pytest.raises(TrainingInterrupted):
        train(inputs(), interrupted)
    # The end of epoch 1 (epoch 2 draws its order and flips afresh) and a step into epoch 2.
    assert [(epoch, step) for epoch, step, _ in interrupted.checkpoints] == [(1, 2), (2, 1)]
    for epoch, step, snapshot in interrupted.checkpoints:
        torch.manual_seed(999)  # whatever happened meanwhile must not matter
        resumed = Collector()
        result = train(inputs(snapshot), resumed)
        combined = [p for p in interrupted.losses if p[:2] <= (epoch, step)] + resumed.losses
        assert [p[:2] for p in combined] == [(1, 1), (1, 2), (2, 1), (2, 2)]
        losses = [p[2] for p in straight.losses]
        assert [p[2] for p in combined] == pytest.approx(losses, abs=1e-6)
        for name, value in straight_result.model.state_dict().items():
            torch.testing.assert_close(result.model.state_dict()[name], value, rtol=0, atol=1e-6)


def test_fast_cnn_trains_in_two_data_parallel_processes_keeping_its_whitening() -> None:
    config = JobCreate(
        recipe="fast94", epochs=1, batch_size=16, log_every=1, seed=3, cpu_processes=2
    ).resolved()
    hooks = Collector()
    train_set = image_set(32, 1)
    result = train_data_parallel(TrainInputs(config, train_set, image_set(10, 2), CLASSES), hooks)
    assert [(e, s) for e, s, _ in hooks.losses] == [(1, 1), (1, 2)]
    assert all(loss == loss and loss > 0 for *_, loss in hooks.losses)  # finite, not NaN
    # The whitening never trained: it still whitens the training patches. (Not compared with
    # one computed here: white noise's eigenvalues are nearly equal, so a rounding difference
    # rotates its eigenvectors; DistributedDataParallel starts every rank from rank 0's.)
    whitening = result.model.get_parameter("whiten.weight")[:12]
    images = normalize(train_set.images)
    values = F.conv2d(images, whitening).transpose(0, 1).reshape(12, -1).double()
    eigenvalues = torch.linalg.eigvalsh(patch_moments(images, 2)).flip(0)
    expected = torch.diag(eigenvalues / (eigenvalues + WHITEN_EPS))
    torch.testing.assert_close(values @ values.T / values.shape[1], expected, rtol=0, atol=1e-3)
