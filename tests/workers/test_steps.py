"""The graphed step's buffers, warm-up and restore leave training exactly as the eager step does.

A CPU cannot capture a CUDA graph; `capture=False` runs everything around the capture (the fixed
input buffers, the warm-up steps and putting back what they changed) and replays eagerly.
"""

from collections.abc import Callable

import pytest
import torch
from torch import nn

from app.ml.nets import build_model
from workers.training.runtime import Runtime
from workers.training.steps import GraphedStep, TrainStep

CPU_FP32 = Runtime(torch.device("cpu"), "fp32", False, False, False, threads=None)
BATCH = 8

Optimizer = Callable[[nn.Module], torch.optim.Optimizer]
OPTIMIZERS: dict[str, Optimizer] = {
    "sgd": lambda m: torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9),
    "nesterov": lambda m: torch.optim.SGD(
        m.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4
    ),
    "adam": lambda m: torch.optim.Adam(m.parameters(), lr=0.001),
}


def batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    sizes = [BATCH, BATCH, BATCH, 3, BATCH]  # a partial batch runs eagerly in between
    return [
        (
            torch.randn(n, 3, 32, 32, generator=generator),
            torch.randint(0, 10, (n,), generator=generator),
        )
        for n in sizes
    ]


def trained(
    optimizer_name: str,
    graphed: bool,
    steps_before: int,
    runtime: Runtime = CPU_FP32,
    arch: str = "tutorial_cnn",
) -> tuple[nn.Module, torch.Tensor, torch.optim.Optimizer]:
    """Trains on `batches()`; graphed means captured on a GPU runtime, not captured on a CPU."""
    torch.manual_seed(0)
    device = runtime.device
    model = build_model(arch, num_classes=10).to(device)
    optimizer = OPTIMIZERS[optimizer_name](model)
    if device.type == "cuda" and optimizer_name == "adam":
        # As the worker makes it when graphs are on; both runs alike, so the math is the same.
        optimizer.param_groups[0]["capturable"] = True
    loss_sums = torch.zeros(2, device=device)
    step = TrainStep(model, optimizer, nn.CrossEntropyLoss(), runtime, loss_sums)
    data = [(images.to(device), labels.to(device)) for images, labels in batches()]
    for images, labels in data[:steps_before]:  # optimizer state exists, as after a resume
        step(images, labels)
    capture = device.type == "cuda"
    run: TrainStep | GraphedStep = (
        GraphedStep(step, (BATCH, 3, 32, 32), capture=capture) if graphed else step
    )
    for images, labels in data[steps_before:]:
        run(images, labels)
    return model, loss_sums, optimizer


def assert_same_training(
    optimizer_name: str, steps_before: int, runtime: Runtime = CPU_FP32, arch: str = "tutorial_cnn"
) -> None:
    eager_model, eager_sums, eager_opt = trained(optimizer_name, False, steps_before, runtime, arch)
    graph_model, graph_sums, graph_opt = trained(optimizer_name, True, steps_before, runtime, arch)
    for name, value in eager_model.state_dict().items():
        assert torch.equal(graph_model.state_dict()[name], value), name
    assert torch.equal(graph_sums, eager_sums)
    eager_state, graph_state = eager_opt.state_dict()["state"], graph_opt.state_dict()["state"]
    for index, slots in eager_state.items():
        for key, value in slots.items():
            assert torch.equal(torch.as_tensor(graph_state[index][key]), torch.as_tensor(value)), (
                index,
                key,
            )


@pytest.mark.parametrize("optimizer_name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("steps_before", [0, 2])
def test_graphed_training_equals_eager_training_exactly(
    optimizer_name: str, steps_before: int
) -> None:
    assert_same_training(optimizer_name, steps_before)


def test_a_batch_norm_network_trains_graphed_as_it_trains_eagerly() -> None:
    # The warm-up also moves batch norm's running statistics: they are put back with the rest.
    assert_same_training("nesterov", 2, arch="resnet18")


def test_the_warm_up_really_trains_before_it_is_undone() -> None:
    # Without the restore the graphed run would be three steps ahead: check that it would differ.
    torch.manual_seed(0)
    model = build_model("tutorial_cnn", num_classes=10)
    optimizer = OPTIMIZERS["sgd"](model)
    step = TrainStep(model, optimizer, nn.CrossEntropyLoss(), CPU_FP32, torch.zeros(2))
    graphed = GraphedStep(step, (BATCH, 3, 32, 32), capture=False)
    before = [t.clone() for t in model.state_dict().values()]
    graphed._warm_up()
    assert any(
        not torch.equal(a, b) for a, b in zip(before, model.state_dict().values(), strict=True)
    )
