"""Liveness and readiness probes, and the Prometheus metrics."""

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel

from app.metrics import exposition
from app.readiness import readiness_problem

router = APIRouter(tags=["health"])


class HealthOut(BaseModel):
    status: str


@router.get("/healthz", response_model=HealthOut, summary="The process is up")
def healthz() -> HealthOut:
    return HealthOut(status="ok")


@router.get(
    "/readyz",
    response_model=HealthOut,
    summary="The database can be written, its schema is current and the artifact store answers",
    responses={
        503: {
            "model": HealthOut,
            "description": "Database down, out of space, or its schema out of date; or the "
            "artifact store (a bucket) unreachable, missing or refusing the credentials.",
        }
    },
)
def readyz() -> HealthOut | JSONResponse:
    """Ready when the schema is current, the database takes a write (a full disk or a lost
    server makes it not ready until that passes) and the artifact store answers (`detail`
    names the store and what is wrong: the endpoint unreachable, the bucket missing, the
    credentials refused)."""
    problem = readiness_problem()
    if problem is not None:
        return _not_ready(problem)
    return HealthOut(status="ready")


def _not_ready(detail: str) -> JSONResponse:
    return JSONResponse({"status": "not ready", "detail": detail}, status_code=503)


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
