"""Waiting at start for what a worker needs before it claims anything: the database's schema, an
artifact store that answers. Said every WAIT_LOG_INTERVAL_S, not at every poll."""

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("trainserve.worker")

WAIT_LOG_INTERVAL_S = 10.0


def wait_until(
    problem: Callable[[], str | None], level: int, stop: threading.Event, poll_s: float
) -> bool:
    """Poll until `problem()` is None (True), saying it every WAIT_LOG_INTERVAL_S, or until
    `stop` is set (False)."""
    last_log = -WAIT_LOG_INTERVAL_S
    while not stop.is_set():
        waiting_for = problem()
        if waiting_for is None:
            return True
        if time.monotonic() - last_log >= WAIT_LOG_INTERVAL_S:
            log.log(level, "%s", waiting_for)
            last_log = time.monotonic()
        stop.wait(poll_s)
    return False
