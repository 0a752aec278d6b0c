"""A job's name, tags and notes: given at submit, changed by PATCH, found by GET /jobs's
filters, copied by a retry, shown with a registered version; never part of what is trained."""

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import PREDICT, TrainJob, bearer
from tests.api.test_jobs import TUTORIAL_DEFAULTS
from tests.api.test_tabular import ready, small_table, upload_csv
from tests.conftest import Env

KEY_RULE = "1 to 64 characters of A-Z, a-z, 0-9, '.', '_' and '-'"


def labels(job: dict) -> tuple[object, object, object]:
    return job["name"], job["tags"], job["notes"]


def ids(client: TestClient, **params: object) -> list[int]:
    """The ids GET /jobs answers with these parameters; its total must count them all."""
    page = client.get("/jobs", params={"limit": 1000, **params})
    assert page.status_code == 200, page.text
    found = [job["id"] for job in page.json()["items"]]
    assert page.json()["total"] == len(found)
    return found


def test_labels_are_kept_apart_from_the_config(client: TestClient) -> None:
    body = {
        "name": "  baseline run ",
        "tags": {"sweep": "lr", "a.b_c-D": "", "_z": "", "lr": "0.001", "B": "1"},
        "notes": "The tutorial as it is.\n\tSecond line.",
        "seed": 5,
    }
    response = client.post("/jobs", json=body)
    assert response.status_code == 202, response.text
    job = response.json()
    expected = (
        "baseline run",  # spaces around it dropped
        {"B": "1", "_z": "", "a.b_c-D": "", "lr": "0.001", "sweep": "lr"},
        "The tutorial as it is.\n\tSecond line.",
    )
    assert labels(job) == expected
    # Sorted by code point, whatever the database's collation would say.
    assert list(job["tags"]) == ["B", "_z", "a.b_c-D", "lr", "sweep"]
    assert job["config"] == {**TUTORIAL_DEFAULTS, "seed": 5}
    assert labels(client.get(f"/jobs/{job['id']}").json()) == expected
    unlabelled = client.post("/jobs", json={"tags": None}).json()
    assert labels(unlabelled) == (None, {}, None)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"name": "   "}, "name: must not be blank (send null for no name)"),
        ({"name": "x" * 101}, "name: at most 100 characters, not 101"),
        ({"name": "two\nlines"}, "name: must be one line of text, without control characters"),
        ({"name": 7}, "name: Input should be a valid string"),
        ({"tags": {"a b": "x"}}, f"tags: 'a b' is not a valid tag key: {KEY_RULE}"),
        ({"tags": {"k:v": "x"}}, f"tags: 'k:v' is not a valid tag key: {KEY_RULE}"),
        ({"tags": {"": "x"}}, f"tags: '' is not a valid tag key: {KEY_RULE}"),
        ({"tags": {"k": "v" * 257}}, "tags: the value of 'k' has 257 characters; at most 256"),
        (
            {"tags": {"k": "a\x00b"}},
            "tags: the value of 'k' must be one line, without control characters",
        ),
        ({"tags": {f"k{i}": "" for i in range(33)}}, "tags: at most 32 tags, not 33"),
        ({"tags": {"k": 1}}, "tags.k: Input should be a valid string"),
        ({"tags": ["k"]}, "tags: Input should be a valid dictionary"),
        ({"notes": "x" * 10_001}, "notes: at most 10,000 characters, not 10,001"),
        (
            {"notes": "a\x00b"},
            "notes: must be text: no control characters but tabs and line breaks",
        ),
    ],
)
def test_bad_labels_get_422_saying_the_bounds(client: TestClient, body: dict, detail: str) -> None:
    response = client.post("/jobs", json=body)
    assert (response.status_code, response.json()["detail"]) == (422, detail)
    assert client.get("/jobs").json()["total"] == 0
    job_id = client.post("/jobs", json={"name": "kept", "tags": {"k": "v"}}).json()["id"]
    response = client.patch(f"/jobs/{job_id}", json=body)
    assert (response.status_code, response.json()["detail"]) == (422, detail)
    assert labels(client.get(f"/jobs/{job_id}").json()) == ("kept", {"k": "v"}, None)


