"""GET /datasets/{id}/images/{split}/{index}.png: an image exactly as training reads it, from an
uploaded dataset's tensors or CIFAR-10's batches; 404 for what is not there, and no path ever
made from the request beyond a dataset id found in the database."""

import io
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from app.ml.image_folders import load_image_folders
from tests.api.conftest import refusal
from tests.api.test_datasets import colour_archive, tensors_key, upload
from tests.api.test_tabular import ready, small_table, upload_csv
from tests.conftest import Env, synthetic_split, write_cifar_layout
from tests.datasets.test_mapped import mapped_files
from workers.worker import Worker


def pixels(response: httpx.Response) -> torch.Tensor:
    """A PNG answer's pixels as uint8 (3, H, W)."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert (image.format, image.mode) == ("PNG", "RGB")
    return torch.from_numpy(np.array(image)).permute(2, 0, 1)


def test_cifar10_images_are_its_batches_rows(client: TestClient, env: Env) -> None:
    train, test = synthetic_split(400, seed=1), synthetic_split(100, seed=2)
    write_cifar_layout(env.data_dir, train, test)  # five training batches of 80
    for split, (images, _), index in (
        ("test", test, 0),
        ("test", test, 99),
        ("train", train, 0),
        ("train", train, 79),
        ("train", train, 80),  # the second batch's first
        ("train", train, 399),  # the last batch's last
    ):
        answer = client.get(f"/datasets/cifar10/images/{split}/{index}.png")
        assert torch.equal(pixels(answer), torch.from_numpy(images[index])), (split, index)

    for split, count in (("test", 100), ("train", 400)):
        assert refusal(client.get(f"/datasets/cifar10/images/{split}/{count}.png")) == (
            404,
            f"CIFAR-10's {split} split has {count} images: index {count} is not among 0 to "
            f"{count - 1}",
        )


def test_an_image_is_cached_by_its_etag(client: TestClient, synthetic_cifar: Path) -> None:
    first = client.get("/datasets/cifar10/images/test/3.png")
    assert first.headers["cache-control"] == "private, max-age=86400"
    etag = first.headers["etag"]
    assert client.get("/datasets/cifar10/images/test/3.png").headers["etag"] == etag
    assert client.get("/datasets/cifar10/images/test/4.png").headers["etag"] != etag
    again = client.get("/datasets/cifar10/images/test/3.png", headers={"If-None-Match": etag})
    assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)
    other = client.get("/datasets/cifar10/images/test/3.png", headers={"If-None-Match": '"x"'})
    assert other.status_code == 200 and other.content == first.content


def test_cifar10_not_on_disk_is_404(client: TestClient) -> None:
    assert refusal(client.get("/datasets/cifar10/images/test/0.png")) == (
        404,
        "CIFAR-10 is not on this server's disk: a job on cifar10 downloads it (with "
        "TRAINSERVE_DOWNLOAD on), or see docs/datasets.md to put its files in place",
    )


def test_an_uploaded_dataset_s_images_are_its_stored_tensors(
    client: TestClient, env: Env, tmp_path: Path
) -> None:
    dataset = upload(client, colour_archive(tmp_path / "colours.zip"), image_size=20).json()
    url = f"/datasets/{dataset['id']}/images"
    assert refusal(client.get(f"{url}/test/0.png")) == (
        409,
        f"dataset {dataset['id']} is queued; its images are served once it is ready",
    )
    assert Worker(env.settings()).run_once()
    train, test, _, size = load_image_folders(env.artifacts_dir / tensors_key(dataset["id"]))
    assert (len(train), len(test), size) == (30, 6, 20)
    for split, stored in (("train", train), ("test", test)):
        for index in range(len(stored)):
            answer = client.get(f"{url}/{split}/{index}.png")
            assert torch.equal(pixels(answer), stored.images[index]), (split, index)
    assert refusal(client.get(f"{url}/test/6.png")) == (
        404,
        f"dataset {dataset['id']}'s test split has 6 images: index 6 is not among 0 to 5",
    )

    tensors = str(env.artifacts_dir / tensors_key(dataset["id"]))
    assert tensors in mapped_files(env.artifacts_dir)
    client.delete(f"/datasets/{dataset['id']}")
    # Its disk is freed.
    assert [f for f in mapped_files(env.artifacts_dir) if f.startswith(tensors)] == []
    assert refusal(client.get(f"{url}/test/0.png")) == (
        404,
        f"dataset {dataset['id']} not found",
    )


def test_a_table_has_no_images(client: TestClient, env: Env, tmp_path: Path) -> None:
    table = upload_csv(client, small_table(tmp_path / "t.csv"), target="label")
    dataset = ready(client, env, table)
    assert refusal(client.get(f"/datasets/{dataset['id']}/images/test/0.png")) == (
        404,
        f"dataset {dataset['id']} is a table: it has rows, not images",
    )


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/datasets/cifar10/images/validation/0.png", 422),
        ("/datasets/cifar10/images/test/-1.png", 422),
        ("/datasets/cifar10/images/test/first.png", 422),
        ("/datasets/cifar100/images/test/0.png", 422),
        ("/datasets/ds-../images/test/0.png", 422),
        ("/datasets/..%2F..%2Fcifar10/images/test/0.png", 404),  # no route: it has more parts
    ],
)
def test_only_a_dataset_name_a_split_and_an_index_are_taken(
    client: TestClient, synthetic_cifar: Path, path: str, status: int
) -> None:
    response = client.get(path)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
