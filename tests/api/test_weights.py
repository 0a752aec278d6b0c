"""Weights files through the API: uploaded (safetensors and torch.save's state_dicts), listed,
shown and deleted; a file that is not weights, a pickle carrying code and an upload over the
limit refused, nothing run and nothing left on disk."""

import hashlib
import io
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import torch
from fastapi.testclient import TestClient
from safetensors.torch import save as safetensors_bytes
from sqlalchemy import inspect, select

from app.db import session_scope
from app.errors import Conflict
from app.jobs.config import JobCreate
from app.jobs.fine_tuning import find_parent
from app.jobs.init_from import WeightsParent
from app.jobs.transitions import create_job
from app.main import create_app
from app.models import WeightsFile
from app.settings import get_settings
from app.storage.config import get_store
from app.weights.usage import remove_weights
from tests.api.conftest import ADMIN, PREDICT, bearer, refusal
from tests.conftest import Env
from tests.ml.test_weight_files import (
    BOMB_PADDING_BYTES,
    REFUSED_CODE,
    REFUSED_LEGACY,
    STATE,
    expanded,
    malicious_files,
    rewritten,
    torch_bytes,
)


def upload(client: TestClient, name: str, data: bytes, **headers: str) -> httpx.Response:
    return client.post("/weights", files={"file": (name, data)}, headers=headers)


def leftovers(env: Env) -> list[Path]:
    """Every file under the data and artifacts folders: an accepted upload's, or what a
    refusal left."""
    found = [*env.data_dir.rglob("*"), *env.artifacts_dir.rglob("*")]
    return sorted(path for path in found if path.is_file())


def test_weights_round_trip_in_both_formats(client: TestClient, env: Env) -> None:
    files = {"w.safetensors": safetensors_bytes(STATE), "w.pt": torch_bytes(STATE)}
    made = {}
    for name, data in files.items():
        response = upload(client, name, data)
        assert response.status_code == 201, response.text
        body = response.json()
        assert response.headers["location"] == f"/weights/{body['id']}"
        made[name] = body
        assert body == {
            "id": body["id"],
            "filename": name,
            "format": "safetensors" if name.endswith("safetensors") else "pytorch",
            "size_bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "tensor_count": 2,
            "parameters": 26,
            "created_at": body["created_at"],
            "tensors": {"conv.bias": [2], "conv.weight": [2, 3, 2, 2]},
        }
        assert client.get(f"/weights/{body['id']}").json() == body
        stored = env.artifacts_dir / "weights" / body["id"]
        [kept] = stored.iterdir()
        assert kept.read_bytes() == data  # stored as it came, under the hash it was given

    listing = client.get("/weights").json()
    assert listing["total"] == 2
    assert [item["id"] for item in listing["items"]] == [
        made["w.pt"]["id"],
        made["w.safetensors"]["id"],
    ]  # newest first
    assert "tensors" not in listing["items"][0]
    assert (
        client.get("/weights", params={"limit": 1, "offset": 1}).json()["items"][0]["id"]
        == (made["w.safetensors"]["id"])
    )

    gone = made["w.pt"]["id"]
    assert client.delete(f"/weights/{gone}").status_code == 204
    assert not (env.artifacts_dir / "weights" / gone).exists()
    assert refusal(client.get(f"/weights/{gone}")) == (
        404,
        f"weights {gone} not found (GET /weights lists them)",
    )
    assert client.delete(f"/weights/{gone}").status_code == 404
    assert client.get("/weights/wt-nothex").status_code == 422


