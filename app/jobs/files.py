"""Where a job's files live under the artifacts folder: its models, its checkpoints and the
predictions its model made on the test set."""

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


def predictions_file(job_id: int, attempt: int) -> Path:
    """The test-set predictions an attempt writes beside its model (app/ml/example_predictions.py),
    relative to the artifacts folder; named by attempt for the same reason as the model. A
    succeeded job's are those of its last attempt, `job.attempts`."""
    return Path(JOBS_FOLDER) / str(job_id) / f"test-predictions-attempt{attempt}.pt"
