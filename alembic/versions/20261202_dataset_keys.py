"""dataset keys: where an uploaded dataset's archive and decoded tensors are in the artifact
store, with their sha256, on its row; its upload's size in 64 bits (an archive may pass 2 GiB)

Revision ID: 20261202_0015
Revises: 20261201_0014
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "20261202_0015"
down_revision: str | None = "20261201_0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Datasets uploaded before keep no keys: their files stay where they were, under
    # TRAINSERVE_DATA_DIR/datasets/<id>/, and are read from there (app/datasets/tensors.py).
    with op.batch_alter_table("dataset") as batch:
        batch.add_column(sa.Column("upload_key", sa.String(500), nullable=True))
        batch.add_column(sa.Column("upload_sha256", sa.String(64), nullable=True))
        batch.add_column(sa.Column("tensors_key", sa.String(500), nullable=True))
        batch.add_column(sa.Column("tensors_sha256", sa.String(64), nullable=True))
        # TRAINSERVE_MAX_DATASET_BYTES has no upper bound: 32 bits would refuse a 2 GiB upload
        # after it was stored (PostgreSQL's integer; SQLite's is 64 bits either way).
        batch.alter_column(
            "upload_bytes", existing_type=sa.Integer(), type_=sa.BigInteger(), nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("dataset") as batch:
        batch.alter_column(
            "upload_bytes", existing_type=sa.BigInteger(), type_=sa.Integer(), nullable=False
        )
        batch.drop_column("tensors_sha256")
        batch.drop_column("tensors_key")
        batch.drop_column("upload_sha256")
        batch.drop_column("upload_key")
