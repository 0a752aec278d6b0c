"""`trainserve check`: health checks for container runtimes (exit 0 healthy, 1 not)."""

import socket

import httpx

from app.db import session_scope
from app.jobs.worker_registry import live_workers
from app.settings import get_settings


def check_api(port: int) -> str | None:
    """Why the API on this machine's loopback is unhealthy, or None."""
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=4)
    except httpx.HTTPError as exc:
        return f"the API on port {port} does not answer: {exc}"
    if response.status_code != 200:
        return f"the API on port {port} answered {response.status_code}"
    return None


def check_worker() -> str | None:
    """Why no worker on this host is live (heartbeat younger than a lease), or None."""
    host = socket.gethostname()
    try:
        with session_scope() as session:
            workers = live_workers(session, get_settings().lease_seconds)
    except Exception as exc:  # the database itself is the problem; say so
        return f"the database does not answer: {exc}"
    if not any(worker.hostname == host for worker in workers):
        return f"no live worker on {host}"
    return None
