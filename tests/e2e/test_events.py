"""Live events from a real server and worker, followed by several real SSE clients at once."""

import json
import socket
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from httpx_sse import connect_sse

from app.db import session_scope
from app.jobs.events import EventKind, append_event
from tests.conftest import Env
from tests.e2e.conftest import Service, wait_for

pytestmark = pytest.mark.e2e

FINISHED = ("succeeded", "failed", "cancelled")


class Follower(threading.Thread):
    """Follows one job to its end as a browser would: on every close, it reconnects with the
    last id it saw. `stop_after` ends its first connection early, as a dropped client."""

    def __init__(self, url: str, job_id: int, stop_after: int | None = None) -> None:
        super().__init__(daemon=True)
        self.url, self.job_id, self.stop_after = url, job_id, stop_after
        self.events: list[dict] = []
        self.connections = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with httpx.Client(base_url=self.url, timeout=httpx.Timeout(30, read=60)) as client:
                while not self._ended():
                    self._connect(client)
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.error = exc

    def _ended(self) -> bool:
        return bool(self.events) and self.events[-1]["data"].get("status") in FINISHED

    def _connect(self, client: httpx.Client) -> None:
        self.connections += 1
        headers = {"Last-Event-ID": str(self.events[-1]["id"])} if self.events else {}
        with connect_sse(client, "GET", f"/jobs/{self.job_id}/events", headers=headers) as source:
            assert source.response.status_code == 200
            for sse in source.iter_sse():
                if not sse.id:
                    continue
                self.events.append(
                    {"id": int(sse.id), "event": sse.event, "data": json.loads(sse.data)}
                )
                if self.stop_after is not None and len(self.events) == self.stop_after:
                    self.stop_after = None
                    return  # drop the connection mid-stream


def history(events: list[dict]) -> list[dict]:
    """The events that are a job's history (progress events are a state: only the newest of
    them is replayed)."""
    return [e for e in events if e["event"] != "progress"]


def test_many_clients_follow_one_job_live_and_resume_without_repeats(
    env: Env, service: Service, synthetic_cifar: Path
) -> None:
    # Streams close after a second, so every follower resumes several times while it trains.
    service.overrides["TRAINSERVE_EVENTS_MAX_SECONDS"] = "1"
    service.start_api()
    with service.client() as client:
        job_id = client.post(
            "/jobs", json={"epochs": 6, "batch_size": 4, "log_every": 25, "seed": 5}
        ).json()["id"]
        followers = [Follower(service.url, job_id) for _ in range(3)]
        followers.append(Follower(service.url, job_id, stop_after=4))
        for follower in followers:
            follower.start()
        wait_for(lambda: all(f.events for f in followers), 30, "followers never saw the queued job")
        service.start_worker()
        for follower in followers:
            follower.join(300)
            assert not follower.is_alive(), "a follower never saw the job end"
            assert follower.error is None, follower.error
        late = Follower(service.url, job_id)
        late.run()
        assert late.error is None, late.error
        metrics = client.get(f"/jobs/{job_id}/metrics").json()

    expected = history(late.events)
    assert [e["data"]["status"] for e in expected if e["event"] == "status"] == [
        "queued",
        "running",
        "succeeded",
    ]
    assert [e["data"] for e in expected if e["event"] == "loss"] == metrics["loss_history"]
    assert len(metrics["loss_history"]) == 6 * 4  # 100 steps an epoch, a point every 25
    assert [e["data"] for e in expected if e["event"] == "epoch"] == metrics["epochs"]
    assert late.connections == 1
    for follower in followers:
        ids = [e["id"] for e in follower.events]
        assert ids == sorted(set(ids)), "an event came twice or out of order"
        assert history(follower.events) == expected
        assert follower.connections > 1  # resumed across closed streams
        progress = [e["data"] for e in follower.events if e["event"] == "progress"]
        assert progress, "no live progress was seen"
        assert all(p["steps_per_epoch"] == 100 for p in progress)


DROPPED_CLIENTS = 150
HISTORY_EVENTS = 2000


def open_and_drop_raw(port: int, job_id: int) -> None:
    """Read the stream's first event over a bare socket, then reset the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(f"GET /jobs/{job_id}/events HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        received = b""
        while b"id: 1" not in received:
            chunk = sock.recv(4096)
            assert chunk, received
            received += chunk
        # No FIN handshake: an RST, as from a client that crashed or lost its network.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def open_and_drop_httpx(url: str, job_id: int) -> None:
    """Read the stream's first event with httpx, then close it mid-stream."""
    with (
        httpx.Client(base_url=url, timeout=30) as client,
        connect_sse(client, "GET", f"/jobs/{job_id}/events") as source,
    ):
        assert next(sse.id for sse in source.iter_sse() if sse.id) == "1"


def test_clients_that_drop_their_streams_leave_no_errors_in_the_log(service: Service) -> None:
    api = service.start_api()
    with service.client() as client:
        job_id = client.post("/jobs", json={}).json()["id"]
        # A long history, so that clients drop while the server is still sending it.
        with session_scope() as session:
            for step in range(HISTORY_EVENTS):
                append_event(
                    session, job_id, EventKind.LOSS, {"epoch": 1, "step": step, "loss": 1.0}
                )
        with ThreadPoolExecutor(max_workers=50) as pool:
            drops = [
                pool.submit(open_and_drop_raw, service.port, job_id)
                if i % 2
                else pool.submit(open_and_drop_httpx, service.url, job_id)
                for i in range(DROPPED_CLIENTS)
            ]
            for drop in drops:
                drop.result()
        # The job's next event goes to whatever streams are still open.
        assert client.post(f"/jobs/{job_id}/cancel").status_code == 200
        follower = Follower(service.url, job_id)
        follower.run()
        assert follower.error is None, follower.error
        assert [e["event"] for e in follower.events] == ["status"] + ["loss"] * HISTORY_EVENTS + [
            "status"
        ]
        assert follower.events[-1]["data"] == {"status": "cancelled"}
    api.stop()
    log = api.log()
    assert log.count(f"GET /jobs/{job_id}/events HTTP/1.1") == DROPPED_CLIENTS + 1
    assert [line for line in log.splitlines() if "ERROR" in line or "Traceback" in line] == []


def test_a_stopping_server_ends_open_streams_cleanly_after_its_grace(service: Service) -> None:
    service.overrides["TRAINSERVE_SHUTDOWN_GRACE_SECONDS"] = "1"
    api = service.start_api()
    with service.client() as client:
        job_id = client.post("/jobs", json={}).json()["id"]
    followers = [Follower(service.url, job_id) for _ in range(5)]
    for follower in followers:
        follower.start()
    wait_for(lambda: all(f.events for f in followers), 30, "followers never saw the queued job")
    stopping = time.monotonic()
    api.stop()
    for follower in followers:
        follower.join(30)
        # Its stream ended properly (a broken one raises at once: one connection), and only
        # the reconnect that follows found no server.
        assert follower.connections == 2
        assert isinstance(follower.error, httpx.TransportError), follower.error
    assert time.monotonic() - stopping < 5
    errors = [line for line in api.log().splitlines() if "ERROR" in line or "Traceback" in line]
    assert len(errors) == 1 and errors[0].endswith(
        "Cancel 5 running task(s), timeout graceful shutdown exceeded"
    ), errors
