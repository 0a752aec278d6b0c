"""An artifact store out of reach is waited out with growing pauses, said once when it starts and
once when it ends; past the limit it is a StoreOutage naming the store; what is missing or
damaged goes through at once. Its health is asked of it at most every few seconds, and again at
once by a caller that found it out of reach."""

import logging
import re
import threading
from pathlib import Path

import pytest

from app.storage.health import StoreHealth
from app.storage.local import LocalFolder
from app.storage.outages import StoreOutage, StoreOutageLog, retry_through_store_outages
from app.storage.store import ArtifactMissing, StoreError, StoreRefused

log = logging.getLogger("trainserve.test")
DOWN = "artifact store s3://b/p at http://127.0.0.1:9: cannot be reached (connection refused)"


class Failing:
    """A call that fails `times` times with `error`, then answers 42."""

    def __init__(self, times: int, error: StoreError) -> None:
        self.left, self.error, self.calls = times, error, 0

    def __call__(self) -> int:
        self.calls += 1
        if self.left:
            self.left -= 1
            raise self.error
        return 42


def test_an_outage_is_waited_out_and_said_once_when_it_starts_and_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    call = Failing(2, StoreError(DOWN))
    caplog.set_level(logging.WARNING, logger="trainserve.test")
    assert retry_through_store_outages(call, StoreOutageLog(log, "job 3"), limit_s=30) == 42
    assert call.calls == 3
    said = [r.getMessage() for r in caplog.records]
    assert said[0] == f"job 3: {DOWN}; retrying until it answers"
    # Paused 0.5 s then 1 s: how long it lasted is rounded, and a loaded machine adds to it.
    assert re.fullmatch(
        r"job 3: the artifact store answers again after \d+ s \(2 tries failed\)", said[1]
    )
    assert len(said) == 2


def test_past_the_limit_it_is_an_outage_naming_the_store() -> None:
    call = Failing(100, StoreError(DOWN))
    with pytest.raises(StoreOutage) as raised:
        retry_through_store_outages(call, StoreOutageLog(log, "job 3"), limit_s=1.2)
    assert re.fullmatch(
        rf"{re.escape(DOWN)} \(out of reach for \d+ s; "
        r"TRAINSERVE_STORE_OUTAGE_LIMIT_SECONDS is 1\)",
        str(raised.value),
    )
    # At once, after 0.5 s, and at the limit; a loaded machine may leave out the middle try.
    assert 2 <= call.calls <= 3


def test_a_stop_ends_the_wait_at_once() -> None:
    stop = threading.Event()
    stop.set()
    call = Failing(100, StoreError(DOWN))
    with pytest.raises(StoreOutage) as raised:
        retry_through_store_outages(call, StoreOutageLog(log, "w"), limit_s=600, stop=stop)
    assert str(raised.value) == f"{DOWN} (stopped while waiting for it)"
    assert call.calls == 1


def test_a_missing_file_is_no_outage() -> None:
    call = Failing(1, ArtifactMissing("artifact store /x: jobs/1/model-attempt1.pt is missing"))
    with pytest.raises(ArtifactMissing):
        retry_through_store_outages(call, StoreOutageLog(log, "w"), limit_s=600)
    assert call.calls == 1


def test_a_refusal_is_no_outage() -> None:
    refused = StoreRefused("artifact store s3://b at http://h: the credentials were refused (403)")
    call = Failing(1, refused)
    with pytest.raises(StoreRefused):
        retry_through_store_outages(call, StoreOutageLog(log, "w"), limit_s=600)
    assert call.calls == 1


class CountedFolder(LocalFolder):
    """A local folder that counts how often its health is asked and answers what it is told."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.asked, self.answer = 0, None  # type: int, str | None

    def problem(self, *, writes: bool = False) -> str | None:
        self.asked += 1
        return self.answer


def test_health_is_asked_of_the_store_at_most_so_often(tmp_path: Path) -> None:
    store = CountedFolder(tmp_path)
    health = StoreHealth(store, healthy_for_s=60, unhealthy_for_s=0)
    assert [health.problem() for _ in range(100)] == [None] * 100
    assert store.asked == 1
    store.answer = "down"  # not seen before the healthy answer is stale
    assert health.problem() is None

    health = StoreHealth(store, healthy_for_s=60, unhealthy_for_s=0)
    assert health.problem() == "down"  # a problem is asked again at once (here)
    store.answer = None
    assert health.problem() is None
    assert store.asked == 3


def test_a_caller_that_found_the_store_out_of_reach_has_it_asked_again(tmp_path: Path) -> None:
    store = CountedFolder(tmp_path)
    health = StoreHealth(store, healthy_for_s=60, unhealthy_for_s=60)
    assert health.problem() is None
    store.answer = "down"
    health.forget()  # a worker's job met an outage: its next claim asks the store first
    assert [health.problem(), health.problem()] == ["down", "down"]
    assert store.asked == 2