def test_a_patch_changes_what_it_names_and_clears_what_it_sets_to_null(
    client: TestClient,
) -> None:
    job = client.post("/jobs", json={"name": "first", "tags": {"a": "1", "b": "2"}}).json()
    path = f"/jobs/{job['id']}"
    assert client.post(f"{path}/cancel").json()["status"] == "cancelled"  # any status will do

    notes = client.patch(path, json={"notes": "diverged at epoch 2"})
    assert notes.status_code == 200
    assert labels(notes.json()) == ("first", {"a": "1", "b": "2"}, "diverged at epoch 2")
    renamed = client.patch(path, json={"name": " second ", "tags": {"c": "3"}}).json()
    assert labels(renamed) == ("second", {"c": "3"}, "diverged at epoch 2")  # tags replaced
    assert renamed["status"] == "cancelled" and renamed["config"] == job["config"]
    assert labels(client.patch(path, json={}).json()) == labels(renamed)
    cleared = client.patch(path, json={"name": None, "tags": None, "notes": None}).json()
    assert labels(cleared) == (None, {}, None)
    assert labels(client.patch(path, json={"tags": {"d": ""}}).json()) == (None, {"d": ""}, None)
    assert labels(client.patch(path, json={"tags": {}}).json()) == (None, {}, None)
    assert labels(client.get(path).json()) == (None, {}, None)


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"Names": "x"}, 422, "Names: unknown field; did you mean name?"),
        ({"tag": {"a": "b"}}, 422, "tag: unknown field; did you mean tags?"),
        ({"note": "x"}, 422, "note: unknown field; did you mean notes?"),
        ({"epochs": 3}, 422, "epochs: unknown field"),  # the config never changes
        ([1], 422, "body: must be a JSON object (with Content-Type: application/json)"),
    ],
)
def test_a_bad_patch_is_refused_clearly(
    client: TestClient, body: object, status: int, detail: str
) -> None:
    job_id = client.post("/jobs").json()["id"]
    response = client.patch(f"/jobs/{job_id}", json=body)
    assert (response.status_code, response.json()["detail"]) == (status, detail)


def test_patching_a_missing_job_is_404_and_needs_the_admin_key(keyed: TestClient) -> None:
    missing = keyed.patch("/jobs/999", json={"name": "x"}, headers=bearer("admin-key-7f3a9c"))
    assert (missing.status_code, missing.json()) == (404, {"detail": "job 999 not found"})
    refused = keyed.patch("/jobs/999", json={"name": "x"}, headers=bearer(PREDICT))
    assert refused.status_code == 403


def test_the_labels_belong_to_the_idempotent_body(client: TestClient) -> None:
    key = {"Idempotency-Key": "trial-1"}
    first = client.post("/jobs", json={"name": "trial"}, headers=key)
    again = client.post("/jobs", json={"name": "trial"}, headers=key)
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["id"] == first.json()["id"]
    renamed = client.post("/jobs", json={"name": "other"}, headers=key)
    assert renamed.status_code == 409
    assert "with a different body" in renamed.json()["detail"]


