"""The fast path of POST /predict and the protocol's /infer (app/api/fast_inference.py) answers
every request exactly as the documented routes do: the same app with the fast routes taken out
answers each request below, and the two answers must match byte for byte."""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.routing import Match, Route
from starlette.types import Message, Scope

from app.api import fast_inference
from app.api.fast_inference import FastInfer, FastPredict, PredictQuery, plain_query, read_form
from app.main import create_app
from app.serving.lookup import Target
from app.settings import get_settings
from tests.api.conftest import TrainJob
from tests.api.test_oip import SMALL, binary_header, image_input, pixels, png

FAST_ENDPOINTS = (FastPredict, FastInfer)
HEADER = "Inference-Header-Content-Length"


def is_fast(route: object) -> bool:
    return isinstance(route, Route) and isinstance(route.endpoint, FAST_ENDPOINTS)


def first_route(app: FastAPI, path: str) -> object:
    scope = {"type": "http", "method": "POST", "path": path, "root_path": "", "headers": []}
    return next(r for r in app.router.routes if r.matches(scope)[0] is Match.FULL)


@dataclass
class Pair:
    fast: TestClient
    documented: TestClient

    def both(self, path: str, **request: Any) -> tuple[httpx.Response, httpx.Response]:
        return self.fast.post(path, **request), self.documented.post(path, **request)


@pytest.fixture
def pair(env: object, synthetic_cifar: Path) -> Iterator[Pair]:
    fast_app, documented_app = create_app(), create_app()
    documented_app.router.routes[:] = [r for r in documented_app.router.routes if not is_fast(r)]
    with TestClient(fast_app) as fast, TestClient(documented_app) as documented:
        TrainJob(fast, env)(**SMALL)  # type: ignore[arg-type]  # cifar10 v1, production
        yield Pair(fast, documented)


def assert_same(fast: httpx.Response, documented: httpx.Response) -> None:
    assert (fast.status_code, fast.content) == (documented.status_code, documented.content)
    for header in ("content-type", "inference-header-content-length", "allow", "connection"):
        assert fast.headers.get(header) == documented.headers.get(header)


def test_the_fast_routes_come_first_and_only_in_the_app_that_has_them(pair: Pair) -> None:
    fast_app, documented_app = pair.fast.app, pair.documented.app
    assert isinstance(fast_app, FastAPI) and isinstance(documented_app, FastAPI)
    for path in ("/predict", "/v2/models/cifar10/infer", "/v2/models/cifar10/versions/1/infer"):
        assert is_fast(first_route(fast_app, path))
        assert not is_fast(first_route(documented_app, path))
    # The documented routes still make the document.
    paths = pair.fast.get("/openapi.json").json()["paths"]
    assert "post" in paths["/predict"] and "post" in paths["/v2/models/{name}/infer"]


QUERIES = [
    "",
    "top_k=3",
    "resize=false",
    "resize=true&top_k=1000",
    "model=cifar10&version=1",
    "model=cifar10&alias=production",
    "job_id=1",
    # Out of the plain form, or naming two models: the documented route answers, as ever.
    "job_id=0",
    "top_k=abc",
    "top_k=1001",
    "top_k=",
    "resize=yes",
    "resize=maybe",
    "model=CIFAR10",
    "alias=staging",
    "version=2",
    "job_id=1&model=cifar10",
    "alias=production&version=1",
    "top_k=1&top_k=2",
    "unknown=1",
    "job_id=99999999999",
    "model=%00",
]


@pytest.mark.parametrize("query", QUERIES)
def test_predict_with_every_query_answers_as_the_documented_route(pair: Pair, query: str) -> None:
    image = png(pixels(1, seed=3)[0])
    assert_same(*pair.both(f"/predict?{query}", files={"file": ("a.png", image)}))


