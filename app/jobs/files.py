"""The keys of a job's files in the artifact store (app/storage): its models, its checkpoints and
the predictions its model made on the test set. Each is written once, by one attempt: a worker
that lost its lease a moment ago cannot overwrite what its successor records."""

JOBS_FOLDER = "jobs"


def job_prefix(job_id: int) -> str:
    """Everything of the job is under this prefix."""
    return f"{JOBS_FOLDER}/{job_id}"


def checkpoint_prefix(job_id: int) -> str:
    return f"{job_prefix(job_id)}/checkpoints"


def checkpoint_key(job_id: int, attempt: int, epoch: int, step: int) -> str:
    """A checkpoint at `step` of `epoch`, written by `attempt`."""
    return f"{checkpoint_prefix(job_id)}/epoch{epoch:04d}-step{step:08d}-attempt{attempt}.pt"


def model_key(job_id: int, attempt: int) -> str:
    """The model an attempt writes (the job records it as model_path)."""
    return f"{job_prefix(job_id)}/model-attempt{attempt}.pt"


def predictions_key(job_id: int, attempt: int) -> str:
    """The test-set predictions an attempt writes beside its model (app/ml/example_predictions.py).
    A succeeded job's are those of its last attempt, `job.attempts`."""
    return f"{job_prefix(job_id)}/test-predictions-attempt{attempt}.pt"
