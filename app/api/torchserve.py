"""TorchServe's inference route, /predictions/{model}[/{version}], for clients moving over: the
image as the raw body (curl -T) or the multipart field `data`, and class names to probabilities,
most likely first."""

from typing import Annotated, Any

from fastapi import APIRouter, File, Path, Request, UploadFile
from fastapi.responses import JSONResponse

from app.api.deps import PredictionsDep
from app.errors import InvalidInput
from app.registry.names import VERSION_MAX, Name
from app.serving.lookup import Target
from app.serving.schemas import PREDICTION_ERRORS
from app.serving.uploads import FORM_TYPES, RAW_IMAGE_BODY, display_name, media_type

router = APIRouter(tags=["predict"])

# TorchServe's image classifier answers its five most likely classes.
TOP_CLASSES = 5
ModelName = Annotated[Name, Path(description="The registered model (its production version).")]
Version = Annotated[int, Path(ge=1, le=VERSION_MAX)]
Data = Annotated[UploadFile | None, File(description="The image, as TorchServe's `data` field.")]
ANSWER: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Class names to probabilities, the five most likely, most likely first.",
        "content": {"application/json": {"example": {"cat": 0.62, "dog": 0.2, "frog": 0.06}}},
    },
    **PREDICTION_ERRORS,
}


async def _answer(
    request: Request, predictions: PredictionsDep, target: Target, data: UploadFile | None
) -> JSONResponse:
    if data is not None:
        upload = (display_name(data.filename), await data.read())
    elif media_type(request) in FORM_TYPES:  # a form without `data`: its body is read already
        raise InvalidInput(
            "data: field required: send the image as the field 'data' or as the body"
        )
    else:
        upload = ("body", await request.body())
    served = await predictions.classify_images(target, [upload])
    [prediction] = served.predictions
    ranked = sorted(prediction.probabilities.items(), key=lambda item: item[1], reverse=True)
    return JSONResponse(dict(ranked[:TOP_CLASSES]))


ROUTE: dict[str, Any] = {
    "response_model": dict[str, float],
    "responses": ANSWER,
    "openapi_extra": RAW_IMAGE_BODY,
}


# Both methods, as TorchServe takes both (curl -T sends PUT); each its own operation id.
@router.post("/predictions/{name}", summary="Classify one image, TorchServe-style", **ROUTE)
@router.put(
    "/predictions/{name}",
    operation_id="torchserve_predict_put",
    summary="Classify one image, TorchServe-style (PUT)",
    **ROUTE,
)
async def torchserve_predict(
    request: Request, predictions: PredictionsDep, name: ModelName, data: Data = None
) -> JSONResponse:
    return await _answer(request, predictions, Target(model=name), data)


@router.post(
    "/predictions/{name}/{version}",
    summary="Classify one image with a version, TorchServe-style",
    **ROUTE,
)
@router.put(
    "/predictions/{name}/{version}",
    operation_id="torchserve_predict_version_put",
    summary="Classify one image with a version, TorchServe-style (PUT)",
    **ROUTE,
)
async def torchserve_predict_version(
    request: Request,
    predictions: PredictionsDep,
    name: ModelName,
    version: Version,
    data: Data = None,
) -> JSONResponse:
    return await _answer(request, predictions, Target(model=name, version=version), data)
