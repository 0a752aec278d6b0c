"""Which workers may claim a job: the GPUs it needs against the GPUs each worker offers."""

from app.jobs.config import JobConfig
from app.models import JobStatus


def gpus_needed(config: JobConfig) -> int:
    """GPUs a worker must have to run a job with this config (0: any worker)."""
    if config.gpus:
        return config.gpus
    return 1 if config.device == "cuda" else 0


def waiting_reason(status: str, needed: int, most_gpus: int | None) -> str | None:
    """Why no live worker can run a queued job, given the most GPUs a live worker offers."""
    if status != JobStatus.QUEUED:
        return None
    if most_gpus is None:
        return "no worker is running: start one with `trainserve worker`"
    if needed > most_gpus:
        offered = "no GPU" if most_gpus == 0 else f"at most {most_gpus} GPU{'s' * (most_gpus > 1)}"
        return (
            f"the job needs {needed} GPU{'s' * (needed > 1)} on one worker and the live workers "
            f"offer {offered}; it waits for a worker that has them"
        )
    return None
