"""Tabular datasets through the API: the wine-quality example, the rows route and its errors."""

import csv
import os
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SHARED_DATA, Env
from workers.worker import Worker

WINE = SHARED_DATA / "WineQT.csv"
# The example: an MLP, Adam lr 0.01, 100 full-batch epochs, an 80/20 split with seed 42.
WINE_JOB = {
    "model": "mlp",
    "hidden_layers": [64, 32],
    "optimizer": "adam",
    "learning_rate": 0.01,
    "epochs": 100,
    "batch_size": None,
    "log_every": 1,
    "seed": 42,
}


def upload_csv(client: TestClient, path: Path, **form: str) -> dict:
    with path.open("rb") as file:
        response = client.post("/datasets", files={"file": (path.name, file)}, data=form)
    assert response.status_code == 202, response.text
    return response.json()


def ready(client: TestClient, env: Env, dataset: dict) -> dict:
    assert Worker(env.settings()).run_once()
    found = client.get(f"/datasets/{dataset['id']}").json()
    assert found["status"] == "ready", found["error"]
    return found


def small_table(path: Path) -> Path:
    """Two features; the class is which one is larger."""
    lines = ["id;first;second;label"] + [
        f"{i};{i % 7};{(i * 3) % 5};{'a' if i % 7 > (i * 3) % 5 else 'b'}" for i in range(60)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_wine_example(client: TestClient, env: Env) -> None:
    if not WINE.is_file():
        pytest.skip(f"the wine table is not available: {WINE} missing")
    dataset = upload_csv(client, WINE, target="quality", drop="Id", test_fraction="0.2", seed="42")
    assert (dataset["kind"], dataset["options"]["drop"]) == ("tabular", ["Id"])
    found = ready(client, env, dataset)
    assert found["classes"] == ["3", "4", "5", "6", "7", "8"]
    assert len(found["feature_columns"]) == 11 and "alcohol" in found["feature_columns"]
    train, test = found["counts"]["train"], found["counts"]["test"]
    assert sum(train.values()) + sum(test.values()) == 1143
    assert test == {"3": 1, "4": 7, "5": 97, "6": 92, "7": 29, "8": 3}  # 20% of each class

    job = client.post("/jobs", json={**WINE_JOB, "dataset": dataset["id"]}).json()
    assert Worker(env.settings()).run_once()
    metrics = client.get(f"/jobs/{job['id']}/metrics").json()
    assert metrics["status"] == "succeeded"
    losses = [point["loss"] for point in metrics["loss_history"]]
    assert len(losses) == 100  # one full-batch step, one loss point, an epoch
    assert client.get(f"/jobs/{job['id']}").json()["progress"]["steps_per_epoch"] == 1
    print(
        f"\nwine: test accuracy {100 * metrics['test_accuracy']:.2f}%, training loss "
        + ", ".join(f"epoch {e}: {losses[e - 1]:.3f}" for e in (1, 20, 40, 60, 80, 100))
    )
    assert metrics["test_accuracy"] > 0.5  # the most common class alone is 42%
    assert losses[-1] < losses[0] / 2
    figures = os.environ.get("TRAINSERVE_SCREENSHOT_DIR")
    if figures:  # the loss curve in docs/datasets.md, drawn by the service itself
        plot = client.get(f"/jobs/{job['id']}/plots/loss.png")
        Path(figures).mkdir(parents=True, exist_ok=True)
        (Path(figures) / "wine-loss.png").write_bytes(plot.content)

    with WINE.open(newline="") as file:
        first = next(csv.DictReader(file))
    row = {name: float(first[name]) for name in found["feature_columns"]}
    answer = client.post(f"/predict/rows?job_id={job['id']}&top_k=2", json={"rows": [row, row]})
    assert answer.status_code == 200, answer.text
    one, two = answer.json()["predictions"]
    assert one["label"] == two["label"] and one["label"] in found["classes"]
    assert len(one["top_k"]) == 2
    assert one["probabilities"] == pytest.approx(two["probabilities"], abs=1e-6)
    assert sum(one["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)


def test_rows_must_have_exactly_the_model_s_columns(
    client: TestClient, env: Env, tmp_path: Path
) -> None:
    dataset = upload_csv(client, small_table(tmp_path / "t.csv"), target="label", drop="id")
    found = ready(client, env, dataset)
    assert found["feature_columns"] == ["first", "second"]
    body = {"dataset": dataset["id"], "model": "mlp", "batch_size": None, "epochs": 3, "seed": 1}
    job_id = client.post("/jobs", json=body).json()["id"]
    assert Worker(env.settings()).run_once()
    route = f"/predict/rows?job_id={job_id}"
    good = client.post(route, json={"rows": [{"first": 3, "second": 1.5}]})
    assert good.status_code == 200, good.text
    assert good.json()["job_id"] == job_id
    for rows, detail in (
        ([{"first": 1}], "rows[0]: missing columns 'second'"),
        (
            [{"first": 1, "second": 2}, {"first": 1, "second": 2, "colour": 3, "id": 4}],
            "rows[1]: unknown columns 'colour', 'id'",
        ),
        ([{"second": 1, "third": 2}], "rows[0]: missing columns 'first'; unknown columns 'third'"),
    ):
        response = client.post(route, json={"rows": rows})
        assert (response.status_code, response.json()["detail"]) == (422, detail)
    text = client.post(route, json={"rows": [{"first": "three", "second": 1}]})
    assert text.status_code == 422 and text.json()["detail"].startswith("rows.0.first: ")
    empty = client.post(route, json={"rows": []})
    assert empty.status_code == 422
    image = client.post(f"/predict?job_id={job_id}", files={"file": ("x.png", b"\x89PNG")})
    assert (image.status_code, image.json()["detail"]) == (
        422,
        f"job {job_id} was trained on a table: send its rows to POST /predict/rows",
    )
    # A job on an uploaded dataset registers no model: the default is still not there.
    for default in (
        client.post("/predict/rows", json={"rows": [{"first": 1}]}),
        client.post("/predict", files={"file": ("x.png", b"\x89PNG")}),
    ):
        assert default.status_code == 503
        assert default.json()["detail"].startswith("no model is registered as 'cifar10' yet")


def test_tabular_options_are_checked(client: TestClient, env: Env, tmp_path: Path) -> None:
    path = small_table(tmp_path / "t.csv")
    with path.open("rb") as file:
        missing = client.post(
            "/datasets", files={"file": ("t.csv", file)}, data={"target": "quality"}
        )
    assert missing.status_code == 422
    assert missing.json()["detail"] == (
        "file: no column 'quality' in the CSV; its columns are 'id', 'first', 'second', 'label'"
    )
    dataset = ready(client, env, upload_csv(client, path, target="label"))
    for body, status, detail in (
        (
            {"dataset": dataset["id"]},
            422,
            f'model: dataset {dataset["id"]} holds tabular data; train it with model "mlp"',
        ),
        ({"model": "mlp"}, 422, 'model "mlp" cannot go with dataset "cifar10"'),
        ({"dataset": dataset["id"], "model": "mlp", "hidden_layers": []}, 422, "hidden_layers"),
    ):
        response = client.post("/jobs", json=body)
        assert response.status_code == status, response.text
        assert detail in response.json()["detail"]
    shutil.rmtree(env.artifacts_dir / "datasets" / dataset["id"])
    body = {"dataset": dataset["id"], "model": "mlp", "epochs": 1}
    job_id = client.post("/jobs", json=body).json()["id"]
    assert Worker(env.settings()).run_once()
    failed = client.get(f"/jobs/{job_id}").json()
    assert failed["status"] == "failed"
    assert failed["error"] == (
        f"dataset {dataset['id']}'s decoded tensors are gone (artifact store "
        f"{env.artifacts_dir}: datasets/{dataset['id']}/table-attempt1.pt is missing); upload "
        "it again"
    )
