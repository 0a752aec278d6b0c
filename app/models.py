"""ORM tables: a job, its tags, its loss points, its per-epoch results and its event log; the
live workers; uploaded datasets and weights files. The model registry's tables are in
app/registry_models.py, named here too."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, UTCDateTime, utcnow
from app.registry_models import AliasMove, ModelAlias, ModelVersion, RegisteredModel

# Named here as well, so that every table can be imported from app.models.
__all__ = ["AliasMove", "ModelAlias", "ModelVersion", "RegisteredModel"]

# Job ids are a 32-bit INTEGER on PostgreSQL (64-bit on SQLite): a larger number cannot name a
# job on every database, and PostgreSQL refuses to compare it with the column.
JOB_ID_MAX = 2**31 - 1


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Job(Base):
    __tablename__ = "job"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    status: Mapped[str] = mapped_column(String(16), index=True, default=JobStatus.QUEUED)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    worker_id: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    max_attempts: Mapped[int] = mapped_column(Integer, default=3, server_default="3")
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    retry_of: Mapped[int | None] = mapped_column(ForeignKey("job.id", ondelete="SET NULL"))
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    request_fingerprint: Mapped[str | None] = mapped_column(String(64))
    device: Mapped[str | None] = mapped_column(String(32))
    # GPUs a worker must have to claim the job (0: any worker); see app/jobs/placement.py.
    gpus_needed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)
    # What a person calls the job and says about it (app/jobs/labels.py); its tags are JobTag rows.
    # No index on name: it is searched by substring, which an index does not speed up.
    name: Mapped[str | None] = mapped_column(String(100))
    notes: Mapped[str | None] = mapped_column(Text)

    progress_epoch: Mapped[int] = mapped_column(Integer, default=0)
    progress_step: Mapped[int] = mapped_column(Integer, default=0)
    steps_per_epoch: Mapped[int | None] = mapped_column(Integer)
    # Training images a second over the last heartbeat interval (all ranks together).
    images_per_s: Mapped[float | None] = mapped_column(Float)

    classes: Mapped[list[str] | None] = mapped_column(JSON)
    test_accuracy: Mapped[float | None] = mapped_column(Float)
    per_class_accuracy: Mapped[dict[str, float] | None] = mapped_column(JSON)
    confusion_matrix: Mapped[list[list[int]] | None] = mapped_column(JSON)
    # Early stopping: the epoch whose weights were kept.
    best_epoch: Mapped[int | None] = mapped_column(Integer)
    # Keys in the artifact store (app/storage): the model, recorded when the job succeeds; its
    # test predictions, at predictions_key(id, attempts), with their sha256; and while it runs,
    # its newest checkpoint, which a resumed attempt loads (on whatever machine).
    model_path: Mapped[str | None] = mapped_column(String(500))
    model_sha256: Mapped[str | None] = mapped_column(String(64))
    predictions_sha256: Mapped[str | None] = mapped_column(String(64))
    checkpoint_key: Mapped[str | None] = mapped_column(String(500))
    checkpoint_sha256: Mapped[str | None] = mapped_column(String(64))
    # The one before: what a resume falls back to when the newest does not load.
    previous_checkpoint_key: Mapped[str | None] = mapped_column(String(500))
    previous_checkpoint_sha256: Mapped[str | None] = mapped_column(String(64))
    # What the model was tested on: the sha256 of the dataset's files and how many of its test
    # images (max_test_samples takes a fixed, class-balanced prefix): together, the test set.
    dataset_sha256: Mapped[str | None] = mapped_column(String(64))
    test_images: Mapped[int | None] = mapped_column(Integer)

    loss_points: Mapped[list["LossPoint"]] = relationship(
        order_by=lambda: (LossPoint.epoch, LossPoint.step),
        cascade="all, delete-orphan",
        passive_deletes=True,
    )
    epoch_results: Mapped[list["EpochResult"]] = relationship(
        order_by="EpochResult.epoch", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def progress(self) -> dict[str, int | None]:
        """Where training is: the epoch (from 1; 0 before start) and the step within it."""
        return {
            "epoch": self.progress_epoch,
            "epochs": self.config["epochs"],
            "step": self.progress_step,
            "steps_per_epoch": self.steps_per_epoch,
        }


class JobTag(Base):
    """One key: value tag of a job; a table rather than a JSON column, so that finding the jobs
    with a tag is one indexed query on every database."""

    __tablename__ = "job_tag"
    __table_args__ = (Index("ix_job_tag_key_value", "key", "value"),)

    job_id: Mapped[int] = mapped_column(ForeignKey("job.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))


class LossPoint(Base):
    """Mean training loss over one log_every window of mini-batches."""

    __tablename__ = "loss_point"
    __table_args__ = (UniqueConstraint("job_id", "epoch", "step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("job.id", ondelete="CASCADE"), index=True)
    epoch: Mapped[int] = mapped_column(Integer)
    step: Mapped[int] = mapped_column(Integer)
    loss: Mapped[float] = mapped_column(Float)


class EpochResult(Base):
    """Training loss and test-set results at the end of one epoch."""

    __tablename__ = "epoch_result"
    __table_args__ = (UniqueConstraint("job_id", "epoch"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("job.id", ondelete="CASCADE"), index=True)
    epoch: Mapped[int] = mapped_column(Integer)
    train_loss: Mapped[float] = mapped_column(Float)
    test_loss: Mapped[float] = mapped_column(Float)
    test_accuracy: Mapped[float] = mapped_column(Float)
    # Training time from the job's start to this epoch's end, summed over attempts.
    elapsed_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    # On the training images held out by validation_fraction; none without.
    validation_loss: Mapped[float | None] = mapped_column(Float)
    validation_accuracy: Mapped[float | None] = mapped_column(Float)


class WorkerRecord(Base):
    """A worker process and what it offers; its heartbeat says it is alive."""

    __tablename__ = "worker"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    cpus: Mapped[int] = mapped_column(Integer)
    # len(gpus), kept as a column so that the most GPUs on offer is one SQL max().
    gpu_count: Mapped[int] = mapped_column(Integer)
    gpus: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    torch_version: Mapped[str] = mapped_column(String(64))
    current_job_id: Mapped[int | None] = mapped_column(ForeignKey("job.id", ondelete="SET NULL"))
    # Training images this worker process has trained, over all its jobs (an image trained
    # again after a rewind to a checkpoint counts again): the worker's heartbeat stores its
    # running total, which /metrics reads as a counter.
    images_trained: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class JobEvent(Base):
    """One thing that happened to a job, in the order it happened (see app/jobs/events.py)."""

    __tablename__ = "job_event"
    __table_args__ = (UniqueConstraint("job_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("job.id", ondelete="CASCADE"))
    # 1, 2, 3... per job: the SSE event id a client resumes after.
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DatasetStatus(StrEnum):
    QUEUED = "queued"  # uploaded and checked; waits for a worker to decode it
    INGESTING = "ingesting"
    READY = "ready"
    FAILED = "failed"


class Dataset(Base):
    """An uploaded dataset: its upload, then the decoded tensors a worker made of it."""

    __tablename__ = "dataset"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    # How to make it: image_size, test_fraction, seed.
    options: Mapped[dict[str, Any]] = mapped_column(JSON)
    upload_bytes: Mapped[int] = mapped_column(BigInteger)
    # The upload in the artifact store, until it is decoded (or fails); None before it is
    # stored, and for a dataset uploaded before it went to the store (under DATA_DIR/datasets/).
    upload_key: Mapped[str | None] = mapped_column(String(500))
    upload_sha256: Mapped[str | None] = mapped_column(String(64))
    # The decoded tensors jobs train from, recorded with the status ready; None for a dataset
    # decoded before they went to the store (DATA_DIR/datasets/<id>/images.pt or table.pt).
    tensors_key: Mapped[str | None] = mapped_column(String(500))
    tensors_sha256: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    worker_id: Mapped[str | None] = mapped_column(String(200))
    # Claims so far; a decoding process or worker that died on its max_attempts-th fails it.
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    max_attempts: Mapped[int] = mapped_column(Integer, default=3, server_default="3")
    # One record per attempt (app/datasets/attempts.py): who decoded it, when, how it ended.
    attempt_history: Mapped[list[dict[str, Any]]] = mapped_column(
        JSON, default=list, server_default="[]"
    )
    error: Mapped[str | None] = mapped_column(Text)
    classes: Mapped[list[str] | None] = mapped_column(JSON)
    # Images per class in each split: {"train": {"cat": 5000, ...}, "test": {...}}.
    counts: Mapped[dict[str, dict[str, int]] | None] = mapped_column(JSON)
    image_size: Mapped[int | None] = mapped_column(Integer)
    # Tabular datasets: the columns a row must give, in the model's order.
    feature_columns: Mapped[list[str] | None] = mapped_column(JSON)
    # "archive": the archive's own test/ folders; "drawn": held out with test_fraction.
    test_split: Mapped[str | None] = mapped_column(String(16))
    ignored_files: Mapped[int | None] = mapped_column(Integer)


class WeightsFile(Base):
    """An uploaded weights file (safetensors or a PyTorch state_dict) jobs may start from."""

    __tablename__ = "weights_file"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    filename: Mapped[str] = mapped_column(String(255))
    format: Mapped[str] = mapped_column(String(16))  # "safetensors" or "pytorch"
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    tensor_count: Mapped[int] = mapped_column(Integer)
    # Each tensor's shape by name, as read when it came in: a job is checked against them at
    # submit without opening the file. Deferred: a listing shows only their count.
    tensors: Mapped[dict[str, list[int]]] = mapped_column(JSON, deferred=True)
    parameters: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
