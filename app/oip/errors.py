"""The protocol's errors: `{"error": "..."}` with its status code, not the API's `detail`."""

from fastapi import Request
from fastapi.responses import JSONResponse

from app.errors import AppError

PROTOCOL_PREFIX = "/v2"


class ProtocolError(AppError):
    """An AppError of the protocol's routes: its own handler renders it as {"error": ...}."""


class BadRequest(ProtocolError):
    status_code = 400


class NotFound(ProtocolError):
    status_code = 404


async def render_protocol_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProtocolError)
    return JSONResponse({"error": exc.message}, status_code=exc.status_code)


def from_app_error(exc: AppError) -> ProtocolError:
    """The API's own error in the protocol's form: its 422s are the protocol's 400s."""
    status = 400 if exc.status_code == 422 else exc.status_code
    return ProtocolError(exc.message, status)


def is_protocol_path(path: str) -> bool:
    """A path under the protocol's prefix, where errors take the protocol's shape."""
    return path == PROTOCOL_PREFIX or path.startswith(PROTOCOL_PREFIX + "/")
