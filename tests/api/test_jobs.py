import pytest
from fastapi.testclient import TestClient

from app.jobs.recipes import RECIPES
from tests.api.conftest import TrainJob
from tests.conftest import CIFAR_CLASSES

TUTORIAL_DEFAULTS = {
    "recipe": "tutorial",
    "model": "tutorial_cnn",
    "dataset": "cifar10",
    "epochs": 2,
    "batch_size": 4,
    "optimizer": "sgd",
    "learning_rate": 0.001,
    "momentum": 0.9,
    "nesterov": False,
    "weight_decay": 0.0,
    "lr_schedule": "constant",
    "label_smoothing": 0.0,
    "random_flip": False,
    "alternating_flip": False,
    "lookahead": False,
    "random_crop_padding": 0,
    "log_every": None,
    "max_train_samples": None,
    "max_test_samples": None,
    "validation_fraction": None,
    "hidden_layers": None,
    "init_from": None,
    "freeze": None,
    "backbone_learning_rate": None,
    "early_stopping_patience": None,
    "device": "auto",
    "gpus": None,
    "cpu_processes": None,
    "precision": "auto",
    "channels_last": "auto",
    "compile": "auto",
    "cuda_graphs": "auto",
    "register_as": "cifar10",
    "promote": "if_better",
}


def test_empty_body_queues_the_tutorial_recipe(client: TestClient) -> None:
    response = client.post("/jobs")
    assert response.status_code == 202
    job = response.json()
    assert response.headers["location"] == f"/jobs/{job['id']}"
    seed = job["config"].pop("seed")
    assert isinstance(seed, int) and 0 <= seed < 2**63
    assert job["config"] == TUTORIAL_DEFAULTS
    assert job["status"] == "queued"
    assert job["progress"] == {"epoch": 0, "epochs": 2, "step": 0, "steps_per_epoch": None}
    assert job["started_at"] is None and job["finished_at"] is None
    assert job["device"] is None and job["error"] is None and job["test_accuracy"] is None
    assert job["created_at"].endswith("Z") or job["created_at"].endswith("+00:00")
    assert client.get(f"/jobs/{job['id']}").json()["config"]["seed"] == seed


def test_explicit_fields_are_kept(client: TestClient) -> None:
    body = {
        "optimizer": "adam",
        "learning_rate": 0.0005,
        "epochs": 3,
        "seed": 42,
        "device": "cpu",
        "max_train_samples": 100,
        "max_test_samples": 10,
        "batch_size": 32,
        "log_every": 7,
    }
    job = client.post("/jobs", json=body).json()
    assert job["config"] == {**TUTORIAL_DEFAULTS, **body}
    assert client.post("/jobs", json={}).json()["config"]["seed"] != 42


