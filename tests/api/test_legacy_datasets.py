"""Datasets from before they went to the artifact store, whose rows record no keys: one decoded
then is trained on and its images served from TRAINSERVE_DATA_DIR/datasets/<id>/ as before; one
queued then is decoded from its upload there, into the store."""

import shutil
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import update

from app.db import session_scope
from app.models import Dataset
from tests.api.test_datasets import colour_archive, tensors_key, upload
from tests.conftest import Env
from workers.worker import Worker

JOB = {"epochs": 1, "batch_size": 6, "learning_rate": 0.01, "log_every": 5, "seed": 1}


def as_before_the_store(env: Env, dataset_id: str, key: str, name: str, **no_keys: None) -> None:
    """Move the dataset's object `key` to its old place under the data folder, as `name`, and
    take the keys `no_keys` off its row."""
    legacy = env.data_dir / "datasets" / dataset_id / name
    legacy.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(env.artifacts_dir / key, legacy)
    with session_scope(write=True) as session:
        session.execute(update(Dataset).where(Dataset.id == dataset_id).values(**no_keys))


def test_datasets_kept_under_the_data_folder_before_the_store_keep_working(
    client: TestClient, env: Env, tmp_path: Path
) -> None:
    decoded = upload(client, colour_archive(tmp_path / "a.zip", per_class=5), image_size=16).json()
    worker = Worker(env.settings())
    assert worker.run_once()
    image = client.get(f"/datasets/{decoded['id']}/images/train/3.png").content
    key = tensors_key(decoded["id"])
    as_before_the_store(env, decoded["id"], key, "images.pt", tensors_key=None, tensors_sha256=None)
    assert client.get(f"/datasets/{decoded['id']}/images/train/3.png").content == image
    job_id = client.post("/jobs", json={**JOB, "dataset": decoded["id"]}).json()["id"]
    assert worker.run_once()
    assert client.get(f"/jobs/{job_id}").json()["status"] == "succeeded"

    queued = upload(client, colour_archive(tmp_path / "b.zip", per_class=5), image_size=16).json()
    upload_key = f"datasets/{queued['id']}/upload"
    as_before_the_store(env, queued["id"], upload_key, "upload", upload_key=None)
    assert worker.run_once()
    ready = client.get(f"/datasets/{queued['id']}").json()
    assert ready["status"] == "ready", ready["error"]
    assert tensors_key(queued["id"]) == f"datasets/{queued['id']}/images-attempt1.pt"
    assert not (env.data_dir / "datasets" / queued["id"] / "upload").exists()  # decoded: gone
    assert client.delete(f"/datasets/{decoded['id']}").status_code == 204
    assert not (env.data_dir / "datasets" / decoded["id"]).exists()
