"""Exports loaded outside the service (torch.jit.load, onnxruntime, safetensors into a fresh
model) answer as /predict does: on 100 real CIFAR-10 test images, and on a table's rows."""

import hashlib
import io
import json
import struct
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image
from safetensors.torch import load as load_safetensors

from app.ml.cifar10 import load_cifar10
from app.ml.nets import build_model
from tests.api.test_tabular import ready, small_table, upload_csv
from tests.conftest import Env
from workers.worker import Worker

TOLERANCE = 1e-4
# torch.jit.load warns that TorchScript is deprecated; loading it is the point here.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")


def png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def download(client: TestClient, name: str, version: int, fmt: str) -> bytes:
    response = client.get(f"/models/{name}/versions/{version}/export", params={"format": fmt})
    assert response.status_code == 200, response.text
    assert response.headers[SHA] == hashlib.sha256(response.content).hexdigest()
    return response.content


SHA = "x-content-sha256"


def from_safetensors(data: bytes) -> tuple[torch.nn.Module, dict[str, str]]:
    """A fresh model built from the file's own metadata, with its weights."""
    # The format: an 8-byte little-endian header length, then the JSON header.
    (length,) = struct.unpack("<Q", data[:8])
    metadata: dict[str, str] = json.loads(data[8 : 8 + length])["__metadata__"]
    classes = json.loads(metadata["classes"])
    columns = json.loads(metadata.get("feature_columns", "null"))
    model = build_model(
        metadata["arch"],
        num_classes=len(classes),
        image_size=json.loads(metadata["image_size"])[1],
        in_features=None if columns is None else len(columns),
        hidden_layers=json.loads(metadata["hidden_layers"]),
    )
    model.load_state_dict(load_safetensors(data))
    return model.eval(), metadata


def run_exports(
    client: TestClient, name: str, version: int, batch: np.ndarray
) -> dict[str, np.ndarray]:
    """Each model format's probabilities for `batch`, computed outside the service."""
    answers = {}
    scripted = torch.jit.load(io.BytesIO(download(client, name, version, "torchscript")))
    answers["torchscript"] = scripted(torch.from_numpy(batch)).detach().numpy()
    session = onnxruntime.InferenceSession(download(client, name, version, "onnx"))
    [input_name] = [i.name for i in session.get_inputs()]
    answers["onnx"] = session.run(None, {input_name: batch})[0]
    model, metadata = from_safetensors(download(client, name, version, "safetensors"))
    with torch.no_grad():
        if "feature_mean" in metadata:
            mean = torch.tensor(json.loads(metadata["feature_mean"]))
            std = torch.tensor(json.loads(metadata["feature_std"]))
            inputs = ((torch.from_numpy(batch).double() - mean) / std).float()
        else:
            mean = torch.tensor(json.loads(metadata["normalize_mean"])).view(1, 3, 1, 1)
            std = torch.tensor(json.loads(metadata["normalize_std"])).view(1, 3, 1, 1)
            pixels = torch.from_numpy(batch).permute(0, 3, 1, 2).float() / 255
            inputs = (pixels - mean) / std
        answers["safetensors"] = torch.softmax(model(inputs), dim=1).numpy()
    return answers


