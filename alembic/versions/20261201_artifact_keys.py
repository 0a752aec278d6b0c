"""artifact keys: a job's newest checkpoint, the one before, and its test predictions' sha256 on
its row

Revision ID: 20261201_0014
Revises: 20261130_0013
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "20261201_0014"
down_revision: str | None = "20261130_0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A job running during the upgrade has no recorded checkpoint: its next attempt resumes from
    # the newest of its checkpoints under the names used before (workers/job_checkpoints.py).
    with op.batch_alter_table("job") as batch:
        batch.add_column(sa.Column("predictions_sha256", sa.String(64), nullable=True))
        batch.add_column(sa.Column("checkpoint_key", sa.String(500), nullable=True))
        batch.add_column(sa.Column("checkpoint_sha256", sa.String(64), nullable=True))
        batch.add_column(sa.Column("previous_checkpoint_key", sa.String(500), nullable=True))
        batch.add_column(sa.Column("previous_checkpoint_sha256", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("job") as batch:
        batch.drop_column("previous_checkpoint_sha256")
        batch.drop_column("previous_checkpoint_key")
        batch.drop_column("checkpoint_sha256")
        batch.drop_column("checkpoint_key")
        batch.drop_column("predictions_sha256")
