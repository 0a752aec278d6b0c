"""Fine-tuning through the training loop: a frozen backbone stays bit for bit its parent's (batch
norm statistics too, in the NHWC layout), a backbone learning rate is a parameter group of its
own under every schedule, a stopped run resumes exactly without loading its parent again, and
two data-parallel processes start from the same parent."""

import multiprocessing

import pytest
import torch
from torch import nn

from app.jobs.config import JobConfig
from app.jobs.init_from import ResolvedVersion
from app.ml.images import ImageSet
from app.ml.nets import BATCH_NORMS, build_model
from app.ml.transfer import InitialWeights
from tests.conftest import job_config, synthetic_split
from tests.workers.test_train import CLASSES, Collector, image_set
from workers.training.data_parallel import train_data_parallel
from workers.training.devices import runtime_for
from workers.training.hooks import TrainingInterrupted, TrainInputs, TrainResult
from workers.training.loop import train
from workers.training.run_state import RunState

# What a job stores once submit has found its parent (the loop never reads it: the worker loads
# the parent's weights and hands them over).
PARENT = ResolvedVersion(model="cifar10", version=1, sha256="0" * 64)
THREE_CLASSES = CLASSES[:3]


def three_class_set(count: int, seed: int) -> ImageSet:
    images, labels = synthetic_split(count, seed, num_classes=3)
    return ImageSet(images=torch.from_numpy(images), labels=torch.from_numpy(labels))


def parent_weights(arch: str, seed: int) -> InitialWeights:
    """A 10-class network's weights, its batch norms' statistics as if it had trained."""
    torch.manual_seed(seed)
    model = build_model(arch, num_classes=10)
    for module in model.modules():
        if isinstance(module, BATCH_NORMS):
            statistics = (module.running_mean, module.running_var, module.num_batches_tracked)
            mean, var, tracked = statistics
            assert mean is not None and var is not None and tracked is not None
            mean.normal_()
            var.uniform_(0.5, 2.0)
            tracked.fill_(500)
    state = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
    return InitialWeights(state, CLASSES, "parent")


def inputs_of(
    config: JobConfig, parent: InitialWeights, resume: dict[str, object] | None = None
) -> TrainInputs:
    """The ten synthetic classes (400 training images, 100 test), starting from `parent`."""
    return TrainInputs(
        config,
        image_set(400, 1),
        image_set(100, 2),
        CLASSES,
        resume=resume,
        initial_weights=parent,
    )


def fine_tune(config: JobConfig, parent: InitialWeights, hooks: Collector) -> TrainResult:
    return train(inputs_of(config, parent), hooks)


def test_a_frozen_backbone_ends_bit_identical_to_its_parent() -> None:
    parent = parent_weights("resnet18", seed=0)
    config = job_config(
        model="resnet18",
        init_from=PARENT,
        freeze="backbone",
        epochs=2,
        batch_size=8,
        learning_rate=0.05,
        channels_last=True,
        random_flip=True,
        device="cpu",
        log_every=2,
        seed=4,
    )
    inputs = TrainInputs(
        config,
        three_class_set(24, 1),
        three_class_set(9, 2),
        THREE_CLASSES,
        initial_weights=parent,
    )
    result = train(inputs, Collector())
    trained = result.model.state_dict()
    backbone = [name for name in trained if not name.startswith("fc.")]
    assert len(backbone) == 120 and any(name.endswith("running_var") for name in backbone)
    for name in backbone:
        assert torch.equal(trained[name], parent.state_dict[name]), name
    # The head was replaced (3 classes, not 10) and trained.
    assert trained["fc.weight"].shape == (3, 512)
    torch.manual_seed(config.seed)
    fresh_head = build_model("resnet18", num_classes=3).get_parameter("fc.weight")
    assert not torch.equal(trained["fc.weight"], fresh_head)


def run_state(config: JobConfig, parent: InitialWeights) -> RunState:
    inputs = TrainInputs(
        config, image_set(40, 1), image_set(10, 2), CLASSES, initial_weights=parent
    )
    return RunState(inputs, runtime_for(config, inputs.batch_size))


@pytest.mark.parametrize("lr_schedule", ["constant", "onecycle", "cosine"])
def test_the_backbone_learns_at_its_own_rate_under_every_schedule(lr_schedule: str) -> None:
    parent = parent_weights("tutorial_cnn", seed=0)
    config = job_config(
        init_from=PARENT,
        learning_rate=0.01,
        backbone_learning_rate=0.002,
        lr_schedule=lr_schedule,
        batch_size=4,
        device="cpu",
    )
    run = run_state(config, parent)
    head, backbone = run.optimizer.param_groups
    named = dict(run.model.named_parameters())
    assert head["params"] == [named["fc3.weight"], named["fc3.bias"]]
    assert backbone["params"] == [p for name, p in named.items() if not name.startswith("fc3.")]
    rates = []
    for _ in range(run.steps_per_epoch * config.epochs - 1):
        rates.append((head["lr"], backbone["lr"]))
        run.optimizer.step()
        if run.schedule is not None:
            run.schedule.step()
    assert len({round(backbone / head, 9) for head, backbone in rates}) == 1  # always 1:5
    start = 1 / 25 if lr_schedule == "onecycle" else 1  # one-cycle's warm-up starts at 1/25
    assert rates[0] == pytest.approx((0.01 * start, 0.002 * start), rel=1e-12)
    assert (len(set(rates)) == 1) == (lr_schedule == "constant")


