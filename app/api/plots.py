"""A job's figures as PNG images: its loss curve and its confusion matrix."""

from typing import Any

from fastapi import APIRouter, Response

from app.api.deps import JobDep
from app.errors import Conflict, ErrorOut
from app.jobs.config import JobConfig
from app.jobs.plots import confusion_png, loss_png
from app.models import Job, JobStatus

router = APIRouter(prefix="/jobs", tags=["jobs"])

PNG_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/png": {}}, "description": "A PNG image."},
    404: {"model": ErrorOut, "description": "No job with this id."},
    409: {"model": ErrorOut, "description": "The job has nothing to draw yet."},
}


def _png(data: bytes) -> Response:
    # The figure changes while the job trains.
    return Response(data, media_type="image/png", headers={"Cache-Control": "no-store"})


# Plain `def` routes: FastAPI runs them in its thread pool, so drawing never blocks the loop.
@router.get(
    "/{job_id}/plots/loss.png",
    response_class=Response,
    responses=PNG_RESPONSES,
    summary="Training loss against epochs (PNG)",
)
def loss_plot(job: JobDep) -> Response:
    """The loss points at their place in the epochs, and each finished epoch's test loss; a job
    that recorded no loss points (a log_every longer than its epochs) shows its epochs' mean
    training loss instead."""
    test_losses = [(e.epoch, e.test_loss) for e in job.epoch_results]
    if job.loss_points:
        points = [(p.epoch, p.step, p.loss) for p in job.loss_points]
        label = "training loss (mean over each log_every mini-batches)"
    elif job.epoch_results:
        steps = job.steps_per_epoch or 1
        points = [(e.epoch, steps, e.train_loss) for e in job.epoch_results]
        label = "training loss (mean over each epoch)"
    else:
        raise Conflict(_no_loss_points(job))
    return _png(loss_png(f"job {job.id}: loss", points, job.steps_per_epoch, test_losses, label))


def _no_loss_points(job: Job) -> str:
    """Why a job has no loss curve to draw."""
    if job.status == JobStatus.RUNNING and job.steps_per_epoch:
        every = JobConfig.from_stored(job.config).loss_interval(job.steps_per_epoch)
        return f"job {job.id} has no loss points yet: one comes every {every} mini-batches"
    if job.status in (JobStatus.QUEUED, JobStatus.RUNNING):
        return f"job {job.id} has no loss points yet: it has not started training"
    ended = "failed" if job.status == JobStatus.FAILED else "was cancelled"
    return f"job {job.id} has no loss points: it {ended} before it recorded one"


@router.get(
    "/{job_id}/plots/confusion.png",
    response_class=Response,
    responses=PNG_RESPONSES,
    summary="Confusion matrix on the test set (PNG)",
)
def confusion_plot(job: JobDep) -> Response:
    """Counts of each true class (rows) predicted as each class (columns)."""
    if job.confusion_matrix is None or job.classes is None:
        raise Conflict(
            f"job {job.id} has no confusion matrix: it is made on the test set when the job "
            f"succeeds (its status is {job.status})"
        )
    return _png(confusion_png(f"job {job.id}: test set", job.confusion_matrix, job.classes))
