"""The artifact store out of reach (a bucket's server stopped, the network gone, credentials
refused): waited out like a database outage (app/db_outages.py), said once when it starts and
once when it ends, and given up on only after TRAINSERVE_STORE_OUTAGE_LIMIT_SECONDS.

What is missing or damaged, or a request the store refused (credentials, permissions, a missing
bucket), is no outage: waiting would not change it, so it goes through at once to be said as it
is.
"""

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from app.backoff import Backoff
from app.storage.store import ArtifactDamaged, ArtifactMissing, StoreError, StoreRefused

T = TypeVar("T")


class StoreOutage(StoreError):
    """The store stayed out of reach longer than the limit; the message names it."""


def is_outage(exc: BaseException) -> bool:
    """Whether an error means the store cannot be reached now, rather than a file that is bad
    or a request it refused."""
    return isinstance(exc, StoreError) and not isinstance(
        exc, ArtifactMissing | ArtifactDamaged | StoreRefused | StoreOutage
    )


class StoreOutageLog:
    """One warning when the store stops answering, one line when it answers again with how long
    it was out and how many tries failed; shared by a job's threads."""

    def __init__(
        self, log: logging.Logger, who: str, waiting: str = "retrying until it answers"
    ) -> None:
        self.log, self.who, self.waiting = log, who, waiting
        self.lock = threading.Lock()
        self.since: float | None = None
        self.failures = 0

    def failed(self, exc: StoreError) -> None:
        with self.lock:
            self.failures += 1
            if self.since is None:
                self.since = time.monotonic()
                self.log.warning("%s: %s; %s", self.who, exc, self.waiting)

    def succeeded(self) -> None:
        with self.lock:
            if self.since is None:
                return
            self.log.warning(
                "%s: the artifact store answers again after %.0f s (%d tries failed)",
                self.who,
                time.monotonic() - self.since,
                self.failures,
            )
            self.since, self.failures = None, 0


def retry_through_store_outages(
    call: Callable[[], T],
    outages: StoreOutageLog,
    limit_s: float,
    stop: threading.Event | None = None,
) -> T:
    """`call()`, tried again with growing pauses while the store is out of reach; StoreOutage
    naming the store once that has lasted `limit_s`, or when `stop` is set. Other errors, a
    missing or damaged file among them, go through at once."""
    backoff = Backoff(limit_s, stop)
    while True:
        try:
            result = call()
        except StoreError as exc:
            if not is_outage(exc):
                raise
            outages.failed(exc)
            if not backoff.pause():
                stopped = stop is not None and stop.is_set() and backoff.waited_s < limit_s
                waited = (
                    "stopped while waiting for it"
                    if stopped
                    else f"out of reach for {backoff.waited_s:.0f} s; "
                    f"TRAINSERVE_STORE_OUTAGE_LIMIT_SECONDS is {limit_s:.0f}"
                )
                raise StoreOutage(f"{exc} ({waited})") from exc
            continue
        outages.succeeded()
        return result
