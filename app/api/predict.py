"""Classifying uploaded images with a trained model, one per request or many at once."""

from typing import Annotated

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.responses import JSONResponse
from starlette import datastructures

from app.api.deps import PredictionsDep, SettingsDep, TargetDep, TopKQuery
from app.errors import InvalidInput
from app.serving.lookup import Target
from app.serving.schemas import (
    PREDICTION_ERRORS,
    BatchPredictionOut,
    PredictionOut,
    batch_json,
    prediction_json,
)
from app.serving.service import Predictions
from app.serving.uploads import (
    MISSING_IMAGE,
    RAW_IMAGE_BODY,
    display_name,
    is_raw_image,
    media_type,
)

router = APIRouter(tags=["predict"])


def the_one_file(form: datastructures.FormData) -> datastructures.UploadFile | None:
    """The form's `file` field; refused when it comes more than once, or as text."""
    values = form.getlist("file")
    if len(values) > 1:
        raise InvalidInput(f"file: send exactly one file in the field 'file' (got {len(values)})")
    if not values:
        return None
    if isinstance(values[0], str):
        raise InvalidInput("file: expected a file upload, got a text field")
    return values[0]


async def one_file_upload(request: Request) -> None:
    """Refuse a form that carries the `file` field more than once, or as text."""
    the_one_file(await request.form())


async def image_upload(
    request: Request, file: datastructures.UploadFile | None
) -> tuple[str, bytes]:
    """The one image of a /predict request: the multipart field `file`, or the raw body when
    its Content-Type is an image's."""
    if file is not None:
        return display_name(file.filename), await file.read()
    if is_raw_image(media_type(request)):
        return "body", await request.body()
    raise InvalidInput(MISSING_IMAGE)


async def answer_one_image(
    request: Request,
    predictions: Predictions,
    file: datastructures.UploadFile | None,
    target: Target,
    top_k: int | None,
    resize: bool,
) -> JSONResponse:
    """What /predict answers, by its documented route or its fast path
    (app/api/fast_inference.py)."""
    upload = await image_upload(request, file)
    served = await predictions.classify_images(target, [upload], resize=resize)
    [prediction] = served.predictions
    return JSONResponse({**served.json(), **prediction_json(prediction, top_k)})


ResizeQuery = Annotated[
    bool,
    Query(
        description="Resize images of another size to the model's, as training images were "
        "(RGB, bilinear); false: refuse them (422)."
    ),
]


@router.post(
    "/predict",
    dependencies=[Depends(one_file_upload)],
    response_model=PredictionOut,
    summary="Classify one image",
    responses=PREDICTION_ERRORS,
    openapi_extra=RAW_IMAGE_BODY,
)
async def predict(
    request: Request,
    predictions: PredictionsDep,
    target: TargetDep,
    file: Annotated[
        UploadFile | None,
        File(description="One image, of any size: it is resized to the model's (32x32)."),
    ] = None,
    top_k: TopKQuery = None,
    resize: ResizeQuery = True,
) -> JSONResponse:
    """The most likely class and every class's probability for one image, sent as the
    multipart field `file` or as the raw body."""
    return await answer_one_image(request, predictions, file, target, top_k, resize)


@router.post(
    "/predict/batch",
    response_model=BatchPredictionOut,
    summary="Classify many images in one request",
    responses=PREDICTION_ERRORS,
)
async def predict_batch(
    predictions: PredictionsDep,
    settings: SettingsDep,
    files: Annotated[list[UploadFile], File(description="Images of any size, the field repeated.")],
    target: TargetDep,
    top_k: TopKQuery = None,
    resize: ResizeQuery = True,
) -> JSONResponse:
    """Predictions for every image, in the order sent; one bad image fails the request."""
    if len(files) > settings.max_batch_files:
        raise InvalidInput(
            f"files: at most {settings.max_batch_files} images per request (got {len(files)})"
        )
    uploads = [(f"files[{i}]", await upload.read()) for i, upload in enumerate(files)]
    served = await predictions.classify_images(target, uploads, resize=resize)
    return JSONResponse(batch_json(served, top_k))
