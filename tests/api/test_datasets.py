"""Datasets through the API: upload, decode by a real worker, train on it, predict at its image
size, delete; every bad upload refused with its reason."""

import io
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.db import session_scope
from app.main import create_app
from app.models import Dataset
from app.settings import get_settings
from tests.conftest import Env
from tests.ml.test_archives import png, write_zip
from workers.worker import Worker

COLORS = {"red": (200, 20, 20), "green": (20, 200, 20), "blue": (20, 20, 200)}


def tensors_key(dataset_id: str) -> str:
    """Where the dataset's row says its decoded tensors are in the artifact store."""
    with session_scope() as session:
        key = session.get_one(Dataset, dataset_id).tensors_key
    assert key is not None
    return key


def noisy_png(color: tuple[int, int, int], seed: int, size: int) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = (rng.integers(-30, 31, size=(size, size, 3)) + color).clip(0, 255).astype("uint8")
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def colour_archive(path: Path, per_class: int = 12, size: int = 40) -> Path:
    """Three colour classes in one enclosing folder, no test split; images of `size` pixels."""
    files = {
        f"colours/train/{name}/{i}.png": noisy_png(color, seed=i, size=size)
        for name, color in COLORS.items()
        for i in range(per_class)
    }
    return write_zip(path, files)


def upload(client: TestClient, path: Path, **form: object) -> httpx.Response:
    with path.open("rb") as file:
        return client.post(
            "/datasets",
            files={"file": (path.name, file)},
            data={k: str(v) for k, v in form.items()},
        )


