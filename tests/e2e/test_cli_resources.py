"""The command's datasets, weights, workers, predict-rows, retry and delete against a real
server."""

import json
import subprocess
from importlib.metadata import version
from pathlib import Path

import pytest
import torch

from app.cli.predicting import ranked
from app.ml.nets import TutorialCNN
from tests.api.test_datasets import colour_archive
from tests.api.test_tabular import small_table
from tests.e2e.cli import admin_client, run
from tests.e2e.conftest import TRAINSERVE, Service, wait_for

pytestmark = pytest.mark.e2e

TABLE_JOB = ["--set", "model=mlp", "--set", "optimizer=adam", "--set", "batch_size=null"]


def succeeded(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_version() -> None:
    result = subprocess.run([TRAINSERVE, "--version"], capture_output=True, text=True)
    assert (result.returncode, result.stdout) == (0, f"trainserve {version('trainserve')}\n")


def test_datasets_from_upload_to_delete(keyed_service: Service, tmp_path: Path) -> None:
    service = keyed_service
    archive = colour_archive(tmp_path / "colours.zip")
    printed = succeeded(run(service, "datasets", "upload", str(archive), "--wait", "--seed", "3"))
    with admin_client(service) as client:
        listed = client.get("/datasets", params={"limit": 50}).json()
    (images,) = listed["items"]
    train, test = (sum(images["counts"][split].values()) for split in ("train", "test"))
    assert (train, test) == (30, 6) and images["options"]["seed"] == 3
    assert images["upload_bytes"] == archive.stat().st_size
    assert printed == (
        f"dataset {images['id']} queued\n"
        f"dataset {images['id']} ready: 3 classes, 30/6 train/test images\n"
    )

    table_file = small_table(tmp_path / "table.csv")
    uploaded = run(
        service, "datasets", "upload", str(table_file), "--target", "label", "--drop", "id",
        "--wait", "--json",
    )  # fmt: skip
    table = json.loads(succeeded(uploaded))
    with admin_client(service) as client:
        assert table == client.get(f"/datasets/{table['id']}").json()
        listed = client.get("/datasets", params={"limit": 50}).json()
    assert table["status"] == "ready" and table["feature_columns"] == ["first", "second"]
    assert json.loads(succeeded(run(service, "datasets", "list", "--json"))) == listed
    lines = succeeded(run(service, "datasets", "list")).splitlines()
    assert lines[0] == "2 datasets" and lines[1].split() == [
        *("ID", "KIND", "STATUS", "CLASSES", "TRAIN/TEST", "NAME")
    ]
    assert lines[2].split() == [table["id"], "tabular", "ready", "2", "48/12", "table.csv"]
    assert lines[3].split() == [images["id"], "images", "ready", "3", "30/6", "colours.zip"]
    shown = succeeded(run(service, "datasets", "show", images["id"]))
    assert "blue, green, red" in shown and "30/6" in shown and "drawn" in shown
    assert json.loads(succeeded(run(service, "datasets", "show", images["id"], "--json"))) == (
        images
    )

    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not an archive")
    refused = run(service, "datasets", "upload", str(junk))
    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr.startswith("error: ") and refused.stderr.endswith("(HTTP 422)\n")

    assert succeeded(run(service, "datasets", "delete", images["id"])) == (
        f"dataset {images['id']} deleted\n"
    )
    gone = run(service, "datasets", "show", images["id"])
    assert (gone.returncode, gone.stderr) == (
        1,
        f"error: dataset {images['id']} not found (HTTP 404)\n",
    )


def test_predict_rows_from_a_csv_file_or_json(keyed_service: Service, tmp_path: Path) -> None:
    service = keyed_service
    table_file = small_table(tmp_path / "table.csv")
    dataset = json.loads(
        succeeded(
            run(service, "datasets", "upload", str(table_file), "--target", "label", "--wait",
                "--drop", "id", "--json")
        )
    )  # fmt: skip
    job = json.loads(
        succeeded(
            run(service, "submit", "--dataset", dataset["id"], *TABLE_JOB, "--epochs", "20",
                "--lr", "0.01", "--follow", "--json")
        )
    )  # fmt: skip
    assert job["status"] == "succeeded" and job["config"]["dataset"] == dataset["id"]

    rows = [{"first": float(i % 7), "second": float((i * 3) % 5)} for i in range(4)]
    with admin_client(service) as client:
        answer = client.post(
            "/predict/rows", json={"rows": rows}, params={"job_id": job["id"], "top_k": 2}
        ).json()
    by_file = run(service, "predict-rows", str(table_file), "--job", str(job["id"]),
                  "--drop", "id", "--drop", "label", "--top", "2")  # fmt: skip
    lines = succeeded(by_file).splitlines()
    assert len(lines) == 61 and lines[-1] == f"(60 rows, job {job['id']})"
    for number, prediction in enumerate(answer["predictions"], start=1):
        assert lines[number - 1] == f"row {number}: {ranked(prediction)}"
    inline = run(service, "predict-rows", json.dumps(rows), "--job", str(job["id"]), "--top", "2",
                 "--json")  # fmt: skip
    assert json.loads(succeeded(inline)) == answer

    text_values = run(service, "predict-rows", str(table_file), "--job", str(job["id"]))
    assert text_values.returncode == 2
    assert (
        "table.csv, line 2: every value must be a number (leave the target and other text "
        "columns out with --drop COLUMN)"
    ) in " ".join(text_values.stderr.replace("│", " ").split())
    missing = run(service, "predict-rows", '[{"first": 1}]', "--job", str(job["id"]))
    assert (missing.returncode, missing.stderr) == (
        1,
        "error: rows[0]: missing columns 'second' (HTTP 422)\n",
    )


def test_retry_delete_and_workers(keyed_service: Service) -> None:
    service = keyed_service
    with admin_client(service) as client:
        wait_for(lambda: client.get("/workers").json()["total"] == 1, 60, "the worker")
    # No worker here has two GPUs: the job waits, and is cancelled.
    first = json.loads(succeeded(run(service, "submit", "--gpus", "2", "--json")))
    succeeded(run(service, "cancel", str(first["id"])))
    retried = run(service, "retry", str(first["id"]))
    assert succeeded(retried) == f"job {first['id'] + 1} (a retry of job {first['id']}) queued\n"
    assert retried.stderr == (
        "note: the job needs 2 GPUs on one worker and the live workers offer no GPU; "
        "it waits for a worker that has them\n"
    )
    with admin_client(service) as client:
        retry_job = client.get(f"/jobs/{first['id'] + 1}").json()
        assert retry_job["retry_of"] == first["id"]
        succeeded(run(service, "cancel", str(retry_job["id"])))
        again = json.loads(succeeded(run(service, "retry", str(retry_job["id"]), "--json")))
        assert again == client.get(f"/jobs/{again['id']}").json()
        succeeded(run(service, "cancel", str(again["id"])))

    assert succeeded(run(service, "delete", str(first["id"]))) == f"job {first['id']} deleted\n"
    gone = run(service, "show", str(first["id"]))
    assert gone.stderr == f"error: job {first['id']} not found (HTTP 404)\n"
    refused = run(service, "retry", str(retry_job["id"] + 5))
    assert refused.stderr == f"error: job {retry_job['id'] + 5} not found (HTTP 404)\n"

    with admin_client(service) as client:
        expected = client.get("/workers").json()
    listed = json.loads(succeeded(run(service, "workers", "--json")))
    # Only the heartbeat moves between the two reads.
    for page in (listed, expected):
        for worker in page["items"]:
            worker.pop("heartbeat_at")
    assert listed == expected
    (worker,) = expected["items"]
    lines = succeeded(run(service, "workers")).splitlines()
    assert lines[0] == "1 live worker"
    assert lines[2].split()[:3] == [worker["id"], str(worker["cpus"]), "-"]
    assert max(map(len, lines)) <= 80


def test_weights_and_a_fine_tuning_job_from_the_command_line(
    keyed_service: Service, synthetic_cifar: Path, tmp_path: Path
) -> None:
    service = keyed_service
    weights_file = tmp_path / "cnn.pt"
    torch.save(TutorialCNN(num_classes=10).state_dict(), weights_file)
    printed = succeeded(run(service, "weights", "upload", str(weights_file)))
    with admin_client(service) as client:
        [listed] = client.get("/weights").json()["items"]
        weights = client.get(f"/weights/{listed['id']}").json()
    assert printed == f"weights {weights['id']} uploaded: 10 tensors, 62,006 parameters (pytorch)\n"
    lines = succeeded(run(service, "weights", "list")).splitlines()
    assert lines[0] == "1 weights file"
    assert lines[2].split() == [
        weights["id"],
        "pytorch",
        "10",
        "62,006",
        f"{len(weights_file.read_bytes()):,}",
        "cnn.pt",
    ]
    shown = succeeded(run(service, "weights", "show", weights["id"]))
    # In 80 columns the sha256 folds onto a second line.
    assert weights["sha256"][:48] in shown and "fc1.weight" in shown and "120x400" in shown
    assert (
        json.loads(succeeded(run(service, "weights", "show", weights["id"], "--json"))) == weights
    )

    job = json.loads(
        succeeded(
            run(service, "submit", "--init-from", f"weights:{weights['id']}", "--freeze",
                "backbone", "--epochs", "1", "--max-train-samples", "40", "--follow", "--json")
        )
    )  # fmt: skip
    assert job["status"] == "succeeded", job["error"]
    assert job["config"]["init_from"] == {
        "weights": weights["id"],
        "sha256": weights["sha256"],
        "filename": "cnn.pt",
    }
    assert job["config"]["freeze"] == "backbone"
    unclear = run(service, "submit", "--init-from", "cifar10")
    assert unclear.returncode == 2 and "is none of MODEL:VERSION" in unclear.stderr
    assert succeeded(run(service, "weights", "delete", weights["id"])) == (
        f"weights {weights['id']} deleted\n"
    )
