"""The Open Inference Protocol (KServe v2) over HTTP/REST for registered models: health, server
and model metadata, readiness and inference, with the binary tensor data extension."""

import re
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from app.api.deps import PredictionsDep, SettingsDep
from app.oip import request as oip_request
from app.oip.errors import PROTOCOL_PREFIX, NotFound
from app.oip.inference import infer, loaded_model
from app.oip.response import HEADER_LENGTH, encode
from app.oip.schemas import (
    ERRORS,
    INFER_BODY,
    InferenceResponseOut,
    LiveOut,
    ModelMetadataOut,
    ModelReadyOut,
    ReadyOut,
    ServerMetadataOut,
)
from app.oip.signature import Signature
from app.readiness import readiness_problem
from app.registry.names import VERSION_MAX, is_name
from app.registry.versions import version_numbers
from app.serving.lookup import Target
from app.version import package_version

router = APIRouter(prefix=PROTOCOL_PREFIX, tags=["open inference protocol"])

EXTENSIONS = ["binary_tensor_data"]
INLINE_PARSE_MAX_BYTES = 16 * 1024
DIGITS = re.compile(r"[0-9]{1,10}")  # ASCII digits: str.isdigit() also takes "²"


def _target(name: str, version: str | None) -> Target:
    if not is_name(name):
        raise NotFound(f"model '{name[:70]}' not found")
    if version is None:
        return Target(model=name)
    if not DIGITS.fullmatch(version) or not 1 <= int(version) <= VERSION_MAX:
        raise NotFound(f"model '{name}' has no version '{version[:20]}'")
    return Target(model=name, version=int(version))


@router.get("/health/live", response_model=LiveOut, summary="The server is live")
def live() -> LiveOut:
    return LiveOut(live=True)


@router.get(
    "/health/ready",
    response_model=ReadyOut,
    responses={
        503: {
            "model": ReadyOut,
            "description": "Database down, out of space, or its schema out of date; or the "
            "artifact store does not answer.",
        }
    },
    summary="The server is ready",
)
def ready() -> ReadyOut | JSONResponse:
    """As /readyz: the schema is current, the database takes a write and the artifact store
    answers."""
    if readiness_problem() is None:
        return ReadyOut(ready=True)
    return JSONResponse({"ready": False}, status_code=503)


@router.get("", response_model=ServerMetadataOut, summary="Server metadata")
def server_metadata() -> ServerMetadataOut:
    return ServerMetadataOut(name="trainserve", version=package_version(), extensions=EXTENSIONS)


async def _metadata(
    predictions: PredictionsDep, name: str, version: str | None
) -> ModelMetadataOut:
    target = _target(name, version)
    _served, batcher = await loaded_model(predictions, target)
    versions = await run_in_threadpool(version_numbers, name)
    return ModelMetadataOut.model_validate(Signature.of(batcher.predictor).metadata(name, versions))


@router.get(
    "/models/{name}", response_model=ModelMetadataOut, responses=ERRORS, summary="Model metadata"
)
async def model_metadata(predictions: PredictionsDep, name: str) -> ModelMetadataOut:
    """The production version's inputs and outputs, and every version of the model."""
    return await _metadata(predictions, name, None)


@router.get(
    "/models/{name}/versions/{version}",
    response_model=ModelMetadataOut,
    responses=ERRORS,
    summary="Model version metadata",
)
async def version_metadata(
    predictions: PredictionsDep, name: str, version: str
) -> ModelMetadataOut:
    return await _metadata(predictions, name, version)


async def _ready(predictions: PredictionsDep, name: str, version: str | None) -> ModelReadyOut:
    await loaded_model(predictions, _target(name, version))  # loaded and verified, or an error
    return ModelReadyOut(name=name, ready=True)


@router.get(
    "/models/{name}/ready", response_model=ModelReadyOut, responses=ERRORS, summary="Model ready"
)
async def model_ready(predictions: PredictionsDep, name: str) -> ModelReadyOut:
    """200 once the production version is loaded; 404 or 503 (with the reason) otherwise."""
    return await _ready(predictions, name, None)


@router.get(
    "/models/{name}/versions/{version}/ready",
    response_model=ModelReadyOut,
    responses=ERRORS,
    summary="Model version ready",
)
async def version_ready(predictions: PredictionsDep, name: str, version: str) -> ModelReadyOut:
    return await _ready(predictions, name, version)


async def infer_answer(
    request: Request,
    predictions: PredictionsDep,
    settings: SettingsDep,
    name: str,
    version: str | None,
    header_length: str | None,
) -> Response:
    """What an /infer route answers, by its documented route or its fast path
    (app/api/fast_inference.py)."""
    target = _target(name, version)
    received = await request.body()
    # A large JSON body is parsed on a thread, so as not to hold up the event loop; a small one
    # (an image as a binary tensor) parses faster than the hop to a thread would take.
    if len(received) <= INLINE_PARSE_MAX_BYTES:
        parsed = oip_request.parse(received, header_length)
    else:
        parsed = await run_in_threadpool(oip_request.parse, received, header_length)
    inferred = await infer(predictions, target, parsed, settings.max_batch_files)
    answer, headers = encode(name, parsed.id, inferred)
    return Response(answer, headers=headers)


HeaderLength = Annotated[str | None, Header(alias=HEADER_LENGTH)]


@router.post(
    "/models/{name}/infer",
    response_model=InferenceResponseOut,
    responses=ERRORS,
    openapi_extra=INFER_BODY,
    summary="Inference with the production version",
)
async def model_infer(
    request: Request,
    predictions: PredictionsDep,
    settings: SettingsDep,
    name: str,
    header_length: HeaderLength = None,
) -> Response:
    """Images as `image` (UINT8, [N, H, W, 3]) or a table's rows as `features` (FP32, [N, F]);
    answers `probabilities` (FP32, [N, classes]) and `label` (BYTES, [N])."""
    return await infer_answer(request, predictions, settings, name, None, header_length)


@router.post(
    "/models/{name}/versions/{version}/infer",
    response_model=InferenceResponseOut,
    responses=ERRORS,
    openapi_extra=INFER_BODY,
    summary="Inference with a version",
)
async def version_infer(
    request: Request,
    predictions: PredictionsDep,
    settings: SettingsDep,
    name: str,
    version: str,
    header_length: HeaderLength = None,
) -> Response:
    return await infer_answer(request, predictions, settings, name, version, header_length)
