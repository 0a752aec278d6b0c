"""the model registry: models, versions, aliases and alias moves; a job's test set

Revision ID: 20261129_0009
Revises: 20261122_0008
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from app.db import UTCDateTime

revision: str = "20261129_0009"
down_revision: str | None = "20261122_0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("job") as batch:
        batch.add_column(sa.Column("dataset_sha256", sa.String(64), nullable=True))
        batch.add_column(sa.Column("test_images", sa.Integer(), nullable=True))
    op.create_table(
        "registered_model",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_version", sa.Integer(), nullable=False),
    )
    op.create_table(
        "model_version",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "model_id",
            sa.Integer(),
            sa.ForeignKey("registered_model.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "job_id", sa.Integer(), sa.ForeignKey("job.id", ondelete="RESTRICT"), nullable=False
        ),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("model_path", sa.String(500), nullable=False),
        sa.Column("model_sha256", sa.String(64), nullable=True),
        sa.Column("test_accuracy", sa.Float(), nullable=False),
        sa.Column("lineage", sa.JSON(), nullable=False),
        sa.Column("promotion", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("model_id", "version", name="uq_model_version_number"),
        sa.UniqueConstraint("model_id", "job_id", name="uq_model_version_job"),
    )
    op.create_index("ix_model_version_job_id", "model_version", ["job_id"])
    op.create_table(
        "model_alias",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "model_id",
            sa.Integer(),
            sa.ForeignKey("registered_model.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("alias", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("model_id", "alias"),
    )
    op.create_table(
        "alias_move",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "model_id",
            sa.Integer(),
            sa.ForeignKey("registered_model.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("alias", sa.String(64), nullable=False),
        sa.Column("from_version", sa.Integer(), nullable=True),
        sa.Column("to_version", sa.Integer(), nullable=True),
        sa.Column("moved_at", UTCDateTime(), nullable=False),
        sa.Column("moved_by", sa.String(32), nullable=False),
    )
    op.create_index("ix_alias_move_model_id", "alias_move", ["model_id"])


def downgrade() -> None:
    op.drop_table("alias_move")
    op.drop_table("model_alias")
    op.drop_table("model_version")
    op.drop_table("registered_model")
    with op.batch_alter_table("job") as batch:
        batch.drop_column("test_images")
        batch.drop_column("dataset_sha256")
