"""Growing pauses between tries of something out of reach (the database, the artifact store),
up to a limit: what both outages' retries share."""

import threading
import time

FIRST_RETRY_DELAY_S = 0.5
LONGEST_RETRY_DELAY_S = 10.0


class Backoff:
    def __init__(self, limit_s: float, stop: threading.Event | None = None) -> None:
        self.limit_s, self.stop = limit_s, stop
        self.started: float | None = None
        self.waited_s = 0.0
        self.delay_s = FIRST_RETRY_DELAY_S

    def pause(self) -> bool:
        """After a failed try: pause before the next one (True), or False once the failures
        have lasted `limit_s` or `stop` is set."""
        now = time.monotonic()
        self.started = now if self.started is None else self.started
        self.waited_s = now - self.started
        if self.waited_s >= self.limit_s or (self.stop is not None and self.stop.is_set()):
            return False
        pause_s = min(self.delay_s, self.started + self.limit_s - now)
        if self.stop is not None:
            self.stop.wait(pause_s)
        else:
            time.sleep(pause_s)
        self.delay_s = min(2 * self.delay_s, LONGEST_RETRY_DELAY_S)
        return True
