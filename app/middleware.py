"""The rules of request ids, API keys and body limits, which app/request_edge.py and
app/request_gate.py apply (plain ASGI layers, so that request bodies stream through untouched
and a limit is enforced while the body arrives, not after it has been read).
"""

import hmac
import itertools
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import Message, Scope, Send

from app import logs
from app.settings import Settings

JSON_BODY_LIMIT_BYTES = 64 * 1024
# /predict/rows: 10,000 rows of a few dozen numbers; parsed whole before MAX_ROWS applies.
ROWS_BODY_LIMIT_BYTES = 4 * 1024 * 1024
ROWS_PATH = "/predict/rows"
PREDICT_PREFIX = "/predict"
TORCHSERVE_PREFIX = "/predictions/"
BATCH_PREDICT_PATH = "/predict/batch"
DATASETS_PATH = "/datasets"
WEIGHTS_PATH = "/weights"
PROTOCOL_MODELS_PREFIX = "/v2/models/"
PROTOCOL_INFER_SUFFIX = "/infer"
# The probes; the dashboard's page and the API documentation with its schema (their files are
# under /ui/): they hold no data, and both pages ask for the key before they call the API.
OPEN_PATHS = frozenset(
    {"/healthz", "/readyz", "/v2/health/live", "/v2/health/ready", "/", "/docs", "/openapi.json"}
)
OPEN_PREFIX = "/ui/"
READ_METHODS = frozenset({"GET", "HEAD"})
REQUEST_ID_HEADER = b"x-request-id"


async def send_json(
    send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def first_header(scope: Scope, name: bytes) -> bytes | None:
    """The request's first header of this (lower-case) name, as the framework reads it."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


class RequestIds:
    """Gives every request an id (the client's X-Request-ID when it is sane); app/request_edge.py
    echoes it back."""

    def __init__(self) -> None:
        # 32 hex digits, unique across processes and restarts: a random half drawn once, and a
        # count. uuid4() per request read the kernel's random source each time: about a tenth
        # of the event loop's time at 64 connections.
        self.prefix, self.counter = secrets.token_hex(8), itertools.count()

    def assign(self, scope: Scope) -> str:
        """The request's id, kept where its answer, its log lines and the 500 handler find it."""
        given = first_header(scope, REQUEST_ID_HEADER)
        request_id = (
            given.decode()
            if given and len(given) <= 64 and given.isascii() and given.replace(b"-", b"").isalnum()
            else f"{self.prefix}{next(self.counter):016x}"
        )
        # Kept in the scope, where the 500 handler (outside the middleware) still sees it.
        scope.setdefault("state", {})["request_id"] = request_id
        # Every line logged for this request carries its id. Not reset on the way out: the server
        # runs each request in its own task, whose copy of the context ends with it, and the 500
        # handler and the server's access and error lines, all written after the middleware
        # returns, are the request's lines too.
        logs.request_id.set(request_id)
        return request_id


@dataclass(frozen=True)
class Refusal:
    """An answer given from a request's headers alone."""

    status: int
    detail: str
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


class ApiKeys:
    """Bearer-key access: the admin key may do anything, the predict key may read and predict."""

    def __init__(self, settings: Settings) -> None:
        self.admin = _secret(settings.admin_key)
        self.predict = _secret(settings.predict_key)

    def refusal(self, scope: Scope) -> Refusal | None:
        """401 or 403 for a request its key does not allow; notes the key's role in the scope."""
        if (
            scope["path"] in OPEN_PATHS
            or (scope["path"].startswith(OPEN_PREFIX) and scope["method"] in READ_METHODS)
            or not (self.admin or self.predict)
        ):
            return None
        role = self._role(first_header(scope, b"authorization"))
        if role is None:
            return Refusal(
                401,
                "missing or invalid API key: send Authorization: Bearer <key>",
                [(b"www-authenticate", b'Bearer realm="trainserve"')],
            )
        # For the records that say who changed what (an alias move's history).
        scope.setdefault("state", {})["key_role"] = role
        if role == "predict" and not _predict_key_may(scope["method"], scope["path"]):
            return Refusal(403, "this key may only read and predict; changes need the admin key")
        return None

    def _role(self, authorization: bytes | None) -> str | None:
        if not authorization or authorization[:7].lower() != b"bearer ":
            return None
        given = authorization[7:].strip()
        # compare_digest takes the same time wherever the first difference is.
        is_admin = self.admin is not None and hmac.compare_digest(given, self.admin)
        is_predict = self.predict is not None and hmac.compare_digest(given, self.predict)
        return "admin" if is_admin else "predict" if is_predict else None


def _secret(value: Any) -> bytes | None:
    return None if value is None else value.get_secret_value().encode()


def is_inference(path: str) -> bool:
    """A route that classifies: /predict..., /predictions/... and the protocol's
    /v2/models/.../infer."""
    return (
        path == PREDICT_PREFIX
        or path.startswith(PREDICT_PREFIX + "/")
        or path.startswith(TORCHSERVE_PREFIX)
        or (path.startswith(PROTOCOL_MODELS_PREFIX) and path.endswith(PROTOCOL_INFER_SUFFIX))
    )


def _predict_key_may(method: str, path: str) -> bool:
    return method in READ_METHODS or is_inference(path)


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body too large: the limit here is {limit} bytes")


class BodyLimits:
    """How large a request's body may be, by its route: 413 at once when Content-Length says
    more; the body's bytes are counted as they arrive (app/request_gate.py)."""

    def __init__(self, settings: Settings) -> None:
        self.predict_limit = settings.max_predict_bytes
        self.batch_limit = settings.max_batch_predict_bytes
        self.dataset_limit = settings.max_dataset_bytes
        self.weights_limit = settings.max_weights_bytes

    def limit(self, scope: Scope) -> int | None:
        """The request's limit in bytes; None for a method that sends no body."""
        if scope["method"] in READ_METHODS:
            return None
        path: str = scope["path"]
        if path == BATCH_PREDICT_PATH:
            return self.batch_limit
        if path == ROWS_PATH:
            return ROWS_BODY_LIMIT_BYTES
        if path.startswith(PROTOCOL_MODELS_PREFIX) and path.endswith(PROTOCOL_INFER_SUFFIX):
            return self.predict_limit
        if path == DATASETS_PATH:
            return self.dataset_limit
        if path == WEIGHTS_PATH:
            return self.weights_limit
        if path.startswith(PREDICT_PREFIX):  # /predict and /predictions/...
            return self.predict_limit
        return JSON_BODY_LIMIT_BYTES

    @staticmethod
    def refusal(scope: Scope, limit: int | None) -> Refusal | None:
        """400 for a Content-Length that is no number, 413 for one over the limit."""
        if limit is None:
            return None
        declared = first_header(scope, b"content-length")
        if declared is not None and not declared.isdigit():
            return Refusal(400, "invalid Content-Length header")
        if declared is not None and int(declared) > limit:
            return Refusal(413, BodyTooLarge(limit).detail)
        return None


class NotingStart:
    """A `send` that notes whether the response has begun: until then another answer may still
    be given in its place."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        self.started = self.started or message["type"] == "http.response.start"
        await self.send(message)
