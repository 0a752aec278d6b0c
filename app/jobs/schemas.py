"""The API's views of jobs, their metrics and the live workers."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.jobs.records import EpochRecord, LossRecord
from app.models import JobStatus


class Progress(BaseModel):
    epoch: int = Field(description="The epoch being trained, counted from 1; 0 before start.")
    epochs: int
    step: int = Field(description="Mini-batches done in the current epoch.")
    steps_per_epoch: int | None


class JobOut(BaseModel):
    # Every field is in every answer: those with defaults (filled in after validation) too.
    model_config = ConfigDict(
        from_attributes=True, json_schema_serialization_defaults_required=True
    )

    id: int
    name: str | None
    tags: dict[str, str] = Field(default_factory=dict, description="Sorted by key.")
    notes: str | None
    status: JobStatus
    config: dict[str, object]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    progress: Progress
    device: str | None
    error: str | None
    test_accuracy: float | None
    attempts: int = Field(
        description="Times a worker has claimed the job (a graceful stop does not count)."
    )
    max_attempts: int = Field(description="Lost workers after which the job fails.")
    heartbeat_at: datetime | None = Field(description="The running job's last heartbeat.")
    cancel_requested: bool
    retry_of: int | None = Field(description="The job this one retries.")
    waiting_reason: str | None = Field(
        default=None,
        description="Why no live worker can run this queued job (it needs GPUs none of them "
        "has, or no worker is running); null when one can, or the job is not queued.",
    )


class JobList(BaseModel):
    items: list[JobOut]
    total: int


class MetricsOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    job_id: int = Field(validation_alias="id")
    status: JobStatus
    best_epoch: int | None = Field(
        default=None,
        description="With early stopping: the epoch whose weights were kept (lowest validation "
        "loss).",
    )
    classes: list[str] | None
    loss_history: list[LossRecord] = Field(validation_alias="loss_points")
    epochs: list[EpochRecord] = Field(validation_alias="epoch_results")
    test_accuracy: float | None
    per_class_accuracy: dict[str, float] | None
    confusion_matrix: list[list[int]] | None


class GpuOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    index: int
    name: str
    memory_mb: int


class WorkerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    hostname: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime = Field(description="Renewed every few seconds while it lives.")
    cpus: int = Field(description="CPU cores the worker may use.")
    gpus: list[GpuOut]
    torch_version: str
    current_job_id: int | None = Field(description="The job it is training, if any.")


class WorkerList(BaseModel):
    items: list[WorkerOut] = Field(description="Live workers, oldest first.")
    total: int