def forms_at_the_edges_of_the_plain_shape(image: bytes) -> list[dict[str, Any]]:
    """Forms the fast path reads itself (app/serving/plain_form.py) and forms just beside that
    shape, which it leaves to the general parser; names in error messages included."""
    boundary = b"b0undary"

    def form(filename: bytes, data: bytes, middle: bytes = b"", after: bytes = b"--\r\n") -> bytes:
        return (
            b"--" + boundary + b"\r\n"
            b'Content-Disposition: form-data; name="file"; filename="'
            + filename
            + b'"\r\n'
            + middle
            + b"\r\n"
            + data
            + b"\r\n--"
            + boundary
            + after
        )

    bodies = [
        form(b"a.png", image),
        form(b"a.png", image, b"Content-Type: image/png\r\n", b"--"),
        form(b"k\xc3\xa4tzchen.png", b"not an image"),
        form(b"latin-1 \xe4.png", b"not an image"),
        form(b"", b"not an image"),
        form(b"../../a b.png", b"not an image", b"Content-Type: image/png\r\n"),
        form(b"C:\\dir\\c.png", b"not an image"),
        form(b'a\\".png', b"not an image"),
        form(b"a.png", image, b"X-Other: 1\r\n"),
        form(b"a.png", image, after=b"--\r\nepilogue"),
        form(b"a.png", image, after=b"\r\n"),
        b"preamble\r\n" + form(b"a.png", image),
        form(b"a.png", image).replace(b'name="file"', b'name="image"'),
        form(b"a.png", image).replace(b'; filename="a.png"', b""),
        form(b"a.png", image)[:-20],
    ]
    # Quoted, or in capitals: left to the general parser.
    content_types = [
        "multipart/form-data; boundary=b0undary",
        'multipart/form-data; boundary="b0undary"',
        "Multipart/Form-Data; boundary=b0undary",
    ]
    return [
        {"content": body, "headers": {"content-type": content_type}}
        for body in bodies
        for content_type in content_types
    ]


def test_predict_with_every_kind_of_body_answers_as_the_documented_route(pair: Pair) -> None:
    image, other_size = png(pixels(1, seed=4)[0]), png(pixels(1, seed=4)[0][:20])
    bodies: list[dict[str, Any]] = [
        {"files": {"file": ("a.png", image)}},
        {"files": {"file": ("../../etc/passwd\x00.png", image)}},
        {"files": [("file", ("a.png", image)), ("file", ("b.png", image))]},
        {"files": {"other": ("a.png", image)}},
        {"data": {"file": "text"}, "files": {"x": ("x", b"x")}},
        {"files": {"file": ("a.png", b"not an image")}},
        {"files": {"file": ("a.png", other_size)}},
        {"content": image, "headers": {"content-type": "image/png"}},
        {"content": image, "headers": {"content-type": "application/octet-stream"}},
        {"content": b"\x89PNG broken", "headers": {"content-type": "image/png"}},
        {"content": image, "headers": {"content-type": "text/plain"}},
        {"content": b"", "headers": {"content-type": "image/png"}},
        {"content": b"--x\r\nbroken", "headers": {"content-type": "multipart/form-data"}},
        {
            "content": b"--x\r\nbroken",
            "headers": {"content-type": "multipart/form-data; boundary=x"},
        },
        {
            "content": b"a=1&file=2",
            "headers": {"content-type": "application/x-www-form-urlencoded"},
        },
    ]
    for body in [*bodies, *forms_at_the_edges_of_the_plain_shape(image)]:
        fast, documented = pair.both("/predict", **body)
        assert_same(fast, documented)
    # A query naming two models, and two files: the documented route refuses the files first.
    two_files = [("file", ("a.png", image)), ("file", ("b.png", image))]
    fast, documented = pair.both("/predict?job_id=1&model=cifar10", files=two_files)
    assert fast.json()["detail"].startswith("file: send exactly one file")
    assert_same(fast, documented)
    # The other size, resized by default and refused without it.
    refused = pair.both("/predict?resize=false", files={"file": ("a.png", other_size)})
    assert refused[0].status_code == 422
    assert_same(*refused)


def asgi_post(client: TestClient, content_type: bytes, messages: list[bytes]) -> tuple[int, bytes]:
    """POST /predict straight to the client's app, in its event loop, with the body in these
    messages (a test client sends a body in one)."""
    body_length = str(sum(len(m) for m in messages)).encode()
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/predict",
        "raw_path": b"/predict",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", content_type), (b"content-length", body_length)],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    pending: list[Message] = [
        {"type": "http.request", "body": chunk, "more_body": i < len(messages) - 1}
        for i, chunk in enumerate(messages)
    ]
    status, answer = 0, b""

    async def receive() -> Message:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status, answer
        status = message.get("status", status)
        answer += message.get("body", b"")

    async def call() -> None:
        await client.app(scope, receive, send)

    assert client.portal is not None
    client.portal.call(call)
    return status, answer


