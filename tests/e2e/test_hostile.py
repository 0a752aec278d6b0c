"""Whatever anyone sends a live server, it answers with the documented 4xx and keeps its memory."""

import io
import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import Env
from tests.e2e.conftest import Process, Service, train_tiny_model
from tests.e2e.hostile_inputs import HOSTILE_INPUTS

# Once, on SQLite: what the HTTP layer answers does not depend on the database.
pytestmark = [pytest.mark.e2e, pytest.mark.database("sqlite")]

ROUNDS = 5
MAX_GROWTH_MB = 50
TOO_LARGE_PREDICT = b'{"detail":"request body too large: the limit here is 1048576 bytes"}'
TOO_LARGE_JSON = b'{"detail":"request body too large: the limit here is 65536 bytes"}'


def rss_mb(process: Process) -> float:
    for line in Path(f"/proc/{process.popen.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def valid_png() -> bytes:
    pixels = np.random.default_rng(3).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def raw_exchange(port: int, head: bytes, chunks: list[bytes], *, finish: bool) -> bytes:
    """Send a request over a bare socket, chunk by chunk, and return the status line and body."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        for chunk in chunks:
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        if finish:
            sock.sendall(b"0\r\n\r\n")
        received = b""
        while b"\r\n\r\n" not in received or not received.rstrip().endswith(b"}"):
            data = sock.recv(65536)
            if not data:
                break
            received += data
    status_line = received.split(b"\r\n", 1)[0]
    return status_line + b" " + received.split(b"\r\n\r\n", 1)[-1].strip()


def chunked_head(path: bytes, content_type: bytes) -> bytes:
    return (
        b"POST "
        + path
        + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
        + content_type
        + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
    )


@pytest.fixture
def trained_service(env: Env, service: Service, synthetic_cifar: Path) -> Process:
    # A 1 MiB limit (the default fits a 20 MiB photo): the limit's tests then send a few MiB.
    service.overrides["TRAINSERVE_MAX_PREDICT_BYTES"] = str(1024 * 1024)
    api = service.start_api()
    worker = service.start_worker()
    train_tiny_model(service)
    worker.stop()
    return api


def test_hostile_inputs_get_their_documented_answers_and_memory_stays(
    trained_service: Process, service: Service
) -> None:
    client = service.client()
    assert client.post("/predict", files={"file": ("ok.png", valid_png())}).status_code == 200
    before = rss_mb(trained_service)

    outcomes: dict[int, int] = {}
    for _ in range(ROUNDS):
        for hostile in HOSTILE_INPUTS:
            response = hostile.send(client)
            assert response.status_code == hostile.status, (hostile.name, response.text)
            if hostile.detail is None:
                assert response.json()["label"] in response.json()["probabilities"], hostile.name
            else:
                assert response.json()["detail"] == hostile.detail, hostile.name
            outcomes[response.status_code] = outcomes.get(response.status_code, 0) + 1

    growth = rss_mb(trained_service) - before
    answer = client.post("/predict", files={"file": ("ok.png", valid_png())})
    assert answer.status_code == 200
    assert growth < MAX_GROWTH_MB, f"the API grew by {growth:.1f} MB"
    assert trained_service.popen.poll() is None
    assert len(HOSTILE_INPUTS) >= 25
    print(
        f"\nhostile inputs: {len(HOSTILE_INPUTS)} kinds x {ROUNDS} rounds, outcomes {outcomes}, "
        f"API memory {before:.0f} MB -> {before + growth:.0f} MB ({growth:+.1f} MB)"
    )


def test_chunked_uploads_cannot_get_around_the_limits(
    trained_service: Process, service: Service
) -> None:
    chunk = b"\0" * 65536
    part_head = (
        b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
        b"Content-Type: image/png\r\n\r\n"
    )
    # A well-formed upload whose 17 chunks of 64 KiB cross the 1 MiB limit: the answer comes
    # before the body ends.
    early = raw_exchange(
        service.port,
        chunked_head(b"/predict", b"multipart/form-data; boundary=x"),
        [part_head, *[chunk] * 17],
        finish=False,
    )
    assert early == b"HTTP/1.1 413 Request Entity Too Large " + TOO_LARGE_PREDICT
    json_answer = raw_exchange(
        service.port,
        chunked_head(b"/jobs", b"application/json"),
        [b"[" + b" " * 65536],
        finish=False,
    )
    assert json_answer == b"HTTP/1.1 413 Request Entity Too Large " + TOO_LARGE_JSON
    # A small chunked job is fine.
    small = raw_exchange(
        service.port,
        chunked_head(b"/jobs", b"application/json"),
        [b'{"epochs": 1}'],
        finish=True,
    )
    assert small.startswith(b"HTTP/1.1 202 Accepted ")
    assert service.client().get("/healthz").status_code == 200


def test_the_keys_never_reach_the_log(env: Env, service: Service) -> None:
    admin, predict = "admin-7b1e6c0f93", "predict-52c9aa1d07"
    service.overrides = {"TRAINSERVE_ADMIN_KEY": admin, "TRAINSERVE_PREDICT_KEY": predict}
    api = service.start_api()
    client = service.client()
    for key in (admin, predict, "wrong-key-0f0f0f"):
        headers = {"Authorization": f"Bearer {key}"}
        client.get("/jobs", headers=headers)
        client.post("/jobs", headers=headers)
        client.post("/predict", headers=headers, files={"file": ("x.png", b"x")})
    assert client.get("/jobs").status_code == 401
    api.stop()
    log = api.log()
    assert "GET /jobs" in log  # the access log was written...
    for secret in (admin, predict, "wrong-key-0f0f0f"):
        assert secret not in log  # ...without any key in it


def test_an_open_api_on_all_interfaces_warns_at_start(env: Env, service: Service) -> None:
    from tests.e2e.conftest import TRAINSERVE

    api = service.start("api", TRAINSERVE, "api", "--host", "0.0.0.0", "--port", str(service.port))
    service.wait_until_up(api)
    assert "no API keys are set and the API listens on 0.0.0.0" in api.log()


def test_a_content_length_that_is_not_a_number_is_400(
    trained_service: Process, service: Service
) -> None:
    with socket.create_connection(("127.0.0.1", service.port), timeout=30) as sock:
        sock.sendall(
            b"POST /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: abc\r\n\r\n{}"
        )
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert service.client().get("/healthz").status_code == 200
