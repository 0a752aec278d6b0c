"""The API and a worker with their artifacts in a bucket of a real S3-compatible server: what the
worker trains is published there and recorded with its sha256, and everything the API reads of
it (predictions, exports, a model's mistakes) comes from there; a deleted job's objects go."""

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.db import session_scope
from app.main import create_app
from app.models import Dataset, Job
from tests.api.test_datasets import colour_archive, upload
from tests.conftest import Env
from tests.s3 import S3Bucket
from workers.worker import Worker

JOB = {"epochs": 1, "batch_size": 16, "learning_rate": 0.01, "log_every": 5, "seed": 3}


@pytest.fixture
def bucket_client(s3_bucket: S3Bucket, env: Env) -> Iterator[TestClient]:
    with TestClient(create_app()) as client:
        yield client


def train(client: TestClient, env: Env, **config: object) -> int:
    response = client.post("/jobs", json={**JOB, **config})
    assert response.status_code == 202, response.text
    assert Worker(env.settings()).run_once()
    job_id: int = response.json()["id"]
    assert client.get(f"/jobs/{job_id}").json()["status"] == "succeeded"
    return job_id


def png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((32, 32, 3), 120, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def object_sha256(bucket: S3Bucket, key: str) -> str:
    body = bucket.server.client().get_object(Bucket=bucket.bucket, Key=bucket.name(key))["Body"]
    return hashlib.sha256(body.read()).hexdigest()


def test_a_job_trained_into_the_bucket_is_served_exported_and_deleted_from_there(
    bucket_client: TestClient, s3_bucket: S3Bucket, env: Env, synthetic_cifar: Path
) -> None:
    client = bucket_client
    assert client.get("/readyz").json() == {"status": "ready"}
    job_id = train(client, env)
    model, predictions = (
        f"jobs/{job_id}/model-attempt1.pt",
        f"jobs/{job_id}/test-predictions-attempt1.pt",
    )
    assert s3_bucket.stored_keys() == [model, predictions]  # its checkpoints are gone
    with session_scope() as session:
        job = session.get(Job, job_id)
        assert job is not None
        assert (job.model_path, job.checkpoint_key) == (model, None)
        assert job.model_sha256 == object_sha256(s3_bucket, model)
        assert job.predictions_sha256 == object_sha256(s3_bucket, predictions)
    assert not (env.artifacts_dir / "jobs").exists()  # nothing of the job stays on this machine

    answer = client.post("/predict", files={"file": ("x.png", png())}, params={"job_id": job_id})
    assert answer.status_code == 200, answer.text
    errors = client.get(f"/jobs/{job_id}/errors")
    assert errors.status_code == 200, errors.text
    matrix = client.get(f"/jobs/{job_id}/metrics").json()["confusion_matrix"]
    assert errors.json()["total"] == sum(map(sum, matrix)) - sum(
        matrix[i][i] for i in range(len(matrix))
    )
    export = client.get("/models/cifar10/versions/1/export", params={"format": "onnx"})
    assert export.status_code == 200, export.text
    onnx = "exports/cifar10/v1/cifar10-v1.onnx"
    assert s3_bucket.stored_keys() == [onnx, model, predictions]
    assert object_sha256(s3_bucket, onnx) == hashlib.sha256(export.content).hexdigest()
    again = client.get("/models/cifar10/versions/1/export", params={"format": "onnx"})
    assert again.content == export.content

    unregistered = train(client, env, register_as=None)
    assert client.delete(f"/jobs/{unregistered}").status_code == 204
    assert s3_bucket.stored_keys() == [onnx, model, predictions]


def test_a_model_changed_in_the_bucket_is_refused_by_its_sha256(
    bucket_client: TestClient, s3_bucket: S3Bucket, env: Env, synthetic_cifar: Path
) -> None:
    job_id = train(bucket_client, env)
    key = s3_bucket.name(f"jobs/{job_id}/model-attempt1.pt")
    client = s3_bucket.server.client()
    data = client.get_object(Bucket=s3_bucket.bucket, Key=key)["Body"].read()
    client.put_object(Bucket=s3_bucket.bucket, Key=key, Body=b"X" + data[1:])
    answer = bucket_client.post(
        "/predict", files={"file": ("x.png", png())}, params={"job_id": job_id}
    )
    assert (answer.status_code, answer.json()) == (
        503,
        {
            "detail": f"job {job_id}: its model file is damaged: its sha256 does not match the "
            "one recorded when it was written"
        },
    )


def change_object(bucket: S3Bucket, key: str) -> tuple[str, str]:
    """Change one byte of the object under `key` in the bucket: its sha256 before and after."""
    client = bucket.server.client()
    data = client.get_object(Bucket=bucket.bucket, Key=bucket.name(key))["Body"].read()
    changed = data[:-1] + bytes([data[-1] ^ 1])
    client.put_object(Bucket=bucket.bucket, Key=bucket.name(key), Body=changed)
    return hashlib.sha256(data).hexdigest(), hashlib.sha256(changed).hexdigest()


def test_dataset_objects_changed_in_the_bucket_are_refused_by_their_sha256(
    bucket_client: TestClient, s3_bucket: S3Bucket, env: Env, tmp_path: Path
) -> None:
    client = bucket_client
    store = f"artifact store {s3_bucket.url} at {s3_bucket.server.endpoint}"
    first, second = (
        upload(client, colour_archive(tmp_path / name, per_class=3, size=16), image_size=16).json()
        for name in ("first.zip", "second.zip")
    )
    first_upload = f"datasets/{first['id']}/upload"
    assert s3_bucket.stored_keys() == sorted([first_upload, f"datasets/{second['id']}/upload"])
    recorded, changed = change_object(s3_bucket, first_upload)
    with session_scope() as session:
        assert session.get_one(Dataset, first["id"]).upload_sha256 == recorded

    worker = Worker(env.settings())
    assert worker.run_once() and worker.run_once()  # both decoded, or refused
    failed = client.get(f"/datasets/{first['id']}").json()
    assert (failed["status"], failed["attempts"], failed["error"]) == (
        "failed",
        1,
        f"its upload cannot be used: {store}: {first_upload} is damaged: its sha256 is "
        f"{changed}, not the {recorded} recorded when it was written; it was not used; upload "
        "it again",
    )
    assert client.get(f"/datasets/{second['id']}").json()["status"] == "ready"
    tensors = f"datasets/{second['id']}/images-attempt1.pt"
    assert s3_bucket.stored_keys() == [tensors]  # the uploads are gone, decoded or refused

    recorded, changed = change_object(s3_bucket, tensors)
    image = client.get(f"/datasets/{second['id']}/images/test/0.png")
    assert (image.status_code, image.json()["detail"]) == (
        503,
        f"dataset {second['id']}'s images cannot be read: {store}: {tensors} is damaged: its "
        f"sha256 is {changed}, not the {recorded} recorded when it was written; it was not used",
    )
