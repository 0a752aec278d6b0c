"""Bare training steps of the tutorial CNN: images/s for each precision, layout and graph choice.

The worker's automatic choices on a GPU (workers/training/runtime.py) rest on this table: one fixed
batch already on the device, the worker's own step (TrainStep, or GraphedStep replaying a
captured CUDA graph), SGD with momentum, no data handling or evaluation.

Usage: python benchmarks/step_bench.py [--device cuda] [--batch 4 256 512] [--steps 1000]
"""

import argparse
import itertools
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.ml.nets import build_model
from workers.training.runtime import Precision, Runtime
from workers.training.steps import GraphedStep, TrainStep

# Steps before the clock starts: kernel choice, lazy allocations.
WARMUP_STEPS = 20


def images_per_s(
    runtime: Runtime,
    batch_size: int,
    steps: int = 1,
    *,
    seconds: float = 0.0,
    arch: str = "tutorial_cnn",
    warmup_steps: int = WARMUP_STEPS,
) -> float:
    """Images/s of the worker's training step for `arch` (10 classes, 32-pixel images) on one
    fixed batch of `batch_size`, timed over `steps` steps, and more until `seconds` have passed."""
    device = runtime.device
    model = build_model(arch, num_classes=10).to(device)
    model = model.to(memory_format=runtime.memory_format)  # type: ignore[call-overload]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
    step = TrainStep(
        model, optimizer, nn.CrossEntropyLoss(), runtime, torch.zeros(2, device=device)
    )
    shape = (batch_size, 3, 32, 32)
    run = GraphedStep(step, shape) if runtime.cuda_graphs else step
    images = torch.randn(shape, device=device).contiguous(memory_format=runtime.memory_format)
    labels = torch.randint(0, 10, (batch_size,), device=device)
    with runtime.applied():  # the threads and kernels the worker trains with
        for _ in range(warmup_steps):
            run(images, labels)
        synchronize(device)
        done, started = 0, time.perf_counter()
        while done < steps or time.perf_counter() - started < seconds:
            run(images, labels)
            done += 1
        synchronize(device)
        return done * batch_size / (time.perf_counter() - started)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, nargs="+", default=[4, 64, 256, 512])
    parser.add_argument("--steps", type=int, default=1000)
    args = parser.parse_args()
    device = torch.device(args.device)
    on_gpu = device.type == "cuda"
    precisions: list[Precision] = ["fp32", "bf16"]
    name = torch.cuda.get_device_name(device) if on_gpu else "cpu"
    print(f"device: {name}; torch {torch.__version__}")
    print(f"{'batch':>6}{'precision':>10}{'layout':>8}{'graphs':>8}{'images/s':>12}")
    for batch_size in args.batch:
        for precision, channels_last, graphs in itertools.product(
            precisions, (False, True), (False, True) if on_gpu else (False,)
        ):
            runtime = Runtime(device, precision, channels_last, False, graphs, threads=None)
            rate = images_per_s(runtime, batch_size, args.steps)
            layout = "NHWC" if channels_last else "NCHW"
            print(f"{batch_size:>6}{precision:>10}{layout:>8}{graphs!s:>8}{rate:>12.0f}")


if __name__ == "__main__":
    main()
