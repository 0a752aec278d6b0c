"""A proxy in front of the real S3 server that misbehaves as told: it cuts every GET's body off
halfway (the connection closed mid-download), answers every PUT with an error of its own, or
changes a byte of every PUT's body on the way. Everything else passes through unchanged, the
Host header too, so that signatures still match; the Content-MD5 of each PUT is noted.
"""

import http.client
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

ERROR_BODY = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    "<Error><Code>{code}</Code><Message>{message}</Message></Error>"
)


@dataclass
class Faults:
    cut_gets: bool = False
    put_error: tuple[int, str, str] | None = None  # status, S3 error code, message
    damage_puts: bool = False
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

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            if self.command == "PUT":
                faults.put_md5s.append(self.headers.get("Content-MD5"))
                if faults.damage_puts and body:
                    body = bytes([body[0] ^ 1]) + body[1:]
            if self.command == "PUT" and faults.put_error is not None:
                status, code, message = faults.put_error
                self._answer(status, ERROR_BODY.format(code=code, message=message).encode())
                return
            upstream = http.client.HTTPConnection(host, target.port, timeout=30)
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                upstream.putheader(name, value)
            upstream.endheaders(body)
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
        server.shutdown()
        server.server_close()