def test_image_exports_answer_as_predict_on_real_cifar10(
    client: TestClient, env: Env, real_cifar_subset: Path
) -> None:
    env.data_dir.parent.mkdir(parents=True, exist_ok=True)
    env.data_dir.symlink_to(real_cifar_subset, target_is_directory=True)
    body = {
        "epochs": 1,
        "batch_size": 16,
        "learning_rate": 0.01,
        "seed": 2,
        "max_test_samples": 100,
    }
    assert client.post("/jobs", json=body).status_code == 202
    assert Worker(env.settings()).run_once()
    _train, test, _classes = load_cifar10(real_cifar_subset / "cifar-10-batches-py")
    images = test.images[:100].permute(0, 2, 3, 1).contiguous().numpy()  # (100, 32, 32, 3)
    served = []
    for start in range(0, 100, 50):
        files = [
            ("files", (f"{i}.png", png(image)))
            for i, image in enumerate(images[start : start + 50])
        ]
        response = client.post("/predict/batch", files=files)
        assert response.status_code == 200, response.text
        served += [list(p["probabilities"].values()) for p in response.json()["predictions"]]
    expected = np.array(served)
    for fmt, probabilities in run_exports(client, "cifar10", 1, images).items():
        assert probabilities.shape == (100, 10), fmt
        difference = np.abs(probabilities - expected).max()
        print(f"\n{fmt}: largest difference from /predict over 100 real images {difference:.2e}")
        assert difference < TOLERANCE, fmt
        assert (probabilities.argmax(1) == expected.argmax(1)).all(), fmt

    # The same test images as 1600x1200 JPEG photos: resized back, mostly the same answer.
    agree = 0
    for index in range(20):
        photo = io.BytesIO()
        Image.fromarray(images[index]).resize((1600, 1200), Image.Resampling.BICUBIC).save(
            photo, format="JPEG", quality=90
        )
        answer = client.post("/predict", files={"file": ("photo.jpg", photo.getvalue())})
        assert answer.status_code == 200, answer.text
        assert answer.json()["original_size"] == {"width": 1600, "height": 1200}
        agree += answer.json()["class_index"] == expected[index].argmax()
    print(f"1600x1200 JPEG photos of 20 test images: {agree} labelled as the 32x32 originals")
    assert agree >= 15


def test_table_exports_answer_as_predict_rows(client: TestClient, env: Env, tmp_path: Path) -> None:
    dataset = upload_csv(client, small_table(tmp_path / "t.csv"), target="label", drop="id")
    ready(client, env, dataset)
    body = {
        "dataset": dataset["id"],
        "model": "mlp",
        "batch_size": None,
        "epochs": 20,
        "seed": 1,
        "register_as": "table",
    }
    assert client.post("/jobs", json=body).status_code == 202
    assert Worker(env.settings()).run_once()
    rows = [{"first": float(i % 7), "second": float((i * 3) % 5) + 0.5} for i in range(30)]
    served = client.post("/predict/rows", params={"model": "table"}, json={"rows": rows})
    assert served.status_code == 200, served.text
    expected = np.array([list(p["probabilities"].values()) for p in served.json()["predictions"]])
    batch = np.array([[row["first"], row["second"]] for row in rows], dtype=np.float32)
    for fmt, probabilities in run_exports(client, "table", 1, batch).items():
        assert np.abs(probabilities - expected).max() < TOLERANCE, fmt
        assert (probabilities.argmax(1) == expected.argmax(1)).all(), fmt


def test_exports_are_made_once_and_cards_say_what_the_version_is(
    client: TestClient, train_job: object, env: Env
) -> None:
    train_job(max_train_samples=50, max_test_samples=10)  # type: ignore[operator]
    first = download(client, "cifar10", 1, "onnx")
    kept = env.artifacts_dir / "exports/cifar10/v1/cifar10-v1.onnx"
    assert kept.read_bytes() == first
    made_at = kept.stat().st_mtime_ns
    assert download(client, "cifar10", 1, "onnx") == first and kept.stat().st_mtime_ns == made_at
    response = client.get("/models/cifar10/versions/1/export", params={"format": "onnx"})
    assert response.headers["content-disposition"] == 'attachment; filename="cifar10-v1.onnx"'

    card = download(client, "cifar10", 1, "card").decode()
    assert card.startswith("# cifar10 v1\n")
    assert "RGB images of 32x32 pixels, as a uint8 batch (N, 32, 32, 3)" in card
    assert (
        "| airplane |" in card and "Trained by job 1" in card and '"max_train_samples": 50' in card
    )

    for params, status in (
        ({"format": "pickle"}, 422),
        ({}, 422),
    ):
        assert client.get("/models/cifar10/versions/1/export", params=params).status_code == status
    missing = client.get("/models/cifar10/versions/9/export", params={"format": "onnx"})
    assert (missing.status_code, missing.json()) == (
        404,
        {"detail": "model 'cifar10' has no version 9"},
    )
    (env.artifacts_dir / "jobs/1/model-attempt1.pt").unlink()
    gone = client.get("/models/cifar10/versions/1/export", params={"format": "torchscript"})
    assert gone.status_code == 503
    assert gone.json()["detail"].startswith("model cifar10 v1 (job 1): its model file is missing")
    # What was made before the file went is still there.
    assert download(client, "cifar10", 1, "onnx") == first
