"""Requests no route takes: 404 with the method and path, 405 with the methods the path takes,
in the API's shape, or the protocol's under /v2; what routes answer themselves is untouched."""

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import ADMIN, PREDICT, bearer


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/jobz"), ("POST", "/job"), ("DELETE", "/models/cifar10/versions/1/nope")],
)
def test_an_unknown_path_names_what_was_asked_and_where_the_routes_are(
    client: TestClient, method: str, path: str
) -> None:
    response = client.request(method, path)
    assert response.status_code == 404
    assert response.json() == {
        "detail": f"no route {method} {path}: see /docs for the API's routes"
    }


@pytest.mark.parametrize(
    ("method", "path", "allow", "detail"),
    [
        ("DELETE", "/healthz", "GET", "DELETE /healthz is not allowed: use GET"),
        ("POST", "/healthz", "GET", "POST /healthz is not allowed: use GET"),
        ("DELETE", "/jobs", "GET, POST", "DELETE /jobs is not allowed: use GET or POST"),
        (
            "PUT",
            "/jobs/1",
            "GET, PATCH, DELETE",
            "PUT /jobs/1 is not allowed: use GET, PATCH or DELETE",
        ),
        # OPTIONS (without CORS on) lists every method a path takes, not the first route's.
        ("OPTIONS", "/jobs", "GET, POST", "OPTIONS /jobs is not allowed: use GET or POST"),
        ("OPTIONS", "/datasets", "GET, POST", "OPTIONS /datasets is not allowed: use GET or POST"),
        (
            "OPTIONS",
            "/datasets/ds-0123456789ab",
            "GET, DELETE",
            "OPTIONS /datasets/ds-0123456789ab is not allowed: use GET or DELETE",
        ),
        (
            "POST",
            "/models/cifar10/aliases/production",
            "GET, PUT, DELETE",
            "POST /models/cifar10/aliases/production is not allowed: use GET, PUT or DELETE",
        ),
        # The static files answer GET and HEAD; HEAD goes without saying beside GET.
        ("POST", "/ui/dashboard.js", "GET, HEAD", "POST /ui/dashboard.js is not allowed: use GET"),
    ],
)
def test_a_wrong_method_names_the_methods_the_path_takes(
    client: TestClient, method: str, path: str, allow: str, detail: str
) -> None:
    response = client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert response.json() == {"detail": detail}


def test_a_missing_page_file_is_named(client: TestClient) -> None:
    response = client.get("/ui/nope.js")
    assert response.status_code == 404
    assert response.json() == {"detail": "no such file: /ui/nope.js"}


def test_the_routes_own_404s_are_untouched(client: TestClient) -> None:
    assert client.get("/jobs/999").json() == {"detail": "job 999 not found"}
    assert client.get("/models/nope").json() == {
        "detail": "model 'nope' not found (GET /models lists them)"
    }
    assert client.get("/v2/models/nope").json() == {
        "error": "model 'nope' not found (GET /models lists them)"
    }


def test_under_v2_the_answer_has_the_protocols_shape(client: TestClient) -> None:
    unknown = client.get("/v2/modelz")
    assert unknown.status_code == 404
    assert unknown.json() == {"error": "no route GET /v2/modelz: see /docs for the API's routes"}
    wrong = client.get("/v2/models/cifar10/infer")
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "POST"
    assert wrong.json() == {"error": "GET /v2/models/cifar10/infer is not allowed: use POST"}
    assert client.post("/v2").json() == {"error": "POST /v2 is not allowed: use GET"}


def test_with_keys_on_the_key_is_checked_before_the_path(keyed: TestClient) -> None:
    # An unknown path tells nothing about the routes to a caller without a key.
    no_key = keyed.get("/jobz")
    assert no_key.status_code == 401
    assert no_key.json() == {
        "detail": "missing or invalid API key: send Authorization: Bearer <key>"
    }
    admin = keyed.get("/jobz", headers=bearer(ADMIN))
    assert admin.status_code == 404
    assert admin.json() == {"detail": "no route GET /jobz: see /docs for the API's routes"}
    # The predict key may read anywhere, and change nothing, known path or not.
    predict = bearer(PREDICT)
    assert keyed.get("/jobz", headers=predict).status_code == 404
    assert keyed.post("/jobz", headers=predict).json() == {
        "detail": "this key may only read and predict; changes need the admin key"
    }
    # The pages' files are open to all, a missing one too.
    assert keyed.get("/ui/nope.js").json() == {"detail": "no such file: /ui/nope.js"}
