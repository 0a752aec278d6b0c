"""Drives a running `trainserve up` as a new user would: /readyz, a tiny dataset uploaded (no
download: CI has no internet), a one-epoch job on it, one prediction.

Run with the installed package's Python: it needs only httpx and Pillow, which trainserve
depends on. Usage: python wheel_smoke.py BASE_URL
"""

import io
import sys
import time
import zipfile

import httpx
from PIL import Image

COLOURS = {"red": (220, 30, 30), "blue": (30, 30, 220)}
IMAGES_PER_CLASS = 10
IMAGE_SIZE = 16  # the smallest image_size a dataset takes
READY_TIMEOUT_S = 120
DATASET_TIMEOUT_S = 120
JOB_TIMEOUT_S = 300
POLL_S = 0.5


def png(colour: tuple[int, int, int], shade: int) -> bytes:
    """A plain square of the colour, a little lighter or darker for each image."""
    pixel = tuple(min(255, channel + shade) for channel in colour)
    out = io.BytesIO()
    Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), pixel).save(out, format="PNG")
    return out.getvalue()


def dataset_zip() -> bytes:
    """train/<class>/<image>.png, the layout POST /datasets takes."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, colour in COLOURS.items():
            for i in range(IMAGES_PER_CLASS):
                archive.writestr(f"train/{name}/{i}.png", png(colour, shade=3 * i))
    return out.getvalue()


def wait_for(
    client: httpx.Client, path: str, field: str, done: set[str], timeout_s: float
) -> dict[str, object]:
    """GET path until its `field` is one of `done`; the last body."""
    deadline = time.monotonic() + timeout_s
    while True:
        body: dict[str, object] = client.get(path).raise_for_status().json()
        if body[field] in done:
            return body
        if time.monotonic() > deadline:
            sys.exit(f"{path}: still {field}={body[field]!r} after {timeout_s} s")
        time.sleep(POLL_S)


def wait_until_ready(client: httpx.Client) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        try:
            if client.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass  # not listening yet
        if time.monotonic() > deadline:
            sys.exit(f"/readyz did not answer 200 within {READY_TIMEOUT_S} s")
        time.sleep(POLL_S)


def main(base_url: str) -> None:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        wait_until_ready(client)
        print("/readyz: 200")

        upload = client.post(
            "/datasets",
            files={"file": ("colours.zip", dataset_zip(), "application/zip")},
            data={"image_size": str(IMAGE_SIZE)},
        )
        if upload.status_code != 202:
            sys.exit(f"POST /datasets: {upload.status_code} {upload.text}")
        dataset_id = upload.json()["id"]
        dataset = wait_for(
            client, f"/datasets/{dataset_id}", "status", {"ready", "failed"}, DATASET_TIMEOUT_S
        )
        if dataset["status"] != "ready":
            sys.exit(f"dataset {dataset_id} failed: {dataset['error']}")
        print(f"dataset {dataset_id}: ready, classes {dataset['classes']}")

        submitted = client.post(
            "/jobs",
            json={"dataset": dataset_id, "epochs": 1, "batch_size": 4, "device": "cpu"},
        )
        if submitted.status_code != 202:
            sys.exit(f"POST /jobs: {submitted.status_code} {submitted.text}")
        job_id = submitted.json()["id"]
        job = wait_for(
            client, f"/jobs/{job_id}", "status", {"succeeded", "failed", "cancelled"}, JOB_TIMEOUT_S
        )
        if job["status"] != "succeeded":
            sys.exit(f"job {job_id} ended {job['status']}: {job['error']}")
        print(f"job {job_id}: succeeded, test accuracy {job['test_accuracy']}")

        predicted = client.post(
            "/predict",
            params={"job_id": job_id},
            files={"file": ("red.png", png(COLOURS["red"], shade=1), "image/png")},
        )
        if predicted.status_code != 200 or predicted.json()["label"] not in COLOURS:
            sys.exit(f"POST /predict: {predicted.status_code} {predicted.text}")
        print(f"predicted {predicted.json()['label']!r} by the model of job {job_id}")


if __name__ == "__main__":
    main(sys.argv[1])
