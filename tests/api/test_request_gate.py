"""The request gate (app/request_gate.py): the metrics count every answer, the refusals of the
keys and of the limits, given from the headers or while the body arrives, among them."""

from collections.abc import Iterator

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.middleware import JSON_BODY_LIMIT_BYTES
from tests.api.conftest import ADMIN, PREDICT, bearer


def count(client: TestClient, route: str, status: str) -> float:
    wanted = {"method": "POST", "route": route, "status": status}
    exposition = client.get("/metrics", headers=bearer(ADMIN)).text
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == "trainserve_http_requests_total" and sample.labels == wanted:
                return float(sample.value)
    return 0.0


def chunks(total: int) -> Iterator[bytes]:
    """A body without Content-Length: only counting its bytes can find it too large."""
    for _ in range(total // 1024):
        yield b" " * 1024


def test_refusals_are_answered_and_counted_as_answers_are(keyed: TestClient) -> None:
    # The counters live for the whole test process: compare before and after.
    before = {status: count(keyed, "/jobs", status) for status in ("401", "403", "413", "422")}
    too_large = b" " * (JSON_BODY_LIMIT_BYTES + 1)
    admin_json = {**bearer(ADMIN), "content-type": "application/json"}
    answers = [
        keyed.post("/jobs", json={}),
        keyed.post("/jobs", json={}, headers=bearer("wrong")),
        keyed.post("/jobs", json={}, headers=bearer(PREDICT)),
        keyed.post("/jobs", content=too_large, headers=admin_json),
        keyed.post(
            "/jobs",
            content=chunks(2 * JSON_BODY_LIMIT_BYTES),
            headers=admin_json,
        ),
        keyed.post("/jobs", json={"epochs": 0}, headers=bearer(ADMIN)),
    ]
    too_large_detail = f"request body too large: the limit here is {JSON_BODY_LIMIT_BYTES} bytes"
    assert [(a.status_code, a.json()["detail"]) for a in answers[:5]] == [
        (401, "missing or invalid API key: send Authorization: Bearer <key>"),
        (401, "missing or invalid API key: send Authorization: Bearer <key>"),
        (403, "this key may only read and predict; changes need the admin key"),
        (413, too_large_detail),
        (413, too_large_detail),
    ]
    assert answers[5].status_code == 422 and answers[5].json()["errors"][0]["field"] == "epochs"
    assert answers[0].headers["www-authenticate"] == 'Bearer realm="trainserve"'
    after = {status: count(keyed, "/jobs", status) for status in before}
    assert after == {
        "401": before["401"] + 2,
        "403": before["403"] + 1,
        "413": before["413"] + 2,
        "422": before["422"] + 1,
    }
