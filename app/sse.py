"""Server-Sent Events on the wire: the response that carries them and how one is written."""

import asyncio
import json
import math
from collections.abc import AsyncGenerator
from typing import Any

from fastapi.sse import format_sse_event
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from app.middleware import NotingStart

# A comment line, so that proxies and browsers that drop a silent connection see traffic. No
# blank line after it: that would end an event, and some clients (httpx-sse) hand out an empty
# one carrying the last id; a comment line alone is skipped by every parser.
KEEPALIVE = b": ping\n"
KEEPALIVE_SECONDS = 15.0

# One event's fields, for the OpenAPI document (it renders them as OpenAPI 3.1 can).
SSE_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "data": {"type": "string"},
        "event": {"type": "string"},
        "id": {"type": "string"},
        "retry": {"type": "integer", "minimum": 0},
    },
}


class EventStreamResponse(StreamingResponse):
    """A text/event-stream response that closes its generator as soon as it stops, however it
    stops: a client that went away is an ordinary end, whatever the generator holds is let go
    of at once, and nothing is left to fail (and be logged) later."""

    media_type = "text/event-stream"

    def __init__(self, events: AsyncGenerator[bytes, None]) -> None:
        super().__init__(events, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self._events = events

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        noting = NotingStart(send)
        try:
            await super().__call__(scope, receive, noting)
        except asyncio.CancelledError:
            # Only a stopping server cancels a stream from outside (a client that goes away is
            # handled inside), once TRAINSERVE_SHUTDOWN_GRACE_SECONDS are over. For an event
            # stream that is an ordinary end: close it properly, and the client resumes.
            if not noting.started:
                raise
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await self._events.aclose()


def sse_message(
    *, event: str | None = None, id: str | None = None, data: Any = None, **fields: Any
) -> bytes:
    """One event (or a comment: comment=...) as the stream writes it; `data` goes as JSON."""
    data_str = None if data is None else json.dumps(_finite(data))
    return format_sse_event(data_str=data_str, event=event, id=id, **fields)


def _finite(data: Any) -> Any:
    # NaN is not JSON: a diverged loss is sent as null.
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {key: _finite(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_finite(value) for value in data]
    return data
