"""The event hub on a real database: one read a poll for any number of followers of a job, each
follower given the job's whole log once and in order, however late it joins or slow it is."""

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio
from sqlalchemy import Engine, event

from app.db import session_scope
from app.jobs.config import JobConfig
from app.jobs.event_hub import EventHub, Subscription
from app.jobs.events import Event, EventKind, append_event, events_after
from app.jobs.transitions import create_job, request_cancel
from tests.conftest import Env

POLL_S = 0.05
FOLLOWERS = 200
TIMEOUT_S = 30


def queued_job() -> int:
    with session_scope(write=True) as session:
        return create_job(session, JobConfig(epochs=1, seed=0)).id


def record_loss(job_id: int, step: int) -> None:
    with session_scope(write=True) as session:
        append_event(session, job_id, EventKind.LOSS, {"epoch": 1, "step": step, "loss": 0.5})


def cancel(job_id: int) -> None:
    with session_scope(write=True) as session:
        assert request_cancel(session, job_id) == "cancelled"


def the_whole_log(job_id: int) -> list[Event]:
    """What a single reader of the finished job reads."""
    with session_scope() as session:
        return events_after(session, job_id, 0, 10_000)


@contextmanager
def counted_event_reads() -> Iterator[list[str]]:
    """Every query that reads a job's events (events_after), as the database is sent it."""
    reads: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().startswith("SELECT") and "ORDER BY job_event.seq" in statement:
            reads.append(statement)

    event.listen(Engine, "before_cursor_execute", count)
    try:
        yield reads
    finally:
        event.remove(Engine, "before_cursor_execute", count)


async def follow_to_the_end(subscription: Subscription) -> list[Event]:
    received: list[Event] = []
    while not subscription.ended:
        received += await subscription.next_events()
    return received


async def record_then_cancel(job_id: int, steps: int, pause_s: float) -> None:
    for step in range(steps):
        await anyio.to_thread.run_sync(record_loss, job_id, step)
        await asyncio.sleep(pause_s)
    await anyio.to_thread.run_sync(cancel, job_id)


def test_many_followers_get_what_one_reader_gets_from_one_read_a_poll(
    migrated_env: Env,
) -> None:
    job_id = queued_job()
    hub = EventHub(POLL_S)

    async def run() -> tuple[list[list[Event]], float]:
        started = anyio.current_time()
        with anyio.fail_after(TIMEOUT_S):
            followers = [
                asyncio.create_task(follow_to_the_end(hub.follow(job_id, 0)))
                for _ in range(FOLLOWERS)
            ]
            await record_then_cancel(job_id, steps=20, pause_s=POLL_S / 2)
            received = [await follower for follower in followers]
        return received, anyio.current_time() - started

    with counted_event_reads() as reads:
        received, elapsed_s = asyncio.run(run())

    expected = the_whole_log(job_id)
    assert len(expected) == 22  # queued, 20 losses, cancelled
    assert all(events == expected for events in received)
    # One feed read a poll (and the last one) for all of them; a read per follower would be
    # FOLLOWERS times as many.
    assert 1 <= len(reads) <= elapsed_s / POLL_S + 2, (len(reads), elapsed_s)
    assert hub.followed_jobs() == []  # the job ended: its feed stopped


def test_a_slow_follower_is_let_go_of_and_catches_up_by_itself(migrated_env: Env) -> None:
    job_id = queued_job()
    hub = EventHub(POLL_S, inbox_batches=2)

    async def run() -> tuple[list[Event], list[Event]]:
        with anyio.fail_after(TIMEOUT_S):
            fast = asyncio.create_task(follow_to_the_end(hub.follow(job_id, 0)))
            slow = hub.follow(job_id, 0)
            first = await slow.next_events()
            # Ten batches, one a poll, while the slow one takes none: its inbox holds two.
            await record_then_cancel(job_id, steps=10, pause_s=3 * POLL_S)
            fast_events = await fast  # not held up by the slow one
            return fast_events, first + await follow_to_the_end(slow)

    fast_events, slow_events = asyncio.run(run())
    expected = the_whole_log(job_id)
    assert len(expected) == 12
    assert fast_events == expected
    assert slow_events == expected


def test_followers_that_join_late_resume_after_their_last_event_id(migrated_env: Env) -> None:
    job_id = queued_job()
    hub = EventHub(POLL_S)

    async def run() -> list[list[Event]]:
        with anyio.fail_after(TIMEOUT_S):
            first = asyncio.create_task(follow_to_the_end(hub.follow(job_id, 0)))
            for step in range(5):
                await anyio.to_thread.run_sync(record_loss, job_id, step)
            await asyncio.sleep(3 * POLL_S)  # the feed has read them all
            # Behind the feed (it reads 2..6 itself), level with it, and ahead of it.
            late = [
                asyncio.create_task(follow_to_the_end(hub.follow(job_id, after)))
                for after in (1, 6, 7)
            ]
            await record_then_cancel(job_id, steps=3, pause_s=POLL_S)
            return [await first] + [await follower for follower in late]

    received = asyncio.run(run())
    expected = the_whole_log(job_id)
    assert [e.seq for e in expected] == list(range(1, 11))
    assert received == [expected, expected[1:], expected[6:], expected[7:]]


def test_the_feed_stops_when_its_last_follower_leaves(migrated_env: Env) -> None:
    job_id = queued_job()
    hub = EventHub(POLL_S)

    async def run() -> list[list[int]]:
        followers = [hub.follow(job_id, 0) for _ in range(3)]
        seen = [[e.seq for e in await follower.next_events()] for follower in followers]
        following = [hub.followed_jobs()]
        for follower in followers:
            follower.close()
            following.append(hub.followed_jobs())
        return seen + following

    assert asyncio.run(run()) == [[1], [1], [1], [job_id], [job_id], [job_id], []]
