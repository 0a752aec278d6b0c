"""ORM tables of the model registry: models, their versions, aliases and every alias move."""

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow


class RegisteredModel(Base):
    """A named model: its versions are trained jobs' models, its aliases name versions."""

    __tablename__ = "registered_model"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The highest version number ever given: numbers are never reused, even after a delete.
    last_version: Mapped[int] = mapped_column(Integer, default=0)


class ModelVersion(Base):
    """One job's model under a registered name; everything but description and tags is fixed."""

    __tablename__ = "model_version"
    # Named: the naming convention would give both the same name (after their first column).
    __table_args__ = (
        UniqueConstraint("model_id", "version", name="uq_model_version_number"),
        UniqueConstraint("model_id", "job_id", name="uq_model_version_job"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("registered_model.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    # RESTRICT: a job whose model a version serves cannot be deleted (DELETE /jobs answers 409).
    job_id: Mapped[int] = mapped_column(ForeignKey("job.id", ondelete="RESTRICT"), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    model_path: Mapped[str] = mapped_column(String(500))
    model_sha256: Mapped[str | None] = mapped_column(String(64))
    test_accuracy: Mapped[float] = mapped_column(Float)
    # Where the model came from: the job's config, the dataset, the test metrics, the package.
    lineage: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Why it was or was not promoted when its job registered it; null when registered by hand.
    promotion: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ModelAlias(Base):
    """A name (production, staging...) for one version of a model."""

    __tablename__ = "model_alias"
    __table_args__ = (UniqueConstraint("model_id", "alias"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("registered_model.id", ondelete="CASCADE"))
    alias: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AliasMove(Base):
    """One move of an alias, kept for good: from which version to which, when, and by whom."""

    __tablename__ = "alias_move"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(
        ForeignKey("registered_model.id", ondelete="CASCADE"), index=True
    )
    alias: Mapped[str] = mapped_column(String(64))
    from_version: Mapped[int | None] = mapped_column(Integer)  # null: the alias was new
    to_version: Mapped[int | None] = mapped_column(Integer)  # null: the alias was removed
    moved_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # "admin" (the admin key), "open" (no keys configured), "job N" (its promote policy) or
    # "upgrade" (the migration that registered what served /predict before the registry).
    moved_by: Mapped[str] = mapped_column(String(32))
