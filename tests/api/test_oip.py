"""The Open Inference Protocol in-process: metadata, readiness, inference with JSON and binary
tensors, output selection, and every error in the protocol's form."""

import io
import json
import struct

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.api.conftest import TrainJob

SMALL = {"max_train_samples": 50, "max_test_samples": 10}


def pixels(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)


def png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def image_input(images: np.ndarray, **extra: object) -> dict[str, object]:
    return {
        "name": "image",
        "datatype": "UINT8",
        "shape": list(images.shape),
        "data": images.reshape(-1).tolist(),
        **extra,
    }


def binary_header(images: np.ndarray, outputs: list[dict[str, object]] | None = None) -> bytes:
    """The JSON header of a request whose `image` input follows as a binary tensor."""
    inference: dict[str, object] = {
        "inputs": [
            {
                "name": "image",
                "datatype": "UINT8",
                "shape": list(images.shape),
                "parameters": {"binary_data_size": images.nbytes},
            }
        ]
    }
    if outputs is not None:
        inference["outputs"] = outputs
    return json.dumps(inference).encode()


@pytest.fixture
def trained(client: TestClient, train_job: TrainJob) -> int:
    return train_job(**SMALL)  # cifar10 v1, production


def test_server_health_and_metadata(client: TestClient) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2").json() == {
        "name": "trainserve",
        "version": "0.1.0",
        "extensions": ["binary_tensor_data"],
    }


def test_model_metadata_and_readiness(client: TestClient, trained: int) -> None:
    metadata = client.get("/v2/models/cifar10").json()
    assert metadata["name"] == "cifar10" and metadata["versions"] == ["1"]
    assert metadata["inputs"] == [{"name": "image", "datatype": "UINT8", "shape": [-1, 32, 32, 3]}]
    assert metadata["outputs"] == [
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]},
        {"name": "label", "datatype": "BYTES", "shape": [-1]},
    ]
    assert json.loads(metadata["parameters"]["classes"])[0] == "airplane"
    assert client.get("/v2/models/cifar10/versions/1").json() == metadata
    assert client.get("/v2/models/cifar10/ready").json() == {"name": "cifar10", "ready": True}
    assert client.get("/v2/models/cifar10/versions/1/ready").status_code == 200
    for path, status, error in (
        ("/v2/models/nope", 404, "model 'nope' not found (GET /models lists them)"),
        ("/v2/models/cifar10/versions/7", 404, "model 'cifar10' has no version 7"),
        ("/v2/models/cifar10/versions/x/ready", 404, "model 'cifar10' has no version 'x'"),
        ("/v2/models/Not%20A%20Name/ready", 404, "model 'Not A Name' not found"),
    ):
        response = client.get(path)
        assert (response.status_code, response.json()) == (status, {"error": error}), path


