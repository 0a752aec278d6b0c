"""The server as the command line reaches it: JSON over HTTP, and a job's live event stream."""

import io
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import httpx
from httpx_sse import SSEError, connect_sse

DEFAULT_URL = "http://127.0.0.1:8000"
FINISHED = frozenset({"succeeded", "failed", "cancelled"})
RECONNECT_DELAYS_S = (0.5, 1, 2, 4, 8)
NO_CONTENT = 204
RETRIED_STATUSES = frozenset({502, 503, 504})
# A large archive is checked whole before the server answers.
UPLOAD_TIMEOUT_S = 600


class ServerError(Exception):
    """What went wrong, as one line for the user; `status` is the HTTP status, if one came."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


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
        return None if response.status_code == NO_CONTENT else response.json()

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
            except (httpx.TransportError, SSEError, ServerError) as exc:
                # A server restarting, a proxy in between, a database outage: try again.
                if isinstance(exc, ServerError) and exc.status not in RETRIED_STATUSES:
                    raise
                if failures == len(RECONNECT_DELAYS_S):
                    raise ServerError(f"lost the event stream of job {job_id}: {exc}") from exc
                time.sleep(RECONNECT_DELAYS_S[failures])
                failures += 1

    def upload(
        self, path: str, file: Path, fields: dict[str, str], on_read: Callable[[int], None]
    ) -> Any:
        """POST a file as multipart form data, streamed from disk; `on_read` hears of every
        chunk sent. The JSON answer, or ServerError."""
        with file.open("rb") as opened:
            reporting = _ReportingFile(opened, on_read)
            return self.request(
                "POST",
                path,
                files={"file": (file.name, reporting)},
                data=fields,
                timeout=httpx.Timeout(UPLOAD_TIMEOUT_S),
            )

    def predict(self, image: Path, params: dict[str, Any]) -> dict[str, Any]:
        """The server's prediction for one image file; `params` name the model and top_k."""
        params = {name: value for name, value in params.items() if value is not None}
        with image.open("rb") as file:
            answer: dict[str, Any] = self.request(
                "POST", "/predict", files={"file": (image.name, file)}, params=params
            )
        return answer


class _ReportingFile(io.RawIOBase):
    """A file opened for reading that reports how many bytes have been read from it, so that an
    upload's progress shows while httpx streams it."""

    def __init__(self, file: BinaryIO, on_read: Callable[[int], None]) -> None:
        self.file = file
        self.on_read = on_read

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunk = self.file.read(size)
        self.on_read(len(chunk))
        return chunk

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self.file.seek(offset, whence)

    def tell(self) -> int:
        return self.file.tell()


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
    raise ServerError(f"{detail} (HTTP {response.status_code})", response.status_code)
