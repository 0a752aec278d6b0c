"""The trainserve command against a real server and worker with API keys on."""

import hashlib
import json
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import CIFAR_CLASSES, synthetic_split
from tests.e2e.cli import percent, run
from tests.e2e.conftest import ADMIN_KEY, Service, wait_for

pytestmark = pytest.mark.e2e


def test_submit_follow_then_read_the_job_every_way(
    keyed_service: Service, synthetic_cifar: Path
) -> None:
    service = keyed_service
    submitted = run(
        service,
        "submit",
        *("--epochs", "2", "--batch-size", "16", "--log-every", "5", "--seed", "3"),
        *("--lr", "0.01", "--set", "max_train_samples=160", "--follow"),
    )
    assert submitted.returncode == 0, submitted.stderr
    with service.client() as client:
        client.headers["Authorization"] = f"Bearer {ADMIN_KEY}"
        job = client.get("/jobs/1").json()
        metrics = client.get("/jobs/1/metrics").json()
        listed = client.get("/jobs", params={"limit": 20}).json()
    assert job["status"] == "succeeded"
    assert job["config"]["max_train_samples"] == 160 and job["config"]["learning_rate"] == 0.01
    lines = submitted.stdout.splitlines()
    assert lines[:2] == ["job 1 queued", "job 1 running (attempt 1)"]
    # Not a terminal: a line per loss point, as the tutorial prints them, instead of a bar.
    for point in metrics["loss_history"]:
        assert f"epoch {point['epoch']}, step {point['step']}/10: loss {point['loss']:.3f}" in lines
    for epoch in metrics["epochs"]:
        assert (
            f"epoch {epoch['epoch']}: train loss {epoch['train_loss']:.3f}, "
            f"test loss {epoch['test_loss']:.3f}, "
            f"test accuracy {percent(epoch['test_accuracy'])}"
        ) in lines
    assert f"test accuracy {percent(metrics['test_accuracy'])}" in submitted.stdout
    for name in CIFAR_CLASSES:
        row = next(line for line in lines if line.strip("│ ").startswith(name + " "))
        assert percent(metrics["per_class_accuracy"][name]) in row
    assert max(map(len, lines)) <= 80, submitted.stdout

    for args, expected in (
        (("jobs", "--json"), listed),
        (("show", "1", "--json"), job),
        (("metrics", "1", "--json"), metrics),
    ):
        result = run(service, *args)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == expected
    table = run(service, "jobs").stdout
    assert "1 job" in table and "succeeded" in table and percent(job["test_accuracy"]) in table
    shown = run(service, "show", "1").stdout
    assert "succeeded" in shown and "attempts" in shown and "1 of 3" in shown
    read = run(service, "metrics", "1").stdout
    assert f"{metrics['loss_history'][0]['loss']:.3f}" in read and "TEST ACCURACY" in read

    images = []
    for index, pixels in enumerate(synthetic_split(3, seed=9)[0]):
        path = service.env.root / f"image-{index}.png"
        Image.fromarray(pixels.transpose(1, 2, 0)).save(path)
        images.append(path)
    junk = service.env.root / "notes.png"
    junk.write_bytes(b"not an image at all")
    predicted = run(service, "predict", *map(str, images), str(junk), "--top", "2")
    assert predicted.returncode == 1  # one file was refused
    with service.client() as client:
        client.headers["Authorization"] = f"Bearer {ADMIN_KEY}"
        for path, line in zip(images, predicted.stdout.splitlines(), strict=True):
            answer = client.post(
                "/predict", files={"file": (path.name, path.read_bytes())}, params={"top_k": 2}
            ).json()
            first, second = answer["top_k"]
            assert line == (
                f"{path}: {first['label']} {percent(first['probability'])}, "
                f"{second['label']} {percent(second['probability'])} (cifar10 v1, job 1)"
            )
    assert predicted.stderr.startswith(f"error: {junk}: ")
    assert predicted.stderr.strip().endswith("(HTTP 422)")
    assert len(predicted.stderr.strip().splitlines()) == 1

    # The registry: job 1 registered itself as cifar10 v1 and took production.
    second_job = run(service, "submit", "--set", "max_train_samples=40", "--set", "promote=never")
    assert second_job.stdout == "job 2 queued\n", second_job.stderr
    with service.client() as client:
        client.headers["Authorization"] = f"Bearer {ADMIN_KEY}"
        wait_for(lambda: client.get("/jobs/2").json()["status"] == "succeeded", 120, "job 2")
        models = client.get("/models").json()
    assert json.loads(run(service, "models", "--json").stdout) == models
    assert (
        "cifar10" in run(service, "models").stdout
        and "production -> v1" in run(service, "models").stdout
    )
    shown = run(service, "model", "cifar10").stdout
    assert "v2" in shown and "v1" in shown and "production" in shown
    assert run(service, "register", "2", "other").stdout == "job 2 is other v1\n"
    assert run(service, "promote", "cifar10", "2").stdout == "cifar10@production: v1 -> v2\n"
    assert run(service, "promote", "cifar10", "1").stdout == "cifar10@production: v2 -> v1\n"
    staged = run(service, "promote", "other", "1", "--alias", "staging")
    assert staged.stdout == "other@staging: nothing -> v1\n"
    by_version = run(service, "predict", str(images[0]), "--model", "cifar10", "--version", "2")
    assert by_version.stdout.endswith("(cifar10 v2, job 2)\n"), by_version.stderr
    history = json.loads(run(service, "model", "cifar10", "--json").stdout)
    assert history["aliases"] == {"production": 1}
    exported = service.env.root / "cifar10-v2.onnx"
    saved = run(service, "export", "cifar10", "2", "--format", "onnx", "-o", str(exported))
    assert saved.returncode == 0, saved.stderr
    with service.client() as client:
        client.headers["Authorization"] = f"Bearer {ADMIN_KEY}"
        onnx = client.get("/models/cifar10/versions/2/export", params={"format": "onnx"})
    assert exported.read_bytes() == onnx.content
    assert saved.stdout == (
        f"{exported}: {len(onnx.content):,} bytes, sha256 {onnx.headers['x-content-sha256']}\n"
    )
    card = service.env.root / "card.md"
    written = run(service, "export", "cifar10", "1", "--format", "card", "-o", str(card), "--json")
    assert json.loads(written.stdout) == {
        "path": str(card),
        "bytes": card.stat().st_size,
        "sha256": hashlib.sha256(card.read_bytes()).hexdigest(),
    }
    refused = run(service, "promote", "cifar10", "9")
    assert (refused.returncode, refused.stderr) == (
        1,
        "error: model 'cifar10' has no version 9 (HTTP 404)\n",
    )

    # The two jobs side by side: the API's answer with --json, else tables that fit 80 columns.
    with service.client() as client:
        client.headers["Authorization"] = f"Bearer {ADMIN_KEY}"
        compared = client.get("/jobs/compare", params={"ids": "2,1"}).json()
    assert json.loads(run(service, "compare", "2", "1", "--json").stdout) == compared
    table = run(service, "compare", "2", "1").stdout.splitlines()
    assert table[0] == "2 jobs side by side" and table[1].split() == ["JOB", "2", "JOB", "1"]
    assert max(map(len, table)) <= 80
    assert ["max_train_samples", "40", "160"] in [line.split() for line in table]
    one = run(service, "compare", "1")
    assert (one.returncode, one.stderr) == (
        1,
        "error: query.ids: give 2 to 10 distinct job ids (got 1) (HTTP 422)\n",
    )