def test_filters_find_exactly_the_jobs_they_describe(client: TestClient, env: Env) -> None:
    table = ready(
        client, env, upload_csv(client, small_table(env.root / "rows.csv"), target="label")
    )
    submitted = [
        {"name": "Baseline CNN", "tags": {"sweep": "lr", "lr": "0.001"}},
        {"name": "lr trial 0.01", "tags": {"sweep": "lr", "lr": "0.01"}},
        {
            "name": "table mlp",
            "tags": {"sweep": "", "team": "tables"},
            "model": "mlp",
            "dataset": table["id"],
        },
        {},
        {"name": "100%_off", "tags": {"link": "a:b"}},
    ]
    one, two, three, four, five = (
        client.post("/jobs", json=body).json()["id"] for body in submitted
    )
    for job_id in (two, three):
        client.post(f"/jobs/{job_id}/cancel")

    assert ids(client) == [five, four, three, two, one]
    assert ids(client, sort="created_at") == [one, two, three, four, five]
    assert ids(client, name="baseline") == [one]
    assert ids(client, name="LR") == [two]
    assert ids(client, name="%") == ids(client, name="_") == [five]  # no LIKE wildcards
    assert ids(client, name="l") == [three, two, one]
    assert ids(client, tag="sweep") == [three, two, one]
    assert ids(client, tag="sweep:lr") == [two, one]
    assert ids(client, tag="sweep:") == [three]  # the empty value
    assert ids(client, tag=["sweep:lr", "lr:0.01"]) == [two]
    assert ids(client, tag=["sweep", "team:tables"]) == [three]
    assert ids(client, tag="link:a:b") == [five]  # the value holds a colon
    assert ids(client, tag="Sweep") == ids(client, tag="sweep:LR") == []  # case counts
    assert ids(client, status="cancelled") == [three, two]
    assert ids(client, status=["queued", "cancelled"]) == [five, four, three, two, one]
    assert ids(client, model="mlp") == ids(client, dataset=table["id"]) == [three]
    assert ids(client, model="tutorial_cnn") == [five, four, two, one]
    assert ids(client, dataset="cifar10") == [five, four, two, one]
    assert ids(client, status="queued", tag="sweep:lr") == [one]
    assert ids(client, model="tutorial_cnn", status="cancelled", name="trial") == [two]
    page = client.get("/jobs", params={"tag": "sweep", "limit": 1, "offset": 1}).json()
    assert ([job["id"] for job in page["items"]], page["total"]) == ([two], 3)
    client.patch(f"/jobs/{four}", json={"tags": {"sweep": "lr"}})
    assert ids(client, tag="sweep:lr") == [four, two, one]
    assert client.delete(f"/jobs/{two}").status_code == 204  # its tags go with it
    assert ids(client, tag="sweep:lr") == [four, one]


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        (
            {"tag": "a b"},
            f"query.tag.0: 'a b' is not KEY or KEY:VALUE (a key is {KEY_RULE})",
        ),
        ({"tag": ""}, f"query.tag.0: '' is not KEY or KEY:VALUE (a key is {KEY_RULE})"),
        (
            {"tag": ["ok", ":v"]},
            f"query.tag.1: ':v' is not KEY or KEY:VALUE (a key is {KEY_RULE})",
        ),
        (
            {"tag": "k:" + "v" * 257},
            "query.tag.0: the value in 'k:" + "v" * 68 + "' is not a tag value: at most 256 "
            "characters on one line",
        ),
        (
            {"tag": [f"k{i}" for i in range(33)]},
            "query.tag: List should have at most 32 items after validation, not 33",
        ),
        (
            {"sort": "accuracy"},
            "query.sort: Input should be 'created_at', '-created_at', 'test_accuracy' or "
            "'-test_accuracy'",
        ),
        (
            {"model": "resnet"},
            "query.model: unknown architecture 'resnet'; GET /architectures lists them",
        ),
        (
            {"dataset": "mnist"},
            "query.dataset: 'mnist' is neither \"cifar10\" nor a dataset id (ds- and 12 hex "
            "digits; see GET /datasets)",
        ),
        ({"name": ""}, "query.name: String should have at least 1 character"),
    ],
)
def test_bad_filters_get_422(client: TestClient, params: dict, detail: str) -> None:
    response = client.get("/jobs", params=params)
    assert (response.status_code, response.json()["detail"]) == (422, detail)


def test_accuracy_sorts_retries_copy_and_versions_show_the_labels(
    client: TestClient, train_job: TrainJob, synthetic_cifar: Path
) -> None:
    trained = [
        train_job(name="small", tags={"size": "40"}, max_train_samples=40, max_test_samples=20),
        train_job(name="large", tags={"size": "200"}, max_train_samples=200, max_test_samples=30),
    ]
    queued = client.post("/jobs", json={"name": "waiting", "tags": {"size": "all"}}).json()["id"]
    accuracy = {job_id: client.get(f"/jobs/{job_id}").json()["test_accuracy"] for job_id in trained}
    highest = sorted(trained, key=lambda job_id: (-accuracy[job_id], -job_id))
    lowest = sorted(trained, key=lambda job_id: (accuracy[job_id], -job_id))
    assert ids(client, sort="-test_accuracy") == [*highest, queued]  # no accuracy: last
    assert ids(client, sort="test_accuracy") == [*lowest, queued]
    assert ids(client, sort="-test_accuracy", tag="size:40") == [trained[0]]

    # Both registered themselves as cifar10 versions; a version shows its job's labels as now.
    client.patch(f"/jobs/{trained[0]}", json={"tags": {"size": "40", "kept": "yes"}})
    model = client.get("/models/cifar10").json()
    shown = {v["job_id"]: (v["job_name"], v["job_tags"]) for v in model["versions"]}
    assert shown == {
        trained[0]: ("small", {"kept": "yes", "size": "40"}),
        trained[1]: ("large", {"size": "200"}),
    }
    version = client.get("/models/cifar10/versions/2").json()
    assert (version["job_name"], version["job_tags"]) == shown[version["job_id"]]

    client.patch(f"/jobs/{queued}", json={"notes": "stopped: wrong data"})
    client.post(f"/jobs/{queued}/cancel")
    retry = client.post(f"/jobs/{queued}/retry").json()
    assert labels(retry) == ("waiting", {"size": "all"}, "stopped: wrong data")
    assert retry["retry_of"] == queued
    client.patch(f"/jobs/{retry['id']}", json={"name": "the retry"})
    assert client.get(f"/jobs/{queued}").json()["name"] == "waiting"  # copies, not shared
