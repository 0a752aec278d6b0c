"""leases, attempts, cancel requests, retries, idempotency keys, model checksums

Revision ID: 20261122_0002
Revises: 20261122_0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from app.db import UTCDateTime

revision: str = "20261122_0002"
down_revision: str | None = "20261122_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("job") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(
            sa.Column("max_attempts", sa.Integer(), server_default="3", nullable=False)
        )
        batch.add_column(sa.Column("lease_expires_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("heartbeat_at", UTCDateTime(), nullable=True))
        batch.add_column(
            sa.Column("cancel_requested", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch.add_column(sa.Column("retry_of", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("idempotency_key", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("request_fingerprint", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("model_sha256", sa.String(length=64), nullable=True))
        batch.create_foreign_key(
            batch.f("fk_job_retry_of_job"), "job", ["retry_of"], ["id"], ondelete="SET NULL"
        )
        batch.create_unique_constraint(batch.f("uq_job_idempotency_key"), ["idempotency_key"])


def downgrade() -> None:
    with op.batch_alter_table("job") as batch:
        batch.drop_constraint(batch.f("uq_job_idempotency_key"), type_="unique")
        batch.drop_constraint(batch.f("fk_job_retry_of_job"), type_="foreignkey")
        for column in (
            "model_sha256",
            "request_fingerprint",
            "idempotency_key",
            "retry_of",
            "cancel_requested",
            "heartbeat_at",
            "lease_expires_at",
            "max_attempts",
            "attempts",
        ):
            batch.drop_column(column)
