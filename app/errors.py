"""Expected failures, each with its HTTP status, rendered as {"detail": message}."""

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

log = logging.getLogger("trainserve.api")


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
    # The traceback goes to the log, never to the client; the request id ties the two together.
    request_id = request.scope.get("state", {}).get("request_id", "-")
    log.error(
        "request %s: unexpected error on %s %s",
        request_id,
        request.method,
        request.url.path,
        exc_info=exc,
    )
    return JSONResponse({"detail": "internal error", "request_id": request_id}, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    """Render every AppError as JSON with its own status, anything else as a bare JSON 500."""
    app.add_exception_handler(AppError, _render_app_error)
    app.add_exception_handler(Exception, _render_unexpected)
