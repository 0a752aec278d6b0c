"""job labels: a job's name and notes, and its tags as rows of their own

Revision ID: 20261130_0012
Revises: 20261130_0011
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "20261130_0012"
down_revision: str | None = "20261130_0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("job") as batch:
        batch.add_column(sa.Column("name", sa.String(100), nullable=True))
        batch.add_column(sa.Column("notes", sa.Text(), nullable=True))
    op.create_table(
        "job_tag",
        sa.Column(
            "job_id",
            sa.Integer(),
            sa.ForeignKey("job.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(256), nullable=False),
    )
    op.create_index("ix_job_tag_key_value", "job_tag", ["key", "value"])


def downgrade() -> None:
    op.drop_index("ix_job_tag_key_value", table_name="job_tag")
    op.drop_table("job_tag")
    with op.batch_alter_table("job") as batch:
        batch.drop_column("notes")
        batch.drop_column("name")
