"""Weights files through the API: uploaded (safetensors and torch.save's state_dicts), listed,
shown and deleted; a file that is not weights, a pickle carrying code and an upload over the
limit refused, nothing run and nothing left on disk."""

import hashlib
import io
from pathlib import Path

import httpx
import pytest
import torch
from fastapi.testclient import TestClient
from safetensors.torch import save as safetensors_bytes

from app.main import create_app
from app.settings import get_settings
from tests.api.conftest import ADMIN, PREDICT, bearer, refusal
from tests.conftest import Env
from tests.ml.test_weight_files import STATE, malicious_files, torch_bytes


def upload(client: TestClient, name: str, data: bytes, **headers: str) -> httpx.Response:
    return client.post("/weights", files={"file": (name, data)}, headers=headers)


def leftovers(env: Env) -> list[Path]:
    """Every file under the data folder: an accepted upload's, or what a refusal left."""
    return sorted(path for path in env.data_dir.rglob("*") if path.is_file())


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
        stored = env.data_dir / "weights" / body["id"]
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
    assert not (env.data_dir / "weights" / gone).exists()
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
        assert refusal(upload(client, name, data)) == (
            422,
            "file: its pickle refers to posix.system, which is code, not a tensor; only tensors "
            "are read from a PyTorch file (torch.load with weights_only=True) and nothing in "
            "this one was run",
        ), name
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
    ],
)
def test_files_that_are_not_weights_are_422_saying_so(
    client: TestClient, env: Env, data: bytes, detail: str
) -> None:
    assert refusal(upload(client, "upload.bin", data)) == (422, detail)
    assert leftovers(env) == []


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
