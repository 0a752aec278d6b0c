"""A dataset's attempt history: one record per claim, from the worker that decoded it to how the
attempt ended; the API shows it as `attempts` of GET /datasets/{id}."""

from datetime import datetime
from typing import Any, Literal

from app.db import utcnow

# decoding: under way; ready or failed: decoded, or refused for a reason in the upload itself;
# decoder died or worker lost: the attempt died and counted against max_attempts.
AttemptOutcome = Literal["decoding", "ready", "failed", "decoder died", "worker lost"]


def started(history: list[dict[str, Any]], attempt: int, worker_id: str) -> list[dict[str, Any]]:
    """The history with a new attempt under way."""
    record = {
        "attempt": attempt,
        "worker_id": worker_id,
        "started_at": utcnow().isoformat(),
        "ended_at": None,
        "outcome": "decoding",
        "detail": None,
    }
    return [*history, record]


def ended(
    history: list[dict[str, Any]],
    attempt: int,
    outcome: AttemptOutcome,
    detail: str | None,
    now: datetime,
) -> list[dict[str, Any]]:
    """The history with `attempt` ended by `outcome` at `now` (detail: what happened, in words)."""
    end = {"ended_at": now.isoformat(), "outcome": outcome, "detail": detail}
    return [{**record, **end} if record["attempt"] == attempt else record for record in history]


def gave_up_message(attempts: int, what: str) -> str:
    """The dataset's error once its last attempt died."""
    return (
        f"decoding gave up after {attempts} attempt{'s' if attempts != 1 else ''}: the last "
        f"time, {what}; the upload may crash the decoder or need more memory than a worker has"
    )
