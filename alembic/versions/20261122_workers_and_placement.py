"""workers and what they offer; the GPUs a job needs

Revision ID: 20261122_0004
Revises: 20261122_0003
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from app.db import UTCDateTime

revision: str = "20261122_0004"
down_revision: str | None = "20261122_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("job") as batch:
        batch.add_column(sa.Column("gpus_needed", sa.Integer(), server_default="0", nullable=False))
    # Jobs queued before this revision could only ask for one GPU, with device "cuda".
    job = sa.table("job", sa.column("id", sa.Integer()), sa.column("config", sa.JSON()))
    connection = op.get_bind()
    on_cuda = [
        row.id for row in connection.execute(sa.select(job)) if row.config.get("device") == "cuda"
    ]
    if on_cuda:
        connection.execute(
            sa.text("UPDATE job SET gpus_needed = 1 WHERE id IN :ids").bindparams(
                sa.bindparam("ids", expanding=True)
            ),
            {"ids": on_cuda},
        )
    op.create_table(
        "worker",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("hostname", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("heartbeat_at", UTCDateTime(), nullable=False),
        sa.Column("cpus", sa.Integer(), nullable=False),
        sa.Column("gpu_count", sa.Integer(), nullable=False),
        sa.Column("gpus", sa.JSON(), nullable=False),
        sa.Column("torch_version", sa.String(length=64), nullable=False),
        sa.Column("current_job_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["current_job_id"],
            ["job.id"],
            name=op.f("fk_worker_current_job_id_job"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_worker")),
    )
    op.create_index(op.f("ix_worker_heartbeat_at"), "worker", ["heartbeat_at"])


def downgrade() -> None:
    op.drop_table("worker")
    with op.batch_alter_table("job") as batch:
        batch.drop_column("gpus_needed")
