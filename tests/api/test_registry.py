"""The model registry over HTTP: registering jobs' models, versions, aliases and their history,
what jobs register by themselves, and the guards on names and deletions."""

import hashlib
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import pytest
from fastapi.testclient import TestClient

from app.db import session_scope
from app.jobs.events import events_after
from app.models import AliasMove
from app.registry.aliases import move_alias
from app.registry.versions import find_model
from tests.api.conftest import TrainJob
from tests.conftest import Env

SMALL = {"max_train_samples": 50, "max_test_samples": 10}


def events_of(client: TestClient, job_id: int, kind: str) -> list[dict[str, object]]:
    """The job's events of one kind, as its event stream sends them."""
    with session_scope() as session:
        return [e.data for e in events_after(session, job_id, 0, 1000) if e.kind == kind]


def test_a_cifar10_job_registers_itself_and_takes_production_first(
    client: TestClient, train_job: TrainJob, env: Env
) -> None:
    job_id = train_job(**SMALL)
    model = client.get("/models/cifar10").json()
    assert model["aliases"] == {"production": 1} and model["latest_version"] == 1
    [version] = model["versions"]
    job = client.get(f"/jobs/{job_id}").json()
    assert version["job_id"] == job_id and version["aliases"] == ["production"]
    assert version["test_accuracy"] == job["test_accuracy"]
    assert version["promotion"] == "promoted: no version was in production"
    lineage = version["lineage"]
    assert lineage["job_id"] == job_id and lineage["config"] == job["config"]
    files = sorted((env.data_dir / "cifar-10-batches-py").iterdir())
    assert lineage["dataset"]["id"] == "cifar10" and lineage["dataset"]["kind"] == "cifar10"
    assert len(lineage["dataset"]["sha256"]) == 64 and len(files) == 7
    assert lineage["test_images"] == 10
    metrics = client.get(f"/jobs/{job_id}/metrics").json()
    assert lineage["metrics"]["per_class_accuracy"] == metrics["per_class_accuracy"]
    weights = (env.artifacts_dir / f"jobs/{job_id}/model-attempt1.pt").read_bytes()
    assert lineage["weights_sha256"] == hashlib.sha256(weights).hexdigest()
    assert lineage["package_version"] == "0.1.0"
    assert events_of(client, job_id, "registered") == [
        {
            "model": "cifar10",
            "version": 1,
            "promoted": True,
            "reason": "promoted: no version was in production",
        }
    ]
    history = client.get("/models/cifar10/aliases/production/history").json()
    assert [(m["from_version"], m["to_version"], m["moved_by"]) for m in history] == [
        (None, 1, f"job {job_id}")
    ]


def test_if_better_promotes_only_a_strictly_better_version_on_the_same_test_set(
    client: TestClient, train_job: TrainJob
) -> None:
    good = train_job(**SMALL, epochs=3, learning_rate=0.05)
    bad = train_job(**SMALL, learning_rate=1e-6)  # barely trained: worse on the same images
    better = client.get(f"/jobs/{good}").json()["test_accuracy"]
    worse = client.get(f"/jobs/{bad}").json()["test_accuracy"]
    assert better > worse
    v2 = client.get("/models/cifar10/versions/2").json()
    expected = (
        f"not promoted: {100 * worse:.1f}% is below production v1's {100 * better:.1f}% "
        "on the same 10 test images"
    )
    assert v2["promotion"] == expected and v2["aliases"] == []
    assert events_of(client, bad, "registered")[0]["reason"] == expected
    assert client.get("/models/cifar10").json()["aliases"] == {"production": 1}

    other_test_set = train_job(max_train_samples=50, max_test_samples=20, epochs=3)
    v3 = client.get("/models/cifar10/versions/3").json()
    assert v3["job_id"] == other_test_set
    assert v3["promotion"].startswith(
        "not promoted: its test set differs from production v1's, so "
    )
    assert client.get("/models/cifar10").json()["aliases"] == {"production": 1}


def test_promote_always_and_never_and_register_as(client: TestClient, train_job: TrainJob) -> None:
    train_job(**SMALL)
    train_job(**SMALL, promote="never")
    assert client.get("/models/cifar10").json()["aliases"] == {"production": 1}
    train_job(**SMALL, promote="always")
    assert client.get("/models/cifar10").json()["aliases"] == {"production": 3}
    elsewhere = train_job(**SMALL, register_as="tiny-cnn")
    unregistered = train_job(**SMALL, register_as=None)
    models = client.get("/models").json()
    assert [(m["name"], m["latest_version"], m["aliases"]) for m in models] == [
        ("cifar10", 3, {"production": 3}),
        ("tiny-cnn", 1, {"production": 1}),
    ]
    assert client.get("/models/tiny-cnn/versions/1").json()["job_id"] == elsewhere
    assert events_of(client, unregistered, "registered") == []


