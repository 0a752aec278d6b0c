"""Classifying uploaded images with a trained model, one per request or many at once."""

from typing import Annotated

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.responses import JSONResponse

from app.api.deps import PredictionsDep, SettingsDep, TargetDep, TopKQuery
from app.errors import InvalidInput
from app.serving.one_image import answer_one_image, the_one_file
from app.serving.schemas import (
    PREDICTION_ERRORS,
    BatchPredictionOut,
    PredictionOut,
    batch_json,
)
from app.serving.uploads import (
    RAW_IMAGE_BODY,
)

router = APIRouter(tags=["predict"])


async def one_file_upload(request: Request) -> None:
    """Refuse a form that carries the `file` field more than once, or as text."""
    the_one_file(await request.form())


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
