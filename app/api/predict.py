"""Classifying uploaded images with a trained model, one per request or many at once."""

from pathlib import PurePosixPath
from typing import Annotated

from fastapi import APIRouter, Depends, File, Request, UploadFile
from fastapi.responses import JSONResponse

from app.api.deps import PredictionsDep, SettingsDep, TargetDep, TopKQuery
from app.errors import InvalidInput
from app.serving.schemas import (
    PREDICTION_ERRORS,
    BatchPredictionOut,
    PredictionOut,
    batch_json,
    prediction_json,
)

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


@router.post(
    "/predict",
    dependencies=[Depends(one_file_upload)],
    response_model=PredictionOut,
    summary="Classify one image",
    responses=PREDICTION_ERRORS,
)
async def predict(
    predictions: PredictionsDep,
    file: Annotated[UploadFile, File(description="One image of the model's size (32x32).")],
    target: TargetDep,
    top_k: TopKQuery = None,
) -> JSONResponse:
    """The most likely class and every class's probability for one image."""
    data = await file.read()
    served = await predictions.classify_images(target, [(display_name(file.filename), data)])
    [prediction] = served.predictions
    return JSONResponse({**served.json(), **prediction_json(prediction, top_k)})


@router.post(
    "/predict/batch",
    response_model=BatchPredictionOut,
    summary="Classify many images in one request",
    responses=PREDICTION_ERRORS,
)
async def predict_batch(
    predictions: PredictionsDep,
    settings: SettingsDep,
    files: Annotated[
        list[UploadFile], File(description="Images of the model's size, the field repeated.")
    ],
    target: TargetDep,
    top_k: TopKQuery = None,
) -> JSONResponse:
    """Predictions for every image, in the order sent; one bad image fails the request."""
    if len(files) > settings.max_batch_files:
        raise InvalidInput(
            f"files: at most {settings.max_batch_files} images per request (got {len(files)})"
        )
    uploads = [(f"files[{i}]", await upload.read()) for i, upload in enumerate(files)]
    served = await predictions.classify_images(target, uploads)
    return JSONResponse(batch_json(served, top_k))
