"""Log output shared by the API, the worker and the command line: plain text or one JSON object a
line (TRAINSERVE_LOG_FORMAT), each line carrying the request or the job it was written for."""

import json
import logging
import logging.config
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["text", "json"]

# The request being served (set by app/middleware.py) and the job being run (set by the worker).
# asyncio gives each task a copy of the context, and run_in_threadpool runs the route's function
# in a copy too, so every line logged while serving a request sees its id.
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
job_id: ContextVar[int | None] = ContextVar("job_id", default=None)

TEXT_LINE = "%(asctime)s %(levelname)s %(name)s: %(request_tag)s%(message)s"
# uvicorn's loggers get no handlers of their own: their lines go through the root's, formatted
# as every other line (uvicorn's default config would print its access lines as plain text).
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


class ContextFields(logging.Filter):
    """Puts the request id and the job id of the code that logs on each record (None outside)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        record.job_id = job_id.get()
        return True


class TextFormatter(logging.Formatter):
    """`2026-12-01 10:00:00,123 INFO trainserve.api: [request 3f2a] job 7 queued`.

    The job id is left to the worker's messages, which name their job already.
    """

    def __init__(self) -> None:
        super().__init__(TEXT_LINE)

    def formatMessage(self, record: logging.LogRecord) -> str:
        request = getattr(record, "request_id", None)
        record.request_tag = "" if request is None else f"[request {request}] "
        return super().formatMessage(record)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: timestamp (ISO 8601, UTC), level, logger, message, the
    exception's traceback when there is one, and request_id / job_id when set."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        for field in ("request_id", "job_id"):
            value = getattr(record, field, None)
            if value is not None:
                line[field] = value
        return json.dumps(line, ensure_ascii=False, default=str)


def logging_config(level: str, log_format: LogFormat = "text") -> dict[str, Any]:
    """The logging.config.dictConfig of every trainserve process, uvicorn's included."""
    return {
        "version": 1,
        # The modules' loggers exist before this runs; they must keep working.
        "disable_existing_loggers": False,
        "filters": {"context": {"()": ContextFields}},
        "formatters": {"line": {"()": JsonFormatter if log_format == "json" else TextFormatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "line",
                "filters": ["context"],
            }
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        "loggers": {
            **{name: {"handlers": [], "propagate": True} for name in UVICORN_LOGGERS},
            # boto3 says at INFO where it found credentials, for every client it makes.
            "botocore.credentials": {"level": "WARNING"},
        },
    }


def configure_logging(level: str, log_format: LogFormat = "text") -> None:
    """Log lines on stderr at `level`, as text or JSON (set once per process)."""
    logging.config.dictConfig(logging_config(level, log_format))
    # Python's warnings (torch gives some) become log lines too, not lines of their own.
    logging.captureWarnings(True)


@contextmanager
def logging_job(job: int) -> Iterator[None]:
    """Lines logged inside (and in threads started with a copy of this context) carry `job`."""
    token = job_id.set(job)
    try:
        yield
    finally:
        job_id.reset(token)
