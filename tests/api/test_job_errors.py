"""GET /jobs/{id}/errors: a trained job's misclassified test examples, counted exactly as its
confusion matrix counts them, most confident first, each naming the image that
GET /datasets/{id}/images/test/{index}.png serves and that /predict classifies the same way."""

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import update

from app.db import session_scope
from app.ml.example_predictions import load_example_predictions
from app.ml.images import balanced_indices
from app.models import Job
from tests.api.conftest import TrainJob, refusal
from tests.api.test_datasets import colour_archive, upload
from tests.api.test_tabular import ready, small_table, upload_csv
from tests.conftest import CIFAR_CLASSES, Env, synthetic_split, write_cifar_layout
from workers.worker import Worker

# A barely trained model, so that it makes mistakes of many kinds.
UNDERTRAINED = {"max_train_samples": 60, "max_test_samples": 30, "register_as": None}


@pytest.fixture
def class_sorted_cifar(env: Env) -> np.ndarray:
    """A CIFAR-10 layout whose test images come class by class (ten of each): its first 30
    class-balanced examples are not its first 30, so an index must say which is meant. Its
    test labels."""
    images, labels = synthetic_split(100, seed=2)
    order = np.argsort(labels, kind="stable")
    write_cifar_layout(env.data_dir, synthetic_split(400, seed=1), (images[order], labels[order]))
    return labels[order]


