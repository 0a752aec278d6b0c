"""One reader of each followed job's new events per process, fanned out to all its followers.

Were every open event stream to poll the database on its own, a thousand followers of a job
would be a thousand queries each poll interval, and every other request would wait behind them.
Here a job with followers has one feed: a task that reads the job's new events once a poll
interval and puts each batch in every follower's bounded inbox. The feed starts with the job's
first follower and stops when its last one leaves or the job has ended. A follower whose inbox
is full is let go of rather than waited for: it reads from the database by itself until it has
caught up, then joins again, so that a slow client never holds the others back.
"""

import asyncio
import contextvars
import logging
from collections.abc import Callable

import anyio

from app.db_outages import OutageLog, outage_of
from app.jobs.events import EVENTS_PER_READ, Event, read_new_events

log = logging.getLogger("trainserve.events")

# Reads a job's events after an id: (events, whether they are the job's last).
Reader = Callable[[int, int], tuple[list[Event], bool]]
# Batches a follower may leave waiting: half a minute of a busy job at the default 0.5 s poll.
INBOX_BATCHES = 64
# Put in an inbox after the job's last events: there will be no more.
_ENDED: list[Event] = []


class _Inbox:
    """The batches a feed has read for one follower that the follower has not yet taken."""

    def __init__(self, feed: "_Feed", limit: int) -> None:
        self.feed = feed
        self.batches: asyncio.Queue[list[Event]] = asyncio.Queue(limit)
        # Set when the feed let go of it (it was full): what is in it is still to be taken.
        self.dropped = False


class _Feed:
    """The one reader of a job's new events, and the inboxes it fills."""

    def __init__(self, job_id: int, cursor: int) -> None:
        self.job_id = job_id
        self.cursor = cursor  # the newest event id read; every later batch starts after it
        self.inboxes: set[_Inbox] = set()
        self.task: asyncio.Task[None] | None = None

    def deliver(self, batch: list[Event]) -> None:
        for inbox in list(self.inboxes):
            try:
                inbox.batches.put_nowait(batch)
            except asyncio.QueueFull:
                inbox.dropped = True
                self.inboxes.discard(inbox)


class EventHub:
    """The feeds of the jobs that this process's event streams follow."""

    def __init__(
        self,
        poll_seconds: float,
        read: Reader = read_new_events,
        inbox_batches: int = INBOX_BATCHES,
    ) -> None:
        self.poll_seconds = poll_seconds
        self.outages = OutageLog(log, "event streams")
        self._read = read
        self._inbox_batches = inbox_batches
        self._feeds: dict[int, _Feed] = {}

    def follow(self, job_id: int, after: int) -> "Subscription":
        """The job's events after the id `after`, as they are recorded, until its last one."""
        return Subscription(self, job_id, after)

    def followed_jobs(self) -> list[int]:
        """The jobs that have a feed now."""
        return sorted(self._feeds)

    async def read(self, job_id: int, after: int) -> tuple[list[Event], bool]:
        """Read the job's events after `after` from the database, in a thread."""
        return await anyio.to_thread.run_sync(self._read, job_id, after)

    async def close(self) -> None:
        """Stop every feed (the process is stopping)."""
        feeds = list(self._feeds.values())
        self._feeds.clear()
        for feed in feeds:
            if feed.task is not None:
                feed.task.cancel()
        await asyncio.gather(*(f.task for f in feeds if f.task), return_exceptions=True)

    def _join(self, job_id: int, after: int) -> tuple[_Inbox, int]:
        """A new inbox on the job's feed, and the id the feed has read up to: every event after
        it will come through the inbox; those up to it the follower reads itself."""
        # No await in here: the feed cannot read between taking its cursor and adding the inbox.
        feed = self._feeds.get(job_id)
        if feed is None:
            feed = self._feeds[job_id] = _Feed(job_id, after)
            # In a context of its own: it outlives the request that started it, whose id its
            # log lines must not carry.
            feed.task = asyncio.get_running_loop().create_task(
                self._poll(feed), context=contextvars.Context()
            )
        inbox = _Inbox(feed, self._inbox_batches)
        feed.inboxes.add(inbox)
        return inbox, feed.cursor

    def _leave(self, inbox: _Inbox) -> None:
        feed = inbox.feed
        feed.inboxes.discard(inbox)
        if not feed.inboxes and self._feeds.get(feed.job_id) is feed:
            del self._feeds[feed.job_id]
            if feed.task is not None:
                feed.task.cancel()

    async def _poll(self, feed: _Feed) -> None:
        while True:
            try:
                events, ended = await self.read(feed.job_id, feed.cursor)
            except Exception as exc:
                # The database may be back by the next poll; followers wait meanwhile. An
                # outage is said once, not at every poll of every followed job.
                outage = outage_of(exc)
                if outage is None:
                    log.warning("could not read the events of job %d: %s", feed.job_id, exc)
                else:
                    self.outages.failed(outage, exc)
                await asyncio.sleep(self.poll_seconds)
                continue
            self.outages.succeeded()
            if events:
                feed.cursor = events[-1].seq
                feed.deliver(events)
            if ended:
                feed.deliver(_ENDED)
                if self._feeds.get(feed.job_id) is feed:
                    del self._feeds[feed.job_id]
                return
            if len(events) < EVENTS_PER_READ:
                await asyncio.sleep(self.poll_seconds)


class Subscription:
    """One follower of a job: its events in order, each once, from the job's feed."""

    def __init__(self, hub: EventHub, job_id: int, after: int) -> None:
        self._hub = hub
        self.job_id = job_id
        self.last = after  # the newest event id handed out
        self.ended = False  # the job's last event has been handed out
        self._inbox: _Inbox | None = None
        self._catch_up_to = after

    async def next_events(self) -> list[Event]:
        """The next new events, waiting for them; none once the job has ended.

        Safe to cancel (on a timeout, say): nothing is lost, the next call goes on from there.
        """
        while not self.ended:
            if self._inbox is None:
                self._inbox, self._catch_up_to = self._hub._join(self.job_id, self.last)
            if self.last < self._catch_up_to:
                # Events the feed read before this follower joined (or while it was let go of).
                events, ended = await self._hub.read(self.job_id, self.last)
                if len(events) < EVENTS_PER_READ:
                    self._catch_up_to = 0  # all there is, even if some were since deleted
                fresh = self._take(events, ended)
            elif self._inbox.dropped and self._inbox.batches.empty():
                self._leave()
                continue
            else:
                batch = await self._inbox.batches.get()
                fresh = self._take(batch, batch is _ENDED)
            if fresh or self.ended:
                return fresh
        return []

    def close(self) -> None:
        """Stop following (the client went away, or the stream is done)."""
        self._leave()

    def _take(self, events: list[Event], ended: bool) -> list[Event]:
        # Catching up and the feed can both have read an event: hand out each one once.
        fresh = [event for event in events if event.seq > self.last]
        if fresh:
            self.last = fresh[-1].seq
        self.ended = ended
        if ended:
            self._leave()
        return fresh

    def _leave(self) -> None:
        if self._inbox is not None:
            self._hub._leave(self._inbox)
            self._inbox = None