def test_registering_by_hand(client: TestClient, train_job: TrainJob) -> None:
    job_id = train_job(**SMALL, register_as=None)
    body = {"job_id": job_id, "description": "first try", "tags": {"team": "vision"}}
    created = client.post("/models/my-model/versions", json=body)
    assert created.status_code == 201, created.text
    version = created.json()
    assert (version["model"], version["version"], version["job_id"]) == ("my-model", 1, job_id)
    assert version["description"] == "first try" and version["tags"] == {"team": "vision"}
    assert version["promotion"] is None and version["aliases"] == []
    again = client.post("/models/my-model/versions", json={"job_id": job_id})
    assert again.status_code == 200 and again.json()["version"] == 1
    # A model made by hand has no production alias until one is put.
    assert client.get("/models/my-model").json()["aliases"] == {}


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"job_id": 999}, 404, "job 999 not found"),
        ({"job_id": 0}, 422, None),
        ({"job_id": 1, "tags": {"": "x"}}, 422, None),
        ({"job_id": 1, "extra": 1}, 422, None),
    ],
)
def test_registering_what_cannot_be_is_refused(
    client: TestClient, body: dict[str, object], status: int, detail: str | None
) -> None:
    client.post("/jobs", json={"epochs": 1})  # job 1, queued: no model
    response = client.post("/models/m/versions", json=body)
    assert response.status_code == status, response.text
    if detail is not None:
        assert response.json()["detail"] == detail


def test_a_job_without_a_model_is_409(client: TestClient) -> None:
    job_id = client.post("/jobs", json={"epochs": 1}).json()["id"]
    response = client.post("/models/m/versions", json={"job_id": job_id})
    assert response.status_code == 409
    assert response.json()["detail"] == f"job {job_id} has no trained model (its status is queued)"
    assert client.get("/models").json() == []  # nothing made on the way


@pytest.mark.parametrize("name", ["Cifar10", "-x", "a b", "x" * 65, "é"])
def test_model_and_alias_names_are_checked(client: TestClient, name: str) -> None:
    for path in (f"/models/{name}", f"/models/m/aliases/{name}"):
        response = client.put(path, json={"version": 1}) if "aliases" in path else None
        response = response or client.get(path)
        assert response.status_code == 422, (path, response.text)
        assert "is not a valid name" in response.json()["detail"]
    submitted = client.post("/jobs", json={"register_as": name})
    assert submitted.status_code == 422 and "is not a valid name" in submitted.json()["detail"]


def test_what_is_not_there_is_404(client: TestClient, train_job: TrainJob) -> None:
    train_job(**SMALL)
    for path, detail in (
        ("/models/nope", "model 'nope' not found (GET /models lists them)"),
        ("/models/cifar10/versions/7", "model 'cifar10' has no version 7"),
        ("/models/cifar10/aliases/staging", "model 'cifar10' has no alias 'staging'"),
        (
            "/models/cifar10/aliases/staging/history",
            "model 'cifar10' has never had an alias 'staging'",
        ),
    ):
        response = client.get(path)
        assert (response.status_code, response.json()["detail"]) == (404, detail)
    moved = client.put("/models/cifar10/aliases/staging", json={"version": 7})
    assert (moved.status_code, moved.json()["detail"]) == (404, "model 'cifar10' has no version 7")
    gone = client.delete("/models/cifar10/aliases/staging")
    assert (gone.status_code, gone.json()["detail"]) == (
        404,
        "model 'cifar10' has no alias 'staging'",
    )


def test_aliases_move_and_every_move_is_kept(client: TestClient, train_job: TrainJob) -> None:
    train_job(**SMALL)
    train_job(**SMALL, promote="never")
    assert client.put("/models/cifar10/aliases/production", json={"version": 2}).json() == {
        "model": "cifar10",
        "alias": "production",
        "version": 2,
    }
    # The same version again is no move.
    assert client.put("/models/cifar10/aliases/production", json={"version": 2}).status_code == 200
    assert client.put("/models/cifar10/aliases/production", json={"version": 1}).status_code == 200
    assert client.put("/models/cifar10/aliases/staging", json={"version": 2}).status_code == 200
    assert client.delete("/models/cifar10/aliases/staging").status_code == 204
    history = client.get("/models/cifar10/aliases/production/history").json()
    assert [(m["from_version"], m["to_version"], m["moved_by"]) for m in history] == [
        (2, 1, "open"),
        (1, 2, "open"),
        (None, 1, "job 1"),
    ]
    staging = client.get("/models/cifar10/aliases/staging/history").json()
    assert [(m["from_version"], m["to_version"]) for m in staging] == [(2, None), (None, 2)]
    assert client.get("/models/cifar10").json()["aliases"] == {"production": 1}


