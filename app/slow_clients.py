"""Bounds on slow clients: how long a request's headers and body may take to arrive.

A client that sends its headers a byte at a time, or stops in the middle of a body, would
otherwise hold its connection (a file descriptor, a parser, maybe a thread) for ever. The header
deadline has to live in the HTTP protocol itself, since no ASGI code runs before the headers are
complete; the body's idle limit is applied with the body size limits, by app/request_gate.py.
"""

import asyncio

from starlette.exceptions import HTTPException
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from app.lingering_close import LingeringReader, LingeringTransport
from app.logs import request_id
from app.settings import get_settings

REQUEST_TIMEOUT = 408


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol, closing a connection whose request line and headers have not
    all arrived within TRAINSERVE_HEADER_TIMEOUT_SECONDS of its first byte (or of its opening)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, object],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.header_timeout_s = get_settings().header_timeout_seconds
        self.header_deadline: asyncio.TimerHandle | None = None
        self.request_body_complete = True
        self.lingering: LingeringReader | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        # asyncio may run this in the context of the request that last resumed reading: the
        # lines uvicorn logs from here belong to no request.
        request_id.set(None)
        if self.lingering is not None:
            self.lingering.drop(data)  # the rest of a body already answered
            return
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.request_body_complete = False
        self._arm()  # the next request on a kept-alive connection

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()
        if self.cycle is not None and self.cycle.transport is self.transport:  # not an upgrade
            # The request's cycle closes the connection after an answer that says
            # `Connection: close`; lingering first if the body was not all read.
            self.cycle.transport = LingeringTransport(self.transport, self)  # type: ignore[assignment]

    def on_message_complete(self) -> None:
        self.request_body_complete = True
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.request_body_complete and self.lingering is None:
            # Answered before its body was read (a 401, a 413, a 404...) with the connection
            # kept alive (RequestEdge said close: an answer by some other way did not):
            # the rest of the body would hold it open at the client's pace, so it is closed.
            self.linger()

    def linger(self) -> None:
        """Close after a bounded linger (app/lingering_close.py)."""
        if self.lingering is None and not self.transport.is_closing():
            self._disarm()
            self.lingering = LingeringReader(self.transport, self.loop)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self.header_deadline is None:
            self.header_deadline = self.loop.call_later(self.header_timeout_s, self._expire)

    def _disarm(self) -> None:
        if self.header_deadline is not None:
            self.header_deadline.cancel()
            self.header_deadline = None

    def _expire(self) -> None:
        self.header_deadline = None
        if self.flow.read_paused:
            # The server itself is not reading (a request before this one is still being
            # answered): the time is not the client's to lose.
            self._arm()
        elif not self.transport.is_closing():
            self.transport.close()


class BodyTimeout(HTTPException):
    def __init__(self, timeout_s: float) -> None:
        super().__init__(
            REQUEST_TIMEOUT,
            f"the request body stopped arriving: nothing came for {timeout_s:g} s",
        )
