"""The Open Inference Protocol (KServe v2) over HTTP/REST for registered models: health, server
and model metadata, readiness and inference, with the binary tensor data extension."""

from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from app.api.deps import PredictionsDep, SettingsDep
from app.oip.answer import infer_answer, target_of
from app.oip.errors import PROTOCOL_PREFIX
from app.oip.inference import loaded_model
from app.oip.response import HEADER_LENGTH
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
from app.registry.versions import version_numbers
from app.version import package_version

router = APIRouter(prefix=PROTOCOL_PREFIX, tags=["open inference protocol"])

EXTENSIONS = ["binary_tensor_data"]


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
    target = target_of(name, version)
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
    await loaded_model(predictions, target_of(name, version))  # loaded and verified, or an error
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
    return await infer_answer(
        request, predictions, settings.max_batch_files, name, None, header_length
    )


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
    return await infer_answer(
        request, predictions, settings.max_batch_files, name, version, header_length
    )
