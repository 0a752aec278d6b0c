"""One ASGI layer for what every request passes inside CORS: its metrics, the API keys, the
body's size limit and the body's idle limit.

They were four layers of middleware, each wrapping `receive` and `send` once more: every time a
request waited (for its body, for the batcher's answer) it was suspended and resumed through all
of them, and every message went through four wrappers. Here one wrapper of each does it all.
The rules stay where they were: the keys and size limits in app/middleware.py, the metrics in
app/metrics.py, the idle limit's error in app/slow_clients.py.
"""

import asyncio
import time

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.metrics import RequestMetrics
from app.middleware import ApiKeys, BodyLimits, BodyTooLarge, send_json
from app.settings import Settings
from app.slow_clients import BodyTimeout


class RequestGate:
    """Counts and times every request (by method, route template and status, the refusals here
    included); 401/403 by the keys; 400/413 by Content-Length; 413 once more bytes than the
    limit have arrived; 408 when the body stops arriving for TRAINSERVE_BODY_TIMEOUT_SECONDS
    between two chunks (once the body is complete, waits are not limited)."""

    def __init__(self, app: ASGIApp, settings: Settings, routes_from: FastAPI) -> None:
        self.app = app
        self.keys, self.limits = ApiKeys(settings), BodyLimits(settings)
        self.metrics = RequestMetrics(routes_from)
        self.body_timeout_s = settings.body_timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets when the app fails before answering
        began = False  # whether the answer has begun: until then another may take its place
        limit = self.limits.limit(scope)
        received, body_complete = 0, False

        async def gated_send(message: Message) -> None:
            nonlocal status, began
            if message["type"] == "http.response.start":
                status, began = message["status"], True
            await send(message)

        async def gated_receive() -> Message:
            nonlocal received, body_complete
            if body_complete:
                return await receive()
            try:
                # A timeout scope, not wait_for(): that wraps every receive in a task of its own.
                async with asyncio.timeout(self.body_timeout_s):
                    message = await receive()
            except TimeoutError:
                raise BodyTimeout(self.body_timeout_s) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if limit is not None and received > limit:
                    raise BodyTooLarge(limit)
            body_complete = message["type"] != "http.request" or not message.get("more_body")
            return message

        try:
            refusal = self.keys.refusal(scope) or self.limits.refusal(scope, limit)
            if refusal is not None:
                detail = {"detail": refusal.detail}
                await send_json(gated_send, refusal.status, detail, refusal.headers)
                return
            try:
                await self.app(scope, gated_receive, gated_send)
            except (BodyTooLarge, BodyTimeout) as exc:
                # Raised by a body read where the framework does not answer it (outside a
                # route); answered here unless an answer has begun.
                if not began:
                    await send_json(gated_send, exc.status_code, {"detail": exc.detail})
        finally:
            self.metrics.record(scope, status, time.perf_counter() - started)