def test_cancel_and_every_error_is_one_line_and_a_failing_exit(
    keyed_service: Service,
) -> None:
    service = keyed_service
    # No worker here has two GPUs, so the job stays queued and says why.
    submitted = run(service, "submit", "--gpus", "2", "--json")
    assert submitted.returncode == 0, submitted.stderr
    job = json.loads(submitted.stdout)
    assert job["status"] == "queued" and job["waiting_reason"]
    cancelled = run(service, "cancel", str(job["id"]))
    assert (cancelled.returncode, cancelled.stdout) == (0, f"job {job['id']} cancelled\n")

    for args, key, message in (
        (
            ("cancel", str(job["id"])),
            ADMIN_KEY,
            f"error: job {job['id']} has already finished (its status is cancelled) (HTTP 409)",
        ),
        (("show", "999"), ADMIN_KEY, "error: job 999 not found (HTTP 404)"),
        (
            ("jobs",),
            None,
            f"error: the server at {service.url} requires an API key: set TRAINSERVE_API_KEY",
        ),
        (
            ("jobs",),
            "wrong-key",
            f"error: the server at {service.url} refused the API key in TRAINSERVE_API_KEY",
        ),
    ):
        result = run(service, *args, key=key)
        assert (result.returncode, result.stdout, result.stderr) == (1, "", message + "\n")

    refused = run(service, "submit", "--set", "epochs=many")
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: epochs: ") and "(HTTP 422)" in refused.stderr
    assert len(refused.stderr.splitlines()) == 1
    unreachable = run(service, "jobs", "--url", "http://127.0.0.1:9")
    assert unreachable.returncode == 1
    assert unreachable.stderr.startswith("error: cannot reach the server at http://127.0.0.1:9")
    bad_option = run(service, "submit", "--set", "novalue")
    assert bad_option.returncode == 2 and "is not KEY=VALUE" in bad_option.stderr


