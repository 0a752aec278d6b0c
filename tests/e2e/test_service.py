"""The service as a user meets it: real uvicorn and worker processes, real data and uploads."""

import io
import signal
import sys
import tarfile
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.conftest import (
    CIFAR_CLASSES,
    CIFAR_JPEG_ARCHIVE,
    Env,
    synthetic_split,
    write_cifar_layout,
)
from tests.e2e.conftest import START_TIMEOUT_S, TRAINSERVE, Service, wait_for

pytestmark = pytest.mark.e2e

TRAINING_TIMEOUT_S = 600


def real_test_images() -> dict[str, bytes]:
    """The first test image of each class, as the JPEG bytes in the archive."""
    wanted = {f"cifar10/test/{name}/0000.jpg": name for name in CIFAR_CLASSES}
    found: dict[str, bytes] = {}
    with tarfile.open(CIFAR_JPEG_ARCHIVE) as tar:
        for member in tar:
            if member.name in wanted:
                extracted = tar.extractfile(member)
                assert extracted is not None
                found[wanted[member.name]] = extracted.read()
            if len(found) == len(wanted):
                break
    return found


def as_png(jpeg: bytes, size: tuple[int, int] | None = None) -> bytes:
    image = Image.open(io.BytesIO(jpeg)).convert("RGB")
    if size:
        image = image.resize(size)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def predict(client: httpx.Client, data: bytes, name: str, **params: int) -> httpx.Response:
    return client.post("/predict", files={"file": (name, data)}, params=params)


def finished(client: httpx.Client, job_id: int) -> dict[str, object] | None:
    job = client.get(f"/jobs/{job_id}").json()
    return job if job["status"] in ("succeeded", "failed", "cancelled") else None