def test_a_version_named_by_an_alias_cannot_be_deleted(
    client: TestClient, train_job: TrainJob
) -> None:
    train_job(**SMALL)
    train_job(**SMALL, promote="never")
    refused = client.delete("/models/cifar10/versions/1")
    assert refused.status_code == 409
    assert refused.json()["detail"] == (
        "version 1 of 'cifar10' is named by the alias 'production': move or delete the alias first"
    )
    assert client.delete("/models/cifar10/versions/2").status_code == 204
    assert client.get("/models/cifar10/versions/2").status_code == 404
    # Numbers are never given twice.
    third = train_job(**SMALL, promote="never")
    assert client.get("/models/cifar10/versions/3").json()["job_id"] == third


@pytest.mark.parametrize(
    ("method", "path", "body", "detail"),
    [
        (
            "POST",
            "/models/m/versions",
            {"job": 1},
            "job_id: field required; job: unknown field; did you mean job_id?",
        ),
        (
            "PUT",
            "/models/m/aliases/production",
            {"ver": 2},
            "version: field required; ver: unknown field; did you mean version?",
        ),
        ("PATCH", "/models/m", {"desc": "x"}, "desc: unknown field; did you mean description?"),
        ("PATCH", "/models/m/versions/1", {"tag": {}}, "tag: unknown field; did you mean tags?"),
        ("PATCH", "/models/m", {"lineage": {}}, "lineage: unknown field"),
    ],
)
def test_an_unknown_field_of_a_registry_body_suggests_the_body_own(
    client: TestClient, method: str, path: str, body: dict[str, object], detail: str
) -> None:
    response = client.request(method, path, json=body)
    assert response.status_code == 422
    assert response.json()["detail"] == detail


def test_descriptions_and_tags_can_be_edited(client: TestClient, train_job: TrainJob) -> None:
    train_job(**SMALL)
    model = client.patch("/models/cifar10", json={"description": "CIFAR-10 classifiers"})
    assert model.status_code == 200 and model.json()["description"] == "CIFAR-10 classifiers"
    version = client.patch("/models/cifar10/versions/1", json={"tags": {"stage": "checked"}})
    assert version.json()["tags"] == {"stage": "checked"}
    assert version.json()["description"] == ""
    assert client.patch("/models/cifar10/versions/1", json={"lineage": {}}).status_code == 422


def test_concurrent_alias_moves_lose_no_update(
    client: TestClient, train_job: TrainJob, env: Env
) -> None:
    train_job(**SMALL)
    for _ in range(3):
        train_job(**SMALL, promote="never")
    moves = [1 + i % 4 for i in range(1, 41)]  # 2, 3, 4, 1, 2, ...: each one a real move

    def move(number: int) -> bool:
        with session_scope(write=True) as session:
            model = find_model(session, "cifar10", lock=True)
            return move_alias(session, model, "production", number, moved_by="admin") is not None

    with ThreadPoolExecutor(max_workers=8) as pool:
        moved = sum(pool.map(move, moves))
    with session_scope() as session:
        recorded = session.query(AliasMove).order_by(AliasMove.id).all()
        chain = [(m.from_version, m.to_version) for m in recorded]
    # Each move starts where the one before it ended, and the alias is where the last one left
    # it: no move was lost or overwritten.
    assert chain[0] == (None, 1)
    for before, after in pairwise(chain):
        assert after[0] == before[1]
    final = client.get("/models/cifar10/aliases/production").json()["version"]
    assert final == chain[-1][1]
    assert len(chain) == 1 + moved  # the job's own move, and every one that moved it


def test_text_a_database_cannot_store_is_422_not_500(
    client: TestClient, train_job: TrainJob
) -> None:
    train_job()
    # PostgreSQL's text holds no NUL character; SQLite's does, and keeps it as it is.
    response = client.patch("/models/cifar10", json={"description": "a\u0000b"})
    if response.status_code == 200:
        assert client.get("/models/cifar10").json()["description"] == "a\u0000b"
        return
    assert (response.status_code, response.json()["detail"]) == (
        422,
        "a value cannot be stored: PostgreSQL text fields cannot contain NUL (0x00) bytes",
    )
