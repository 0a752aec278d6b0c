"""The API's view of several jobs side by side (GET /jobs/compare)."""

from datetime import datetime

from pydantic import BaseModel, Field

from app.models import JobStatus

IN_JOB_ORDER = "one per job, in the order of `jobs`"


class ComparedJob(BaseModel):
    """One job of a comparison: what it is and where it ended (or has got to)."""

    id: int
    name: str | None = Field(description="The job's name, if it has one.")
    tags: dict[str, str] = Field(description="The job's tags.")
    status: JobStatus
    created_at: datetime
    finished_at: datetime | None
    epochs_done: int = Field(description="Epochs finished so far (each one is in `series`).")
    test_accuracy: float | None = Field(
        description="Accuracy on the test set of the model the job kept (with early stopping, "
        "that of `best_epoch`); null until the job succeeds."
    )
    best_epoch: int | None = Field(
        description="With early stopping: the epoch whose weights were kept."
    )
    test_loss: float | None = Field(
        description="The last finished epoch's test loss; null before the first epoch ends."
    )
    images_per_s: float | None = Field(
        description="Training images a second over the job's last heartbeat interval."
    )
    training_s: float | None = Field(
        description="Seconds of training (evaluation included) from the job's start to the end "
        "of its last finished epoch, summed over attempts."
    )


class ConfigComparison(BaseModel):
    """The jobs' resolved configs (recipes applied, every field present), field by field."""

    differing: dict[str, list[object]] = Field(
        description=f"Each field whose value is not the same in every job: its values, "
        f"{IN_JOB_ORDER}."
    )
    same: dict[str, object] = Field(
        description="Each field that has one value in every job: that value."
    )


class ClassAccuracy(BaseModel):
    """One class's test accuracy in each job."""

    accuracy: list[float | None] = Field(
        description=f"The class's test accuracy, {IN_JOB_ORDER}; null where a job has none "
        "(it has not succeeded, or the class is not one of its dataset's)."
    )
    best: list[int] = Field(
        description="Indexes into `jobs` of the highest accuracy: every one of them on a tie."
    )


class SeriesPoint(BaseModel):
    x: float = Field(
        description="Epochs trained: epoch - 1 + step / steps_per_epoch, so that epoch e's "
        "end is x = e."
    )
    y: float


class JobSeries(BaseModel):
    """A job's curves on the comparison's shared x axis (epochs); empty before it trains."""

    job_id: int
    steps_per_epoch: int | None = Field(description="Mini-batches an epoch; null before start.")
    loss: list[SeriesPoint] = Field(
        description="Training loss: the mean over each log_every mini-batches (the loss "
        "history of /jobs/{id}/metrics), at the step that ends the window."
    )
    train_loss: list[SeriesPoint] = Field(
        description="Each finished epoch's mean training loss, at x = the epoch."
    )
    test_loss: list[SeriesPoint] = Field(description="Each finished epoch's test loss.")
    test_accuracy: list[SeriesPoint] = Field(description="Each finished epoch's test accuracy.")
    validation_loss: list[SeriesPoint] = Field(
        description="Each finished epoch's loss on the held-out training images; empty without "
        "validation_fraction."
    )
    validation_accuracy: list[SeriesPoint] = Field(
        description="Each finished epoch's accuracy on the held-out training images."
    )


class ComparisonOut(BaseModel):
    jobs: list[ComparedJob] = Field(description="The jobs, in the order the request names them.")
    config: ConfigComparison
    per_class_accuracy: dict[str, ClassAccuracy] = Field(
        description="Every class any job has a test accuracy for, in the order of the first "
        "job that has it."
    )
    series: list[JobSeries] = Field(description=f"The jobs' curves, {IN_JOB_ORDER}.")
