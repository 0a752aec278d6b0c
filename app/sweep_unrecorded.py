"""The files in the local artifacts folder that no row records although their folder's row exists:
a checkpoint a worker wrote and was killed before recording, tensors a killed decoder wrote, a
decoded dataset's upload its worker could not remove, a staged `.tmp` file a crash left. Only in
the folders of datasets that are ready or failed, and under `checkpoints/` of jobs that are
neither queued nor running: an unfinished one's worker may be about to record what it wrote.
(With a bucket, app/bucket_sweep.py finds the same objects.)"""

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session

from app.datasets.files import DATASETS_FOLDER, dataset_prefix
from app.jobs.files import JOBS_FOLDER, checkpoint_prefix
from app.models import JOB_ID_MAX, Dataset, DatasetStatus, Job, JobStatus

UNFINISHED_JOBS = (JobStatus.QUEUED, JobStatus.RUNNING)
FINISHED_DATASETS = (DatasetStatus.READY, DatasetStatus.FAILED)


def unrecorded_files(
    session: Session, artifacts_dir: Path, finished_before: datetime
) -> Iterator[Path]:
    """The files under the checkpoints of jobs and in the folders of datasets that finished
    before `finished_before` that their row does not record (whatever the files' age: the
    caller leaves recent ones alone). One finished since is left to its worker, which removes
    them itself right after it records the end."""
    for folder in _folders(artifacts_dir / JOBS_FOLDER):
        if not folder.name.isdigit() or int(folder.name) > JOB_ID_MAX:
            continue
        job = session.get(Job, int(folder.name))
        if (
            job is not None
            and job.status not in UNFINISHED_JOBS
            and _finished(job.finished_at, finished_before)
        ):
            recorded = {job.checkpoint_key, job.previous_checkpoint_key}
            yield from _not_among(artifacts_dir, checkpoint_prefix(job.id), recorded)
    for folder in _folders(artifacts_dir / DATASETS_FOLDER):
        dataset = session.get(Dataset, folder.name)
        if (
            dataset is not None
            and dataset.status in FINISHED_DATASETS
            and _finished(dataset.finished_at, finished_before)
        ):
            recorded = {dataset.upload_key, dataset.tensors_key}
            yield from _not_among(artifacts_dir, dataset_prefix(dataset.id), recorded)


def _finished(at: datetime | None, before: datetime) -> bool:
    return at is None or at < before  # None: a row from before finish times were kept


def _not_among(artifacts_dir: Path, prefix: str, keys: set[str | None]) -> Iterator[Path]:
    for path in sorted((artifacts_dir / prefix).rglob("*")):
        if path.is_file() and path.relative_to(artifacts_dir).as_posix() not in keys:
            yield path


def _folders(folder: Path) -> list[Path]:
    try:
        return sorted(entry for entry in folder.iterdir() if entry.is_dir())
    except (FileNotFoundError, NotADirectoryError):
        return []
