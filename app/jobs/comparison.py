"""Several jobs side by side: their final metrics, the config fields that differ (and those that
do not), per-class accuracy with the best job marked, and their curves on one x axis in epochs.

The x axis: epochs count from 1 and a loss point's step is the number of mini-batches done in
its epoch when its log_every window ended (1 to steps_per_epoch), so a point at step s of epoch
e lies at x = e - 1 + s / steps_per_epoch, and an epoch's own results (recorded at its end) at
x = e: the last point of an epoch and that epoch's results share an x.
"""

import json
from collections.abc import Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app.errors import NotFound
from app.jobs.comparison_schemas import (
    ClassAccuracy,
    ComparedJob,
    ComparisonOut,
    ConfigComparison,
    JobSeries,
    SeriesPoint,
)
from app.jobs.config import JobConfig, StoredConfigInvalid
from app.jobs.labels import tags_of
from app.jobs.records import EpochRecord, LossRecord
from app.models import Job, JobStatus

# How many jobs one comparison takes: fewer is not a comparison, more no longer reads side by side.
COMPARE_JOBS_MIN = 2
COMPARE_JOBS_MAX = 10
# The per-epoch series of a job's curves, each an EpochRecord field.
EPOCH_SERIES = (
    "train_loss",
    "test_loss",
    "test_accuracy",
    "validation_loss",
    "validation_accuracy",
)


def naming_jobs(job_ids: Sequence[int]) -> str:
    """ "job 3", or "jobs 3, 7" for several."""
    noun = "job" if len(job_ids) == 1 else "jobs"
    return f"{noun} {', '.join(map(str, job_ids))}"


def epoch_position(epoch: int, step: int, steps_per_epoch: int) -> float:
    """Where step `step` of epoch `epoch` (both from 1) lies on an axis in epochs."""
    return epoch - 1 + step / steps_per_epoch


def job_series(
    job_id: int,
    steps_per_epoch: int | None,
    loss_points: Sequence[LossRecord],
    epochs: Sequence[EpochRecord],
) -> JobSeries:
    """A job's loss points and per-epoch results as points on the axis in epochs."""
    # A job records its steps_per_epoch before its first loss point; 1 only guards the division.
    per_epoch = steps_per_epoch or 1
    loss = [
        SeriesPoint(x=epoch_position(p.epoch, p.step, per_epoch), y=p.loss) for p in loss_points
    ]
    per_epoch_series: dict[str, list[SeriesPoint]] = {name: [] for name in EPOCH_SERIES}
    for result in epochs:
        for name, points in per_epoch_series.items():
            value = getattr(result, name)
            if value is not None:  # validation_* only with validation_fraction
                points.append(SeriesPoint(x=result.epoch, y=value))
    return JobSeries(job_id=job_id, steps_per_epoch=steps_per_epoch, loss=loss, **per_epoch_series)


def _canonical(value: object) -> str:
    # As JSON, so that 1 and 1.0 or true and 1 are not taken for the same value.
    return json.dumps(value, sort_keys=True)


def compare_configs(configs: Sequence[Mapping[str, object]]) -> ConfigComparison:
    """Each field in the order the first config that has it gives it: its values in every
    config when they differ (null where one lacks it), else its one value."""
    fields = list(dict.fromkeys(name for config in configs for name in config))
    differing: dict[str, list[object]] = {}
    same: dict[str, object] = {}
    for name in fields:
        values = [config.get(name) for config in configs]
        if len({_canonical(value) for value in values}) == 1:
            same[name] = values[0]
        else:
            differing[name] = values
    return ConfigComparison(differing=differing, same=same)


def best_indexes(values: Sequence[float | None]) -> list[int]:
    """The indexes of the highest value (all of them on a tie); none when every value is null."""
    present = [value for value in values if value is not None]
    if not present:
        return []
    highest = max(present)
    return [index for index, value in enumerate(values) if value == highest]


def compare_per_class(
    accuracies: Sequence[Mapping[str, float] | None],
) -> dict[str, ClassAccuracy]:
    """Each class any job has an accuracy for: its accuracy in every job (null where one has
    none) and which job does best on it."""
    classes = dict.fromkeys(name for found in accuracies if found for name in found)
    compared = {}
    for name in classes:
        values = [None if found is None else found.get(name) for found in accuracies]
        compared[name] = ClassAccuracy(accuracy=values, best=best_indexes(values))
    return compared


def resolved_config(stored: Mapping[str, object]) -> dict[str, object]:
    """A job's config with every field of today's JobConfig, so that a field added since an older
    job was stored compares as its default rather than as missing."""
    try:
        return JobConfig.from_stored(dict(stored)).model_dump(mode="json")
    except StoredConfigInvalid:
        # Today's bounds refuse a stored value: compare what the job was trained with.
        return dict(stored)


def _compared_job(job: Job, tags: dict[str, str]) -> ComparedJob:
    last = job.epoch_results[-1] if job.epoch_results else None
    return ComparedJob(
        id=job.id,
        name=job.name,
        tags=tags,
        status=JobStatus(job.status),
        created_at=job.created_at,
        finished_at=job.finished_at,
        epochs_done=len(job.epoch_results),
        test_accuracy=job.test_accuracy,
        best_epoch=job.best_epoch,
        test_loss=None if last is None else last.test_loss,
        images_per_s=job.images_per_s,
        training_s=None if last is None else last.elapsed_s,
    )


def _series(job: Job) -> JobSeries:
    return job_series(
        job.id,
        job.steps_per_epoch,
        [LossRecord.model_validate(point) for point in job.loss_points],
        [EpochRecord.model_validate(result) for result in job.epoch_results],
    )


def _found_jobs(session: Session, job_ids: Sequence[int]) -> list[Job]:
    """The jobs in the order of `job_ids`, their loss points and epochs loaded with them;
    NotFound naming every id that has no job."""
    query = (
        select(Job)
        .where(Job.id.in_(job_ids))
        .options(selectinload(Job.loss_points), selectinload(Job.epoch_results))
    )
    found = {job.id: job for job in session.scalars(query)}
    missing = [job_id for job_id in job_ids if job_id not in found]
    if missing:
        raise NotFound(f"{naming_jobs(missing)} not found")
    return [found[job_id] for job_id in job_ids]


def compare_jobs(session: Session, job_ids: Sequence[int]) -> ComparisonOut:
    """The jobs `job_ids` names, side by side: each as far as it has got (a queued one with no
    metrics and empty curves yet)."""
    jobs = _found_jobs(session, job_ids)
    # Tags read after the jobs: a job deleted in between has none rather than no entry.
    tags = tags_of(session, list(job_ids))
    return ComparisonOut(
        jobs=[_compared_job(job, tags.get(job.id, {})) for job in jobs],
        config=compare_configs([resolved_config(job.config) for job in jobs]),
        per_class_accuracy=compare_per_class([job.per_class_accuracy for job in jobs]),
        series=[_series(job) for job in jobs],
    )
