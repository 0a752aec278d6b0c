"""A real Triton client (tritonclient[http]) against a real server and worker, with the predict
key: health, metadata, inference with JSON and binary tensors, several images at once, output
selection and errors; the probabilities equal /predict's."""

import io
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from PIL import Image
from tritonclient.utils import InferenceServerException

from tests.conftest import CIFAR_CLASSES, Env, synthetic_split
from tests.e2e.conftest import Service, wait_for

# Once, on SQLite: it checks the protocol, not the database (the registry runs on both).
pytestmark = [pytest.mark.e2e, pytest.mark.database("sqlite")]

ADMIN, PREDICT = "oip-admin-key", "oip-predict-key"
JOB = {"epochs": 2, "batch_size": 16, "learning_rate": 0.01, "seed": 4}


def png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def key() -> dict[str, str]:
    """The predict key's header, a new dict each call: the client adds its own headers to it."""
    return {"Authorization": f"Bearer {PREDICT}"}


def test_tritonclient_calls_a_registered_model(
    env: Env, service: Service, synthetic_cifar: Path
) -> None:
    service.overrides.update({"TRAINSERVE_ADMIN_KEY": ADMIN, "TRAINSERVE_PREDICT_KEY": PREDICT})
    service.start_api()
    service.start_worker()
    admin = httpx.Client(base_url=service.url, headers={"Authorization": f"Bearer {ADMIN}"})
    job_id = admin.post("/jobs", json=JOB).json()["id"]
    wait_for(lambda: admin.get(f"/jobs/{job_id}").json()["status"] == "succeeded", 120, "job")

    client = triton.InferenceServerClient(service.url.removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready()
    assert client.get_server_metadata(headers=key())["extensions"] == ["binary_tensor_data"]
    assert client.is_model_ready("cifar10", headers=key())
    assert client.is_model_ready("cifar10", "1", headers=key())
    assert not client.is_model_ready("cifar10", "9", headers=key())
    metadata = client.get_model_metadata("cifar10", headers=key())
    assert metadata["versions"] == ["1"]
    assert metadata["inputs"] == [{"name": "image", "datatype": "UINT8", "shape": [-1, 32, 32, 3]}]

    images = synthetic_split(5, seed=12)[0].transpose(0, 2, 3, 1).copy()  # (5, 32, 32, 3)
    expected = [
        admin.post("/predict", files={"file": ("x.png", png(image))}).json() for image in images
    ]
    for binary in (True, False):
        tensor = triton.InferInput("image", list(images.shape), "UINT8")
        tensor.set_data_from_numpy(images, binary_data=binary)
        outputs = [
            triton.InferRequestedOutput("probabilities", binary_data=binary),
            triton.InferRequestedOutput("label", binary_data=binary),
        ]
        result = client.infer("cifar10", [tensor], outputs=outputs, request_id="r1", headers=key())
        probabilities = result.as_numpy("probabilities")
        # The client gives BYTES as bytes when they came binary, as str when they came in JSON.
        labels = [str(label, "utf-8") if binary else label for label in result.as_numpy("label")]
        assert probabilities.shape == (5, 10) and probabilities.dtype == np.float32
        assert labels == [answer["label"] for answer in expected]
        for row, answer in zip(probabilities, expected, strict=True):
            assert row.tolist() == pytest.approx(list(answer["probabilities"].values()), abs=1e-6)
        response = result.get_response()
        assert (response["model_name"], response["model_version"], response["id"]) == (
            "cifar10",
            "1",
            "r1",
        )

    # One output only, by version.
    tensor = triton.InferInput("image", [1, 32, 32, 3], "UINT8")
    tensor.set_data_from_numpy(images[:1])
    only = client.infer(
        "cifar10",
        [tensor],
        model_version="1",
        outputs=[triton.InferRequestedOutput("label")],
        headers=key(),
    )
    assert only.as_numpy("probabilities") is None
    assert only.as_numpy("label")[0].decode() in CIFAR_CLASSES

    # Errors reach the client with the server's words.
    wrong = triton.InferInput("image", [1, 32, 32, 3], "FP32")
    wrong.set_data_from_numpy(images[:1].astype(np.float32))
    for call, message in (
        (
            lambda: client.infer("cifar10", [wrong], headers=key()),
            "input 'image': datatype FP32; this model takes UINT8",
        ),
        (
            lambda: client.infer("nope", [tensor], headers=key()),
            "model 'nope' not found (GET /models lists them)",
        ),
        (
            lambda: client.get_model_metadata("cifar10", "9", headers=key()),
            "model 'cifar10' has no version 9",
        ),
    ):
        with pytest.raises(InferenceServerException) as raised:
            call()
        assert raised.value.message() == message
    client.close()
    admin.close()
