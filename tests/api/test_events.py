"""GET /jobs/{id}/events on a finished job: the whole history, resumable, then the end."""

import json

import pytest
from fastapi.testclient import TestClient
from httpx_sse import connect_sse

from app.api import events as events_route
from app.settings import get_settings
from tests.api.conftest import TrainJob


def stream(client: TestClient, job_id: int, last_event_id: str | None = None) -> list[dict]:
    headers = {} if last_event_id is None else {"Last-Event-ID": last_event_id}
    with connect_sse(client, "GET", f"/jobs/{job_id}/events", headers=headers) as source:
        assert source.response.status_code == 200
        assert source.response.headers["content-type"].startswith("text/event-stream")
        return [
            {"id": int(sse.id), "event": sse.event, "data": json.loads(sse.data)}
            for sse in source.iter_sse()
            if sse.id
        ]


def test_a_finished_job_replays_its_history_and_the_stream_ends(
    client: TestClient, train_job: TrainJob
) -> None:
    job_id = train_job(epochs=2, batch_size=16, log_every=5, max_train_samples=160)
    events = stream(client, job_id)
    metrics = client.get(f"/jobs/{job_id}/metrics").json()

    kinds = [e["event"] for e in events]
    assert kinds[:3] == ["status", "status", "started"]
    assert kinds[-1] == "status"
    assert [e["data"]["status"] for e in events if e["event"] == "status"] == [
        "queued",
        "running",
        "succeeded",
    ]
    assert events[2]["data"]["steps_per_epoch"] == 10
    assert [e["data"] for e in events if e["event"] == "loss"] == metrics["loss_history"]
    assert [e["data"] for e in events if e["event"] == "epoch"] == metrics["epochs"]
    assert len(metrics["loss_history"]) == 4  # 10 steps a epoch, a point every 5
    final = events[-1]["data"]
    assert final["test_accuracy"] == metrics["test_accuracy"]
    assert final["per_class_accuracy"] == metrics["per_class_accuracy"]
    assert final["confusion_matrix"] == metrics["confusion_matrix"]
    ids = [e["id"] for e in events]
    assert ids == sorted(set(ids)) and ids[0] == 1

    # Resuming after any event gives exactly the rest, and after the last one, nothing.
    for cut in (1, 3, len(events) - 1):
        assert stream(client, job_id, str(events[cut - 1]["id"])) == events[cut:]
    assert stream(client, job_id, str(ids[-1])) == []


def test_unknown_jobs_and_bad_event_ids_are_refused(client: TestClient) -> None:
    missing = client.get("/jobs/999/events")
    assert (missing.status_code, missing.json()) == (404, {"detail": "job 999 not found"})
    job_id = client.post("/jobs", json={}).json()["id"]
    for bad in ("abc", "-1", "1.5", str(2**31)):
        response = client.get(f"/jobs/{job_id}/events", headers={"Last-Event-ID": bad})
        assert response.status_code == 422, bad
        assert "last-event-id" in response.json()["detail"].lower(), response.json()


def test_a_quiet_stream_sends_keep_alive_comments_until_it_is_closed(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events_route, "KEEPALIVE_SECONDS", 0.2)
    monkeypatch.setenv("TRAINSERVE_EVENTS_MAX_SECONDS", "0.5")
    get_settings.cache_clear()
    job_id = client.post("/jobs", json={}).json()["id"]
    body = client.get(f"/jobs/{job_id}/events").text
    assert body == (
        f": job {job_id}, events after 0\nretry: 2000\n\n"
        f'event: status\ndata: {{"status": "queued", "retry_of": null}}\nid: 1\n\n'
        ": ping\n: ping\n"  # at 0.2 s and 0.4 s; none as it closes at 0.5 s
    )
    # httpx-sse would hand out an empty event, with the last id, for a blank line after a ping.
    queued = {"id": 1, "event": "status", "data": {"status": "queued", "retry_of": None}}
    assert stream(client, job_id) == [queued]
