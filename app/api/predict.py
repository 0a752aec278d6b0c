"""Classifying an uploaded image with a trained model."""

from pathlib import PurePosixPath
from typing import Annotated

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from sqlalchemy import select

from app.api.deps import JOB_ID_MAX, ModelCacheDep, SessionDep, SettingsDep
from app.errors import Conflict, InvalidInput, NotFound, Unavailable
from app.ml.predictor import ImageRejected, decode_image
from app.models import Job, JobStatus
from app.schemas import ErrorOut, PredictionOut

router = APIRouter(tags=["predict"])


MAX_NAME_CHARS = 100


def display_name(filename: str | None) -> str:
    """The upload's base name, for messages only: it is never used as a path."""
    name = PurePosixPath((filename or "").replace("\\", "/")).name
    printable = "".join(c for c in name if c.isprintable())[:MAX_NAME_CHARS]
    return printable or "file"


async def one_file_upload(request: Request) -> None:
    """Refuse a form that carries the `file` field more than once, or as text."""
    form = await request.form()
    values = form.getlist("file")
    if len(values) > 1:
        raise InvalidInput(f"file: send exactly one file in the field 'file' (got {len(values)})")
    if values and isinstance(values[0], str):
        raise InvalidInput("file: expected a file upload, got a text field")


def _serving_job(session: SessionDep, job_id: int | None) -> Job:
    if job_id is None:
        job = session.scalars(
            select(Job)
            .where(Job.status == JobStatus.SUCCEEDED, Job.model_path.is_not(None))
            .order_by(Job.finished_at.desc(), Job.id.desc())
            .limit(1)
        ).first()
        if job is None:
            raise Unavailable("no trained model yet: submit a job with POST /jobs and wait for it")
        return job
    named = session.get(Job, job_id)
    if named is None:
        raise NotFound(f"job {job_id} not found")
    if named.status != JobStatus.SUCCEEDED or named.model_path is None:
        raise Conflict(f"job {job_id} has no trained model (its status is {named.status})")
    return named


@router.post(
    "/predict",
    dependencies=[Depends(one_file_upload)],
    response_model=PredictionOut,
    summary="Classify one image",
    responses={
        404: {"model": ErrorOut, "description": "The job named does not exist."},
        409: {"model": ErrorOut, "description": "The job named has no trained model."},
        422: {"model": ErrorOut, "description": "Not an image, empty, truncated or wrong size."},
        503: {
            "model": ErrorOut,
            "description": "No job has finished training yet, or the job's model file is "
            "missing or fails its checksum.",
        },
    },
)
def predict(
    session: SessionDep,
    settings: SettingsDep,
    models: ModelCacheDep,
    file: Annotated[UploadFile, File(description="One image of the model's size (32x32).")],
    job_id: Annotated[
        int | None,
        Query(ge=1, le=JOB_ID_MAX, description="Default: the most recently finished job."),
    ] = None,
) -> PredictionOut:
    """The most likely class and every class's probability for one image."""
    job = _serving_job(session, job_id)
    assert job.model_path is not None
    predictor = models.get(job.id, settings.artifacts_dir / job.model_path, job.model_sha256)
    try:
        image = decode_image(file.file.read(), predictor.image_size)
    except ImageRejected as exc:
        raise InvalidInput(f"{display_name(file.filename)}: {exc}") from None
    prediction = predictor.predict(image.unsqueeze(0))[0]
    return PredictionOut(
        job_id=job.id,
        label=prediction.label,
        class_index=prediction.class_index,
        probabilities=prediction.probabilities,
    )
