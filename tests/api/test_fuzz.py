"""Schemathesis against the OpenAPI schema, in-process, with the API keys on."""

import re
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import positive_data_acceptance

from app.db import session_scope
from app.jobs.config import JobCreate
from app.jobs.transitions import create_job
from app.main import create_app
from app.ml.architectures import architectures
from app.settings import get_settings
from tests.conftest import Env
from workers.worker import Worker

ADMIN = "fuzz-admin-key"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
EXAMPLES_PER_OPERATION = 100
OPEN_PATHS = ("/healthz", "/readyz", "/v2/health/live", "/v2/health/ready")


def test_no_5xx_no_schema_violation_no_route_without_auth(
    migrated_env: Env, synthetic_cifar: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRAINSERVE_ADMIN_KEY", ADMIN)
    # The event stream of a job that no worker runs ends only when it times out.
    monkeypatch.setenv("TRAINSERVE_EVENTS_MAX_SECONDS", "0.2")
    get_settings.cache_clear()
    # A trained model, so that /predict is exercised rather than answering 503.
    with session_scope(write=True) as session:
        spec = JobCreate(seed=1, epochs=1, max_train_samples=40)  # registers as cifar10 v1
        create_job(session, spec.resolved())
    assert Worker(get_settings()).run_once()
    # The first listing of the architectures builds every torchvision network on the meta device
    # (seconds, more on a loaded machine); built here, the fuzzer's 10 s read timeout is the
    # route's and not that one-off build's.
    architectures()
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(), headers=AUTH)
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    # jobs (10: their comparison, mistakes and labels among them), events, plots (2), workers,
    # architectures, datasets (5: an image of one among them), weights (4), models (11) and
    # their export, predict (3) and TorchServe's (4), the Open Inference Protocol (9), 3 probes
    # and metrics
    assert len(operations) == 55
    calls = 0

    for operation in operations:

        @given(case=operation.as_strategy(), data=st.data())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            derandomize=True,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def exercise(case: schemathesis.Case, data: st.DataObject) -> None:
            nonlocal calls
            calls += 1
            if case.path not in OPEN_PATHS:
                assert case.call().status_code == 401, f"{case.method} {case.path} ignored auth"
            # An upload's schema is "binary": it cannot say "an image" or "an archive", so
            # bytes that fit the schema are rightly refused there.
            # Nor can the protocol's schema say what a model's inputs are, nor a job's schema
            # which classes it has (/errors?true=).
            data_dependent = (
                case.path.startswith("/predict")
                or (case.path in ("/datasets", "/weights") and case.method == "POST")
                or case.path.endswith("/infer")
                or case.path.endswith("/errors")
            )
            response = case.call(headers=AUTH)
            # Nor can the job's schema say which image sizes each torchvision architecture
            # takes, or that batch norm needs two images a process, or whether the weights a
            # job starts from fit its model: submit checks those.
            refused = data_dependent or submit_refusal(case.path, response)
            excluded: list[Any] = [positive_data_acceptance] if refused else []
            case.validate_response(response, excluded_checks=excluded)

        exercise()

    print(f"\nschemathesis: {calls} examples over {len(operations)} operations, 0 failures")


SUBMIT_REFUSAL = re.compile(
    rb'^\{"detail":"(body: )?(model: [a-z0-9_]+ takes images '
    rb"|batch_size: [a-z0-9_]+ trains with batch norm"
    rb"|init_from: |freeze: |backbone_learning_rate: |alternating_flip true cannot go with )"
)


def submit_refusal(path: str, response: schemathesis.Response) -> bool:
    """A job refused for its architecture (app/jobs/architectures.py check_fits), for what it
    starts from (app/jobs/fine_tuning.py), or by a rule the schema leaves out (UNSTATED_RULES in
    app/jobs/rules.py)."""
    return (
        path == "/jobs"
        and response.status_code == 422
        and SUBMIT_REFUSAL.match(response.content) is not None
    )
