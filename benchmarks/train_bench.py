"""Training speed: the classic tutorial loop against our worker, on the same rebuilt CIFAR-10.

Runs, one after the other on one machine:
  1. ../shared/tools/seed_tutorial.py (DataLoader, batch 4, SGD 0.001/0.9, 2 epochs), and
  2. a real API and worker process (`trainserve api`, `trainserve worker`) with one job of the
     chosen recipe submitted over HTTP,
and prints for each: images per second, wall time, test accuracy and peak memory (RSS of the
training process), the throughput ratio, each epoch's accuracy and training time, the
training time at which the job's test accuracy first reached --target, and the images per
second of bare training steps on the job's device (one fixed batch, no data handling) that
the worker is measured against.

Usage: python benchmarks/train_bench.py [--recipe tutorial|fast] [--subset N] [--set FIELD=JSON]
           [--data-root DIR] [--seed N] [--skip-tutorial] [--target 0.6]
--subset N trains on N rebuilt images per run (N/5 test); --set adds job fields, e.g.
--set batch_size=512 --set device='"cuda"'. DIR holds cifar-10-batches-py; without it the
layout is rebuilt from ../shared/data.
"""

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
TRAINSERVE = str(Path(sys.executable).parent / "trainserve")
TUTORIAL_EPOCHS = 2
# Runs the tutorial unchanged, then reports the peak RSS of its main process (its two
# DataLoader processes come on top).
TUTORIAL_LAUNCHER = """
import re, runpy, sys
sys.argv = sys.argv[1:]  # the script sees its own path and arguments
runpy.run_path(sys.argv[0], run_name="__main__")
status = open("/proc/self/status").read()
print("PEAK_RSS_KB", re.search(r"VmHWM:\\s+(\\d+)", status).group(1))
"""


@dataclass(frozen=True)
class Result:
    name: str
    images: int  # training images processed (epochs x train set)
    train_s: float  # time the training process spent loading data and training
    wall_s: float
    accuracy: float
    peak_rss_mb: float
    batch_size: int
    epochs: tuple[tuple[int, float, float], ...] = ()  # (epoch, test accuracy, training s)
    device: str = "cpu"
    config: dict[str, Any] = field(default_factory=dict)  # the job's config, as stored

    @property
    def images_per_s(self) -> float:
        return self.images / self.train_s


