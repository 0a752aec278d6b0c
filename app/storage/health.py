"""Whether the artifact store answers, asked at most so often: /readyz is polled every few
seconds by every load balancer and orchestrator, and each ask of a bucket is a request to it."""

import threading
import time

from app.storage.store import ArtifactStore

# A store that answers is asked again after this long; one that does not, sooner, so that its
# return is noticed within a few seconds.
HEALTHY_FOR_S = 15.0
UNHEALTHY_FOR_S = 2.0


class StoreHealth:
    def __init__(
        self,
        store: ArtifactStore,
        healthy_for_s: float = HEALTHY_FOR_S,
        unhealthy_for_s: float = UNHEALTHY_FOR_S,
        *,
        writes: bool = False,
    ) -> None:
        self.store, self.writes = store, writes
        self.healthy_for_s, self.unhealthy_for_s = healthy_for_s, unhealthy_for_s
        self._lock = threading.Lock()
        self._answer: str | None = None
        self._expires = 0.0  # monotonic time: nothing known yet

    def problem(self) -> str | None:
        """store.problem(), as last asked while that answer is fresh. While one caller asks the
        store, the others get the previous answer rather than waiting for it."""
        if time.monotonic() < self._expires:
            return self._answer
        if not self._lock.acquire(blocking=self._expires == 0.0):
            return self._answer
        try:
            if time.monotonic() >= self._expires:
                answer = self.store.problem(writes=self.writes)
                fresh_s = self.healthy_for_s if answer is None else self.unhealthy_for_s
                self._answer, self._expires = answer, time.monotonic() + fresh_s
            return self._answer
        finally:
            self._lock.release()

    def forget(self) -> None:
        """Ask the store again at the next problem(): a caller found it out of reach."""
        self._expires = min(self._expires, time.monotonic())