def test_a_recipe_fills_in_what_the_job_leaves_out(client: TestClient) -> None:
    job = client.post("/jobs", json={"recipe": "fast", "epochs": 3, "seed": 1}).json()
    assert job["config"] == {
        **TUTORIAL_DEFAULTS,
        **RECIPES["fast"],
        "recipe": "fast",
        "epochs": 3,  # the job's own value wins
        "seed": 1,
    }
    assert job["config"]["batch_size"] == 256 and job["config"]["lr_schedule"] == "onecycle"
    assert job["progress"]["epochs"] == 3


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"epochs": 0}, "epochs: Input should be greater than or equal to 1"),
        ({"epochs": "2"}, "epochs: Input should be a valid integer"),
        ({"epochs": 2.5}, "epochs: Input should be a valid integer"),
        ({"epochs": 1e300}, "epochs: Input should be less than or equal to 1000"),
        ({"epochs": True}, "epochs: Input should be a valid integer"),
        ({"batch_size": -4}, "batch_size: Input should be greater than or equal to 1"),
        ({"learning_rate": 0}, "learning_rate: Input should be greater than 0"),
        ({"momentum": 1.0}, "momentum: Input should be less than 1"),
        ({"optimizer": "rmsprop"}, "optimizer: Input should be 'sgd' or 'adam'"),
        ({"device": "tpu"}, "device: Input should be 'auto', 'cpu' or 'cuda'"),
        (
            {"model": "resnet"},
            "model: unknown architecture 'resnet'; GET /architectures lists them",
        ),
        (
            {"model": "ResNet-18"},
            "model: unknown architecture 'ResNet-18'; did you mean 'resnet18'? GET /architectures "
            "lists them",
        ),
        (
            {"dataset": "mnist"},
            "dataset: 'mnist' is neither \"cifar10\" nor a dataset id (ds- and 12 hex digits; "
            "see GET /datasets)",
        ),
        ({"seed": -1}, "seed: Input should be greater than or equal to 0"),
        ({"max_train_samples": 0}, "max_train_samples: Input should be greater than or equal to 1"),
        ({"lr": 0.1}, "lr: unknown field; did you mean learning_rate?"),
        ({"epoch": 3}, "epoch: unknown field; did you mean epochs?"),
        ({"batchsize": 8}, "batchsize: unknown field; did you mean batch_size?"),
        ({"patience": 2}, "patience: unknown field; did you mean early_stopping_patience?"),
        ({"colour": "red"}, "colour: unknown field"),
        ({"recipe": "slow"}, "recipe: Input should be 'tutorial', 'fast' or 'fast94'"),
        ({"compile": 1}, 'compile: Input should be true, false or "auto"'),
        (
            {"random_crop_padding": 9},
            "random_crop_padding: Input should be less than or equal to 8",
        ),
        (
            {"recipe": "fast", "cuda_graphs": True},
            'body: cuda_graphs true cannot go with lr_schedule "onecycle" (from recipe "fast"): '
            "a captured CUDA graph needs a GPU, a constant learning rate, one process, and no "
            "fp16 (its gradient scaler checks for overflow on the host) or compile",
        ),
        ([1, 2], "body: must be a JSON object (with Content-Type: application/json)"),
    ],
)
def test_bad_fields_get_422_naming_the_field(client: TestClient, body: object, detail: str) -> None:
    response = client.post("/jobs", json=body)
    assert response.status_code == 422
    assert response.json()["detail"] == detail
    assert client.get("/jobs").json()["total"] == 0


def test_several_bad_fields_are_all_named(client: TestClient) -> None:
    response = client.post("/jobs", json={"epochs": 0, "colour": "red", "wd": 0.1})
    assert response.status_code == 422
    assert response.json() == {
        "detail": "epochs: Input should be greater than or equal to 1; colour: unknown field; "
        "wd: unknown field; did you mean weight_decay?",
        "errors": [
            {
                "field": "epochs",
                "message": "Input should be greater than or equal to 1",
                "type": "greater_than_equal",
            },
            {
                "field": "colour",
                "message": "Extra inputs are not permitted",
                "type": "extra_forbidden",
            },
            {"field": "wd", "message": "Extra inputs are not permitted", "type": "extra_forbidden"},
        ],
    }


def test_broken_json_gets_422(client: TestClient) -> None:
    response = client.post(
        "/jobs", content=b'{"epochs": ', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"].startswith("body: invalid JSON")


def test_form_body_gets_422(client: TestClient) -> None:
    response = client.post("/jobs", data={"epochs": "2"})
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "body: must be a JSON object (with Content-Type: application/json)"
    )


def test_list_is_newest_first_with_filters_and_paging(client: TestClient) -> None:
    ids = [client.post("/jobs", json={"seed": i}).json()["id"] for i in range(5)]
    listing = client.get("/jobs").json()
    assert [job["id"] for job in listing["items"]] == ids[::-1]
    assert listing["total"] == 5
    page = client.get("/jobs", params={"limit": 2, "offset": 1}).json()
    assert [job["id"] for job in page["items"]] == [ids[3], ids[2]]
    assert page["total"] == 5
    assert client.get("/jobs", params={"status": "queued"}).json()["total"] == 5
    assert client.get("/jobs", params={"status": "running"}).json() == {"items": [], "total": 0}


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        (
            {"status": "done"},
            "query.status.0: Input should be 'queued', 'running', 'succeeded', "
            "'failed' or 'cancelled'",
        ),
        ({"limit": 0}, "query.limit: Input should be greater than or equal to 1"),
        ({"limit": 1001}, "query.limit: Input should be less than or equal to 1000"),
        ({"offset": -1}, "query.offset: Input should be greater than or equal to 0"),
    ],
)
def test_bad_list_parameters_get_422(
    client: TestClient, params: dict[str, object], detail: str
) -> None:
    response = client.get("/jobs", params=params)
    assert response.status_code == 422
    assert response.json()["detail"] == detail


