"""Architectures on the CPU: training images per second, and fast_cnn against the tutorial CNN.

Two parts, each optional:
  1. --throughput: images/s of the worker's own training step (TrainStep, with the threads and
     kernels the worker would choose for the job, one fixed batch of random 32-pixel images, SGD
     with momentum) for each architecture at each batch size. The measurements are interleaved
     (every architecture and batch once per round, --rounds rounds), and each line gives the
     median and the range over the rounds, so that a noisy neighbour shows as a spread.
  2. --race: fast_cnn with recipe fast94 against the tutorial CNN with recipe fast on the same
     class-balanced CIFAR-10 subset (--subset training images, a fifth as many test images,
     rebuilt from the JPEG archive in ../shared/data), each trained by the worker's training
     loop for as many whole epochs as fit in --budget-s seconds (the epochs are planned from a
     timed step and a timed evaluation, so the learning-rate schedule runs to its end), and the
     test accuracy each reaches.

Usage: python benchmarks/architecture_bench.py [--throughput] [--race] [--archs A B ...]
           [--batch 16 64 256] [--rounds 3] [--seconds 3] [--subset 10000] [--budget-s 300]
           [--data-root DIR] [--set-fast FIELD=JSON] [--set-tutorial FIELD=JSON] [--seed 0]
Neither --throughput nor --race: both.
"""

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.jobs.config import JobConfig, JobCreate
from app.ml.cifar10 import load_cifar10
from app.ml.images import ImageSet
from app.ml.nets import build_model
from workers.training.devices import runtime_for
from workers.training.evaluate import evaluate
from workers.training.hooks import EpochMetrics, StopReason, TrainInputs
from workers.training.loop import train

FAMILIES = [
    "tutorial_cnn",
    "fast_cnn",
    "resnet18",
    "mobilenet_v3_small",
    "efficientnet_b0",
    "convnext_tiny",
    "vit_b_16",  # 32 pixels are 2x2 patches of 16
]
IMAGE_PX = 32
WARMUP_STEPS = 2  # kernel choice and lazy allocations, before the clock starts


def step_rate(config: JobConfig, batch_size: int, seconds: float) -> float:
    """Images/s of the worker's training step for config.model at `batch_size`, with the
    runtime the worker would choose for the job, timed until `seconds` have passed."""
    from step_bench import images_per_s  # beside this script

    runtime = runtime_for(config, batch_size)
    return images_per_s(
        runtime, batch_size, seconds=seconds, arch=config.model, warmup_steps=WARMUP_STEPS
    )


def throughput(archs: list[str], batches: list[int], rounds: int, seconds: float) -> None:
    """Part 1: the table of images/s, every architecture and batch size once a round."""
    rates: dict[tuple[str, int], list[float]] = {}
    for round_number in range(1, rounds + 1):
        for arch in archs:
            for batch in batches:
                torch.manual_seed(0)
                config = JobConfig(model=arch, batch_size=batch, device="cpu", seed=0)
                rate = step_rate(config, batch, seconds)
                rates.setdefault((arch, batch), []).append(rate)
                print(f"round {round_number}: {arch} batch {batch}: {rate:.1f} images/s")
                gc.collect()
    print(f"\ntraining images/s on {torch.get_num_threads()} threads (median, min-max of {rounds})")
    print(f"{'architecture':<22}" + "".join(f"{f'batch {b}':>22}" for b in batches))
    for arch in archs:
        cells = []
        for batch in batches:
            seen = rates[(arch, batch)]
            cells.append(f"{statistics.median(seen):.1f} ({min(seen):.1f}-{max(seen):.1f})")
        print(f"{arch:<22}" + "".join(f"{cell:>22}" for cell in cells))


class EpochLog:
    """Training hooks that keep each epoch's metrics and never stop or checkpoint."""

    def __init__(self) -> None:
        self.epochs: list[EpochMetrics] = []

    def started(self, device: str, classes: list[str], steps_per_epoch: int) -> None:
        pass

    def progress(self, epoch: int, step: int) -> None:
        pass

    def loss_point(self, epoch: int, step: int, loss: float) -> None:
        pass

    def epoch_done(self, metrics: EpochMetrics) -> None:
        self.epochs.append(metrics)
        print(
            f"  epoch {metrics.epoch}: test accuracy {metrics.evaluation.accuracy:.4f} "
            f"after {metrics.elapsed_s:.1f} s"
        )

    def stop_reason(self) -> StopReason | None:
        return None

    def checkpoint_due(self) -> bool:
        return False

    def save_checkpoint(self, snapshot: dict[str, Any], epoch: int, step: int) -> None:
        pass


