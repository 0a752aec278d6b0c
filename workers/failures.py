"""What a user reads in a failed job's `error`: their own mistake as it was said, a full disk
with the file and the folder, an artifact store that failed as it said (naming itself; out of
reach for too long, without a traceback: when that began is in the log already), anything else
with its type (and its traceback in the log)."""

import errno
import logging
from pathlib import Path

from app.jobs.config import StoredConfigInvalid
from app.ml.cifar10 import DatasetError
from app.ml.transfer import UnsupportedHead, WeightsMismatch
from app.storage.outages import StoreOutage
from app.storage.store import StoreError
from workers.parents import ParentUnavailable
from workers.training.hooks import TrainingDiverged
from workers.training.runtime import UnsupportedOption

log = logging.getLogger("trainserve.worker")

USER_ERRORS = (
    DatasetError,
    StoredConfigInvalid,
    TrainingDiverged,
    UnsupportedOption,
    ParentUnavailable,
    UnsupportedHead,
    WeightsMismatch,
)


def failure_message(exc: Exception, job_id: int, artifacts_dir: Path) -> str:
    """The job's `error` for an exception that ended its training."""
    if isinstance(exc, (*USER_ERRORS, StoreOutage)):
        return str(exc)
    if isinstance(exc, StoreError):  # its message names the store and what failed
        log.error("job %s failed", job_id, exc_info=exc)
        return str(exc)
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return (
            f"the disk is full: could not write {exc.filename or 'a file'} "
            f"under {artifacts_dir} ({exc.strerror})"
        )
    log.exception("job %s failed", job_id)  # unexpected: keep the traceback
    return f"{type(exc).__name__}: {exc}"