def test_train_on_real_cifar10_and_classify_real_images(
    env: Env, service: Service, real_cifar_subset: Path
) -> None:
    env.data_dir.rmdir() if env.data_dir.exists() else None
    env.data_dir.symlink_to(real_cifar_subset, target_is_directory=True)

    # A worker started before the API waits for the schema instead of creating it.
    worker = service.start_worker()
    worker.wait_for_log("waiting for the database schema")
    service.start_api()
    client = service.client()

    assert client.get("/healthz").json() == {"status": "ok"}
    assert predict(client, b"x", "x.png").status_code == 503

    config = {"epochs": 2, "log_every": 125, "seed": 1}
    submitted = client.post("/jobs", json=config)
    assert submitted.status_code == 202
    job_id = submitted.json()["id"]
    assert submitted.headers["location"] == f"/jobs/{job_id}"
    queued_behind = client.post("/jobs", json={"epochs": 20, "seed": 2}).json()["id"]

    # Watch it train: the status turns to running and the progress moves.
    running = wait_for(
        lambda: (
            (job := client.get(f"/jobs/{job_id}").json())["status"] == "running"
            and job["progress"]["step"] > 0
            and job
        ),
        60,
        "the job never showed progress",
    )
    assert running["device"] == "cpu"  # type: ignore[index]
    assert running["progress"]["steps_per_epoch"] == 500  # type: ignore[index]
    conflict = predict(client, b"x", "x.png", job_id=queued_behind)
    assert conflict.status_code == 409
    assert (
        conflict.json()["detail"]
        == f"job {queued_behind} has no trained model (its status is queued)"
    )

    job = wait_for(lambda: finished(client, job_id), TRAINING_TIMEOUT_S, "training timed out")
    assert job["status"] == "succeeded", worker.log()  # type: ignore[index]
    assert job["progress"] == {"epoch": 2, "epochs": 2, "step": 500, "steps_per_epoch": 500}  # type: ignore[index]

    metrics = client.get(f"/jobs/{job_id}/metrics").json()
    assert metrics["classes"] == CIFAR_CLASSES
    assert [(p["epoch"], p["step"]) for p in metrics["loss_history"]] == [
        (e, s) for e in (1, 2) for s in (125, 250, 375, 500)
    ]
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2]
    matrix = metrics["confusion_matrix"]
    assert [sum(row) for row in matrix] == [50] * 10  # 500 balanced test images
    assert metrics["test_accuracy"] == sum(matrix[i][i] for i in range(10)) / 500
    assert metrics["test_accuracy"] > 0.15  # learned something beyond chance (0.10)
    assert "[1,   125] loss:" in worker.log()  # the tutorial's running-loss lines

    # The mistakes behind the matrix, most confident first: each one's test image is served by
    # its index, and /predict gives it the same class with the same probability.
    mistakes = client.get(f"/jobs/{job_id}/errors", params={"limit": 500}).json()
    assert mistakes["total"] == len(mistakes["items"]) == 500 - sum(matrix[i][i] for i in range(10))
    worst = mistakes["items"][0]
    served = client.get(worst["image"])
    assert served.headers["content-type"] == "image/png"
    again = predict(client, served.content, "worst.png", job_id=job_id).json()
    assert again["label"] == worst["predicted"] != worst["true"]
    confidence = again["probabilities"][worst["predicted"]]
    assert confidence == pytest.approx(worst["confidence"], abs=1e-5)

    # Real JPEGs through real multipart uploads; a PNG of the same pixels answers the same.
    images = real_test_images()
    for name, jpeg in images.items():
        answer = predict(client, jpeg, f"{name}.jpg")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["job_id"] == job_id
        assert body["label"] == CIFAR_CLASSES[body["class_index"]]
        assert sum(body["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        same = predict(client, as_png(jpeg), f"{name}.png", job_id=job_id).json()
        assert same["probabilities"] == pytest.approx(body["probabilities"], abs=1e-6)

    airplane = images["airplane"]
    # Another size is resized as training images were; refused only with resize=false.
    bigger = predict(client, as_png(airplane, (64, 64)), "big.png")
    assert bigger.status_code == 200 and bigger.json()["original_size"] == {
        "width": 64,
        "height": 64,
    }
    wrong_size = client.post(
        "/predict",
        files={"file": ("big.png", as_png(airplane, (64, 64)))},
        params={"resize": "false"},
    )
    assert wrong_size.status_code == 422
    assert wrong_size.json() == {
        "detail": "big.png: the image is 64x64 pixels; this model takes 32x32 (leave out "
        "resize=false to have it resized)"
    }
    assert predict(client, b"", "empty.jpg").status_code == 422
    assert predict(client, airplane[: len(airplane) // 2], "cut.jpg").status_code == 422
    assert predict(client, b"%PDF-1.4", "doc.pdf").status_code == 422
    assert predict(client, airplane, "a.jpg", job_id=9999).status_code == 404
    assert client.get("/jobs/9999").status_code == 404

    # SIGTERM while training checkpoints the job and hands it back, not counting the attempt.
    worker.wait_for_log(f"job {queued_behind}: training on cpu")
    assert worker.stop() == 0
    second = client.get(f"/jobs/{queued_behind}").json()
    assert second["status"] == "queued" and second["attempts"] == 0
    assert "checkpoint epoch0001-step" in worker.log()
    listing = client.get("/jobs").json()
    assert [j["id"] for j in listing["items"]] == [queued_behind, job_id]
    assert listing["total"] == 2


def test_up_runs_api_and_worker_and_survives_a_bad_dataset(env: Env, service: Service) -> None:
    up = service.start("up", TRAINSERVE, "up", "--port", str(service.port))
    service.wait_until_up(up)
    client = service.client()

    # No dataset and downloads off: the job fails naming the folder; the worker carries on.
    missing = client.post("/jobs", json={"epochs": 1}).json()["id"]
    failed = wait_for(lambda: finished(client, missing), 60, "the job never failed")
    assert failed["status"] == "failed"  # type: ignore[index]
    expected_folder = env.data_dir.resolve() / "cifar-10-batches-py"
    assert f"in {expected_folder}" in failed["error"]  # type: ignore[index]

    write_cifar_layout(env.data_dir, synthetic_split(400, 1), synthetic_split(100, 2))
    job_id = client.post(
        "/jobs", json={"epochs": 3, "batch_size": 16, "learning_rate": 0.01, "log_every": 5}
    ).json()["id"]
    job = wait_for(lambda: finished(client, job_id), TRAINING_TIMEOUT_S, "training timed out")
    assert job["status"] == "succeeded", up.log()  # type: ignore[index]
    image = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 200, 30)).save(image, format="BMP")
    answer = predict(client, image.getvalue(), "flat.bmp")
    assert answer.status_code == 200 and answer.json()["job_id"] == job_id

    up.popen.send_signal(signal.SIGTERM)
    assert up.popen.wait(30) == 0
    assert "worker " in up.log() and " stopped" in up.log()


def test_plain_uvicorn_and_python_m_workers_work(env: Env, service: Service) -> None:
    api = service.start(
        "uvicorn", sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(service.port)
    )
    service.wait_until_up(api)  # readiness means the lifespan applied the migrations
    worker = service.start_worker()
    worker.wait_for_log("started")
    assert service.client().get("/jobs").json() == {"items": [], "total": 0}


def test_api_with_several_server_processes(env: Env, service: Service) -> None:
    api = service.start("api", TRAINSERVE, "api", "--port", str(service.port), "--workers", "2")
    service.wait_until_up(api)
    # Readiness means one process answers; the other may still be importing on a busy machine.
    wait_for(
        lambda: api.log().count("Application startup complete") == 2,
        START_TIMEOUT_S,
        f"the second server process never started:\n{api.log()}",
    )
    assert "Started parent process" in api.log()  # uvicorn's supervisor of several processes
    assert api.log().count("Started server process") == 2
    # Each process listens with a socket of its own, among which the kernel spreads connections.
    wait_for(
        lambda: _listening_sockets(service.port) == 2,
        START_TIMEOUT_S,
        f"not one listening socket per process:\n{api.log()}",
    )
    ids = set()
    for _ in range(20):  # a connection each, so that both processes take requests
        with service.client() as client:
            ids.add(client.post("/jobs", json={"epochs": 1}).json()["id"])
    assert len(ids) == 20  # every process writes to the one database
    assert service.client().get("/jobs").json()["total"] == 20
    # Each process counts its own requests; a scrape of either adds up both. A request is
    # counted once its answer has gone, so the last one may land a moment after the client
    # has it.
    counted = 'trainserve_http_requests_total{method="POST",route="/jobs",status="202"} 20.0'
    wait_for(
        lambda: counted in service.client().get("/metrics").text,
        10,
        "the scrape never added up both processes' requests",
    )
    # A second instance on the port would share its connections: refused.
    second = service.start(
        "second", TRAINSERVE, "api", "--port", str(service.port), "--workers", "2"
    )
    assert second.popen.wait(START_TIMEOUT_S) == 1
    assert second.log().endswith(f"port {service.port} is in use by another trainserve api\n")
    # Server processes left behind would go on taking connections: they stop with the supervisor.
    servers = [
        int(line.split("[")[1].split("]")[0])
        for line in api.log().splitlines()
        if "Started server process [" in line
    ]
    api.kill()
    wait_for(
        lambda: all(not Path(f"/proc/{pid}").exists() or _zombie(pid) for pid in servers),
        30,
        "server processes outlived their supervisor",
    )
    assert _listening_sockets(service.port) == 0


def test_the_worker_of_up_stops_when_up_is_killed(env: Env, service: Service) -> None:
    up = service.start("up", TRAINSERVE, "up", "--port", str(service.port))
    service.wait_until_up(up)
    up.wait_for_log("worker started (pid ")
    worker_pid = int(up.log().split("worker started (pid ")[1].split(")")[0])
    up.kill()  # SIGKILL: up cannot stop its worker itself
    wait_for(
        lambda: not Path(f"/proc/{worker_pid}").exists() or _zombie(worker_pid),
        30,
        "the worker outlived up",
    )


def _listening_sockets(port: int) -> int:
    """How many sockets listen on `port` on this machine (/proc/net/tcp, state 0A)."""
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(
        1
        for fields in (line.split() for line in lines)
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "0A"
    )


def _zombie(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:  # reaped meanwhile
        return True
    return "State:\tZ" in status
