"""the model registry: models, versions, aliases and alias moves; a job's test set. The newest
succeeded CIFAR-10 job, which served /predict by default before, becomes cifar10 v1 at production
so that /predict keeps answering after the upgrade.

Revision ID: 20261129_0009
Revises: 20261122_0008
Create Date: 2026-11-29
"""

from collections.abc import Sequence
from datetime import UTC, datetime

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
    _register_what_served()


def _register_what_served() -> None:
    """What answered /predict by default before the registry, as cifar10 v1 at production."""
    bind = op.get_bind()
    job = sa.table(
        "job",
        sa.column("id", sa.Integer),
        sa.column("status", sa.String),
        sa.column("config", sa.JSON),
        sa.column("finished_at", UTCDateTime),
        sa.column("model_path", sa.String),
        sa.column("model_sha256", sa.String),
        sa.column("test_accuracy", sa.Float),
        sa.column("per_class_accuracy", sa.JSON),
    )
    rows = bind.execute(
        sa.select(job)
        .where(job.c.status == "succeeded", job.c.model_path.is_not(None))
        .order_by(job.c.finished_at.desc(), job.c.id.desc())
    ).all()
    served = next(
        (
            row
            for row in rows
            if row.config.get("dataset", "cifar10") == "cifar10"
            and row.config.get("model") != "mlp"
            and row.test_accuracy is not None
        ),
        None,
    )
    if served is None:
        return
    now = datetime.now(UTC)
    model = sa.table(
        "registered_model",
        sa.column("id", sa.Integer),
        sa.column("name", sa.String),
        sa.column("description", sa.Text),
        sa.column("tags", sa.JSON),
        sa.column("created_at", UTCDateTime),
        sa.column("last_version", sa.Integer),
    )
    model_id = bind.execute(
        sa.insert(model)
        .values(name="cifar10", description="", tags={}, created_at=now, last_version=1)
        .returning(model.c.id)
    ).scalar_one()
    version = sa.table(
        "model_version",
        *(sa.column(name) for name in ("model_id", "version", "job_id", "description")),
        *(sa.column(name) for name in ("model_path", "model_sha256", "test_accuracy")),
        sa.column("tags", sa.JSON),
        sa.column("lineage", sa.JSON),
        sa.column("promotion", sa.Text),
        sa.column("created_at", UTCDateTime),
    )
    lineage = {
        "job_id": served.id,
        "config": served.config,
        # Trained before test sets were recorded: promote_if_better never compares it.
        "dataset": {"id": "cifar10", "kind": "cifar10", "sha256": None},
        "test_images": None,
        "metrics": {
            "test_accuracy": served.test_accuracy,
            "per_class_accuracy": served.per_class_accuracy,
        },
        "weights_sha256": served.model_sha256,
        "package_version": None,
        "trained_at": served.finished_at.isoformat() if served.finished_at else None,
    }
    bind.execute(
        sa.insert(version).values(
            model_id=model_id,
            version=1,
            job_id=served.id,
            description="what served /predict by default before the registry",
            model_path=served.model_path,
            model_sha256=served.model_sha256,
            test_accuracy=served.test_accuracy,
            tags={},
            lineage=lineage,
            promotion="promoted: registered by the upgrade, as the model /predict served",
            created_at=now,
        )
    )
    alias = sa.table(
        "model_alias",
        sa.column("model_id", sa.Integer),
        sa.column("alias", sa.String),
        sa.column("version", sa.Integer),
        sa.column("updated_at", UTCDateTime),
    )
    bind.execute(
        sa.insert(alias).values(model_id=model_id, alias="production", version=1, updated_at=now)
    )
    move = sa.table(
        "alias_move",
        *(sa.column(name) for name in ("model_id", "alias", "from_version", "to_version")),
        sa.column("moved_at", UTCDateTime),
        sa.column("moved_by", sa.String),
    )
    bind.execute(
        sa.insert(move).values(
            model_id=model_id,
            alias="production",
            from_version=None,
            to_version=1,
            moved_at=now,
            moved_by="upgrade",
        )
    )


def downgrade() -> None:
    op.drop_table("alias_move")
    op.drop_table("model_alias")
    op.drop_table("model_version")
    op.drop_table("registered_model")
    with op.batch_alter_table("job") as batch:
        batch.drop_column("test_images")
        batch.drop_column("dataset_sha256")
