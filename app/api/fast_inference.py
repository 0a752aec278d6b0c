"""The inference routes' fast path: POST /predict and the protocol's /infer, answered below the
framework's dependency solving.

At 64 connections a prediction's own work (decoding the image, its share of a batched forward
pass) was about 2% of the event loop's time; solving the routes' dependencies and validating
their parameters took a third. These routes take little: a model to name, a count, a flag. So a
plain route placed ahead of the documented one parses them itself and calls the same code the
documented route calls. The documented route stays: it makes the OpenAPI document, and routing
goes on to it for every request whose query the fast path does not read as it is (a parameter
out of its plain form, unknown or repeated, or two models named), so that a 422 says exactly
what it always said.
"""

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

from fastapi import FastAPI
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import Match, Route
from starlette.types import Message, Receive, Scope, Send

from app.errors import InvalidInput
from app.middleware import first_header
from app.models import JOB_ID_MAX
from app.oip.answer import infer_answer
from app.oip.errors import PROTOCOL_PREFIX
from app.oip.response import HEADER_LENGTH
from app.registry.names import VERSION_MAX, is_name
from app.serving.lookup import Target
from app.serving.one_image import answer_upload, image_upload, the_one_file
from app.serving.plain_form import one_file_of_plain_form, plain_form_boundary
from app.serving.schemas import TOP_K_MAX
from app.serving.uploads import display_name
from app.settings import get_settings

PLAIN_NUMBER = re.compile(r"[1-9][0-9]{0,9}")
PLAIN_FLAGS = {"true": True, "false": False}
TARGET_NAMES = ("job_id", "model", "alias", "version")
QUERY_NAMES = frozenset({"top_k", "resize", *TARGET_NAMES})
PARSE_FAILED = "There was an error parsing the body"  # the framework's words for the same failure
QUERY_KEY = "trainserve.predict_query"  # where the route's match leaves the query it read


class NotPlain(Exception):
    """A query the fast path leaves to the documented route."""


@dataclass(frozen=True)
class PredictQuery:
    target: Target
    top_k: int | None = None
    resize: bool = True


def _number(value: str, high: int) -> int:
    if not PLAIN_NUMBER.fullmatch(value) or int(value) > high:
        raise NotPlain
    return int(value)


def _name(value: str) -> str:
    if not is_name(value):
        raise NotPlain
    return value


def plain_query(query_string: bytes) -> PredictQuery | None:
    """A /predict query whose every parameter is one the route takes, given once in its plain
    form (digits in range, a registry name, true or false); None for any other."""
    if not query_string:
        return PredictQuery(Target())
    given: dict[str, str] = {}
    # Decoded as the framework decodes a query.
    for key, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if key not in QUERY_NAMES or key in given:
            return None
        given[key] = value
    try:
        target = Target(
            job_id=_number(given["job_id"], JOB_ID_MAX) if "job_id" in given else None,
            model=_name(given["model"]) if "model" in given else None,
            alias=_name(given["alias"]) if "alias" in given else None,
            version=_number(given["version"], VERSION_MAX) if "version" in given else None,
        )
        top_k = _number(given["top_k"], TOP_K_MAX) if "top_k" in given else None
        resize = PLAIN_FLAGS[given["resize"]] if "resize" in given else True
    except (NotPlain, KeyError, InvalidInput):
        # InvalidInput: a target that names two models. The documented route says so, once it
        # has read the body and found nothing wrong with it first.
        return None
    return PredictQuery(target, top_k, resize)


async def read_form(request: Request) -> FormData:
    """The request's form as the documented route reads it: a refusal on the way (a body too
    large or too slow) as it was raised, any other failure to parse as a 400. The limits on
    files and fields are Starlette's defaults, as the documented route's are while no router
    sets FastAPI's `form_limits`."""
    try:
        return await request.form()
    except HTTPException:
        raise
    except Exception as exc:
        raise HTTPException(400, PARSE_FAILED) from exc


class FastPredictRoute(Route):
    """POST /predict whose query is plain; routing goes on to the documented route for any
    other."""

    def __init__(self) -> None:
        super().__init__("/predict", FastPredict(), methods=["POST"], include_in_schema=False)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is Match.FULL:
            query = plain_query(scope.get("query_string", b""))
            if query is None:
                return Match.NONE, {}
            child_scope[QUERY_KEY] = query
        return match, child_scope


class FastPredict:
    """POST /predict, answered as its documented route answers it."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query: PredictQuery = scope[QUERY_KEY]
        upload = await _the_image(scope, receive, send)
        answer = await answer_upload(
            scope["app"].state.predictions, upload, query.target, query.top_k, query.resize
        )
        await answer(scope, receive, send)


async def _the_image(scope: Scope, receive: Receive, send: Send) -> tuple[str, bytes]:
    """The request's one image (its name for messages, its bytes), as the documented route
    reads it. A small form arrives whole in its first message: in the plain shape it is read
    here; otherwise the general parser gets the same messages in turn."""
    boundary = plain_form_boundary(first_header(scope, b"content-type"))
    if boundary is not None:
        first = await receive()
        upload = _whole_plain_form(first, boundary)
        if upload is not None:
            return upload
        receive = _replaying(first, receive)
        del first  # the parser lets go of it once read
    request = Request(scope, receive, send)
    form = await read_form(request)
    try:
        return await image_upload(request, the_one_file(form))
    finally:
        await form.close()


def _whole_plain_form(message: Message, boundary: bytes) -> tuple[str, bytes] | None:
    """The one file of a form that came whole in `message`, in the plain shape."""
    if message["type"] != "http.request" or message.get("more_body", False):
        return None
    upload = one_file_of_plain_form(message.get("body", b""), boundary)
    return None if upload is None else (display_name(upload[0]), upload[1])


def _replaying(first: Message, receive: Receive) -> Receive:
    """`receive` with `first`, already received, given back first."""
    pending = [first]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


class FastInfer:
    """POST /v2/models/{name}[/versions/{version}]/infer: its documented routes validate nothing
    that the protocol's own parsing does not."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        params = scope["path_params"]
        answer = await infer_answer(
            request,
            scope["app"].state.predictions,
            get_settings().max_batch_files,
            params["name"],
            params.get("version"),
            request.headers.get(HEADER_LENGTH),
        )
        await answer(scope, receive, send)


def install_fast_inference(app: FastAPI) -> None:
    """Put the fast routes ahead of the documented ones. (An instance, not a function, is what
    the router takes as a plain ASGI endpoint.)"""
    infer_paths = [
        f"{PROTOCOL_PREFIX}/models/{{name}}/infer",
        f"{PROTOCOL_PREFIX}/models/{{name}}/versions/{{version}}/infer",
    ]
    app.router.routes[:0] = [
        FastPredictRoute(),
        *(Route(p, FastInfer(), methods=["POST"], include_in_schema=False) for p in infer_paths),
    ]
