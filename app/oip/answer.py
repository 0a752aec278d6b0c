"""What the protocol's /infer answers, from the request as it arrived: the model its path
names, the body parsed, the inference, the encoded answer. Shared by the documented routes
(app/api/v2.py) and their fast path (app/api/fast_inference.py)."""

import re

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from app.oip import request as oip_request
from app.oip.errors import NotFound
from app.oip.inference import infer
from app.oip.response import encode
from app.registry.names import VERSION_MAX, is_name
from app.serving.lookup import Target
from app.serving.service import Predictions

INLINE_PARSE_MAX_BYTES = 16 * 1024
DIGITS = re.compile(r"[0-9]{1,10}")  # ASCII digits: str.isdigit() also takes "²"


def target_of(name: str, version: str | None) -> Target:
    """The model and version a protocol path names; 404 for a name or version none can have."""
    if not is_name(name):
        raise NotFound(f"model '{name[:70]}' not found")
    if version is None:
        return Target(model=name)
    if not DIGITS.fullmatch(version) or not 1 <= int(version) <= VERSION_MAX:
        raise NotFound(f"model '{name}' has no version '{version[:20]}'")
    return Target(model=name, version=int(version))


async def infer_answer(
    request: Request,
    predictions: Predictions,
    max_batch_files: int,
    name: str,
    version: str | None,
    header_length: str | None,
) -> Response:
    """The answer to an /infer request for the model `name` (at `version`)."""
    target = target_of(name, version)
    received = await request.body()
    # A large JSON body is parsed on a thread, so as not to hold up the event loop; a small one
    # (an image as a binary tensor) parses faster than the hop to a thread would take.
    if len(received) <= INLINE_PARSE_MAX_BYTES:
        parsed = oip_request.parse(received, header_length)
    else:
        parsed = await run_in_threadpool(oip_request.parse, received, header_length)
    inferred = await infer(predictions, target, parsed, max_batch_files)
    answer, headers = encode(name, parsed.id, inferred)
    return Response(answer, headers=headers)
