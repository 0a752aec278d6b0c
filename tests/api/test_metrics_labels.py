"""Labels of the request metrics stay few, whatever method or path a client sends."""

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app import metrics


def count(client: TestClient, method: str, route: str, status: str) -> float:
    wanted = {"method": method, "route": route, "status": status}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == "trainserve_http_requests_total" and sample.labels == wanted:
                return float(sample.value)
    return 0.0


def test_unknown_methods_and_paths_share_one_label_each(client: TestClient) -> None:
    # The counters live for the whole test process: compare before and after.
    before = count(client, "other", "/jobs/{job_id}", "405")
    unmatched_before = count(client, "GET", "unmatched", "404")
    for method in ("BREW", "PROPFIND", "X-ANYTHING"):
        assert client.request(method, "/jobs/1").status_code == 405
    for path in ("/a", "/b/c", "/jobs/1/nothing"):
        assert client.get(path).status_code == 404
    assert count(client, "other", "/jobs/{job_id}", "405") == before + 3
    assert count(client, "GET", "unmatched", "404") == unmatched_before + 3
    for method in ("BREW", "PROPFIND", "X-ANYTHING"):
        assert f'method="{method}"' not in client.get("/metrics").text


def test_prediction_labels_stay_few_however_many_versions_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(metrics, "_prediction_labels", set())  # this test's own label set

    def predictions(model: str, version: str) -> float:
        value = metrics.REGISTRY.get_sample_value(
            "trainserve_predictions_total", {"model": model, "version": version}
        )
        return value or 0.0

    others = predictions("other", "other")
    metrics.count_predictions("labels-test", 1, 3)
    assert predictions("labels-test", "1") >= 3
    for version in range(2, 2 + metrics.MAX_PREDICTION_LABELS):
        metrics.count_predictions("labels-test", version, 1)
    assert len(metrics._prediction_labels) == metrics.MAX_PREDICTION_LABELS
    assert predictions("other", "other") > others


def test_route_templates_remember_only_served_short_paths_and_stay_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = FastAPI()

    @app.get("/jobs/{job_id}")
    def job(job_id: int) -> None: ...

    templates = metrics.RouteTemplates(app)
    long_path = "/jobs/" + "9" * metrics.SEEN_PATH_MAX_CHARS
    assert templates.of("/jobs/7") == "/jobs/{job_id}"
    assert templates.of(long_path) == "/jobs/{job_id}"
    assert templates.of("/nothing") == metrics.UNMATCHED
    assert templates._seen == {"/jobs/7": "/jobs/{job_id}"}  # a client's own paths not kept
    monkeypatch.setattr(metrics, "SEEN_PATHS_MAX", 3)
    for number in range(10):
        assert templates.of(f"/jobs/{number}") == "/jobs/{job_id}"
        assert len(templates._seen) <= 3
