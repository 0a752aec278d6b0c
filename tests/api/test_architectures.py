"""torchvision architectures through the API: what GET /architectures lists, what a job naming
one is refused for, and a ResNet-18 and fast_cnn trained by a real worker, registered, served and
exported."""

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.api.test_datasets import colour_archive, upload
from tests.api.test_exports import png, run_exports
from tests.api.test_tabular import ready, small_table, upload_csv
from tests.conftest import Env, synthetic_split
from workers.worker import Worker

# torch.jit.load warns that TorchScript is deprecated; loading it is the point here.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")

RESNET18 = {
    "name": "resnet18",
    "family": "resnet",
    "input": "images",
    "parameters": 11_173_962,
    "parameters_image_size": 32,
    "min_image_size": 1,
    "image_size_multiple_of": 1,
    "batch_norm": True,
}


def test_the_list_says_what_each_architecture_takes(client: TestClient) -> None:
    response = client.get("/architectures")
    assert response.status_code == 200
    listing = response.json()
    items = {item["name"]: item for item in listing["items"]}
    assert listing["total"] == len(listing["items"]) == len(items) == 83  # ours and 80
    names = [item["name"] for item in listing["items"][:4]]
    assert names == ["tutorial_cnn", "fast_cnn", "mlp", "alexnet"]
    assert items["resnet18"] == RESNET18
    assert items["tutorial_cnn"] == {
        "name": "tutorial_cnn",
        "family": "tutorial",
        "input": "images",
        "parameters": 62_006,
        "parameters_image_size": 32,
        "min_image_size": 16,
        "image_size_multiple_of": 1,
        "batch_norm": False,
    }
    assert items["fast_cnn"] == {
        "name": "fast_cnn",
        "family": "fast",
        "input": "images",
        "parameters": 1_971_352,  # and 288 whitening weights set from the data
        "parameters_image_size": 32,
        "min_image_size": 9,
        "image_size_multiple_of": 1,
        "batch_norm": True,
    }
    assert items["mlp"] == {
        "name": "mlp",
        "family": "mlp",
        "input": "tables",
        "parameters": None,
        "parameters_image_size": None,
        "min_image_size": None,
        "image_size_multiple_of": None,
        "batch_norm": False,
    }
    sizes = {name: (i["min_image_size"], i["image_size_multiple_of"]) for name, i in items.items()}
    assert sizes["inception_v3"] == (75, 1)
    assert sizes["vit_b_16"] == (16, 16)
    assert sizes["maxvit_t"] == (224, 224)
    assert items["inception_v3"]["parameters_image_size"] == 75
    assert client.get("/architectures").json() == listing  # from memory the second time


def refusal(client: TestClient, body: dict[str, object]) -> str:
    response = client.post("/jobs", json=body)
    assert response.status_code == 422, response.text
    detail: str = response.json()["detail"]
    return detail


