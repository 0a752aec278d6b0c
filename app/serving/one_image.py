"""What POST /predict answers: its one image (the form's `file` field or the raw body),
classified by the model the request names. Shared by the documented route (app/api/predict.py)
and its fast path (app/api/fast_inference.py)."""

from fastapi.responses import JSONResponse
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request

from app.errors import InvalidInput
from app.serving.lookup import Target
from app.serving.schemas import prediction_json
from app.serving.service import Predictions
from app.serving.uploads import MISSING_IMAGE, display_name, is_raw_image, media_type


def the_one_file(form: FormData) -> UploadFile | None:
    """The form's `file` field; refused when it comes more than once, or as text."""
    values = form.getlist("file")
    if len(values) > 1:
        raise InvalidInput(f"file: send exactly one file in the field 'file' (got {len(values)})")
    if not values:
        return None
    if isinstance(values[0], str):
        raise InvalidInput("file: expected a file upload, got a text field")
    return values[0]


async def image_upload(request: Request, file: UploadFile | None) -> tuple[str, bytes]:
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
    file: UploadFile | None,
    target: Target,
    top_k: int | None,
    resize: bool,
) -> JSONResponse:
    """The prediction for the request's image, with the model that gave it."""
    upload = await image_upload(request, file)
    return await answer_upload(predictions, upload, target, top_k, resize)


async def answer_upload(
    predictions: Predictions,
    upload: tuple[str, bytes],
    target: Target,
    top_k: int | None,
    resize: bool,
) -> JSONResponse:
    """The prediction for an image already read (its name for messages, its bytes)."""
    served = await predictions.classify_images(target, [upload], resize=resize)
    [prediction] = served.predictions
    return JSONResponse({**served.json(), **prediction_json(prediction, top_k)})