def rebuild_layout(out_root: Path, subset: int | None) -> Path:
    archive = SHARED / "data" / "cifar10-jpeg.tar.gz"
    tool = SHARED / "tools" / "jpeg_to_cifar_batches.py"
    if not archive.is_file():
        sys.exit(f"no --data-root given and {archive} is missing")
    limits = ["--train", str(subset), "--test", str(max(subset // 5, 10))] if subset else []
    subprocess.run([sys.executable, str(tool), str(archive), str(out_root), *limits], check=True)
    return out_root


def train_size(data_root: Path) -> int:
    sys.path.insert(0, str(REPO))
    from app.ml.cifar10 import load_cifar10

    train, _, _ = load_cifar10(data_root / "cifar-10-batches-py")
    return len(train)


def peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"VmHWM:\s+(\d+)", status)
    return int(found.group(1)) / 1024 if found else float("nan")


def run_tutorial(script: Path, data_root: Path, images: int) -> Result:
    started = time.perf_counter()
    output = subprocess.run(
        [sys.executable, "-c", TUTORIAL_LAUNCHER, str(script), str(data_root), "2"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    wall = time.perf_counter() - started
    result = re.search(r"train_s=([0-9.]+) .*accuracy=([0-9.]+)", output)
    peak = re.search(r"PEAK_RSS_KB (\d+)", output)
    if not result or not peak:
        sys.exit(f"the tutorial printed no RESULT line:\n{output}")
    return Result(
        name="tutorial loop (seed_tutorial.py)",
        images=images * TUTORIAL_EPOCHS,
        train_s=float(result.group(1)),
        wall_s=wall,
        accuracy=float(result.group(2)),
        peak_rss_mb=int(peak.group(1)) / 1024,
        batch_size=4,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(client: httpx.Client) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if client.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    sys.exit("the API did not become ready")


def run_job(data_root: Path, body: dict[str, Any], images: int) -> Result:
    with tempfile.TemporaryDirectory() as scratch:
        port = free_port()
        env = {
            **os.environ,
            "TRAINSERVE_DATABASE_URL": f"sqlite:///{scratch}/bench.db",
            "TRAINSERVE_DATA_DIR": str(data_root),
            "TRAINSERVE_ARTIFACTS_DIR": f"{scratch}/artifacts",
            "TRAINSERVE_DOWNLOAD": "0",
            "TRAINSERVE_LOG_LEVEL": "WARNING",
        }
        api = subprocess.Popen([TRAINSERVE, "api", "--port", str(port)], env=env)
        worker = subprocess.Popen([TRAINSERVE, "worker"], env=env)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
                wait_ready(client)
                started = time.perf_counter()
                job = client.post("/jobs", json=body).json()
                if "id" not in job:
                    sys.exit(f"the job was refused: {job}")
                while job["status"] in ("queued", "running"):
                    time.sleep(0.2)
                    job = client.get(f"/jobs/{job['id']}").json()
                wall = time.perf_counter() - started
                metrics = client.get(f"/jobs/{job['id']}/metrics").json()
            peak = peak_rss_mb(worker.pid)
        finally:
            for process in (worker, api):
                process.terminate()
                process.wait(60)
    if job["status"] != "succeeded":
        sys.exit(f"the job ended {job['status']}: {job['error']}")
    config = job["config"]
    run_s = (
        datetime.fromisoformat(job["finished_at"]) - datetime.fromisoformat(job["started_at"])
    ).total_seconds()
    return Result(
        name=f"trainserve worker, recipe {config['recipe']} ({job['device']})",
        images=images * config["epochs"],
        train_s=run_s,
        wall_s=wall,
        accuracy=job["test_accuracy"],
        peak_rss_mb=peak,
        batch_size=config["batch_size"],
        epochs=tuple((e["epoch"], e["test_accuracy"], e["elapsed_s"]) for e in metrics["epochs"]),
        device=job["device"],
        config=config,
    )


def step_ceiling(batch_size: int, job_config: dict[str, Any]) -> float:
    """Images/s of bare training steps on one fixed batch: no data, no bookkeeping.

    The worker's own step (eager, or a replayed CUDA graph) with the device, precision, layout
    and threads the job's config resolves to on this machine: what the kernels allow for the
    tutorial CNN at this batch size, which the worker's throughput is read against.
    """
    sys.path.insert(0, str(REPO))
    from step_bench import images_per_s  # beside this script

    from app.jobs.config import JobConfig
    from workers.training.devices import runtime_for

    runtime = runtime_for(JobConfig.model_validate(job_config), batch_size)
    return images_per_s(runtime, batch_size, steps=2000)


def print_table(results: list[Result], body: dict[str, Any]) -> None:
    print(f"cores: {os.cpu_count()}; job: {json.dumps(body)}")
    print(f"{'run':<46}{'images/s':>10}{'train s':>9}{'wall s':>9}{'accuracy':>10}{'peak MB':>9}")
    for r in results:
        print(
            f"{r.name:<46}{r.images_per_s:>10.0f}{r.train_s:>9.1f}{r.wall_s:>9.1f}"
            f"{r.accuracy:>10.4f}{r.peak_rss_mb:>9.0f}"
        )
    if len(results) == 2:
        ratio = results[1].images_per_s / results[0].images_per_s
        print(f"throughput ratio (worker / tutorial loop): {ratio:.2f}x")


def print_time_to(target: float, worker: Result) -> None:
    reached = [(epoch, seconds) for epoch, accuracy, seconds in worker.epochs if accuracy >= target]
    if reached:
        epoch, seconds = reached[0]
        print(f"time to {target:.0%} test accuracy: {seconds:.1f} s of training (epoch {epoch})")
    else:
        print(f"the job never reached {target:.0%} test accuracy")


def print_epochs(worker: Result, images: int) -> None:
    """Each epoch's accuracy and training time; the rate once start-up and epoch 1 are past."""
    print("epoch  accuracy  training s  images/s")
    before = 0.0
    for epoch, accuracy, seconds in worker.epochs:
        print(f"{epoch:>5}{accuracy:>10.4f}{seconds:>12.2f}{images / (seconds - before):>10.0f}")
        before = seconds
    if len(worker.epochs) > 2:
        first, last = worker.epochs[0][2], worker.epochs[-1][2]
        steady = images * (len(worker.epochs) - 1) / (last - first)
        print(f"from epoch 2 on (warm-up, evaluation included): {steady:.0f} images/s")


def print_ceiling(batch_size: int, worker: Result) -> None:
    ceiling = step_ceiling(batch_size, worker.config)
    print(
        f"bare training steps at batch {batch_size} on {worker.device}: {ceiling:.0f} images/s; "
        f"the whole job (start-up included) reached {worker.images_per_s / ceiling:.0%} of that"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", choices=["tutorial", "fast"], default="tutorial")
    parser.add_argument("--subset", type=int, help="train images (test: a fifth as many)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=JSON")
    parser.add_argument("--data-root", type=Path)
    parser.add_argument("--tutorial", type=Path, default=SHARED / "tools" / "seed_tutorial.py")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-tutorial", action="store_true")
    parser.add_argument("--target", type=float, default=0.6, help="accuracy to time (0.6)")
    args = parser.parse_args()
    body: dict[str, Any] = {"recipe": args.recipe, "seed": args.seed}
    for item in args.set:
        field, _, value = item.partition("=")
        body[field] = json.loads(value)
    with tempfile.TemporaryDirectory() as scratch:
        data_root = args.data_root or rebuild_layout(Path(scratch), args.subset)
        images = train_size(data_root)
        results = [] if args.skip_tutorial else [run_tutorial(args.tutorial, data_root, images)]
        results.append(run_job(data_root, body, images))
    print_table(results, body)
    print_epochs(results[-1], images)
    print_time_to(args.target, results[-1])
    print_ceiling(results[-1].batch_size, results[-1])


if __name__ == "__main__":
    main()
