import hashlib
import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from app.db import session_scope
from app.ml.checkpoints import load_model
from app.ml.images import normalize
from app.ml.predictor import to_model_size
from app.models import Job
from tests.api.conftest import TrainJob
from tests.conftest import Env
from workers.worker import Worker


def png(size: tuple[int, int] = (32, 32), mode: str = "RGB", seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buffer, format="PNG")
    return buffer.getvalue()


def upload(client: TestClient, data: bytes, name: str = "x.png", **params: object):  # type: ignore[no-untyped-def]
    return client.post("/predict", files={"file": (name, data, "image/png")}, params=params)


def test_no_model_yet_is_503(client: TestClient) -> None:
    response = upload(client, png())
    assert response.status_code == 503
    assert response.json()["detail"] == (
        "no model is registered as 'cifar10' yet: train one with POST /jobs (CIFAR-10 jobs "
        "register as 'cifar10'), or register a job's model with POST /models/cifar10/versions"
    )


def test_prediction_matches_the_model_applied_as_in_training(
    client: TestClient, train_job: TrainJob, env: Env
) -> None:
    job_id = train_job(max_train_samples=100, max_test_samples=20)
    response = upload(client, png(seed=4))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["job_id"] == job_id

    saved = load_model(env.artifacts_dir / f"jobs/{job_id}/model-attempt1.pt")
    pixels = torch.from_numpy(np.array(Image.open(io.BytesIO(png(seed=4))))).permute(2, 0, 1)
    with torch.no_grad():
        expected = torch.softmax(saved.model(normalize(pixels.unsqueeze(0))), dim=1)[0]
    assert body["class_index"] == int(expected.argmax())
    assert body["label"] == saved.classes[body["class_index"]]
    assert list(body["probabilities"]) == saved.classes
    assert list(body["probabilities"].values()) == pytest.approx(expected.tolist(), abs=1e-6)
    assert sum(body["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)


def test_default_is_the_production_version_and_the_rest_can_be_named(
    client: TestClient, train_job: TrainJob
) -> None:
    first = train_job(max_train_samples=50, max_test_samples=10, seed=1)
    second = train_job(max_train_samples=50, max_test_samples=10, seed=2, promote="always")
    third = train_job(max_train_samples=50, max_test_samples=10, seed=3, promote="never")

    def answered_by(**params: str | int) -> dict[str, object]:
        response = client.post("/predict", files={"file": ("x.png", png())}, params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        return {key: body[key] for key in ("model", "version", "job_id")}

    assert answered_by() == {"model": "cifar10", "version": 2, "job_id": second}
    assert answered_by(model="cifar10") == {"model": "cifar10", "version": 2, "job_id": second}
    assert answered_by(version=1) == {"model": "cifar10", "version": 1, "job_id": first}
    assert answered_by(model="cifar10", version=3) == {
        "model": "cifar10",
        "version": 3,
        "job_id": third,
    }
    assert answered_by(job_id=first) == {"model": None, "version": None, "job_id": first}
    client.put("/models/cifar10/aliases/staging", json={"version": 3})
    assert answered_by(alias="staging") == {"model": "cifar10", "version": 3, "job_id": third}


@pytest.mark.parametrize(
    ("params", "status", "detail"),
    [
        ({"model": "nope"}, 404, "model 'nope' not found (GET /models lists them)"),
        ({"version": 9}, 404, "model 'cifar10' has no version 9"),
        ({"alias": "staging"}, 404, "model 'cifar10' has no alias 'staging'"),
        (
            {"job_id": 1, "model": "cifar10"},
            422,
            "job_id: give either job_id or model (with alias or version)",
        ),
        ({"alias": "a", "version": 1}, 422, "alias: give either alias or version, not both"),
    ],
)
def test_a_model_that_is_not_there_is_404_and_a_muddled_request_422(
    client: TestClient, train_job: TrainJob, params: dict[str, str | int], status: int, detail: str
) -> None:
    train_job(max_train_samples=50, max_test_samples=10)
    response = client.post("/predict", files={"file": ("x.png", png())}, params=params)
    assert (response.status_code, response.json()["detail"]) == (status, detail)


def test_a_model_name_that_cannot_be_is_422(client: TestClient) -> None:
    response = upload(client, png(), model="Bad Name")
    assert response.status_code == 422
    assert "is not a valid name" in response.json()["detail"]


def test_no_production_alias_is_503_saying_how_to_get_one(
    client: TestClient, train_job: TrainJob
) -> None:
    train_job(max_train_samples=50, max_test_samples=10, promote="never")
    response = upload(client, png())
    assert response.status_code == 503
    assert response.json()["detail"] == (
        "model 'cifar10' has no alias 'production' yet: promote a version with "
        "PUT /models/cifar10/aliases/production"
    )


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "LA"])
def test_other_colour_modes_are_converted(
    client: TestClient, train_job: TrainJob, mode: str
) -> None:
    train_job(max_train_samples=50, max_test_samples=10)
    response = upload(client, png(mode=mode))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (b"", "x.png: the file is empty"),
        (
            b"GIF89a this is not really a gif",
            "x.png: the file is not an image in a format we read (PNG, JPEG, BMP, GIF, WEBP, TIFF)",
        ),
        (
            b"just some words",
            "x.png: the file is not an image in a format we read (PNG, JPEG, BMP, GIF, WEBP, TIFF)",
        ),
    ],
)
def test_bad_images_get_422(
    client: TestClient, train_job: TrainJob, data: bytes, detail: str
) -> None:
    train_job(max_train_samples=50, max_test_samples=10)
    response = upload(client, data)
    assert response.status_code == 422
    assert response.json() == {"detail": detail}


