"""Request validation errors as one readable message that names each field."""

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


def _field_name(loc: Sequence[Any]) -> str:
    parts = [str(part) for part in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or "body"


def _field(error: dict[str, Any]) -> str:
    # A JSON syntax error's location is a character offset, not a field.
    return "body" if error.get("type") == "json_invalid" else _field_name(error.get("loc", ()))


def _describe(error: dict[str, Any]) -> str:
    field = _field(error)
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return f"{field}: unknown field"
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


async def _render_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    return JSONResponse(
        status_code=422,
        content={
            "detail": "; ".join(_describe(error) for error in errors),
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


def install_validation_handler(app: FastAPI) -> None:
    """Answer 422 with {"detail": "field: problem; ...", "errors": [...]}."""
    app.add_exception_handler(RequestValidationError, _render_validation_error)
