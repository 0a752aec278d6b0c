"""Classifying uploaded images with a trained model, one per request or many at once."""

from pathlib import PurePosixPath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from app.api.deps import JOB_ID_MAX, ModelCacheDep, ServingJobsDep, SettingsDep
from app.errors import InvalidInput
from app.ml.predictor import Prediction
from app.schemas import BatchPredictionOut, ErrorOut, PredictionOut
from app.serving.batcher import Batcher, UploadRejected
from app.serving.lookup import ServingJobs
from app.serving.model_cache import ModelCache
from app.settings import Settings

router = APIRouter(tags=["predict"])

MAX_NAME_CHARS = 100
ERRORS: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorOut, "description": "The job named does not exist."},
    409: {"model": ErrorOut, "description": "The job named has no trained model."},
    422: {"model": ErrorOut, "description": "Not an image, empty, truncated or wrong size."},
    503: {
        "model": ErrorOut,
        "description": "No job has finished training yet, or the job's model file is "
        "missing or fails its checksum.",
    },
}
JobIdQuery = Annotated[
    int | None, Query(ge=1, le=JOB_ID_MAX, description="Default: the most recently finished job.")
]
TopKQuery = Annotated[
    int | None,
    Query(ge=1, le=1000, description="How many classes to list in `top_k` (default: all)."),
]


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


async def serving_batcher(
    serving: ServingJobs, models: ModelCache, settings: Settings, job_id: int | None
) -> tuple[int, Batcher]:
    """The job whose model answers, and its batcher (database and disk only on a cache miss)."""
    served = serving.cached(job_id)
    if served is None:
        served = await run_in_threadpool(serving.find, job_id)
    batcher = models.cached(served.job_id)
    if batcher is None:
        path = settings.artifacts_dir / served.model_path
        batcher = await run_in_threadpool(models.get, served.job_id, path, served.model_sha256)
    return served.job_id, batcher


async def predict_uploads(batcher: Batcher, uploads: list[tuple[str, bytes]]) -> list[Prediction]:
    if batcher.predictor.saved.standardizer is not None:
        raise InvalidInput(
            "this job's model was trained on a table: send its rows to POST /predict/rows"
        )
    try:
        return await batcher.predict(uploads)
    except UploadRejected as exc:
        raise InvalidInput(str(exc)) from None


def as_output(prediction: Prediction, top_k: int | None) -> dict[str, Any]:
    """One image's answer as plain JSON data (the shape of ImagePrediction)."""
    ranked = sorted(
        enumerate(prediction.probabilities.items()), key=lambda item: item[1][1], reverse=True
    )
    return {
        "label": prediction.label,
        "class_index": prediction.class_index,
        "probabilities": prediction.probabilities,
        "top_k": [
            {"label": label, "class_index": index, "probability": probability}
            for index, (label, probability) in ranked[: top_k or len(ranked)]
        ],
    }


@router.post(
    "/predict",
    dependencies=[Depends(one_file_upload)],
    response_model=PredictionOut,
    summary="Classify one image",
    responses=ERRORS,
)
async def predict(
    serving: ServingJobsDep,
    models: ModelCacheDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="One image of the model's size (32x32).")],
    job_id: JobIdQuery = None,
    top_k: TopKQuery = None,
) -> JSONResponse:
    """The most likely class and every class's probability for one image."""
    served_id, batcher = await serving_batcher(serving, models, settings, job_id)
    data = await file.read()
    [prediction] = await predict_uploads(batcher, [(display_name(file.filename), data)])
    # Built as plain data: validating our own output against the schema would cost more than
    # the forward pass (the schema is still published, and the tests check answers against it).
    return JSONResponse({"job_id": served_id, **as_output(prediction, top_k)})


@router.post(
    "/predict/batch",
    response_model=BatchPredictionOut,
    summary="Classify many images in one request",
    responses=ERRORS,
)
async def predict_batch(
    serving: ServingJobsDep,
    models: ModelCacheDep,
    settings: SettingsDep,
    files: Annotated[
        list[UploadFile], File(description="Images of the model's size, the field repeated.")
    ],
    job_id: JobIdQuery = None,
    top_k: TopKQuery = None,
) -> JSONResponse:
    """Predictions for every image, in the order sent; one bad image fails the request."""
    if len(files) > settings.max_batch_files:
        raise InvalidInput(
            f"files: at most {settings.max_batch_files} images per request (got {len(files)})"
        )
    served_id, batcher = await serving_batcher(serving, models, settings, job_id)
    uploads = [(f"files[{i}]", await upload.read()) for i, upload in enumerate(files)]
    predictions = await predict_uploads(batcher, uploads)
    return JSONResponse(
        {"job_id": served_id, "predictions": [as_output(p, top_k) for p in predictions]}
    )
