"""Liveness and readiness probes."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.migrations import schema_is_current
from app.schemas import HealthOut

router = APIRouter(tags=["health"])


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
