"""Requests no route takes: 404 naming the method and the path, 405 naming the methods the path
does take (the Allow header lists them too). Under /v2 the answer has the Open Inference
Protocol's shape, {"error": ...}; everywhere else the API's, {"detail": ...}."""

from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.routing import Match, Mount

from app.assets import ASSETS_PREFIX
from app.oip.errors import is_protocol_path

DOCS_PATH = "/docs"
STATIC_FILE_METHODS = ("GET", "HEAD")
# The methods tried at a path, in the order the Allow header and the message list them.
METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# What routing reads of a request: a fresh scope with only these is matched per method.
PATH_KEYS = ("type", "path", "raw_path", "app", "headers")


def _is_page_file(path: str) -> bool:
    """A path under the mount that serves the pages' scripts and styles."""
    return path.startswith(ASSETS_PREFIX + "/")


def _said_nothing(exc: HTTPException) -> bool:
    """Raised by the router or the static files with the status's bare phrase: a route that
    means a 404 raises an AppError with its own message, never this."""
    return exc.detail == HTTPStatus(exc.status_code).phrase


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route takes at this path. The router's own 405 names only the first
    route it found there, and GET /jobs and POST /jobs are two routes: each method is tried."""
    scope = request.scope
    if _is_page_file(request.url.path):
        # Their mount takes every method; static files answer GET and HEAD alone (older
        # versions of the framework do not say so in an Allow header of their own).
        return list(STATIC_FILE_METHODS)
    # As the request arrived: a mount on the way has moved its root_path.
    asked = {key: scope[key] for key in PATH_KEYS if key in scope}
    asked["root_path"] = scope.get("app_root_path", scope.get("root_path", ""))
    routes = [route for route in request.app.router.routes if not isinstance(route, Mount)]
    return [
        method
        for method in METHOD_ORDER
        if any(route.matches({**asked, "method": method})[0] is Match.FULL for route in routes)
    ]


def _either(methods: list[str]) -> str:
    # HEAD goes wherever GET does; naming it would only lengthen the advice.
    named = [m for m in methods if not (m == "HEAD" and "GET" in methods)]
    return named[0] if len(named) == 1 else f"{', '.join(named[:-1])} or {named[-1]}"


def not_found_message(method: str, path: str) -> str:
    """What a 404 says when nothing answers at the path."""
    if _is_page_file(path):
        return f"no such file: {path}"
    return f"no route {method} {path}: see {DOCS_PATH} for the API's routes"


def not_allowed_message(method: str, path: str, allowed: list[str]) -> str:
    """What a 405 says: the methods the path does take."""
    return f"{method} {path} is not allowed: use {_either(allowed)}"


async def _render(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code not in (404, 405) or not _said_nothing(exc):
        return await http_exception_handler(request, exc)
    method, path = request.method, request.url.path
    headers: dict[str, str] = {}
    if exc.status_code == 404:
        message = not_found_message(method, path)
    else:
        allowed = _allowed_methods(request)
        if not allowed:
            return await http_exception_handler(request, exc)
        headers["Allow"] = ", ".join(allowed)
        message = not_allowed_message(method, path, allowed)
    key = "error" if is_protocol_path(path) else "detail"
    return JSONResponse({key: message}, status_code=exc.status_code, headers=headers)


def install_no_route_handler(app: FastAPI) -> None:
    """Answer requests no route takes with what was asked and what to do instead."""
    app.add_exception_handler(HTTPException, _render)
