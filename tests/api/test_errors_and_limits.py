"""No leaks on unexpected errors, request ids, CORS, and body limits (by Content-Length)."""

import logging
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from app.db import get_engine
from app.logs import ContextFields
from app.main import create_app
from app.settings import get_settings
from tests.conftest import Env


def test_an_unexpected_error_is_a_bare_500_with_a_request_id(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    with TestClient(create_app(), raise_server_exceptions=False) as client:
        # Break the database under the running service: the query fails in a way no route expects.
        with get_engine().begin() as db:
            for table in (
                *("alias_move", "model_alias", "model_version", "registered_model"),
                *("job_tag", "loss_point", "epoch_result", "job_event", "worker", "job"),
            ):
                db.execute(text(f"DROP TABLE {table}"))
        caplog.handler.addFilter(ContextFields())  # as the service's own handler has
        with caplog.at_level(logging.ERROR, logger="trainserve.api"):
            response = client.get("/jobs", headers={"X-Request-ID": "req-42"})
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error", "request_id": "req-42"}
    assert "Traceback" not in response.text
    assert "sqlite" not in response.text.lower() and "psycopg" not in response.text.lower()
    logged = [r for r in caplog.records if r.name == "trainserve.api"]
    assert [(r.getMessage(), r.request_id) for r in logged] == [  # type: ignore[attr-defined]
        ("unexpected error on GET /jobs", "req-42")
    ]
    assert logged[0].exc_info is not None  # the traceback is in the log, under the id


def test_every_response_carries_a_request_id(client: TestClient) -> None:
    generated = client.get("/healthz").headers["x-request-id"]
    assert len(generated) == 32
    assert (
        client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"]
        == "abc-123"
    )
    # An id that is not a plain token is replaced, not echoed.
    assert (
        client.get("/healthz", headers={"X-Request-ID": "a b\x7f"}).headers["x-request-id"]
        != "a b\x7f"
    )


def test_an_answer_before_the_body_was_read_closes_the_connection_and_only_then(
    client: TestClient,
) -> None:
    def connection_and_id(response: httpx.Response) -> tuple[str | None, str]:
        return response.headers.get("connection"), response.headers["x-request-id"]

    # Answered from the headers alone: a route that does not exist, a body over its limit.
    unread = client.post("/nothing", content=b"x" * 10, headers={"X-Request-ID": "r-1"})
    too_large = client.post("/jobs", content=b"x" * 70_000, headers={"X-Request-ID": "r-2"})
    assert (unread.status_code, too_large.status_code) == (404, 413)
    assert [connection_and_id(r) for r in (unread, too_large)] == [
        ("close", "r-1"),
        ("close", "r-2"),
    ]
    # The body read, or none sent: the connection stays open.
    read = client.post("/jobs", json={"epochs": 0}, headers={"X-Request-ID": "r-3"})
    bodiless = client.get("/healthz", headers={"X-Request-ID": "r-4"})
    assert read.status_code == 422
    assert [connection_and_id(r) for r in (read, bodiless)] == [(None, "r-3"), (None, "r-4")]


def test_cors_is_off_by_default(client: TestClient) -> None:
    response = client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in response.headers


@pytest.fixture
def cors_client(env: Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("TRAINSERVE_CORS_ORIGINS", "https://dash.example")
    get_settings.cache_clear()
    with TestClient(create_app()) as client:
        yield client


def test_cors_allows_only_the_listed_origins(cors_client: TestClient) -> None:
    allowed = cors_client.get("/healthz", headers={"Origin": "https://dash.example"})
    assert allowed.headers["access-control-allow-origin"] == "https://dash.example"
    other = cors_client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_a_cors_preflight_carries_a_request_id_a_browser_may_read(cors_client: TestClient) -> None:
    preflight = cors_client.options(
        "/jobs",
        headers={
            "Origin": "https://dash.example",
            "Access-Control-Request-Method": "POST",
            "X-Request-ID": "preflight-1",
        },
    )
    assert (preflight.status_code, preflight.headers["x-request-id"]) == (200, "preflight-1")
    answered = cors_client.get("/healthz", headers={"Origin": "https://dash.example"})
    assert answered.headers["access-control-expose-headers"] == "X-Request-ID"
    assert len(answered.headers["x-request-id"]) == 32


def test_a_predict_body_over_the_limit_is_413(client: TestClient) -> None:
    big = b"\x89PNG" + b"\0" * (20 * 1024 * 1024)  # over the default 20 MiB
    for response in (
        client.post("/predict", files={"file": ("big.png", big, "image/png")}),
        client.post("/predict", content=big, headers={"Content-Type": "image/png"}),
        client.put("/predictions/cifar10", content=big),
    ):
        assert response.status_code == 413
        assert response.json() == {
            "detail": "request body too large: the limit here is 20971520 bytes"
        }


def test_a_json_body_over_64_kib_is_413(client: TestClient) -> None:
    response = client.post(
        "/jobs",
        content=b'{"epochs": 1, "pad": "' + b"x" * 70_000 + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json() == {"detail": "request body too large: the limit here is 65536 bytes"}
    assert client.get("/jobs").json()["total"] == 0


def test_table_rows_have_their_own_small_limit(client: TestClient) -> None:
    rows = b'{"rows": [' + b'{"a": 1},' * 600_000 + b'{"a": 1}]}'  # about 5 MiB
    response = client.post(
        "/predict/rows", content=rows, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json() == {"detail": "request body too large: the limit here is 4194304 bytes"}
