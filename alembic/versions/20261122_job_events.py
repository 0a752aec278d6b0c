"""each job's event log, filled in for the jobs that already exist

Revision ID: 20261122_0006
Revises: 20261122_0005
Create Date: 2026-11-22
"""

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from alembic import op
from app.db import UTCDateTime

revision: str = "20261122_0006"
down_revision: str | None = "20261122_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FINISHED = ("succeeded", "failed", "cancelled")


def upgrade() -> None:
    events = op.create_table(
        "job_event",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["job.id"], name=op.f("fk_job_event_job_id_job"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_event")),
        sa.UniqueConstraint("job_id", "seq", name=op.f("uq_job_event_job_id")),
    )
    backfill(op.get_bind(), events)


def backfill(connection: sa.Connection, events: sa.Table) -> None:
    """Give every existing job the events a client would have seen: its history, then its
    current status."""
    job = sa.table(
        "job",
        *(sa.column(name) for name in ("id", "status", "error", "test_accuracy")),
        sa.column("per_class_accuracy", sa.JSON()),
        sa.column("confusion_matrix", sa.JSON()),
    )
    loss = sa.table("loss_point", *(sa.column(n) for n in ("job_id", "epoch", "step", "loss")))
    epoch = sa.table(
        "epoch_result",
        *(
            sa.column(n)
            for n in ("job_id", "epoch", "train_loss", "test_loss", "test_accuracy", "elapsed_s")
        ),
    )
    history: dict[int, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for row in connection.execute(sa.select(loss).order_by(loss.c.job_id, "epoch", "step")):
        point = {"epoch": row.epoch, "step": row.step, "loss": row.loss}
        history[row.job_id].append(("loss", point))
    for row in connection.execute(sa.select(epoch).order_by(epoch.c.job_id, "epoch")):
        fields = ("epoch", "train_loss", "test_loss", "test_accuracy", "elapsed_s")
        history[row.job_id].append(("epoch", {name: getattr(row, name) for name in fields}))
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for found in connection.execute(sa.select(job).order_by(job.c.id)):
        status: dict[str, Any] = {"status": found.status}
        if found.status == "failed":
            status["error"] = found.error
        if found.status == "succeeded":
            status.update(
                test_accuracy=found.test_accuracy,
                per_class_accuracy=found.per_class_accuracy,
                confusion_matrix=found.confusion_matrix,
            )
        # Loss points before epochs is not their true interleaving, which was never stored;
        # clients place both by epoch and step.
        recorded = history.get(found.id, [])
        if found.status in FINISHED:
            ordered = [*recorded, ("status", status)]
        else:
            ordered = [("status", status), *recorded]
        rows += [
            {"job_id": found.id, "seq": seq, "kind": kind, "data": data, "created_at": now}
            for seq, (kind, data) in enumerate(ordered, start=1)
        ]
    if rows:
        connection.execute(sa.insert(events), rows)


def downgrade() -> None:
    op.drop_table("job_event")