@dataclass(frozen=True)
class RaceResult:
    name: str
    epochs: int
    planned_epoch_s: float
    train_s: float
    accuracy: float


def planned_epochs(
    config: JobConfig, train_set: ImageSet, test_set: ImageSet, budget_s: float
) -> tuple[int, float]:
    """Whole epochs of `config` that fit in `budget_s`, from a timed step and evaluation."""
    batch = config.batch_size or len(train_set)
    model = build_model(config.model, num_classes=10, image_size=IMAGE_PX)
    rate = step_rate(config, min(batch, len(train_set)), seconds=3)
    started = time.perf_counter()
    evaluate(model, test_set, [str(i) for i in range(10)])
    epoch_s = len(train_set) / rate + time.perf_counter() - started
    return max(1, min(1000, int(budget_s / epoch_s))), epoch_s


def race_one(
    name: str, body: dict[str, Any], data: tuple[ImageSet, ImageSet, list[str]], budget_s: float
) -> RaceResult:
    train_set, test_set, classes = data
    config = JobCreate.model_validate({**body, "device": "cpu"}).resolved()
    epochs, epoch_s = planned_epochs(config, train_set, test_set, budget_s)
    config = config.model_copy(update={"epochs": epochs})
    print(f"{name}: {epochs} epochs of about {epoch_s:.1f} s fit in {budget_s:.0f} s")
    log = EpochLog()
    result = train(TrainInputs(config, train_set, test_set, classes), log)
    return RaceResult(name, epochs, epoch_s, log.epochs[-1].elapsed_s, result.final.accuracy)


def race(data_root: Path, budget_s: float, fast: dict[str, Any], tutorial: dict[str, Any]) -> None:
    """Part 2: fast_cnn (fast94) against the tutorial CNN (fast) in the same time budget."""
    data = load_cifar10(data_root / "cifar-10-batches-py")
    train_set, test_set, _ = data
    print(f"\nrace: {len(train_set)} training and {len(test_set)} test images, {budget_s:.0f} s")
    results = [
        race_one("fast_cnn, recipe fast94", {"recipe": "fast94", **fast}, data, budget_s),
        race_one("tutorial_cnn, recipe fast", {"recipe": "fast", **tutorial}, data, budget_s),
    ]
    print(f"\n{'run':<28}{'epochs':>8}{'epoch s':>10}{'train s':>10}{'accuracy':>10}")
    for r in results:
        print(
            f"{r.name:<28}{r.epochs:>8}{r.planned_epoch_s:>10.1f}{r.train_s:>10.1f}"
            f"{r.accuracy:>10.4f}"
        )


def fields(items: list[str]) -> dict[str, Any]:
    return {key: json.loads(value) for key, _, value in (item.partition("=") for item in items)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--throughput", action="store_true", help="part 1 only (with --race: both)")
    parser.add_argument("--race", action="store_true", help="part 2 only (with --throughput: both)")
    parser.add_argument("--archs", nargs="+", default=FAMILIES)
    parser.add_argument("--batch", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement (3)")
    parser.add_argument("--subset", type=int, default=10000, help="training images (10000)")
    parser.add_argument("--budget-s", type=float, default=300.0, help="per network (300)")
    parser.add_argument("--data-root", type=Path, help="holds cifar-10-batches-py")
    parser.add_argument("--set-fast", action="append", default=[], metavar="FIELD=JSON")
    parser.add_argument("--set-tutorial", action="append", default=[], metavar="FIELD=JSON")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    both = args.throughput == args.race
    print(f"torch {torch.__version__}; {torch.get_num_threads()} threads")
    if args.throughput or both:
        throughput(args.archs, args.batch, args.rounds, args.seconds)
    if args.race or both:
        from train_bench import rebuild_layout  # beside this script

        seed = {"seed": args.seed}
        fast, tutorial = fields(args.set_fast), fields(args.set_tutorial)
        with tempfile.TemporaryDirectory() as scratch:
            root = args.data_root or rebuild_layout(Path(scratch), args.subset)
            race(root, args.budget_s, {**seed, **fast}, {**seed, **tutorial})


if __name__ == "__main__":
    main()
