"""Our loop trains the tutorial recipe as well as the tutorial's own loop, on real CIFAR-10."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from app.ml.cifar10 import load_cifar10
from tests.conftest import TUTORIAL_TOOL, job_config
from tests.workers.test_train import Collector
from workers.training.hooks import TrainInputs
from workers.training.loop import train

# Measured on this 10,000/2,000 subset: the tutorial loop 38.4% and 40.2% (torch seeds 0, 1),
# ours 38.9%, 39.4%, 37.4% (seeds 0-2). Runs of one recipe spread by about 1.5 points, so the
# mean of three of ours against one of theirs must agree within 3.
TOLERANCE = 0.03
SEEDS = (0, 1, 2)


def tutorial_accuracy(data_dir: Path) -> float:
    """The accuracy printed by the unmodified tutorial script, with torch's seed fixed."""
    launcher = (
        "import runpy, sys, torch; torch.manual_seed(0); "
        f"sys.argv = ['seed_tutorial.py', {str(data_dir)!r}, '2']; "
        f"runpy.run_path({str(TUTORIAL_TOOL)!r}, run_name='__main__')"
    )
    done = subprocess.run(
        [sys.executable, "-c", launcher], capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r"RESULT .*accuracy=([0-9.]+)", done.stdout)
    assert found, done.stdout[-2000:]
    return float(found.group(1))


def test_the_tutorial_recipe_matches_the_tutorial_loop_on_a_real_subset(
    real_cifar_10k: Path,
) -> None:
    if not TUTORIAL_TOOL.is_file():
        pytest.skip(f"{TUTORIAL_TOOL} missing")
    train_set, test_set, classes = load_cifar10(real_cifar_10k / "cifar-10-batches-py")
    ours = [
        train(
            TrainInputs(job_config(seed=seed, device="cpu"), train_set, test_set, classes),
            Collector(),
        ).final.accuracy
        for seed in SEEDS
    ]
    theirs = tutorial_accuracy(real_cifar_10k)
    mean = sum(ours) / len(ours)
    print(f"\ntutorial loop {theirs:.2%}; ours {', '.join(f'{a:.2%}' for a in ours)}")
    assert abs(mean - theirs) <= TOLERANCE, (ours, theirs)
    assert 0.30 <= mean <= 0.50  # where 2 epochs on 10,000 images land at all
