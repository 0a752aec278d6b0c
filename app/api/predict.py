"""Classifying an uploaded image with a trained model."""

from typing import Annotated

from fastapi import APIRouter, File, Query, UploadFile
from sqlalchemy import select

from app.api.deps import ModelCacheDep, SessionDep, SettingsDep
from app.errors import Conflict, InvalidInput, NotFound, Unavailable
from app.ml.predictor import ImageRejected, decode_image
from app.models import Job, JobStatus
from app.schemas import ErrorOut, PredictionOut

router = APIRouter(tags=["predict"])


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
        int | None, Query(ge=1, description="Default: the most recently finished job.")
    ] = None,
) -> PredictionOut:
    """The most likely class and every class's probability for one image."""
    job = _serving_job(session, job_id)
    assert job.model_path is not None
    predictor = models.get(job.id, settings.artifacts_dir / job.model_path, job.model_sha256)
    try:
        image = decode_image(file.file.read(), predictor.image_size)
    except ImageRejected as exc:
        raise InvalidInput(f"{file.filename or 'file'}: {exc}") from None
    prediction = predictor.predict(image.unsqueeze(0))[0]
    return PredictionOut(
        job_id=job.id,
        label=prediction.label,
        class_index=prediction.class_index,
        probabilities=prediction.probabilities,
    )
