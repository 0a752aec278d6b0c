"""Liveness and readiness probes, and the Prometheus metrics."""

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel

from app.metrics import exposition
from app.migrations import schema_is_current

router = APIRouter(tags=["health"])


class HealthOut(BaseModel):
    status: str


@router.get("/healthz", response_model=HealthOut, summary="The process is up")
def healthz() -> HealthOut:
    return HealthOut(status="ok")


@router.get(
    "/readyz",
    response_model=HealthOut,
    summary="The database answers and its schema is current",
    responses={503: {"model": HealthOut, "description": "Database down or schema out of date."}},
)
def readyz() -> HealthOut | JSONResponse:
    if schema_is_current():
        return HealthOut(status="ready")
    return JSONResponse(
        {"status": "not ready", "detail": "database unreachable or schema not current"},
        status_code=503,
    )


@router.get(
    "/metrics",
    response_class=Response,
    summary="Prometheus metrics",
    responses={200: {"content": {"text/plain": {}}, "description": "The Prometheus text format."}},
)
def metrics() -> Response:
    """Requests by route and status with latency histograms, prediction batch sizes, jobs by
    status, the queue's depth, and running jobs' training images a second."""
    return Response(exposition(), media_type=CONTENT_TYPE_LATEST)