def test_a_pickle_carrying_code_is_refused_unrun_and_leaves_nothing(
    client: TestClient, env: Env, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    for name, data in malicious_files(marker).items():
        expected = REFUSED_CODE if name == "torch-save.pt" else REFUSED_LEGACY
        assert refusal(upload(client, name, data)) == (422, expected), name
    assert not marker.exists()
    assert leftovers(env) == []
    assert client.get("/weights").json() == {"items": [], "total": 0}


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (
            b"just text",
            "file: not a tensor file: neither safetensors nor a PyTorch state_dict saved with "
            "torch.save",
        ),
        (b"", "file: the upload is empty"),
        (
            torch_bytes({"w": torch.zeros(1), "epoch": 3}),
            "file: a PyTorch file, but not a state_dict: 'epoch' is not a tensor",
        ),
        (
            # Under 2 KB, but it claims 3 * 2**62 numbers: too many for the parameters column.
            torch_bytes({"a": expanded(), "b": expanded(), "c": expanded()}),
            "file: tensor 'a' claims more numbers than its storage holds (an expanded or "
            "overlapping view); save it with .contiguous() or .clone()",
        ),
        (
            # A few hundred KB whose pickle inflates to 64 MiB.
            rewritten(torch_bytes(STATE), deflate="data.pkl", padding=BOMB_PADDING_BYTES),
            "file: not a PyTorch file written by torch.save: a zip archive with compressed "
            "entries (archive/data.pkl...); torch.save stores its entries uncompressed",
        ),
        (torch_bytes(STATE, zip_format=False), REFUSED_LEGACY),
    ],
)
def test_files_that_are_not_weights_are_422_saying_so(
    client: TestClient, env: Env, data: bytes, detail: str
) -> None:
    assert refusal(upload(client, "upload.bin", data)) == (422, detail)
    assert leftovers(env) == []
    weights = env.artifacts_dir / "weights"
    assert not weights.exists() or list(weights.iterdir()) == []  # not even an empty folder


def test_an_upload_over_the_limit_is_413(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINSERVE_MAX_WEIGHTS_BYTES", "2048")
    get_settings.cache_clear()
    with TestClient(create_app()) as client:
        big = torch_bytes({"w": torch.zeros(1024)})
        assert refusal(upload(client, "big.pt", big)) == (
            413,
            "request body too large: the limit here is 2048 bytes",
        )
        # A request without Content-Length is counted as it streams in.
        chunks = iter([big[:1000], big[1000:]])
        streamed = client.post(
            "/weights",
            content=chunks,
            headers={"Content-Type": "multipart/form-data; boundary=x"},
        )
        assert refusal(streamed)[0] == 413
        assert upload(client, "small.pt", torch_bytes({"w": torch.zeros(2)})).status_code == 201
    assert [path.name for path in leftovers(env)] == ["weights.pt"]


def test_only_the_admin_key_uploads_and_deletes(keyed: TestClient) -> None:
    data = io.BytesIO(safetensors_bytes(STATE)).getvalue()
    assert upload(keyed, "w.safetensors", data).status_code == 401
    assert upload(keyed, "w.safetensors", data, **bearer(PREDICT)).status_code == 403
    made = upload(keyed, "w.safetensors", data, **bearer(ADMIN)).json()
    assert keyed.get(f"/weights/{made['id']}", headers=bearer(PREDICT)).status_code == 200
    assert keyed.delete(f"/weights/{made['id']}", headers=bearer(PREDICT)).status_code == 403
    assert keyed.delete(f"/weights/{made['id']}", headers=bearer(ADMIN)).status_code == 204


def test_a_listing_leaves_the_shapes_unread(client: TestClient, env: Env) -> None:
    made = upload(client, "w.safetensors", safetensors_bytes(STATE)).json()
    with session_scope() as session:
        [row] = session.scalars(select(WeightsFile)).all()
        assert "tensors" in inspect(row).unloaded  # a listing of many files reads no shapes
        assert (row.tensor_count, row.tensors) == (2, made["tensors"])


def test_a_deletion_waits_for_a_job_being_submitted_from_the_file(
    client: TestClient, env: Env
) -> None:
    made = upload(client, "w.safetensors", safetensors_bytes(STATE)).json()
    parent = WeightsParent(weights=made["id"])
    with ThreadPoolExecutor(max_workers=1) as pool:
        with session_scope(write=True) as session:
            # A submit has found the file and is about to create its job.
            found = find_parent(session, get_store(), parent)
            deleting = pool.submit(remove_weights, get_store(), made["id"])
            time.sleep(0.5)
            assert not deleting.done()  # it waits for the submit to be committed
            job = create_job(session, JobCreate(init_from=parent).resolved(found.resolved))
        with pytest.raises(Conflict) as refused:
            deleting.result()
    assert refused.value.message == (
        f"weights {made['id']} is used by unfinished job(s) {job.id}; cancel them or wait for "
        "them to end"
    )
    assert client.get(f"/weights/{made['id']}").status_code == 200
