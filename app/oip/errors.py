"""The protocol's errors: `{"error": "..."}` with its status code, not the API's `detail`."""

from fastapi import Request
from fastapi.responses import JSONResponse

from app.errors import AppError


class ProtocolError(Exception):
    status_code = 400

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        if status_code is not None:
            self.status_code = status_code


class BadRequest(ProtocolError):
    status_code = 400


class NotFound(ProtocolError):
    status_code = 404


async def render_protocol_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProtocolError)
    return JSONResponse({"error": str(exc)}, status_code=exc.status_code)


def from_app_error(exc: AppError) -> ProtocolError:
    """The API's own error in the protocol's form: its 422s are the protocol's 400s."""
    status = 400 if exc.status_code == 422 else exc.status_code
    return ProtocolError(exc.message, status)
