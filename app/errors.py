"""Errors as the client sees them: expected failures with their HTTP status, rendered as
{"detail": message}; request validation errors as one message naming each field (an unknown
one with the known field it most likely meant); anything else as a bare 500."""

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import event
from sqlalchemy.exc import DataError, DBAPIError
from sqlalchemy.orm import Session

from app.db_outages import Outage, OutageLog, outage_of
from app.field_suggestions import model_fields_at, suggest_field

log = logging.getLogger("trainserve.api")


class FieldErrorOut(BaseModel):
    field: str
    message: str | None
    type: str | None


class ErrorOut(BaseModel):
    """The body of every error the API answers (the Open Inference Protocol's routes excepted:
    theirs is {"error": ...})."""

    detail: str
    errors: list[FieldErrorOut] | None = Field(
        default=None, description="Each field a request failed validation on (422 only)."
    )


class AppError(Exception):
    """A condition the client can act on; never a 500."""

    status_code = 400

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code


class NotFound(AppError):
    status_code = 404


class Conflict(AppError):
    status_code = 409


class InvalidInput(AppError):
    status_code = 422


class Unavailable(AppError):
    status_code = 503


async def _render_app_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return JSONResponse({"detail": exc.message}, status_code=exc.status_code)


async def _render_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # The traceback goes to the log, never to the client; the request id, which the log line
    # carries as every line of the request does, ties the two together.
    request_id = request.scope.get("state", {}).get("request_id", "-")
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": "internal error", "request_id": request_id}, status_code=500)


# The API's own view of an outage: said once in its log when it starts and once when it ends.
API_OUTAGES = OutageLog(log, "api")
OUTAGE_ADVICE = {
    Outage.DISK_FULL: "nothing was changed; try again once space is freed",
    # A change sent as the connection broke may have been saved all the same.
    Outage.UNREACHABLE: "try again shortly (a change sent just then may have been saved: "
    "check before sending it again)",
}
OUTAGE_RETRY_AFTER_S = 10


@event.listens_for(Session, "after_commit")
def _database_written(_session: Session) -> None:
    """A commit went through: an outage the API has met is over (said once, when it is)."""
    API_OUTAGES.succeeded()


async def _render_database_error(request: Request, exc: Exception) -> JSONResponse:
    """422 for a value the database cannot store, 503 while it is out of space or out of reach;
    any other database error is unexpected (500)."""
    if isinstance(exc, DataError):
        # A value the database's own types refuse (PostgreSQL's text holds no NUL character):
        # the request's fault, said as the database says it.
        reason = (str(getattr(exc, "orig", exc)).strip().splitlines() or ["invalid value"])[0]
        return JSONResponse({"detail": f"a value cannot be stored: {reason}"}, status_code=422)
    outage = outage_of(exc)
    if outage is None:
        return await _render_unexpected(request, exc)
    API_OUTAGES.failed(outage, exc)
    # Imported here: the protocol's errors build on this module.
    from app.oip.errors import is_protocol_path

    message = f"{outage}: {OUTAGE_ADVICE[outage]}"
    return JSONResponse(
        {"error" if is_protocol_path(request.url.path) else "detail": message},
        status_code=503,
        headers={"Retry-After": str(OUTAGE_RETRY_AFTER_S)},
    )


def _field_name(loc: Sequence[Any]) -> str:
    parts = [str(part) for part in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or "body"


def _field(error: dict[str, Any]) -> str:
    # A JSON syntax error's location is a character offset, not a field.
    return "body" if error.get("type") == "json_invalid" else _field_name(error.get("loc", ()))


def _describe(error: dict[str, Any], suggestion: str | None = None) -> str:
    field = _field(error)
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return f"{field}: unknown field" + (f"; did you mean {suggestion}?" if suggestion else "")
    if kind == "json_invalid":
        reason = (error.get("ctx") or {}).get("error", "malformed")
        return f"body: invalid JSON ({reason})"
    if field == "body" and kind in ("model_attributes_type", "dict_type"):
        return "body: must be a JSON object (with Content-Type: application/json)"
    if kind == "missing":
        return f"{field}: field required"
    if kind == "value_error" and (error.get("ctx") or {}).get("error") is not None:
        return f"{field}: {error['ctx']['error']}"  # without pydantic's "Value error, " prefix
    return f"{field}: {error.get('msg', 'invalid value')}"


def describe_validation_error(exc: ValidationError) -> str:
    """A pydantic error as one message naming each field: "field: problem; ..."."""
    return "; ".join(_describe(dict(error)) for error in exc.errors())


def _body_type(request: Request) -> Any:
    """The type the route validates its body as; None for a route without a body."""
    body_field = getattr(request.scope.get("route"), "body_field", None)
    return None if body_field is None else body_field.field_info.annotation


def _suggestion(error: dict[str, Any], body_type: Any) -> str | None:
    """For an unknown field of the body, the known field of the same model it most likely meant."""
    location = tuple(error.get("loc", ()))
    if error.get("type") != "extra_forbidden" or body_type is None or location[:1] != ("body",):
        return None
    return suggest_field(str(location[-1]), model_fields_at(body_type, location[1:-1]))


async def _render_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    body_type = _body_type(request)
    return JSONResponse(
        status_code=422,
        content={
            "detail": "; ".join(
                _describe(error, _suggestion(error, body_type)) for error in errors
            ),
            "errors": [
                {
                    "field": _field(e),
                    "message": e.get("msg"),
                    "type": e.get("type"),
                }
                for e in errors
            ],
        },
    )


def install_error_handlers(app: FastAPI) -> None:
    """Render every AppError as JSON with its own status, a request that fails validation as
    422 {"detail": "field: problem; ...", "errors": [...]}, anything else as a bare JSON 500."""
    app.add_exception_handler(RequestValidationError, _render_validation_error)
    app.add_exception_handler(AppError, _render_app_error)
    app.add_exception_handler(DBAPIError, _render_database_error)
    app.add_exception_handler(Exception, _render_unexpected)