def test_a_job_is_refused_an_architecture_that_cannot_train_on_its_data(
    client: TestClient, env: Env, tmp_path: Path
) -> None:
    assert refusal(client, {"model": "resnet19"}) == (
        "model: unknown architecture 'resnet19'; did you mean 'resnet18'? GET /architectures "
        "lists them"
    )
    assert refusal(client, {"model": "inception_v3"}) == (
        "model: inception_v3 takes images of at least 75 pixels; dataset cifar10 has 32x32 images"
    )
    assert refusal(client, {"model": "maxvit_t"}) == (
        "model: maxvit_t takes images whose size is a multiple of 224 pixels; dataset cifar10 has "
        "32x32 images"
    )
    assert refusal(client, {"model": "resnet18", "batch_size": 1}) == (
        "batch_size: resnet18 trains with batch norm, which needs at least 2 images in a batch; "
        "batch_size 1 is too small"
    )
    assert refusal(client, {"model": "resnet18", "batch_size": 3, "cpu_processes": 2}) == (
        "batch_size: resnet18 trains with batch norm, which needs at least 2 images per process "
        "(2 processes) in a batch; batch_size 3 is too small"
    )

    images = upload(client, colour_archive(tmp_path / "colours.zip", per_class=3), image_size=24)
    assert images.status_code == 202, images.text
    images_id = ready(client, env, images.json())["id"]
    table_id = ready(
        client, env, upload_csv(client, small_table(tmp_path / "t.csv"), target="label")
    )["id"]
    assert refusal(client, {"dataset": images_id, "model": "vit_b_16"}) == (
        "model: vit_b_16 takes images whose size is a multiple of 16 pixels; dataset "
        f"{images_id} has 24x24 images"
    )
    assert refusal(client, {"dataset": images_id, "model": "mlp"}) == (
        f'model: dataset {images_id} holds images; train it with "tutorial_cnn" or an '
        "architecture GET /architectures lists"
    )
    assert refusal(client, {"dataset": table_id, "model": "resnet18"}) == (
        f'model: dataset {table_id} holds tabular data; train it with model "mlp"'
    )
    assert client.get("/jobs").json()["total"] == 0  # nothing was queued
    for body in (
        {"dataset": images_id, "model": "swin_t"},
        {"model": "resnet18", "batch_size": 2},
        {"model": "vgg11", "batch_size": 1},  # no batch norm
    ):
        accepted = client.post("/jobs", json=body)
        assert accepted.status_code == 202, accepted.text


SMALL_JOB = {
    "epochs": 1,
    "batch_size": 16,
    "max_train_samples": 64,
    "max_test_samples": 20,
    "log_every": 2,
    "seed": 3,
}


# The real networks each test of a whole job runs: a torchvision one and ours, through its
# recipe, with the test's small job's batches rather than the recipe's 1,024.
NETWORKS = pytest.mark.parametrize(
    "network",
    [
        {"model": "resnet18", "learning_rate": 0.01},
        pytest.param({"recipe": "fast94"}, marks=pytest.mark.database("sqlite"), id="fast_cnn"),
    ],
    ids=lambda network: str(network.get("model")),
)


@NETWORKS
def test_a_network_trains_registers_serves_and_exports(
    client: TestClient, env: Env, synthetic_cifar: Path, network: dict[str, object]
) -> None:
    body = {**network, **SMALL_JOB}
    submitted = client.post("/jobs", json=body)
    assert submitted.status_code == 202, submitted.text
    model = submitted.json()["config"]["model"]
    assert Worker(env.settings()).run_once()
    job = client.get(f"/jobs/{submitted.json()['id']}").json()
    assert job["status"] == "succeeded", job["error"]
    assert job["progress"]["steps_per_epoch"] == 4

    version = client.get("/models/cifar10/versions/1").json()
    assert (version["job_id"], version["lineage"]["config"]["model"]) == (job["id"], model)

    images, _labels = synthetic_split(6, seed=9)
    pixels = np.ascontiguousarray(images.transpose(0, 2, 3, 1))  # (6, 32, 32, 3)
    files = [("files", (f"{i}.png", png(image))) for i, image in enumerate(pixels)]
    served = client.post("/predict/batch", files=files)
    assert served.status_code == 200, served.text
    expected = np.array([list(p["probabilities"].values()) for p in served.json()["predictions"]])
    one = client.post("/predict", files={"file": ("0.png", png(pixels[0]))}).json()
    # Batch norm in eval mode: an image's answer does not depend on the others in its batch.
    assert one["probabilities"] == pytest.approx(
        served.json()["predictions"][0]["probabilities"], abs=1e-6
    )

    # fast_cnn answers with the mean of an image's logits and its mirror image's.
    mirror = np.ascontiguousarray(pixels[0][:, ::-1])
    mirrored = client.post("/predict", files={"file": ("0.png", png(mirror))}).json()
    same = mirrored["probabilities"] == pytest.approx(one["probabilities"], abs=1e-5)
    assert same == (model == "fast_cnn")

    for fmt, probabilities in run_exports(client, "cifar10", 1, pixels).items():
        assert probabilities.shape == (6, 10), fmt
        assert np.abs(probabilities - expected).max() < 1e-4, fmt