def test_truncated_image_gets_422(client: TestClient, train_job: TrainJob) -> None:
    train_job(max_train_samples=50, max_test_samples=10)
    response = upload(client, png()[:300])
    assert response.status_code == 422
    assert response.json() == {"detail": "x.png: the image data is truncated or corrupt"}


def test_missing_file_field_gets_422(client: TestClient) -> None:
    response = client.post("/predict", files={"image": ("x.png", png(), "image/png")})
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "file: field required: send the image in the multipart field 'file', or as the raw "
        "request body with its Content-Type (image/png, image/jpeg...)"
    )


@pytest.mark.parametrize("size", [(33, 32), (1, 1), (1600, 1200), (20, 300)])
def test_images_of_any_size_are_resized_as_training_images_are(
    client: TestClient, train_job: TrainJob, size: tuple[int, int]
) -> None:
    train_job(max_train_samples=50, max_test_samples=10)
    original = Image.fromarray(
        np.random.default_rng(3).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    )
    buffer = io.BytesIO()
    original.save(buffer, format="JPEG" if size[0] > 1000 else "PNG")
    answer = upload(client, buffer.getvalue(), name="photo.jpg")
    assert answer.status_code == 200, answer.text
    assert answer.json()["original_size"] == {"width": size[0], "height": size[1]}
    # The same as the image brought to 32x32 by the training path's own resize, then sent.
    decoded = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    small = io.BytesIO()
    to_model_size(decoded, 32, 32).save(small, format="PNG")
    expected = upload(client, small.getvalue()).json()
    assert answer.json()["probabilities"] == expected["probabilities"]
    assert expected["original_size"] == {"width": 32, "height": 32}
    strict = upload(client, buffer.getvalue(), resize="false")
    assert (strict.status_code, strict.json()["detail"]) == (
        422,
        f"x.png: the image is {size[0]}x{size[1]} pixels; this model takes 32x32 (leave out "
        "resize=false to have it resized)",
    )


def test_an_image_of_too_many_pixels_is_refused_from_its_header(
    client: TestClient, train_job: TrainJob
) -> None:
    train_job(max_train_samples=50, max_test_samples=10)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    # A PNG whose header says 10000x6000 and whose pixel data is a few bytes: it is refused
    # before anything would be decompressed.
    ihdr = struct.pack(">IIBBBBB", 10_000, 6_000, 8, 2, 0, 0, 0)
    forged = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )
    response = upload(client, forged)
    assert (response.status_code, response.json()["detail"]) == (
        422,
        "x.png: the image is 10000x6000 pixels; at most 50,000,000 pixels are decoded",
    )


def test_the_image_as_the_raw_body_equals_the_multipart_upload(
    client: TestClient, train_job: TrainJob
) -> None:
    train_job(max_train_samples=50, max_test_samples=10)
    data = png(seed=8)
    multipart = upload(client, data).json()
    for content_type in ("image/png", "application/octet-stream"):
        raw = client.post("/predict", content=data, headers={"Content-Type": content_type})
        assert raw.status_code == 200, raw.text
        assert raw.json() == multipart
    text = client.post("/predict", content=b"hello", headers={"Content-Type": "text/plain"})
    assert text.status_code == 422 and text.json()["detail"].startswith("file: field required")


