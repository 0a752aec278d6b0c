"""Real processes: the API under uvicorn on 127.0.0.1 and workers, sharing a SQLite file."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Env
from tests.e2e.browser import browser  # noqa: F401  (the fixture, for every browser test)

START_TIMEOUT_S = 60
ADMIN_KEY = "e2e-admin-key"
TRAINSERVE = str(Path(sys.executable).parent / "trainserve")  # the installed console script


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Process:
    """A child process whose output goes to a log file, stopped with SIGTERM at the end."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.args, self.log_path = args, log_path
        self._log = log_path.open("wb")
        self.popen = subprocess.Popen(args, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout_s: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while text not in self.log():
            assert self.popen.poll() is None, f"{self.args} exited:\n{self.log()}"
            assert time.monotonic() < deadline, f"{text!r} never logged:\n{self.log()}"
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: no chance to checkpoint or clean up, as when a machine dies."""
        self.popen.kill()
        self.popen.wait()

    def stop(self, timeout_s: float = 30) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log.close()
        return self.popen.returncode


class Service:
    """Starts trainserve processes for one installation and stops them all afterwards."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.processes: list[Process] = []
        self.overrides: dict[str, str] = {}

    def environment(self) -> dict[str, str]:
        return {**os.environ, **self.env.variables(), "PYTHONUNBUFFERED": "1", **self.overrides}

    def start(self, name: str, *args: str, private: dict[str, str] | None = None) -> Process:
        """Start a process; `private` adds variables of its own (its machine's folders)."""
        environment = {**self.environment(), **(private or {})}
        process = Process(list(args), environment, self.env.root / f"{name}.log")
        self.processes.append(process)
        return process

    def start_api(self, private: dict[str, str] | None = None) -> Process:
        api = self.start("api", TRAINSERVE, "api", "--port", str(self.port), private=private)
        self.wait_until_up(api)
        return api

    def start_worker(self, name: str = "worker", private: dict[str, str] | None = None) -> Process:
        return self.start(name, sys.executable, "-m", "workers", private=private)

    def wait_until_up(self, process: Process) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert process.popen.poll() is None, f"{process.args} exited:\n{process.log()}"
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"never became ready:\n{process.log()}"
            time.sleep(0.2)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            process.stop()


@pytest.fixture
def service(env: Env) -> Iterator[Service]:
    running = Service(env)
    yield running
    running.stop_all()


@pytest.fixture
def keyed_service(service: Service) -> Service:
    """An API with an admin key (ADMIN_KEY) and one worker."""
    service.overrides["TRAINSERVE_ADMIN_KEY"] = ADMIN_KEY
    service.start_api()
    service.start_worker()
    return service


def train_tiny_model(service: Service) -> int:
    """A one-epoch job on 40 images, run to success by the service's worker: its id."""
    with service.client() as client:
        job_id: int = client.post("/jobs", json={"epochs": 1, "max_train_samples": 40}).json()["id"]
        wait_for(
            lambda: client.get(f"/jobs/{job_id}").json()["status"] == "succeeded",
            120,
            "the model never trained",
        )
    return job_id


def wait_for(
    predicate: Callable[[], object], timeout_s: float, message: str, interval_s: float = 0.2
) -> object:
    """Poll until predicate returns something truthy; that value."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, message
        time.sleep(interval_s)