def test_json_inference_equals_predict(client: TestClient, trained: int) -> None:
    images = pixels(3)
    response = client.post(
        "/v2/models/cifar10/infer", json={"id": "42", "inputs": [image_input(images)]}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model_name"], body["model_version"], body["id"]) == ("cifar10", "1", "42")
    assert body["parameters"] == {"job_id": trained}
    probabilities, label = body["outputs"]
    assert (probabilities["name"], probabilities["shape"]) == ("probabilities", [3, 10])
    assert (label["name"], label["datatype"], label["shape"]) == ("label", "BYTES", [3])
    table = np.array(probabilities["data"]).reshape(3, 10)
    for index, image in enumerate(images):
        answer = client.post("/predict", files={"file": ("x.png", png(image))}).json()
        # A batch of 3 and a batch of 1 may round differently in the last bits.
        expected = list(answer["probabilities"].values())
        assert table[index].tolist() == pytest.approx(expected, abs=1e-6)
        assert label["data"][index] == answer["label"]
        # Alone, the same forward pass: the very same numbers.
        alone = client.post(
            "/v2/models/cifar10/infer", json={"inputs": [image_input(images[index : index + 1])]}
        )
        assert alone.json()["outputs"][0]["data"] == expected
    # Nested data is the same tensor.
    nested = image_input(images)
    nested["data"] = images.tolist()
    again = client.post("/v2/models/cifar10/versions/1/infer", json={"inputs": [nested]}).json()
    assert again["outputs"] == body["outputs"] and "id" not in again


def test_binary_tensors_both_ways_and_output_selection(client: TestClient, trained: int) -> None:
    images = pixels(2, seed=5)
    header = binary_header(
        images,
        [{"name": "label"}, {"name": "probabilities", "parameters": {"binary_data": True}}],
    )
    response = client.post(
        "/v2/models/cifar10/infer",
        content=header + images.tobytes(),
        headers={
            "Inference-Header-Content-Length": str(len(header)),
            "Content-Type": "application/octet-stream",
        },
    )
    assert response.status_code == 200, response.text
    length = int(response.headers["inference-header-content-length"])
    head = json.loads(response.content[:length])
    label, probabilities = head["outputs"]
    assert label["name"] == "label" and len(label["data"]) == 2
    assert probabilities["parameters"] == {"binary_data_size": 2 * 10 * 4}
    table = np.frombuffer(response.content[length:], dtype="<f4").reshape(2, 10)
    json_answer = client.post(
        "/v2/models/cifar10/infer", json={"inputs": [image_input(images)]}
    ).json()
    assert table.tolist() == np.array(json_answer["outputs"][0]["data"]).reshape(2, 10).tolist()

    # Labels as binary BYTES: a 4-byte length before each.
    labelled = client.post(
        "/v2/models/cifar10/infer",
        json={
            "inputs": [image_input(images)],
            "parameters": {"binary_data_output": True},
            "outputs": [{"name": "label"}],
        },
    )
    length = int(labelled.headers["inference-header-content-length"])
    rest, names = labelled.content[length:], []
    while rest:
        (size,) = struct.unpack("<I", rest[:4])
        names.append(rest[4 : 4 + size].decode())
        rest = rest[4 + size :]
    assert names == label["data"]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (
            {"inputs": [{"name": "pixels", "datatype": "UINT8", "shape": [1], "data": [1]}]},
            "unknown input 'pixels': this model takes one input, 'image'",
        ),
        (
            {
                "inputs": [
                    {
                        "name": "image",
                        "datatype": "FP32",
                        "shape": [1, 32, 32, 3],
                        "data": [0.5] * 3072,
                    }
                ]
            },
            "input 'image': datatype FP32; this model takes UINT8",
        ),
        (
            {
                "inputs": [
                    {
                        "name": "image",
                        "datatype": "UINT8",
                        "shape": [1, 16, 16, 3],
                        "data": [0] * 768,
                    }
                ]
            },
            "input 'image': shape [1, 16, 16, 3]; this model takes [-1, 32, 32, 3]",
        ),
        (
            {
                "inputs": [
                    {
                        "name": "image",
                        "datatype": "UINT8",
                        "shape": [1, 32, 32, 3],
                        "data": [0] * 10,
                    }
                ]
            },
            "input 'image': data has 10 elements; shape [1, 32, 32, 3] needs 3072",
        ),
        (
            {
                "inputs": [
                    {
                        "name": "image",
                        "datatype": "UINT8",
                        "shape": [1, 32, 32, 3],
                        "data": [300] * 3072,
                    }
                ]
            },
            "input 'image': UINT8 data must lie in 0..255",
        ),
        (
            {"inputs": [{"name": "image", "datatype": "INT64", "shape": [1], "data": [1]}]},
            "input 'image': datatype 'INT64' is not one this server's models take (UINT8, FP32)",
        ),
        (
            {"inputs": [{"name": "image", "datatype": "FP32", "shape": [1], "data": [1e300]}]},
            "input 'image': data must be finite numbers in float32's range",
        ),
        (
            {"inputs": [{"name": "image", "datatype": "UINT8", "shape": [1] * 9, "data": [1]}]},
            "input 'image': shape [1, 1, 1, 1, 1, 1, 1, 1, 1] must be at most 8 whole numbers "
            "from 0 to 2147483647",
        ),
        ({"inputs": []}, "inputs: List should have at least 1 item after validation, not 0"),
        ({"inputs": "x"}, "inputs: Input should be a valid list"),
    ],
)
def test_bad_requests_are_400_naming_the_problem(
    client: TestClient, trained: int, body: dict[str, object], error: str
) -> None:
    response = client.post("/v2/models/cifar10/infer", json=body)
    assert (response.status_code, response.json()) == (400, {"error": error})


def test_bad_binary_bodies_and_outputs(client: TestClient, trained: int) -> None:
    images = pixels(1)
    header = binary_header(images)
    truncated = client.post(
        "/v2/models/cifar10/infer",
        content=header + images.tobytes()[:100],
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    assert truncated.status_code == 400
    assert truncated.json() == {
        "error": "input 'image': its binary part is truncated (100 bytes left of the 3072 it "
        "declares)"
    }
    for length in ("abc", str(len(header) + 10_000)):
        wrong = client.post(
            "/v2/models/cifar10/infer",
            content=header + images.tobytes(),
            headers={"Inference-Header-Content-Length": length},
        )
        assert (
            wrong.status_code == 400 and "Inference-Header-Content-Length" in wrong.json()["error"]
        )
    for body in (b"{nope", b"[" * 100_000 + b"]" * 100_000):  # the second: too deep to parse
        not_json = client.post("/v2/models/cifar10/infer", content=body)
        assert not_json.status_code == 400
        assert not_json.json() == {
            "error": "the request is not valid JSON (or its header length is wrong)"
        }
    odd_length = client.post(
        "/v2/models/cifar10/infer",
        content=header,
        headers={"Inference-Header-Content-Length": "\u00b2".encode()},
    )
    assert odd_length.status_code == 400
    superscript = client.get("/v2/models/cifar10/versions/%C2%B2/ready")
    assert (superscript.status_code, superscript.json()) == (
        404,
        {"error": "model 'cifar10' has no version '\u00b2'"},
    )
    unknown_output = client.post(
        "/v2/models/cifar10/infer",
        json={"inputs": [image_input(images)], "outputs": [{"name": "logits"}]},
    )
    assert unknown_output.json() == {
        "error": "unknown output 'logits': this model gives probabilities, label"
    }
    missing = client.post("/v2/models/nope/infer", json={"inputs": [image_input(images)]})
    assert (missing.status_code, missing.json()) == (
        404,
        {"error": "model 'nope' not found (GET /models lists them)"},
    )
