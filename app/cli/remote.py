"""The server as the command line reaches it: JSON over HTTP, and a job's live event stream."""

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import SSEError, connect_sse

DEFAULT_URL = "http://127.0.0.1:8000"
FINISHED = frozenset({"succeeded", "failed", "cancelled"})
RECONNECT_DELAYS_S = (0.5, 1, 2, 4, 8)


class ServerError(Exception):
    """What went wrong, as one line for the user."""


@dataclass(frozen=True)
class JobEvent:
    id: int
    kind: str
    data: dict[str, Any]


class Remote:
    """One trainserve server, with the API key (if any) on every request."""

    def __init__(self, url: str, api_key: str | None, timeout_s: float = 30) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """The JSON answer to a request; ServerError with the server's own words when it fails."""
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ServerError(f"cannot reach the server at {self.url}: {exc}") from exc
        _raise_for_status(response)
        return response.json()

    def download(self, path: str, params: dict[str, Any]) -> httpx.Response:
        """A file the server answers with; ServerError with the server's words when it fails."""
        try:
            response = self.http.get(path, params=params, timeout=httpx.Timeout(300))
        except httpx.TransportError as exc:
            raise ServerError(f"cannot reach the server at {self.url}: {exc}") from exc
        _raise_for_status(response)
        return response

    def follow(self, job_id: int, after: int = 0) -> Iterator[JobEvent]:
        """The job's events after `after`, live, until its final status; reconnects (resuming
        after the last event seen) when the stream closes or the connection drops."""
        failures = 0
        while True:
            try:
                with connect_sse(
                    self.http,
                    "GET",
                    f"/jobs/{job_id}/events",
                    headers={"Last-Event-ID": str(after)},
                    timeout=httpx.Timeout(30, read=None),
                ) as source:
                    _raise_for_status(source.response)
                    for sse in source.iter_sse():
                        if not sse.id:
                            continue
                        event = JobEvent(int(sse.id), sse.event, json.loads(sse.data))
                        after, failures = event.id, 0
                        yield event
                        if event.kind == "status" and event.data["status"] in FINISHED:
                            return
            except (httpx.TransportError, SSEError) as exc:
                if failures == len(RECONNECT_DELAYS_S):
                    raise ServerError(f"lost the event stream of job {job_id}: {exc}") from exc
                time.sleep(RECONNECT_DELAYS_S[failures])
                failures += 1

    def predict(self, image: Path, params: dict[str, Any]) -> dict[str, Any]:
        """The server's prediction for one image file; `params` name the model and top_k."""
        params = {name: value for name, value in params.items() if value is not None}
        with image.open("rb") as file:
            answer: dict[str, Any] = self.request(
                "POST", "/predict", files={"file": (image.name, file)}, params=params
            )
        return answer


def _raise_for_status(response: httpx.Response) -> None:
    if response.is_success:
        return
    response.read()
    try:
        detail = response.json()["detail"]
    except (ValueError, KeyError, TypeError):
        detail = response.text.strip() or response.reason_phrase
    if not isinstance(detail, str):
        detail = json.dumps(detail)
    raise ServerError(f"{detail} (HTTP {response.status_code})")
