"""The real CIFAR-10 JPEG archive uploaded as it is trains like the built-in CIFAR-10 path."""

from functools import partial
from pathlib import Path

import httpx
import pytest

from tests.conftest import CIFAR_CLASSES, CIFAR_JPEG_ARCHIVE, Env
from tests.e2e.conftest import Service, wait_for

# Once, on SQLite: the decoded pixels do not depend on the database.
pytestmark = [pytest.mark.e2e, pytest.mark.database("sqlite")]

# The tutorial recipe on a class-balanced 10,000 / 2,000 subset, the same seed both ways.
SUBSET = {"max_train_samples": 10000, "max_test_samples": 2000, "seed": 0}
POINTS = 0.02


def finished(client: httpx.Client, path: str) -> dict | None:
    found = client.get(path).json()
    return found if found["status"] in ("ready", "failed", "succeeded", "cancelled") else None


def test_the_uploaded_jpeg_archive_matches_the_built_in_path(
    env: Env, service: Service, real_cifar_10k: Path
) -> None:
    # The built-in path reads the rebuilt official layout (the same subset) from DATA_DIR.
    env.data_dir.mkdir(parents=True, exist_ok=True)
    (env.data_dir / "cifar-10-batches-py").symlink_to(real_cifar_10k / "cifar-10-batches-py")
    service.start_api()
    service.start_worker()
    with service.client() as client, CIFAR_JPEG_ARCHIVE.open("rb") as archive:
        uploaded = client.post(
            "/datasets", files={"file": (CIFAR_JPEG_ARCHIVE.name, archive, "application/gzip")}
        )
        assert uploaded.status_code == 202, uploaded.text
        dataset_id = uploaded.json()["id"]
        dataset = wait_for(
            lambda: finished(client, f"/datasets/{dataset_id}"), 300, "never decoded"
        )
        assert isinstance(dataset, dict) and dataset["status"] == "ready", dataset
        assert dataset["classes"] == CIFAR_CLASSES
        assert dataset["counts"] == {
            "train": dict.fromkeys(CIFAR_CLASSES, 5000),
            "test": dict.fromkeys(CIFAR_CLASSES, 1000),
        }
        assert (dataset["test_split"], dataset["image_size"]) == ("archive", 32)

        accuracy = {}
        for name in (dataset_id, "cifar10"):
            path = f"/jobs/{client.post('/jobs', json={**SUBSET, 'dataset': name}).json()['id']}"
            done = wait_for(partial(finished, client, path), 600, "never trained")
            assert isinstance(done, dict) and done["status"] == "succeeded", done
            accuracy[name] = done["test_accuracy"]
    print(
        f"\ntutorial recipe, 10,000 train / 2,000 test, seed 0: uploaded archive "
        f"{100 * accuracy[dataset_id]:.2f}%, built-in {100 * accuracy['cifar10']:.2f}%"
    )
    assert abs(accuracy[dataset_id] - accuracy["cifar10"]) <= POINTS
    assert accuracy["cifar10"] > 0.3  # it learnt: chance is 10%
