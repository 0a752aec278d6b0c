"""training time at the end of each epoch

Revision ID: 20261122_0003
Revises: 20261122_0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "20261122_0003"
down_revision: str | None = "20261122_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("epoch_result") as batch:
        batch.add_column(sa.Column("elapsed_s", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("epoch_result") as batch:
        batch.drop_column("elapsed_s")
