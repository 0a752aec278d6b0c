"""Log lines as text and as JSON, each carrying the request or the job it was written for."""

import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from contextvars import copy_context
from datetime import UTC, datetime, timedelta

import anyio
import pytest
from starlette.concurrency import run_in_threadpool

from app import logs

LOGGER = "trainserve.logs-test"
TEXT_START = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} "


class Written:
    """A logger whose lines go through the service's filter and a formatter into a string."""

    def __init__(self, formatter: logging.Formatter) -> None:
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.addFilter(logs.ContextFields())
        self.handler.setFormatter(formatter)
        self.log = logging.getLogger(LOGGER)
        self.log.addHandler(self.handler)

    def lines(self) -> list[str]:
        return self.stream.getvalue().splitlines()

    def json_lines(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.lines()]


@pytest.fixture
def text() -> Iterator[Written]:
    yield from _written(logs.TextFormatter())


@pytest.fixture
def as_json() -> Iterator[Written]:
    yield from _written(logs.JsonFormatter())


def _written(formatter: logging.Formatter) -> Iterator[Written]:
    written = Written(formatter)
    written.log.setLevel(logging.INFO)
    written.log.propagate = False  # the test's lines stay out of pytest's own capture
    yield written
    written.log.removeHandler(written.handler)
    written.log.propagate = True


def within(request: str | None, job: int | None, action: Callable[[], None]) -> None:
    """Run `action` as code serving `request` for `job` runs (in a context of its own)."""

    def run() -> None:
        logs.request_id.set(request)
        logs.job_id.set(job)
        action()

    copy_context().run(run)


def test_a_text_line_names_its_request_and_nothing_outside_one(text: Written) -> None:
    text.log.info("job %d queued", 7)
    within("abc123", None, lambda: text.log.warning("job %d queued", 8))
    within(None, 9, lambda: text.log.info("job 9: epoch 1"))  # the message names the job
    first, second, third = text.lines()
    assert re.fullmatch(TEXT_START + "INFO trainserve.logs-test: job 7 queued", first)
    assert re.fullmatch(
        TEXT_START + r"WARNING trainserve.logs-test: \[request abc123\] job 8 queued", second
    )
    assert re.fullmatch(TEXT_START + "INFO trainserve.logs-test: job 9: epoch 1", third)


def test_a_json_line_has_the_fields_and_the_context_that_is_set(as_json: Written) -> None:
    before = datetime.now(UTC)
    as_json.log.info("outside")
    within("abc123", None, lambda: as_json.log.info("in a request"))
    within(None, 7, lambda: as_json.log.warning("in job %d", 7))
    after = datetime.now(UTC)
    lines = as_json.json_lines()
    stamps = [str(line.pop("timestamp")) for line in lines]
    assert lines == [
        {"level": "INFO", "logger": LOGGER, "message": "outside"},
        {"level": "INFO", "logger": LOGGER, "message": "in a request", "request_id": "abc123"},
        {"level": "WARNING", "logger": LOGGER, "message": "in job 7", "job_id": 7},
    ]
    for stamp in stamps:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp)
        moment = datetime.fromisoformat(stamp)
        assert moment.tzinfo is not None and moment.utcoffset() == timedelta(0)
        assert before - timedelta(milliseconds=1) <= moment <= after


def test_an_exception_is_a_field_of_its_one_line(as_json: Written) -> None:
    def fail() -> None:
        try:
            1 / 0  # noqa: B018
        except ZeroDivisionError:
            as_json.log.exception("unexpected error on %s %s", "GET", "/jobs")

    within("req-42", None, fail)
    assert len(as_json.lines()) == 1  # the traceback's newlines are escaped
    (line,) = as_json.json_lines()
    exception = str(line.pop("exception"))
    assert exception.startswith("Traceback (most recent call last):\n")
    assert exception.endswith("\nZeroDivisionError: division by zero")
    assert {k: v for k, v in line.items() if k != "timestamp"} == {
        "level": "ERROR",
        "logger": LOGGER,
        "message": "unexpected error on GET /jobs",
        "request_id": "req-42",
    }


def test_code_run_in_the_thread_pool_logs_under_the_request(as_json: Written) -> None:
    async def serve() -> None:
        # What the request id middleware does, then a plain `def` route (run_in_threadpool).
        logs.request_id.set("pool-1")
        await run_in_threadpool(as_json.log.info, "from a worker thread")

    copy_context().run(anyio.run, serve)
    assert [(line["message"], line["request_id"]) for line in as_json.json_lines()] == [
        ("from a worker thread", "pool-1")
    ]


def test_the_job_context_ends_with_its_block(as_json: Written) -> None:
    with logs.logging_job(3):
        as_json.log.info("in job 3")
    as_json.log.info("idle")
    assert [line.get("job_id") for line in as_json.json_lines()] == [3, None]