def test_torchserve_style_predictions(client: TestClient, train_job: TrainJob) -> None:
    train_job(max_train_samples=50, max_test_samples=10)
    data = png(seed=9)
    ours = upload(client, data).json()["probabilities"]
    ranked = sorted(ours.items(), key=lambda item: item[1], reverse=True)[:5]
    for method in ("POST", "PUT"):
        raw = client.request(method, "/predictions/cifar10", content=data)
        assert raw.status_code == 200, raw.text
        assert list(raw.json().items()) == ranked  # most likely first
    form = client.post("/predictions/cifar10/1", files={"data": ("x.png", data)})
    assert list(form.json().items()) == ranked
    missing = client.post("/predictions/nope", content=data)
    assert missing.status_code == 404


def test_unknown_job_is_404(client: TestClient) -> None:
    response = upload(client, png(), job_id=77)
    assert response.status_code == 404
    assert response.json() == {"detail": "job 77 not found"}


def test_job_without_a_model_is_409(client: TestClient) -> None:
    job_id = client.post("/jobs").json()["id"]
    response = upload(client, png(), job_id=job_id)
    assert response.status_code == 409
    assert response.json() == {
        "detail": f"job {job_id} has no trained model (its status is queued)"
    }


def test_failed_job_is_409(client: TestClient, env: Env, synthetic_cifar: Path) -> None:
    (synthetic_cifar / "batches.meta").unlink()
    job_id = client.post("/jobs", json={"epochs": 1}).json()["id"]
    Worker(env.settings()).run_once()
    response = upload(client, png(), job_id=job_id)
    assert response.status_code == 409
    assert "its status is failed" in response.json()["detail"]


def test_deleted_model_file_is_503_naming_the_job(
    client: TestClient, train_job: TrainJob, env: Env
) -> None:
    job_id = train_job(max_train_samples=50, max_test_samples=10)
    (env.artifacts_dir / f"jobs/{job_id}/model-attempt1.pt").unlink()
    response = upload(client, png(), job_id=job_id)
    assert response.status_code == 503
    assert response.json()["detail"].startswith(f"job {job_id}: its model file is missing")


def test_the_model_is_loaded_once(client: TestClient, train_job: TrainJob, env: Env) -> None:
    job_id = train_job(max_train_samples=50, max_test_samples=10)
    assert upload(client, png()).status_code == 200
    # With the model cached, the file is no longer needed.
    (env.artifacts_dir / f"jobs/{job_id}/model-attempt1.pt").rename(env.root / "elsewhere.pt")
    (env.artifacts_dir / f"jobs/{job_id}/model-attempt1.pt").write_bytes(b"")  # would fail to load
    assert upload(client, png()).status_code == 200
    assert len(client.app.state.model_cache) == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("damage", ["truncate", "alter", "garbage"])
def test_a_damaged_model_file_is_503_and_the_rest_keeps_working(
    client: TestClient, train_job: TrainJob, env: Env, damage: str
) -> None:
    good = train_job(max_train_samples=50, max_test_samples=10, seed=1)
    bad = train_job(max_train_samples=50, max_test_samples=10, seed=2, promote="always")
    path = env.artifacts_dir / f"jobs/{bad}/model-attempt1.pt"
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "alter":
        path.write_bytes(data[:-100] + bytes(b ^ 1 for b in data[-100:]))
    else:
        path.write_bytes(b"garbage")

    response = upload(client, png())  # production is the damaged one
    assert response.status_code == 503
    assert response.json() == {
        "detail": f"model cifar10 v2 (job {bad}): its model file is damaged: its sha256 does "
        "not match the one recorded when it was written"
    }
    assert upload(client, png(), job_id=good).status_code == 200
    assert client.get(f"/jobs/{bad}").status_code == 200


class _RunsCode:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {MARKER}",))


MARKER = "/tmp/trainserve-model-ran-code"


def test_a_model_file_that_would_run_code_is_never_executed(
    client: TestClient, train_job: TrainJob, env: Env
) -> None:
    job_id = train_job(max_train_samples=50, max_test_samples=10)
    path = env.artifacts_dir / f"jobs/{job_id}/model-attempt1.pt"
    torch.save({"arch": "tutorial_cnn", "classes": _RunsCode()}, path)
    # Even with its checksum recorded as if the worker had written it, it is not unpickled.
    with session_scope(write=True) as session:
        session.get(Job, job_id).model_sha256 = hashlib.sha256(path.read_bytes()).hexdigest()  # type: ignore[union-attr]
    response = upload(client, png(), job_id=job_id)
    assert response.status_code == 503
    assert response.json() == {"detail": f"job {job_id}: its model file cannot be loaded"}
    assert not Path(MARKER).exists()