def test_a_plain_form_is_read_without_the_general_parser_unless_it_comes_in_parts(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    general_reads: list[object] = []

    async def counted(request: object) -> object:
        general_reads.append(request)
        return await read_form(request)  # type: ignore[arg-type]

    monkeypatch.setattr(fast_inference, "read_form", counted)
    request = httpx.Request(
        "POST", "/predict", files={"file": ("a.png", png(pixels(1, seed=7)[0]))}
    )
    content_type, body = request.headers["content-type"].encode(), request.read()
    answers = [
        asgi_post(pair.fast, content_type, [body]),
        asgi_post(pair.fast, content_type, [body[:100], body[100:]]),
        asgi_post(pair.documented, content_type, [body[:100], body[100:]]),
    ]
    assert answers[0][0] == 200 and answers[0] == answers[1] == answers[2]
    assert len(general_reads) == 1  # the form in two messages, replayed to the general parser


def test_inference_answers_as_the_documented_routes(pair: Pair) -> None:
    images = pixels(2, seed=6)
    header = binary_header(images, [{"name": "probabilities", "parameters": {"binary_data": True}}])
    binary = {
        "content": header + images.tobytes(),
        "headers": {"Inference-Header-Content-Length": str(len(header))},
    }
    requests: list[tuple[str, dict[str, Any]]] = [
        ("/v2/models/cifar10/infer", {"json": {"inputs": [image_input(images)]}}),
        ("/v2/models/cifar10/versions/1/infer", {"json": {"inputs": [image_input(images)]}}),
        ("/v2/models/cifar10/infer", binary),
        ("/v2/models/cifar10/infer", {**binary, "headers": {}}),
        ("/v2/models/cifar10/infer", {**binary, "headers": {HEADER: "99999"}}),
        ("/v2/models/cifar10/infer", {"content": b"{not json"}),
        ("/v2/models/cifar10/infer", {"json": {"inputs": []}}),
        ("/v2/models/cifar10/versions/2/infer", {"json": {"inputs": [image_input(images)]}}),
        ("/v2/models/cifar10/versions/abc/infer", {"json": {"inputs": [image_input(images)]}}),
        ("/v2/models/CIFAR10/infer", {"json": {"inputs": [image_input(images)]}}),
        ("/v2/models/nothing/infer", {"json": {"inputs": [image_input(images)]}}),
    ]
    for path, request in requests:
        fast, documented = pair.both(path, **request)
        assert_same(fast, documented)
    answered = pair.fast.post("/v2/models/cifar10/infer", **binary)
    assert answered.status_code == 200 and "inference-header-content-length" in answered.headers


def test_methods_other_than_post_are_still_405_naming_post(pair: Pair) -> None:
    for path in ("/predict", "/v2/models/cifar10/infer"):
        fast, documented = pair.fast.get(path), pair.documented.get(path)
        assert fast.status_code == 405 and fast.headers["allow"] == "POST"
        assert_same(fast, documented)


@pytest.mark.parametrize(
    ("query", "read"),
    [
        (b"", PredictQuery(Target())),
        (b"top_k=5&resize=false", PredictQuery(Target(), 5, False)),
        (
            b"job_id=2147483647&top_k=1000",
            PredictQuery(Target(job_id=2**31 - 1), 1000),
        ),
        (
            b"model=cifar10&alias=stage-1.b_2",
            PredictQuery(Target(model="cifar10", alias="stage-1.b_2")),
        ),
        (b"model=cifar10&version=3", PredictQuery(Target(model="cifar10", version=3))),
        (b"model=c%69far10", PredictQuery(Target(model="cifar10"))),  # decoded first
        (b"job_id=2147483648", None),
        (b"top_k=01", None),
        (b"top_k=+1", None),
        (b"top_k=\xd9\xa1", None),  # an Arabic-Indic one: a digit to str.isdigit(), not here
        (b"resize=False", None),
        (b"resize", None),
        (b"model=a&model=a", None),
        (b"Model=a", None),
    ],
)
def test_plain_queries_are_read_and_any_other_is_left_to_the_documented_route(
    query: bytes, read: PredictQuery | None
) -> None:
    assert plain_query(query) == read


def chunks(size: int) -> Iterator[bytes]:
    """A body without Content-Length: only counting its bytes as they arrive can refuse it."""
    for _ in range(size // 65536):
        yield b"\0" * 65536


def test_a_body_found_too_large_as_it_arrives_is_refused_by_both(pair: Pair) -> None:
    limit = get_settings().max_predict_bytes
    multipart = {"content-type": "multipart/form-data; boundary=x"}
    for path, headers in [
        ("/predict", multipart),
        ("/predict", {"content-type": "image/png"}),
        ("/v2/models/cifar10/infer", {HEADER: "10"}),
    ]:
        fast, documented = (
            client.post(path, content=chunks(limit + 65536), headers=headers)
            for client in (pair.fast, pair.documented)
        )
        assert fast.status_code == 413, fast.text
        assert_same(fast, documented)
