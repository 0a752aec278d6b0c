"""validation results of each epoch; the epoch whose weights early stopping kept

Revision ID: 20261122_0007
Revises: 20261122_0006
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "20261122_0007"
down_revision: str | None = "20261122_0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("epoch_result") as batch:
        batch.add_column(sa.Column("validation_loss", sa.Float(), nullable=True))
        batch.add_column(sa.Column("validation_accuracy", sa.Float(), nullable=True))
    with op.batch_alter_table("job") as batch:
        batch.add_column(sa.Column("best_epoch", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("job") as batch:
        batch.drop_column("best_epoch")
    with op.batch_alter_table("epoch_result") as batch:
        batch.drop_column("validation_accuracy")
        batch.drop_column("validation_loss")
