"""The OpenAPI document, trusted as a user would: validated, then a client generated from the live
server's /openapi.json by a real generator (openapi-python-client) and used against that server
with keys on: submit, follow to the end, metrics, a filtered list, a prediction, a comparison,
and the 404, 409 and 422 answers as typed errors."""

import importlib
import io
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import httpx
import numpy as np
import pytest
from openapi_spec_validator import validate
from PIL import Image

from tests.conftest import Env, synthetic_split
from tests.e2e.conftest import Service

# Once, on SQLite: the document and its client do not depend on the database.
pytestmark = [pytest.mark.e2e, pytest.mark.database("sqlite")]

ADMIN = "generated-client-admin-key"
PACKAGE = "trainserve_client"


def generate(url: str, folder: Path) -> None:
    """Run the generator on the live document, as a user would."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--url",
            f"{url}/openapi.json",
            "--meta",
            "none",
            "--output-path",
            str(folder / PACKAGE),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Only the PNG bodies (plots, dataset images) are beyond it (it reads no image/png);
    # everything else is made.
    warnings = [line for line in result.stdout.splitlines() if line.startswith("WARNING")]
    png_routes = (".png within jobs.", ".png within datasets.")
    assert all(line.endswith(png_routes) for line in warnings), result.stdout


def module(name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.{name}")


def test_a_generated_client_works_against_the_real_server(
    env: Env, service: Service, synthetic_cifar: Path, tmp_path: Path
) -> None:
    service.overrides["TRAINSERVE_ADMIN_KEY"] = ADMIN
    service.start_api()
    service.start_worker()
    document = httpx.get(f"{service.url}/openapi.json").json()  # open: it holds no data
    validate(document)
    operation_ids = [
        op["operationId"] for path in document["paths"].values() for op in path.values()
    ]
    assert len(operation_ids) == len(set(operation_ids))
    assert {"submit_job", "get_metrics", "predict", "list_jobs"} <= set(operation_ids)

    generate(service.url, tmp_path)
    sys.path.insert(0, str(tmp_path))
    try:
        client_module = module("client")
        models = module("models")
        types = module("types")
        client = client_module.AuthenticatedClient(base_url=service.url, token=ADMIN)

        submitted = module("api.jobs.submit_job").sync(
            client=client,
            body=models.JobCreate.from_dict(
                {"epochs": 1, "batch_size": 16, "max_train_samples": 80, "seed": 5}
            ),
        )
        assert isinstance(submitted, models.JobOut), submitted
        get_job = module("api.jobs.get_job")
        deadline = time.monotonic() + 120
        job = get_job.sync(client=client, job_id=submitted.id)
        while job.status.value in ("queued", "running"):
            assert time.monotonic() < deadline, "the job never finished"
            time.sleep(0.3)
            job = get_job.sync(client=client, job_id=submitted.id)
        assert job.status.value == "succeeded"

        metrics = module("api.jobs.get_metrics").sync(client=client, job_id=job.id)
        assert isinstance(metrics, models.MetricsOut)
        assert metrics.test_accuracy == job.test_accuracy and len(metrics.epochs) == 1
        listed = module("api.jobs.list_jobs").sync(client=client, status=models.JobStatus.SUCCEEDED)
        assert [item.id for item in listed.items] == [job.id] and listed.total == 1

        pixels = synthetic_split(1, seed=3)[0][0].transpose(1, 2, 0)
        buffer = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="PNG")
        image = types.File(payload=io.BytesIO(buffer.getvalue()), file_name="x.png")
        answer = module("api.predict.predict").sync(
            client=client, body=models.BodyPredict(file=image)
        )
        assert isinstance(answer, models.PredictionOut), answer
        assert (answer.model, answer.version, answer.job_id) == ("cifar10", 1, job.id)
        expected = httpx.post(
            f"{service.url}/predict",
            files={"file": ("x.png", buffer.getvalue())},
            headers={"Authorization": f"Bearer {ADMIN}"},
        ).json()
        assert answer.label == expected["label"]

        # Errors come back as the typed ErrorOut the document declares.
        missing = get_job.sync(client=client, job_id=999)
        assert isinstance(missing, models.ErrorOut) and missing.detail == "job 999 not found"
        finished = module("api.jobs.cancel_job").sync(client=client, job_id=job.id)
        assert isinstance(finished, models.ErrorOut)
        assert finished.detail == (f"job {job.id} has already finished (its status is succeeded)")
        invalid = module("api.jobs.submit_job").sync_detailed(
            client=client, body=models.JobCreate.from_dict({"epochs": 0})
        )
        assert invalid.status_code == 422 and isinstance(invalid.parsed, models.ErrorOut)
        assert invalid.parsed.detail.startswith("epochs: ")
        assert invalid.parsed.errors[0].field == "epochs"
        keyless = client_module.Client(base_url=service.url)
        refused = get_job.sync_detailed(client=keyless, job_id=job.id)
        assert refused.status_code == 401 and isinstance(refused.parsed, models.ErrorOut)

        # Two jobs side by side (the ids sent as the document says), and one that is missing.
        # The second waits for a worker with 4 GPUs: queued, it has no results to compare yet.
        waiting = {"max_train_samples": 80, "seed": 6, "gpus": 4}
        second = module("api.jobs.submit_job").sync(
            client=client, body=models.JobCreate.from_dict(waiting)
        )
        compare_jobs = module("api.jobs.compare_jobs")
        compared = compare_jobs.sync(client=client, ids=[second.id, job.id])
        assert isinstance(compared, models.ComparisonOut), compared
        assert [found.id for found in compared.jobs] == [second.id, job.id]
        assert compared.jobs[0].status == models.JobStatus.QUEUED and compared.series[0].loss == []
        assert compared.config.differing["seed"] == [6, 5]
        assert compared.config.same["max_train_samples"] == 80
        airplane = compared.per_class_accuracy["airplane"]
        assert airplane.accuracy == [None, metrics.per_class_accuracy["airplane"]]
        assert airplane.best == [1]
        missing = compare_jobs.sync(client=client, ids=[job.id, 999])
        assert isinstance(missing, models.ErrorOut) and missing.detail == "job 999 not found"
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]
