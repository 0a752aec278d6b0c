"""API keys: who may do what, 401 and 403, and the warning when the service is open."""

import re

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from app.cli.server import open_access_warning
from app.settings import Settings
from tests.api.conftest import ADMIN, PREDICT, bearer


def every_operation(client: TestClient) -> list[tuple[str, str]]:
    spec = client.get("/openapi.json", headers=bearer(ADMIN)).json()
    return [
        (method.upper(), re.sub(r"\{[^}]+\}", "1", path))
        for path, operations in spec["paths"].items()
        for method in operations
    ]


def test_every_route_but_the_probes_and_the_docs_needs_a_key(keyed: TestClient) -> None:
    operations = [*every_operation(keyed), ("GET", "/docs"), ("GET", "/openapi.json")]
    assert len(operations) >= 10
    for method, path in operations:
        # The probes; and the docs page and its schema, which hold no data: the page takes the
        # key through its Authorize button.
        if path in ("/healthz", "/readyz", "/v2/health/live", "/v2/health/ready", "/docs"):
            assert keyed.request(method, path).status_code == 200
            continue
        if path == "/openapi.json":
            assert keyed.request(method, path).json()["components"]["securitySchemes"] == {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "TRAINSERVE_ADMIN_KEY (everything) or TRAINSERVE_PREDICT_KEY "
                    "(reads and predictions); needed only when the server has keys.",
                }
            }
            continue
        for headers in (
            {},
            bearer("wrong"),
            {"Authorization": ADMIN},
            {"Authorization": "Basic x"},
        ):
            response = keyed.request(method, path, headers=headers)
            assert response.status_code == 401, (method, path, headers)
            assert response.headers["www-authenticate"] == 'Bearer realm="trainserve"'
            assert response.json() == {
                "detail": "missing or invalid API key: send Authorization: Bearer <key>"
            }


def test_the_predict_key_reads_and_predicts_only(keyed: TestClient) -> None:
    job_id = keyed.post("/jobs", headers=bearer(ADMIN)).json()["id"]
    assert keyed.get("/jobs", headers=bearer(PREDICT)).status_code == 200
    assert keyed.get(f"/jobs/{job_id}", headers=bearer(PREDICT)).status_code == 200
    assert keyed.get(f"/jobs/{job_id}/metrics", headers=bearer(PREDICT)).status_code == 200
    no_model = keyed.post("/predict", headers=bearer(PREDICT), files={"file": ("a.png", b"x")})
    assert no_model.status_code == 503  # allowed through; there is just no model yet
    for method, path in (
        ("POST", "/jobs"),
        ("POST", f"/jobs/{job_id}/cancel"),
        ("POST", f"/jobs/{job_id}/retry"),
        ("POST", "/models/cifar10/versions"),
        ("PATCH", "/models/cifar10"),
        ("PUT", "/models/cifar10/aliases/production"),
        ("DELETE", "/models/cifar10/aliases/production"),
        ("DELETE", "/models/cifar10/versions/1"),
    ):
        response = keyed.request(method, path, headers=bearer(PREDICT), json={})
        assert response.status_code == 403, (method, path)
        assert response.json() == {
            "detail": "this key may only read and predict; changes need the admin key"
        }
    assert keyed.get("/models", headers=bearer(PREDICT)).status_code == 200
    assert keyed.get(f"/jobs/{job_id}").status_code == 401


def test_the_admin_key_does_everything(keyed: TestClient) -> None:
    response = keyed.post("/jobs", headers=bearer(ADMIN))
    assert response.status_code == 202
    job_id = response.json()["id"]
    assert keyed.post(f"/jobs/{job_id}/cancel", headers=bearer(ADMIN)).status_code == 200
    assert keyed.post(f"/jobs/{job_id}/retry", headers=bearer(ADMIN)).status_code == 202
    assert keyed.get("/docs", headers=bearer(ADMIN)).status_code == 200


def test_without_keys_the_service_is_open(client: TestClient) -> None:
    assert client.post("/jobs").status_code == 202


@pytest.mark.parametrize(
    ("host", "warned"),
    [
        ("127.0.0.1", False),
        ("::1", False),
        ("localhost", False),
        ("127.0.0.2", False),
        ("0.0.0.0", True),
        ("::", True),
        ("10.1.2.3", True),
        ("myhost.example", True),
    ],
)
def test_an_open_service_off_loopback_is_warned_about(host: str, warned: bool) -> None:
    message = open_access_warning(host, Settings())
    assert (message is not None) == warned
    if message:
        assert f"listens on {host}" in message and "TRAINSERVE_ADMIN_KEY" in message
    assert open_access_warning(host, Settings(admin_key=SecretStr("k"))) is None
