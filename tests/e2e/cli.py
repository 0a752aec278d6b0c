"""Running the `trainserve` command as a user does, against a real server with keys on."""

import os
import subprocess

import httpx

from tests.e2e.conftest import ADMIN_KEY, TRAINSERVE, Service

# The narrowest terminal the command's lists and bar are made for.
COLUMNS = "80"


def run(service: Service, *args: str, key: str | None = ADMIN_KEY) -> subprocess.CompletedProcess:
    """`trainserve ARGS` as a user runs it, the server named by TRAINSERVE_URL."""
    environment = {**os.environ, "TRAINSERVE_URL": service.url, "COLUMNS": COLUMNS}
    environment.pop("TRAINSERVE_API_KEY", None)
    if key is not None:
        environment["TRAINSERVE_API_KEY"] = key
    return subprocess.run(
        [TRAINSERVE, *args], env=environment, capture_output=True, text=True, timeout=300
    )


def percent(fraction: float) -> str:
    return f"{100 * fraction:.2f}%"


def admin_client(service: Service) -> httpx.Client:
    """An HTTP client with the admin key, to read what the command should have printed."""
    client = service.client()
    client.headers["Authorization"] = f"Bearer {ADMIN_KEY}"
    return client
