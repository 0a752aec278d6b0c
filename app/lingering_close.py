"""Answering a request before reading its body, without losing the answer.

The service answers some requests from their headers alone (a 401, a 413 from Content-Length, a
404) and does not read the rest of the body. Two things must then hold for the client to get
that answer:

- the answer says `Connection: close` (app/request_edge.py), or a keep-alive client sends its next
  request on a connection the server is about to close, and loses it;
- the server does not close its socket while the client's body is still arriving: closing with
  unread data makes the kernel send a reset, which can reach a client that sends its whole body
  before reading (httpx, requests, curl) before it reads the answer. So the server half-closes
  (the answer, then end of file), reads and drops what still comes for a while, then closes: a
  "lingering close", as web servers do (LingeringTransport, used by app/slow_clients.py).
"""

import asyncio
from typing import Any, Protocol

from starlette.types import Scope

# How long and how much of an answered request's body the server reads and drops before closing.
LINGER_SECONDS = 2.0
LINGER_MAX_BYTES = 64 * 1024 * 1024


def has_body(scope: Scope) -> bool:
    """Whether the request's headers announce a body."""
    for name, value in scope["headers"]:
        if name == b"transfer-encoding":
            return True
        if name == b"content-length":
            return value.strip() not in (b"0", b"")
    return False


class Lingering(Protocol):
    """What a connection's protocol tells its LingeringTransport."""

    request_body_complete: bool

    def linger(self) -> None: ...


class LingeringTransport:
    """A connection's transport as a request's cycle sees it: closing it lingers first when the
    request's body was not all read; everything else goes to the transport itself."""

    def __init__(self, transport: asyncio.Transport, protocol: Lingering) -> None:
        self._transport, self._protocol = transport, protocol

    def close(self) -> None:
        if self._protocol.request_body_complete:
            self._transport.close()
        else:
            self._protocol.linger()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class LingeringReader:
    """The read side of a lingering connection: counts and drops what arrives; closes the
    connection after LINGER_SECONDS, or at once past LINGER_MAX_BYTES."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport, self.dropped_bytes = transport, 0
        if not transport.can_write_eof():  # TLS cannot half-close
            transport.close()
            return
        transport.write_eof()  # the answer, then end of file: the client reads both
        transport.resume_reading()
        loop.call_later(LINGER_SECONDS, transport.close)

    def drop(self, data: bytes) -> None:
        self.dropped_bytes += len(data)
        if self.dropped_bytes > LINGER_MAX_BYTES:
            self.transport.close()