def test_without_a_backbone_rate_every_parameter_is_one_group() -> None:
    run = run_state(job_config(init_from=PARENT, device="cpu"), parent_weights("tutorial_cnn", 0))
    [group] = run.optimizer.param_groups
    assert group["params"] == list(run.model.parameters()) and group["lr"] == 0.001
    frozen = run_state(
        job_config(init_from=PARENT, freeze="backbone", device="cpu"),
        parent_weights("tutorial_cnn", 0),
    )
    [group] = frozen.optimizer.param_groups
    head = [frozen.model.get_parameter(name) for name in ("fc3.weight", "fc3.bias")]
    assert group["params"] == head


FINE_TUNE = dict(
    init_from=PARENT,
    backbone_learning_rate=0.003,
    learning_rate=0.02,
    lr_schedule="onecycle",
    random_flip=True,
    epochs=2,
    batch_size=8,
    log_every=5,
    device="cpu",
    seed=21,
)


@pytest.mark.parametrize("stop_at", [(1, 7), (2, 1)])
def test_a_stopped_fine_tuning_run_resumes_exactly_from_its_checkpoint(
    stop_at: tuple[int, int],
) -> None:
    config = job_config(**FINE_TUNE)
    parent = parent_weights("tutorial_cnn", seed=0)
    straight = Collector()
    straight_result = fine_tune(config, parent, straight)

    interrupted = Collector(stop_at=stop_at)
    with pytest.raises(TrainingInterrupted):
        fine_tune(config, parent, interrupted)
    epoch, step, snapshot = interrupted.checkpoints[-1]
    assert (epoch, step) == stop_at

    # Other initial weights: a resumed run takes its weights from the checkpoint, never from
    # the parent again.
    other = parent_weights("tutorial_cnn", seed=1)
    resumed = Collector()
    result = train(inputs_of(config, other, resume=snapshot), resumed)
    combined = [p for p in interrupted.losses if p[:2] <= stop_at] + resumed.losses
    assert [p[:2] for p in combined] == [p[:2] for p in straight.losses]
    assert [p[2] for p in combined] == pytest.approx([p[2] for p in straight.losses], abs=1e-6)
    assert result.final.confusion_matrix == straight_result.final.confusion_matrix
    for name, value in straight_result.model.state_dict().items():
        torch.testing.assert_close(result.model.state_dict()[name], value, rtol=0, atol=1e-6)


def test_a_run_with_init_from_needs_its_initial_weights() -> None:
    config = job_config(init_from=PARENT, device="cpu")
    with pytest.raises(ValueError, match="a job with init_from starts from its initial weights"):
        train(TrainInputs(config, image_set(40, 1), image_set(10, 2), CLASSES), Collector())


def weights(model: nn.Module) -> list[torch.Tensor]:
    return [tensor.detach().clone() for tensor in model.state_dict().values()]


def test_two_data_parallel_processes_fine_tune_as_one() -> None:
    # Batches of 7 split 4 + 3 between the ranks; both must start from the parent for the two
    # runs to agree.
    one = job_config(**{**FINE_TUNE, "epochs": 1, "batch_size": 7, "log_every": 20})
    two = one.model_copy(update=dict(device="auto", cpu_processes=2))
    parent = parent_weights("tutorial_cnn", seed=0)
    single_hooks, double_hooks = Collector(), Collector()
    single = fine_tune(one, parent, single_hooks)
    double = train_data_parallel(inputs_of(two, parent), double_hooks)
    assert [(e, s) for e, s, _ in double_hooks.losses] == [(1, 20), (1, 40)]
    assert [loss for *_, loss in double_hooks.losses] == pytest.approx(
        [loss for *_, loss in single_hooks.losses], rel=1e-4
    )
    for a, b in zip(weights(single.model), weights(double.model), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert not multiprocessing.active_children()


def test_a_step_is_made_with_the_frozen_batch_norms_in_eval_mode() -> None:
    # A CUDA graph captures the modes the step sees: a frozen backbone's batch norms must be in
    # eval mode already, or every replay would update their statistics.
    config = job_config(model="resnet18", init_from=PARENT, freeze="backbone", batch_size=8)
    run = run_state(config, parent_weights("resnet18", seed=0))
    run.make_step()
    norms = [module for module in run.model.modules() if isinstance(module, BATCH_NORMS)]
    assert len(norms) == len(run.frozen_norms) == 20
    assert run.model.training and not any(norm.training for norm in norms)
