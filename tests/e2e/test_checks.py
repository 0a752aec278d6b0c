"""`trainserve check api|worker`: the health checks the container image and Compose run."""

import socket
import subprocess

import pytest

from tests.conftest import Env
from tests.e2e.conftest import TRAINSERVE, Service, free_port, wait_for

pytestmark = pytest.mark.e2e


def check(service: Service, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TRAINSERVE, "check", *args],
        env=service.environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_checks_follow_the_api_and_the_worker(env: Env, service: Service) -> None:
    unused = free_port()
    down = check(service, "api", "--port", str(unused))
    assert down.returncode == 1
    assert down.stderr.startswith(f"the API on port {unused} does not answer: ")

    service.start_api()
    assert check(service, "api", "--port", str(service.port)).returncode == 0

    host = socket.gethostname()
    absent = check(service, "worker")
    assert (absent.returncode, absent.stderr) == (1, f"no live worker on {host}\n")
    worker = service.start_worker()
    wait_for(lambda: check(service, "worker").returncode == 0, 60, "the worker never counted")
    worker.stop()
    assert check(service, "worker").returncode == 1  # a stopped worker leaves the registry
