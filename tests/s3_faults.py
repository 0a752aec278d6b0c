"""A proxy in front of the real S3 server that misbehaves as told: it cuts every GET's body off
halfway (the connection closed mid-download), answers every PUT with an error of its own,
changes a byte of every PUT's body on the way, or holds one PUT open with half its body sent to
the server (a client killed mid-upload). Everything else passes through unchanged, the Host
header too, so that signatures still match; the Content-MD5 of each PUT is noted.
"""

import http.client
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

ERROR_BODY = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    "<Error><Code>{code}</Code><Message>{message}</Message></Error>"
)


HOLD_LIMIT_S = 120  # a held PUT is let go after this even if the test never releases it


@dataclass(frozen=True)
class HeldPut:
    path: str  # /BUCKET/OBJECT
    length: int  # its Content-Length
    sent: int  # bytes of its body the server got before the proxy stopped


@dataclass
class PutHold:
    """Holds open the first PUT whose path contains `fragment` once `let_through` such PUTs
    went whole: the first half of its body goes to the server, then nothing more; once
    `release` is set, both connections are dropped unanswered, as a client killed mid-upload
    leaves them."""

    fragment: str
    let_through: int = 0
    held: HeldPut | None = None
    taken: bool = False
    release: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def takes(self, path: str) -> bool:
        """Whether to hold this PUT (counting it when it matches)."""
        with self._lock:
            if self.fragment not in path or self.taken:
                return False
            if self.let_through > 0:
                self.let_through -= 1
                return False
            self.taken = True
            return True

    def wait(self, timeout_s: float) -> HeldPut:
        """The held PUT, once half its body reached the server."""
        deadline = time.monotonic() + timeout_s
        while self.held is None:
            assert time.monotonic() < deadline, f"no PUT to {self.fragment} was held"
            time.sleep(0.01)
        return self.held


@dataclass
class Faults:
    cut_gets: bool = False
    put_error: tuple[int, str, str] | None = None  # status, S3 error code, message
    damage_puts: bool = False
    hold: PutHold | None = None
    put_md5s: list[str | None] = field(default_factory=list)  # each PUT's Content-MD5 header


@contextmanager
def faulty_proxy(endpoint: str, faults: Faults) -> Iterator[str]:
    """The proxy's endpoint (http://127.0.0.1:PORT) while the block runs."""
    target = urlsplit(endpoint)
    host = target.hostname or "127.0.0.1"

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _upstream(self) -> http.client.HTTPConnection:
            """A connection to the server with this request's line and headers sent."""
            upstream = http.client.HTTPConnection(host, target.port, timeout=30)
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                upstream.putheader(name, value)
            upstream.endheaders()
            return upstream

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            hold = faults.hold
            if self.command == "PUT" and hold is not None and hold.takes(self.path):
                self._hold(hold, length)
                return
            body = self.rfile.read(length) if length else None
            if self.command == "PUT":
                faults.put_md5s.append(self.headers.get("Content-MD5"))
                if faults.damage_puts and body:
                    body = bytes([body[0] ^ 1]) + body[1:]
            if self.command == "PUT" and faults.put_error is not None:
                status, code, message = faults.put_error
                self._answer(status, ERROR_BODY.format(code=code, message=message).encode())
                return
            upstream = self._upstream()
            if body:
                upstream.send(body)
            answer = upstream.getresponse()
            data = answer.read()
            upstream.close()
            self.send_response(answer.status)
            passed = ["connection", "transfer-encoding"]
            if self.command != "HEAD":  # a HEAD's Content-Length is the object's, kept
                passed.append("content-length")
                self.send_header("Content-Length", str(len(data)))
            for name, value in answer.getheaders():
                if name.lower() not in passed:
                    self.send_header(name, value)
            self.end_headers()
            if self.command == "GET" and faults.cut_gets and len(data) > 1:
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(data)

        def _hold(self, hold: PutHold, length: int) -> None:
            upstream = self._upstream()
            half = length // 2
            upstream.send(self.rfile.read(half))
            hold.held = HeldPut(self.path, length, half)
            hold.release.wait(HOLD_LIMIT_S)
            upstream.close()
            self.close_connection = True

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _forward

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        if faults.hold is not None:
            faults.hold.release.set()
        server.shutdown()
        server.server_close()
