"""The OpenAPI document says what the service does: valid, short unique operation ids, every
error with the body it really has, and the bearer key as a security scheme."""

import re

from fastapi.testclient import TestClient
from openapi_spec_validator import validate

from app.errors import ErrorOut

OPEN = {"/healthz", "/readyz", "/v2/health/live", "/v2/health/ready"}


def operations(spec: dict) -> list[tuple[str, str, dict]]:
    return [
        (path, method, operation)
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
    ]


def test_the_document_is_valid_openapi(client: TestClient) -> None:
    validate(client.get("/openapi.json").json())


def test_operation_ids_are_short_and_unique(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    ids = [operation["operationId"] for _, _, operation in operations(spec)]
    assert len(ids) == len(set(ids)) == 55
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", op_id) for op_id in ids), ids
    named = {(path, method): op["operationId"] for path, method, op in operations(spec)}
    assert named[("/jobs", "post")] == "submit_job"
    assert named[("/jobs/{job_id}/metrics", "get")] == "get_metrics"
    assert named[("/jobs/compare", "get")] == "compare_jobs"
    assert named[("/predict", "post")] == "predict"
    assert named[("/predictions/{name}", "put")] == "torchserve_predict_put"


def test_every_error_is_declared_with_its_real_body(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    assert spec["security"] == [{"bearer": []}]
    error = {"$ref": "#/components/schemas/ErrorOut"}
    for path, method, operation in operations(spec):
        responses = operation["responses"]
        for status in ("401", "403", "408", "413", "422"):
            if status in responses and not path.startswith("/v2/"):
                schema = responses[status]["content"]["application/json"]["schema"]
                assert schema == error, (path, method, status)
        if path in OPEN:
            assert operation["security"] == [] and "401" not in responses
            continue
        assert "401" in responses, (path, method)
        changes = method not in ("get", "head") and not (
            path.startswith(("/predict", "/v2/models/")) and not path.startswith("/predict/x")
        )
        assert ("403" in responses) == changes, (path, method)
        assert ("413" in responses) == (method in ("post", "put", "patch")), (path, method)
        assert ("408" in responses) == (method in ("post", "put", "patch")), (path, method)
        assert "503" in responses or path.startswith("/v2"), (path, method)


def test_a_real_422_matches_the_declared_body(client: TestClient) -> None:
    response = client.post("/jobs", json={"epochs": 0, "lr": 1})
    assert response.status_code == 422
    body = ErrorOut.model_validate(response.json())
    assert [e.field for e in body.errors or []] == ["epochs", "lr"]
