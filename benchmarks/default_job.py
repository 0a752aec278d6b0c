"""The default job through the real service against the classic tutorial loop, on the same data.

Runs, one after the other on one machine:
  1. the tutorial script (DataLoader, batch 4, SGD 0.001/0.9, 2 epochs), and
  2. `trainserve up` with the default job submitted over HTTP, timed from POST to "succeeded",
and prints wall time and test accuracy for each.

Usage: python benchmarks/default_job.py [--data-root DIR] [--tutorial PATH] [--seed N]
DIR holds cifar-10-batches-py; without it the layout is rebuilt from ../shared/data.
"""

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
TRAINSERVE = str(Path(sys.executable).parent / "trainserve")


def rebuild_layout(out_root: Path) -> Path:
    archive = SHARED / "data" / "cifar10-jpeg.tar.gz"
    tool = SHARED / "tools" / "jpeg_to_cifar_batches.py"
    if not archive.is_file():
        sys.exit(f"no --data-root given and {archive} is missing")
    subprocess.run([sys.executable, str(tool), str(archive), str(out_root)], check=True)
    return out_root


def run_tutorial(script: Path, data_root: Path) -> tuple[float, float]:
    started = time.perf_counter()
    output = subprocess.run(
        [sys.executable, str(script), str(data_root), "2"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    wall = time.perf_counter() - started
    match = re.search(r"accuracy=([0-9.]+)", output)
    if not match:
        sys.exit(f"the tutorial printed no RESULT line:\n{output}")
    return wall, float(match.group(1))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run_service_job(data_root: Path, seed: int) -> tuple[float, float, float, str]:
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
        service = subprocess.Popen([TRAINSERVE, "up", "--port", str(port)], env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=url, timeout=10) as client:
                while True:
                    try:
                        if client.get("/readyz").status_code == 200:
                            break
                    except httpx.TransportError:
                        time.sleep(0.2)
                started = time.perf_counter()
                job = client.post("/jobs", json={"seed": seed}).json()
                while job["status"] in ("queued", "running"):
                    time.sleep(0.5)
                    job = client.get(f"/jobs/{job['id']}").json()
                wall = time.perf_counter() - started
        finally:
            service.terminate()
            service.wait(60)
        if job["status"] != "succeeded":
            sys.exit(f"the job ended {job['status']}: {job['error']}")
        run_s = (
            datetime.fromisoformat(job["finished_at"]) - datetime.fromisoformat(job["started_at"])
        ).total_seconds()
        return wall, run_s, job["test_accuracy"], job["device"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path)
    parser.add_argument("--tutorial", type=Path, default=SHARED / "tools" / "seed_tutorial.py")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        data_root = args.data_root or rebuild_layout(Path(scratch))
        tutorial_wall, tutorial_accuracy = run_tutorial(args.tutorial, data_root)
        wall, run_s, accuracy, device = run_service_job(data_root, args.seed)
    print(f"cores: {os.cpu_count()}, default job: 2 epochs, batch 4, SGD 0.001/0.9, full data")
    print(f"{'run':<34}{'wall s':>9}{'accuracy':>10}")
    tutorial = "tutorial loop (seed_tutorial.py)"
    print(f"{tutorial:<34}{tutorial_wall:>9.1f}{tutorial_accuracy:>10.4f}")
    print(f"{'trainserve job, POST to done':<34}{wall:>9.1f}{accuracy:>10.4f}")
    print(f"{'  of which training (' + device + ')':<34}{run_s:>9.1f}")


if __name__ == "__main__":
    main()