def errors(client: TestClient, job_id: int, **params: object) -> dict:
    response = client.get(f"/jobs/{job_id}/errors", params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    return response.json()


def test_mistakes_match_the_confusion_matrix_cell_by_cell(
    client: TestClient, train_job: TrainJob, class_sorted_cifar: np.ndarray, env: Env
) -> None:
    job_id = train_job(**UNDERTRAINED)
    metrics = client.get(f"/jobs/{job_id}/metrics").json()
    matrix, classes = metrics["confusion_matrix"], metrics["classes"]
    assert classes == CIFAR_CLASSES
    wrong = sum(matrix[t][p] for t in range(10) for p in range(10) if t != p)
    assert 0 < wrong < 30  # some right, some wrong

    everything = errors(client, job_id)
    assert (everything["job_id"], everything["dataset"], everything["total"]) == (
        job_id,
        "cifar10",
        wrong,
    )
    items = everything["items"]
    assert len(items) == wrong
    confidences = [item["confidence"] for item in items]
    assert confidences == sorted(confidences, reverse=True)
    assert all(0 < c <= 1 for c in confidences)
    # Indexes name images of the dataset's own test split, among the 30 the job was tested on.
    tested = set(balanced_indices(torch.from_numpy(class_sorted_cifar), 30).tolist())
    assert tested != set(range(30))
    for item in items:
        assert item["index"] in tested
        assert item["true"] == classes[class_sorted_cifar[item["index"]]] != item["predicted"]
        assert item["image"] == f"/datasets/cifar10/images/test/{item['index']}.png"

    for t, true in enumerate(classes):
        row = errors(client, job_id, true=true)
        assert row["total"] == sum(matrix[t]) - matrix[t][t]
        for p, predicted in enumerate(classes):
            if p == t:
                continue
            cell = errors(client, job_id, true=true, predicted=predicted)
            assert cell["total"] == matrix[t][p], (true, predicted)
            # The same mistakes, in the same order, as in the unfiltered list.
            expected = [i for i in items if (i["true"], i["predicted"]) == (true, predicted)]
            assert cell["items"] == expected
    for p, predicted in enumerate(classes):
        column = errors(client, job_id, predicted=predicted)
        assert column["total"] == sum(row[p] for row in matrix) - matrix[p][p]
    right = errors(client, job_id, true="cat", predicted="cat")
    assert (right["total"], right["items"]) == (0, [])

    # Pages of 4 make up the whole list, each with the same total.
    pages = [errors(client, job_id, limit=4, offset=offset) for offset in range(0, wrong + 4, 4)]
    assert {page["total"] for page in pages} == {wrong}
    assert [item for page in pages for item in page["items"]] == items
    assert pages[-1]["items"] == []

    # The image at each index is the one the model got wrong, with the same probability.
    for item in items[:3]:
        image = client.get(item["image"])
        assert image.status_code == 200
        answer = client.post(
            "/predict",
            files={"file": ("x.png", image.content, "image/png")},
            params={"job_id": job_id},
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["label"] == item["predicted"]
        assert answer.json()["probabilities"][item["predicted"]] == pytest.approx(
            item["confidence"], abs=1e-5
        )

    stored = load_example_predictions(
        env.artifacts_dir / f"jobs/{job_id}/test-predictions-attempt1.pt"
    )
    assert sorted(stored.index.tolist()) == sorted(tested)
    assert metrics["test_accuracy"] == pytest.approx(
        float((stored.predicted == stored.true).float().mean())
    )


def test_a_job_without_stored_predictions_is_409(
    client: TestClient, train_job: TrainJob, synthetic_cifar: Path, env: Env
) -> None:
    queued = client.post("/jobs", json={"epochs": 1}).json()["id"]
    assert refusal(client.get(f"/jobs/{queued}/errors")) == (
        409,
        f"job {queued} is queued: its test predictions are stored when it succeeds",
    )
    client.post(f"/jobs/{queued}/cancel")
    assert refusal(client.get(f"/jobs/{queued}/errors")) == (
        409,
        f"job {queued} was cancelled: only a job that succeeds stores its test predictions",
    )

    # A job trained before jobs kept their predictions has a model and no predictions file.
    trained = train_job(**UNDERTRAINED)
    (env.artifacts_dir / f"jobs/{trained}/test-predictions-attempt1.pt").unlink()
    assert refusal(client.get(f"/jobs/{trained}/errors")) == (
        409,
        f"job {trained} has no stored test predictions: it was trained before jobs kept them; "
        "submit its config again to get them",
    )
    assert client.get("/jobs/999/errors").json()["detail"] == "job 999 not found"


def test_stored_predictions_that_do_not_load_are_503(
    client: TestClient, train_job: TrainJob, synthetic_cifar: Path, env: Env
) -> None:
    trained = train_job(**UNDERTRAINED)
    stored = env.artifacts_dir / f"jobs/{trained}/test-predictions-attempt1.pt"
    stored.write_bytes(b"not a torch file")
    assert refusal(client.get(f"/jobs/{trained}/errors"))[0] == 503  # refused by its sha256
    # Kept before sha256s were recorded: nothing to check it by, and it does not load.
    with session_scope(write=True) as session:
        session.execute(update(Job).where(Job.id == trained).values(predictions_sha256=None))
    assert refusal(client.get(f"/jobs/{trained}/errors")) == (
        503,
        f"job {trained}: its test predictions cannot be loaded",
    )


def test_filters_and_limits_are_checked(
    client: TestClient, train_job: TrainJob, synthetic_cifar: Path
) -> None:
    job_id = train_job(**UNDERTRAINED)
    assert refusal(client.get(f"/jobs/{job_id}/errors", params={"true": "zebra"})) == (
        422,
        f"true: job {job_id} has no class 'zebra'; its classes are " + ", ".join(CIFAR_CLASSES),
    )
    response = client.get(f"/jobs/{job_id}/errors", params={"true": "cat", "predicted": "Dog"})
    assert response.status_code == 422
    assert response.json()["detail"].startswith(f"predicted: job {job_id} has no class 'Dog';")
    for limit in (0, 501):
        response = client.get(f"/jobs/{job_id}/errors", params={"limit": limit})
        assert response.status_code == 422
        assert [e["field"] for e in response.json()["errors"]] == ["query.limit"]
    assert client.get(f"/jobs/{job_id}/errors", params={"offset": -1}).status_code == 422


def test_an_uploaded_image_dataset_s_mistakes_name_its_images(
    client: TestClient, env: Env, tmp_path: Path
) -> None:
    dataset = upload(client, colour_archive(tmp_path / "colours.zip"), image_size=16).json()
    worker = Worker(env.settings())
    assert worker.run_once()
    body = {"dataset": dataset["id"], "epochs": 1, "batch_size": 30, "learning_rate": 0.0001,
            "seed": 1}  # fmt: skip
    job_id = client.post("/jobs", json=body).json()["id"]
    assert worker.run_once()
    matrix = client.get(f"/jobs/{job_id}/metrics").json()["confusion_matrix"]
    listed = errors(client, job_id)
    assert listed["total"] == sum(map(sum, matrix)) - sum(matrix[i][i] for i in range(3)) > 0
    for item in listed["items"]:
        assert item["image"] == f"/datasets/{dataset['id']}/images/test/{item['index']}.png"
        png = client.get(item["image"])
        assert png.status_code == 200
        assert Image.open(io.BytesIO(png.content)).size == (16, 16)


def test_a_table_s_mistakes_are_its_test_rows(client: TestClient, env: Env, tmp_path: Path) -> None:
    table = upload_csv(client, small_table(tmp_path / "t.csv"), target="label")
    dataset = ready(client, env, table)
    test_rows = sum(dataset["counts"]["test"].values())
    body = {"dataset": dataset["id"], "model": "mlp", "epochs": 2, "batch_size": 8,
            "learning_rate": 0.001, "seed": 0}  # fmt: skip
    job_id = client.post("/jobs", json=body).json()["id"]
    assert Worker(env.settings()).run_once()
    metrics = client.get(f"/jobs/{job_id}/metrics").json()
    matrix, classes = metrics["confusion_matrix"], metrics["classes"]
    listed = errors(client, job_id)
    assert listed["total"] == matrix[0][1] + matrix[1][0] > 0
    assert all(item["image"] is None for item in listed["items"])
    assert all(0 <= item["index"] < test_rows for item in listed["items"])
    for t, p in ((0, 1), (1, 0)):
        cell = errors(client, job_id, true=classes[t], predicted=classes[p])
        assert cell["total"] == matrix[t][p]