def test_submit_with_labels_then_find_and_relabel_the_jobs(service: Service) -> None:
    service.overrides["TRAINSERVE_ADMIN_KEY"] = ADMIN_KEY
    service.start_api()  # no worker: the jobs stay queued

    def listed(*args: str) -> list[int]:
        found = run(service, "jobs", "--json", *args)
        assert found.returncode == 0, found.stderr
        return [job["id"] for job in json.loads(found.stdout)["items"]]

    first = run(
        service,
        *("submit", "--name", "baseline", "--tag", "sweep=lr", "--tag", "lr=0.001"),
        *("--notes", "the tutorial as it is", "--json"),
    )
    assert first.returncode == 0, first.stderr
    job = json.loads(first.stdout)
    assert (job["name"], job["tags"], job["notes"]) == (
        "baseline",
        {"lr": "0.001", "sweep": "lr"},
        "the tutorial as it is",
    )
    assert "name" not in job["config"] and "tags" not in job["config"]
    second = run(service, "submit", "--name", "LR trial", "--tag", "sweep=lr", "--tag", "lr=0.01")
    assert second.stdout == "job 2 queued\n", second.stderr
    assert run(service, "submit").stdout == "job 3 queued\n"

    assert listed("--tag", "sweep=lr") == [2, 1]
    assert listed("--tag", "sweep=lr", "--tag", "lr=0.01") == [2]
    assert listed("--tag", "lr") == [2, 1]
    assert listed("--name", "trial") == [2]
    assert listed("--sort", "created_at") == [1, 2, 3]
    assert listed("--status", "queued", "--model", "tutorial_cnn", "--dataset", "cifar10") == [
        3,
        2,
        1,
    ]
    assert listed("--model", "mlp") == listed("--status", "running") == []
    table = [line.rstrip() for line in run(service, "jobs").stdout.splitlines()]
    assert table[:2] == [
        "3 jobs",
        "ID  NAME      STATUS  PROGRESS  ACCURACY  CREATED           NOTE",
    ]
    assert [line.split()[:3] for line in table[2:]] == [
        ["3", "-", "queued"],
        ["2", "LR", "trial"],
        ["1", "baseline", "queued"],
    ]

    labelled = run(service, "label", "3", "--name", "third", "--tag", "sweep=lr")
    assert labelled.stdout == 'job 3: name "third", tags sweep=lr\n', labelled.stderr
    edited = run(service, "label", "1", "--untag", "lr", "--notes", "edited", "--clear-name")
    assert edited.stdout == "job 1: no name, tags sweep=lr, notes: edited\n", edited.stderr
    assert listed("--tag", "sweep=lr") == [3, 2, 1] and listed("--tag", "lr") == [2]
    shown = run(service, "show", "2").stdout
    assert "LR trial" in shown and "lr=0.01, sweep=lr" in shown

    refused = run(service, "jobs", "--tag", "bad key=x")
    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr == (
        "error: query.tag.0: 'bad key:x' is not KEY or KEY:VALUE (a key is 1 to 64 characters "
        "of A-Z, a-z, 0-9, '.', '_' and '-') (HTTP 422)\n"
    )
    missing = run(service, "label", "9", "--name", "x")
    assert (missing.returncode, missing.stderr) == (1, "error: job 9 not found (HTTP 404)\n")
    both = run(service, "label", "1", "--name", "x", "--clear-name")
    assert both.returncode == 2 and "give --name or --clear-name, not both" in both.stderr