def test_upload_decode_train_predict_and_delete(
    client: TestClient, env: Env, tmp_path: Path
) -> None:
    response = upload(client, colour_archive(tmp_path / "colours.zip"), image_size=24, seed=3)
    assert response.status_code == 202, response.text
    dataset = response.json()
    assert response.headers["location"] == f"/datasets/{dataset['id']}"
    assert (dataset["status"], dataset["name"], dataset["kind"]) == (
        "queued",
        "colours.zip",
        "images",
    )
    assert dataset["options"] == {"image_size": 24, "test_fraction": 0.2, "seed": 3}

    # A job cannot use it before it is decoded.
    early = client.post("/jobs", json={"dataset": dataset["id"]})
    assert early.status_code == 409
    assert early.json()["detail"] == f"dataset {dataset['id']} is queued; a job needs it ready"

    worker = Worker(env.settings())
    assert worker.run_once()  # decodes the dataset
    ready = client.get(f"/datasets/{dataset['id']}").json()
    assert ready["status"] == "ready", ready["error"]
    assert ready["classes"] == ["blue", "green", "red"]
    assert ready["counts"] == {
        "train": {"blue": 10, "green": 10, "red": 10},
        "test": {"blue": 2, "green": 2, "red": 2},
    }
    assert (ready["image_size"], ready["test_split"], ready["ignored_files"]) == (24, "drawn", 0)
    assert (ready["attempts"], ready["max_attempts"]) == (1, 3)
    [attempt] = ready["attempt_history"]
    assert (attempt["attempt"], attempt["worker_id"], attempt["outcome"], attempt["detail"]) == (
        1,
        worker.worker_id,
        "ready",
        None,
    )
    assert attempt["started_at"] <= attempt["ended_at"] <= ready["finished_at"]
    folder = env.artifacts_dir / "datasets" / dataset["id"]
    assert tensors_key(dataset["id"]) == f"datasets/{dataset['id']}/images-attempt1.pt"
    assert sorted(p.name for p in folder.iterdir()) == ["images-attempt1.pt"]  # no upload now
    assert client.get("/datasets").json()["total"] == 1

    body = {"dataset": dataset["id"], "epochs": 6, "batch_size": 6, "learning_rate": 0.01,
            "optimizer": "adam", "log_every": 5, "seed": 1}  # fmt: skip
    job = client.post("/jobs", json=body).json()
    assert worker.run_once()
    trained = client.get(f"/jobs/{job['id']}/metrics").json()
    assert trained["status"] == "succeeded"
    assert trained["classes"] == ["blue", "green", "red"]
    assert trained["test_accuracy"] == 1.0  # colours are easy
    assert client.get(f"/jobs/{job['id']}").json()["progress"]["steps_per_epoch"] == 5

    # The model takes the dataset's image size; another is resized to it, or refused when the
    # request says resize=false.
    image = noisy_png(COLORS["green"], seed=99, size=24)
    answer = client.post("/predict", files={"file": ("g.png", image)}, params={"job_id": job["id"]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["label"] == "green"
    resized = client.post(
        "/predict", files={"file": ("g.png", png(COLORS["green"]))}, params={"job_id": job["id"]}
    )
    assert resized.status_code == 200 and resized.json()["label"] == "green"
    wrong = client.post(
        "/predict",
        files={"file": ("g.png", png(COLORS["green"]))},
        params={"job_id": job["id"], "resize": "false"},
    )
    assert wrong.status_code == 422
    assert "this model takes 24x24" in wrong.json()["detail"]

    # Not while a queued job uses it; then gone with its files.
    waiting = client.post("/jobs", json={**body, "seed": 2}).json()
    refused = client.delete(f"/datasets/{dataset['id']}")
    assert refused.status_code == 409
    assert f"unfinished job(s) {waiting['id']}" in refused.json()["detail"]
    client.post(f"/jobs/{waiting['id']}/cancel")
    assert client.delete(f"/datasets/{dataset['id']}").status_code == 204
    assert not folder.exists()
    assert client.get(f"/datasets/{dataset['id']}").status_code == 404
    gone = client.post("/jobs", json=body)
    assert (gone.status_code, gone.json()["detail"]) == (
        404,
        f"dataset {dataset['id']} not found (see GET /datasets)",
    )


def test_undecodable_files_fail_the_dataset_naming_them(
    client: TestClient, env: Env, tmp_path: Path
) -> None:
    path = tmp_path / "broken.zip"
    colour_archive(path)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("colours/train/red/notes.png", b"these are notes, not pixels")
    dataset = upload(client, path).json()
    assert Worker(env.settings()).run_once()
    failed = client.get(f"/datasets/{dataset['id']}").json()
    assert failed["status"] == "failed"
    assert failed["error"].startswith("1 file(s) could not be read as images: ")
    assert "colours/train/red/notes.png" in failed["error"]
    # The upload is at fault: no other attempt.
    assert failed["attempts"] == 1
    assert [(a["outcome"], a["detail"]) for a in failed["attempt_history"]] == [
        ("failed", failed["error"])
    ]
    refused = client.post("/jobs", json={"dataset": dataset["id"]})
    assert refused.status_code == 409
    assert refused.json()["detail"].startswith(f"dataset {dataset['id']} is failed: 1 file(s)")


def test_an_unsafe_archive_is_422_at_once_and_leaves_nothing(
    client: TestClient, env: Env, tmp_path: Path
) -> None:
    path = write_zip(tmp_path / "slip.zip", {"train/a/1.png": b"x", "../../etc/cron.d/evil": b"x"})
    response = upload(client, path)
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "file: unsafe entry name '../../etc/cron.d/evil': '..' is not allowed"
    )
    assert [p for p in env.data_dir.rglob("*") if p.is_file()] == []  # nor under incoming/
    assert client.get("/datasets").json()["total"] == 0


def test_uploads_that_are_not_archives_or_too_big(
    env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRAINSERVE_MAX_DATASET_BYTES", "4096")
    get_settings.cache_clear()
    with TestClient(create_app()) as client:
        csv = client.post("/datasets", files={"file": ("wine.csv", b"a;b\n1;2\n")})
        assert csv.status_code == 422
        assert csv.json()["detail"] == (
            "file: the file is neither a zip nor a tar.gz archive (a CSV needs the form field "
            "target)"
        )
        empty = client.post("/datasets", files={"file": ("empty.zip", b"")})
        assert (empty.status_code, empty.json()["detail"]) == (422, "file: the upload is empty")
        big = client.post("/datasets", files={"file": ("big.zip", bytes(10_000))})
        assert big.status_code == 413
        bad_size = client.post(
            "/datasets", files={"file": ("x.zip", b"PK")}, data={"image_size": "8"}
        )
        assert bad_size.status_code == 422
        assert bad_size.json()["detail"].startswith("image_size: ")
        assert client.get("/datasets").json() == {"items": [], "total": 0}
