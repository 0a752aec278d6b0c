"""The serving benchmark's setup: a trained model registered as cifar10 in a scratch
installation, and servers started and stopped."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from proc_stats import process_tree

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
ARCHIVE = SHARED / "data" / "cifar10-jpeg.tar.gz"
BIN = Path(sys.executable).parent
READY_TIMEOUT_S = 180


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(port: int, path: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"the server on port {port} exited ({process.returncode})")
        try:
            if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    sys.exit(f"the server on port {port} never came up")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a server and whatever processes it started (LitServe's workers outlive their
    parent otherwise)."""
    descendants = process_tree(process.pid)[1:]
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for pid in descendants:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def service_env(scratch: Path) -> dict[str, str]:
    return {
        **os.environ,
        "TRAINSERVE_DATABASE_URL": f"sqlite:///{scratch}/bench.db",
        "TRAINSERVE_DATA_DIR": str(scratch / "data"),
        "TRAINSERVE_DOWNLOAD": "0",
        "TRAINSERVE_ARTIFACTS_DIR": str(scratch / "artifacts"),
        "TRAINSERVE_LOG_LEVEL": "WARNING",
    }


def trained_model(scratch: Path) -> Path:
    """The model file of a small CIFAR-10 job, trained through the service (once per scratch
    folder) and registered as cifar10 at production."""
    done = scratch / "model-path"
    if done.exists():
        return scratch / "artifacts" / done.read_text()
    data = scratch / "data"
    if not data.exists():
        tool = SHARED / "tools" / "jpeg_to_cifar_batches.py"
        command = [sys.executable, str(tool), str(ARCHIVE), str(data), "--train", "2000"]
        subprocess.run([*command, "--test", "500"], check=True, capture_output=True)
    env, port = service_env(scratch), free_port()
    api = subprocess.Popen([str(BIN / "trainserve"), "api", "--port", str(port)], env=env)
    worker = subprocess.Popen([str(BIN / "trainserve"), "worker"], env=env)
    try:
        wait_ready(port, "/readyz", api)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            spec = {"epochs": 1, "max_train_samples": 2000, "max_test_samples": 500, "seed": 1}
            job = client.post("/jobs", json=spec).json()
            while job["status"] in ("queued", "running"):
                time.sleep(0.5)
                job = client.get(f"/jobs/{job['id']}").json()
    finally:
        stop(worker)
        stop(api)
    if job["status"] != "succeeded":
        sys.exit(f"training failed: {job['error']}")
    path = f"jobs/{job['id']}/model-attempt{job['attempts']}.pt"
    done.write_text(path)
    return scratch / "artifacts" / path
