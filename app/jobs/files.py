"""Where a job's files live under the artifacts folder: its models and its checkpoints."""

from pathlib import Path

JOBS_FOLDER = "jobs"


def job_folder(artifacts_dir: Path, job_id: int) -> Path:
    return artifacts_dir / JOBS_FOLDER / str(job_id)


def checkpoint_folder(artifacts_dir: Path, job_id: int) -> Path:
    return job_folder(artifacts_dir, job_id) / "checkpoints"


def model_file(job_id: int, attempt: int) -> Path:
    """The model an attempt writes, relative to the artifacts folder (as the job stores it).
    Named by attempt, so that a worker that lost its lease a moment ago cannot overwrite the
    file its successor records."""
    return Path(JOBS_FOLDER) / str(job_id) / f"model-attempt{attempt}.pt"
