"""What only a CUDA GPU can show: real graph capture, and every option training on the device.

Skipped without CUDA (CI has none); docs/performance.md says how these ran on a GPU and what they
gave.
"""

from collections.abc import Iterator
from typing import Any

import pytest
import torch

from tests.conftest import job_config
from tests.workers.test_steps import OPTIMIZERS, assert_same_training
from tests.workers.test_train import run
from tests.workers.test_train_options import EASY, FAST_FEATURES
from workers.training.runtime import Runtime

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]

ON_GPU: dict[str, Any] = {**EASY, "device": "cuda", "seed": 5}


@pytest.fixture(autouse=True)
def deterministic_kernels() -> Iterator[None]:
    # Some cuDNN backward kernels add with atomics: exact comparisons need the fixed-order ones.
    saved = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    yield
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved


@pytest.mark.parametrize("optimizer_name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("steps_before", [0, 2])
def test_a_captured_graph_trains_exactly_as_eager_steps(
    optimizer_name: str, steps_before: int
) -> None:
    runtime = Runtime(torch.device("cuda", 0), "fp32", False, False, True, threads=None)
    assert_same_training(optimizer_name, steps_before, runtime)


# The synthetic task's accuracy after 8 epochs varies with the seed (0.5 to 1.0 on a CPU), and a
# GPU draws other numbers: "learns" means far above chance (0.1) with the loss well down.
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"precision": "bf16"},
        {"precision": "fp16"},
        {"channels_last": True},
        {"compile": True},
        {"cuda_graphs": True},
        {"cuda_graphs": True, "optimizer": "adam", "learning_rate": 0.003},
        {"cuda_graphs": True, "precision": "bf16", "channels_last": True},
        {**FAST_FEATURES, "learning_rate": 0.05},
    ],
    ids=[
        "auto",
        "bf16",
        "fp16",
        "channels_last",
        "compile",
        "cuda_graphs",
        "cuda_graphs-adam",
        "cuda_graphs-bf16-channels_last",
        "fast-recipe-features",
    ],
)
def test_each_option_learns_on_the_gpu(options: dict[str, Any]) -> None:
    hooks, accuracy = run(job_config(**{**ON_GPU, **options}))
    assert hooks.device == "cuda:0"
    assert accuracy >= 0.5, hooks.epochs
    assert hooks.epochs[-1].train_loss < 0.6 * hooks.epochs[0].train_loss, hooks.epochs


@pytest.mark.parametrize(
    ("options", "tolerance"),
    [
        ({"cuda_graphs": True}, 1e-5),  # the same kernels, replayed
        ({"channels_last": True}, 1e-2),  # other convolution kernels: other rounding
        ({"compile": True}, 1e-2),  # fused kernels
    ],
    ids=["cuda_graphs", "channels_last", "compile"],
)
def test_fp32_options_compute_what_plain_eager_training_does(
    options: dict[str, Any], tolerance: float
) -> None:
    plain = {"epochs": 2, "cuda_graphs": False, "channels_last": False, "compile": False}
    eager, eager_accuracy = run(job_config(**{**ON_GPU, **plain}))
    other, other_accuracy = run(job_config(**{**ON_GPU, **plain, **options}))
    assert [p[:2] for p in other.losses] == [p[:2] for p in eager.losses]
    assert [p[2] for p in other.losses] == pytest.approx(
        [p[2] for p in eager.losses], rel=tolerance
    )
    assert other_accuracy == pytest.approx(eager_accuracy, abs=0.05)