@pytest.mark.parametrize("path", ["/jobs/999", "/jobs/999/metrics"])
def test_unknown_job_is_404(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.json() == {"detail": "job 999 not found"}


def test_job_ids_end_where_every_database_can_hold_them(client: TestClient) -> None:
    largest = 2**31 - 1  # PostgreSQL's INTEGER
    assert client.get(f"/jobs/{largest}").json() == {"detail": f"job {largest} not found"}
    response = client.get(f"/jobs/{largest + 1}")
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "path.job_id: Input should be less than or equal to 2147483647"
    )


def test_non_numeric_job_id_is_422(client: TestClient) -> None:
    response = client.get("/jobs/abc")
    assert response.status_code == 422
    assert response.json()["detail"].startswith("path.job_id:")


def test_metrics_of_a_queued_job_are_empty(client: TestClient) -> None:
    job_id = client.post("/jobs").json()["id"]
    assert client.get(f"/jobs/{job_id}/metrics").json() == {
        "job_id": job_id,
        "status": "queued",
        "best_epoch": None,
        "classes": None,
        "loss_history": [],
        "epochs": [],
        "test_accuracy": None,
        "per_class_accuracy": None,
        "confusion_matrix": None,
    }


def test_metrics_of_a_finished_job(client: TestClient, train_job: TrainJob) -> None:
    job_id = train_job(epochs=2, max_train_samples=200, max_test_samples=50)
    job = client.get(f"/jobs/{job_id}").json()
    assert job["status"] == "succeeded"
    assert job["progress"] == {"epoch": 2, "epochs": 2, "step": 13, "steps_per_epoch": 13}
    metrics = client.get(f"/jobs/{job_id}/metrics").json()
    assert metrics["classes"] == CIFAR_CLASSES
    assert [(p["epoch"], p["step"]) for p in metrics["loss_history"]] == [
        (1, 5),
        (1, 10),
        (2, 5),
        (2, 10),
    ]
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2]
    first, second = (e["elapsed_s"] for e in metrics["epochs"])
    assert 0 < first < second  # training seconds at each epoch's end
    assert metrics["test_accuracy"] == job["test_accuracy"] == metrics["epochs"][1]["test_accuracy"]
    matrix = metrics["confusion_matrix"]
    correct = sum(matrix[i][i] for i in range(10))
    assert metrics["test_accuracy"] == correct / 50
    for i, name in enumerate(metrics["classes"]):
        assert metrics["per_class_accuracy"][name] == matrix[i][i] / sum(matrix[i])


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    response = client.get("/readyz")
    assert response.status_code == 200 and response.json() == {"status": "ready"}


def test_openapi_documents_every_route_with_examples(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert set(spec["paths"]) == {
        "/jobs",
        "/jobs/compare",
        "/jobs/{job_id}",
        "/jobs/{job_id}/metrics",
        "/jobs/{job_id}/events",
        "/jobs/{job_id}/errors",
        "/datasets",
        "/datasets/{dataset_id}",
        "/datasets/{dataset_id}/images/{split}/{index}.png",
        "/weights",
        "/weights/{weights_id}",
        "/models",
        "/models/{name}",
        "/models/{name}/versions",
        "/models/{name}/versions/{version}",
        "/models/{name}/aliases/{alias}",
        "/models/{name}/aliases/{alias}/history",
        "/models/{name}/versions/{version}/export",
        "/predictions/{name}",
        "/predictions/{name}/{version}",
        "/v2",
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/{name}",
        "/v2/models/{name}/versions/{version}",
        "/v2/models/{name}/ready",
        "/v2/models/{name}/versions/{version}/ready",
        "/v2/models/{name}/infer",
        "/v2/models/{name}/versions/{version}/infer",
        "/jobs/{job_id}/cancel",
        "/jobs/{job_id}/retry",
        "/jobs/{job_id}/plots/loss.png",
        "/jobs/{job_id}/plots/confusion.png",
        "/workers",
        "/architectures",
        "/predict",
        "/predict/batch",
        "/predict/rows",
        "/healthz",
        "/readyz",
        "/metrics",
    }
    post_jobs = spec["paths"]["/jobs"]["post"]
    examples = post_jobs["requestBody"]["content"]["application/json"]["examples"]
    assert examples["tutorial"]["value"] == {}
    assert {"202", "422"} <= set(post_jobs["responses"])
    assert {"404", "409", "422", "503"} <= set(spec["paths"]["/predict"]["post"]["responses"])
    assert client.get("/docs").status_code == 200
