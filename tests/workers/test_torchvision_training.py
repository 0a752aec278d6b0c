"""A torchvision network through the training loop: batch norm's last-batch rule, an exact resume
from a mid-epoch checkpoint, and two data-parallel CPU processes."""

import pytest
import torch

from tests.conftest import job_config
from tests.workers.test_train import CLASSES, Collector, image_set
from workers.training.data_parallel import train_data_parallel
from workers.training.hooks import TrainingInterrupted, TrainInputs
from workers.training.loop import train
from workers.training.run_state import steps_per_epoch

# resnet18 with CIFAR's stem on 64 images of 32 pixels: a couple of seconds an epoch on a CPU.
RESNET = dict(model="resnet18", batch_size=8, learning_rate=0.01, momentum=0.9, device="cpu")


@pytest.mark.parametrize(
    ("size", "batch", "processes", "batch_norm", "steps"),
    [
        (65, 16, 1, False, 5),  # a partial last batch is a step ...
        (65, 16, 1, True, 4),  # ... but one image alone cannot give batch statistics
        (66, 16, 1, True, 5),  # two can
        (67, 16, 2, True, 4),  # 3 images over 2 processes leave one of them a single image
        (68, 16, 2, True, 5),
        (8, 16, 1, True, 1),  # a whole epoch in one short batch is still trained on
    ],
)
def test_batch_norm_leaves_out_a_last_batch_of_single_images(
    size: int, batch: int, processes: int, batch_norm: bool, steps: int
) -> None:
    assert steps_per_epoch(size, batch, processes, batch_norm=batch_norm) == steps


def test_a_resnet_trains_leaving_out_a_single_last_image() -> None:
    hooks = Collector()
    config = job_config(**RESNET, epochs=1, log_every=2, seed=5)
    result = train(TrainInputs(config, image_set(65, 1), image_set(20, 2), CLASSES), hooks)
    assert hooks.steps_per_epoch == 8  # 65 images in batches of 8: the 65th is left out
    assert [(e, s) for e, s, _ in hooks.losses] == [(1, 2), (1, 4), (1, 6), (1, 8)]
    assert sum(map(sum, result.final.confusion_matrix)) == 20


def test_a_resnet_resumes_from_a_mid_epoch_checkpoint_exactly() -> None:
    config = job_config(**RESNET, epochs=2, log_every=2, seed=11, random_flip=True)
    straight = Collector()
    straight_result = train(
        TrainInputs(config, image_set(48, 1), image_set(20, 2), CLASSES), straight
    )

    interrupted = Collector(stop_at=(1, 3))
    with pytest.raises(TrainingInterrupted):
        train(TrainInputs(config, image_set(48, 1), image_set(20, 2), CLASSES), interrupted)
    epoch, step, snapshot = interrupted.checkpoints[-1]
    assert (epoch, step) == (1, 3)
    assert any(name.endswith("running_mean") for name in snapshot["model"])

    torch.manual_seed(999)  # whatever happened meanwhile must not matter
    resumed = Collector()
    inputs = TrainInputs(config, image_set(48, 1), image_set(20, 2), CLASSES, resume=snapshot)
    result = train(inputs, resumed)
    combined = [p for p in interrupted.losses if p[:2] <= (1, 3)] + resumed.losses
    assert [p[:2] for p in combined] == [p[:2] for p in straight.losses]
    assert [p[2] for p in combined] == pytest.approx([p[2] for p in straight.losses], abs=1e-6)
    assert result.final.confusion_matrix == straight_result.final.confusion_matrix
    for name, value in straight_result.model.state_dict().items():
        torch.testing.assert_close(result.model.state_dict()[name], value, rtol=0, atol=1e-6)


def test_a_resnet_trains_in_two_data_parallel_processes() -> None:
    # Each process normalises with its own half of the batch (no synchronised batch norm), so
    # the run is not the one-process run; it trains the same steps and ends with one model.
    config = job_config(
        **{**RESNET, "device": "auto"}, epochs=1, log_every=2, seed=3, cpu_processes=2
    )
    hooks = Collector()
    inputs = TrainInputs(config, image_set(35, 1), image_set(20, 2), CLASSES)
    result = train_data_parallel(inputs, hooks)
    assert hooks.steps_per_epoch == 4  # 35 in batches of 8: the 3 left over would give a rank 1
    assert [(e, s) for e, s, _ in hooks.losses] == [(1, 2), (1, 4)]
    assert all(loss == loss and loss > 0 for *_, loss in hooks.losses)  # finite, not NaN
    assert result.model.get_submodule("conv1").kernel_size == (3, 3)  # CIFAR's stem
