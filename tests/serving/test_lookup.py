"""Which version answers for an alias when lookups overlap; one query for the requests that
wait on an expired lookup; what a request may name."""

import asyncio
import threading
import time

import pytest

from app.errors import InvalidInput, Unavailable
from app.logs import request_id
from app.serving.lookup import ServedModel, ServingJobs, Target

OLD = ServedModel(1, "jobs/1/model.pt", None, "cifar10", 1)
NEW = ServedModel(2, "jobs/2/model.pt", None, "cifar10", 2)
DEFAULT = Target()


def test_a_lookup_begun_earlier_neither_replaces_nor_answers_over_a_later_one() -> None:
    serving = ServingJobs("cifar10", ttl_s=60)
    # The lookup that began at 20.0 saw the alias moved to v2 and finished first; the one begun
    # at 10.0, before the move was committed, saw v1 and finishes afterwards.
    assert serving.remember(DEFAULT, 20.0, NEW) == NEW
    assert serving.remember(DEFAULT, 10.0, OLD) == NEW
    assert serving._found[DEFAULT] == (20.0, NEW)


def test_a_later_lookup_takes_over() -> None:
    serving = ServingJobs("cifar10", ttl_s=60)
    assert serving.remember(DEFAULT, 10.0, OLD) == OLD
    assert serving.remember(DEFAULT, 20.0, NEW) == NEW
    assert serving._found[DEFAULT] == (20.0, NEW)


def test_targets_are_kept_apart() -> None:
    serving = ServingJobs("cifar10", ttl_s=60)
    serving.remember(Target(model="cifar10", version=1), 10.0, OLD)
    assert serving.cached(Target(model="cifar10", version=2)) is None


class GatedLookups(ServingJobs):
    """Lookups whose query waits for the test to open the gate, and counts itself."""

    def __init__(self, ttl_s: float = 60, error: Exception | None = None) -> None:
        super().__init__("cifar10", ttl_s=ttl_s)
        self.gate = threading.Event()
        self.error = error
        self.queries: list[str | None] = []  # the request id each query's thread saw

    def find(self, target: Target) -> ServedModel:
        self.queries.append(request_id.get())
        assert self.gate.wait(10)
        if self.error is not None:
            raise self.error
        return self.remember(target, time.monotonic(), NEW)


async def requests(lookups: GatedLookups, count: int) -> list[asyncio.Task[ServedModel]]:
    """`count` requests asking for the default model, each with its own request id, started."""

    async def request(number: int) -> ServedModel:
        request_id.set(f"request-{number}")
        return await lookups.find_once(DEFAULT)

    started = [asyncio.create_task(request(number)) for number in range(count)]
    await asyncio.sleep(0.05)  # all of them wait on the query now
    return started


def test_requests_waiting_on_an_expired_lookup_share_one_query() -> None:
    lookups = GatedLookups()

    async def run() -> list[ServedModel]:
        waiting = await requests(lookups, 10)
        lookups.gate.set()
        return await asyncio.gather(*waiting)

    assert asyncio.run(run()) == [NEW] * 10
    # One query, in a context of its own: no request's id on its log lines.
    assert lookups.queries == [None]


def test_the_shared_query_s_error_reaches_every_waiter_as_its_own() -> None:
    lookups = GatedLookups(error=Unavailable("the database is unreachable"))

    async def run() -> list[ServedModel | BaseException]:
        waiting = await requests(lookups, 3)
        lookups.gate.set()
        return await asyncio.gather(*waiting, return_exceptions=True)

    errors = asyncio.run(run())
    assert [(type(error), str(error)) for error in errors] == [
        (Unavailable, "the database is unreachable")
    ] * 3
    assert len({id(error) for error in errors}) == 3
    assert len(lookups.queries) == 1


def test_a_waiter_that_goes_away_leaves_the_others_their_answer() -> None:
    lookups = GatedLookups()

    async def run() -> list[object]:
        waiting = await requests(lookups, 3)
        waiting[0].cancel()
        await asyncio.sleep(0.05)
        lookups.gate.set()
        return await asyncio.gather(*waiting, return_exceptions=True)

    first, *others = asyncio.run(run())
    assert isinstance(first, asyncio.CancelledError)
    assert others == [NEW, NEW]
    assert len(lookups.queries) == 1


def test_a_query_older_than_the_ttl_is_not_joined() -> None:
    lookups = GatedLookups(ttl_s=0.05)

    async def run() -> list[ServedModel]:
        early = await requests(lookups, 1)  # its query has run for longer than the TTL now
        late = await requests(lookups, 1)
        lookups.gate.set()
        return await asyncio.gather(*early, *late)

    assert asyncio.run(run()) == [NEW, NEW]
    assert len(lookups.queries) == 2


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (
            {"job_id": 3, "model": "cifar10"},
            "job_id: give either job_id or model (with alias or version)",
        ),
        (
            {"job_id": 3, "version": 1},
            "job_id: give either job_id or model (with alias or version)",
        ),
        ({"alias": "production", "version": 1}, "alias: give either alias or version, not both"),
    ],
)
def test_a_request_names_one_model(target: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        Target(**target)  # type: ignore[arg-type]
    assert str(raised.value) == message
