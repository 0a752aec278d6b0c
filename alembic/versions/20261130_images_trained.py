"""the images each worker has trained, which /metrics exposes as a counter

Revision ID: 20261130_0010
Revises: 20261129_0009
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "20261130_0010"
down_revision: str | None = "20261129_0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("worker") as batch:
        batch.add_column(
            sa.Column("images_trained", sa.BigInteger(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("worker") as batch:
        batch.drop_column("images_trained")
