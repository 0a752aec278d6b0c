"""Slow clients are bounded: headers that dribble in and bodies that stop are cut off, and a
process takes no more connections than it is told, while predictions go on being answered."""

import io
import json
import select
import socket
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.conftest import synthetic_split
from tests.e2e.conftest import Service, train_tiny_model, wait_for

# Once, on SQLite: the server's handling of slow clients does not depend on the database.
pytestmark = [pytest.mark.e2e, pytest.mark.database("sqlite")]

SLOW_CLIENTS = 300
HEADER_TIMEOUT_S = 1.0
DRIP_INTERVAL_S = 0.25
REQUEST_HEAD = b"GET /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"x" * 64


def a_png() -> bytes:
    pixels = synthetic_split(1, seed=4)[0][0].transpose(1, 2, 0)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def connect(service: Service) -> socket.socket:
    return socket.create_connection(("127.0.0.1", service.port), timeout=5)


def closed_by_server(sock: socket.socket) -> bool:
    """True once the server has closed the connection (a read then gives end of file)."""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    try:
        return sock.recv(4096) == b""
    except ConnectionResetError:
        return True


@pytest.fixture
def trained(service: Service, synthetic_cifar: Path) -> Service:
    service.overrides["TRAINSERVE_HEADER_TIMEOUT_SECONDS"] = str(HEADER_TIMEOUT_S)
    service.overrides["TRAINSERVE_BODY_TIMEOUT_SECONDS"] = "1"
    service.start_api()
    worker = service.start_worker()
    train_tiny_model(service)
    worker.stop()
    return service


def test_headers_that_never_end_are_cut_off_while_predictions_go_on(trained: Service) -> None:
    clients = [connect(trained) for _ in range(SLOW_CLIENTS)]
    opened = time.monotonic()
    sent = dict.fromkeys(clients, 0)
    open_clients = set(clients)
    predictions = 0
    image = a_png()
    with httpx.Client(base_url=trained.url, timeout=10) as client:
        while open_clients and time.monotonic() - opened < 10 * HEADER_TIMEOUT_S:
            for sock in list(open_clients):
                if closed_by_server(sock):
                    open_clients.discard(sock)
                    continue
                try:  # one more byte of a request that never ends
                    at = sent[sock] % len(REQUEST_HEAD)
                    sock.send(REQUEST_HEAD[at : at + 1])
                    sent[sock] += 1
                except (BrokenPipeError, ConnectionResetError):
                    open_clients.discard(sock)
            answer = client.post("/predict", files={"file": ("ok.png", image)})
            assert answer.status_code == 200, answer.text
            predictions += 1
            time.sleep(DRIP_INTERVAL_S)
    took = time.monotonic() - opened
    for sock in clients:
        sock.close()
    assert not open_clients, f"{len(open_clients)} slow clients still open after {took:.1f} s"
    assert took < 4 * HEADER_TIMEOUT_S + 2, took
    assert min(sent.values()) >= 2  # each was still sending when it was cut off
    assert predictions >= 2


def test_a_body_that_stops_arriving_is_answered_408(trained: Service) -> None:
    sock = connect(trained)
    sock.sendall(
        b"POST /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"epochs":'
    )
    sock.settimeout(10)
    started = time.monotonic()
    answer = b""
    while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        answer += chunk
    waited = time.monotonic() - started
    sock.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), answer
    assert json.loads(body) == {"detail": "the request body stopped arriving: nothing came for 1 s"}
    assert 0.9 < waited < 5, waited
    with trained.client() as client:  # nothing was queued from the half body
        assert client.get("/jobs").json()["total"] == 1


def test_a_body_answered_before_it_was_read_does_not_hold_the_connection(
    service: Service,
) -> None:
    service.start_api()
    sock = connect(service)
    # Over the JSON limit by its Content-Length: answered 413 at once, the body never read.
    sock.sendall(
        b"POST /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 10000000\r\n\r\n{"
    )
    sock.settimeout(5)
    assert sock.recv(4096).startswith(b"HTTP/1.1 413 ")
    started = time.monotonic()
    dripped = 0
    while not closed_by_server(sock) and time.monotonic() - started < 10:
        try:  # the rest of the body, at a trickle
            sock.send(b" ")
            dripped += 1
        except (BrokenPipeError, ConnectionResetError):
            break
        time.sleep(DRIP_INTERVAL_S)
    took = time.monotonic() - started
    sock.close()
    assert took < 2, f"still open after {took:.1f} s ({dripped} bytes dripped)"


def test_a_client_that_sends_its_whole_body_before_reading_still_gets_the_answer(
    service: Service,
) -> None:
    # As most clients do (httpx, requests, curl): the server answers 413 from the headers
    # alone, and the client reads only once its body is sent. Were the server to close with that
    # body unread, the kernel's reset would reach the client before it read the 413, and lose it.
    service.start_api()
    sock = connect(service)
    body = b'{"pad": "' + b"x" * 200_000 + b'"}'
    sock.sendall(
        b"POST /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
    )
    time.sleep(0.5)  # answered by now
    sock.sendall(body)
    time.sleep(0.5)
    sock.settimeout(5)
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    sock.close()
    head, _, detail = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 "), answer
    # The body was not read: the connection cannot carry another request, and says so.
    assert b"\r\nconnection: close" in head.lower()
    assert json.loads(detail) == {"detail": "request body too large: the limit here is 65536 bytes"}


def test_connections_beyond_the_limit_are_answered_503(service: Service) -> None:
    service.overrides["TRAINSERVE_MAX_CONNECTIONS"] = "4"
    service.start_api()
    held = [connect(service) for _ in range(4)]
    time.sleep(0.5)
    with httpx.Client(base_url=service.url, timeout=10) as client:
        refused = client.get("/healthz")
        assert (refused.status_code, refused.text) == (503, "Service Unavailable")
        for sock in held:
            sock.close()
        wait_for(lambda: client.get("/healthz").status_code == 200, 10, "never answered again")
