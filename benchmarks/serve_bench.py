"""Serving throughput and latency: our API (dynamic batching) against a naive server.

Trains a small model through the real service, then drives, one after the other on loopback,
our `/predict`, the naive server (one forward pass per request, same model) and our
`/predict/batch` (64 images per request) with `benchmarks/loadgen.py` in its own process, at
concurrency 1, 8 and 64, a fixed number of requests each. Prints one table.

Usage: python benchmarks/serve_bench.py [--data-root DIR] [--requests N] [--workers N]
DIR holds cifar-10-batches-py; without it a 2,000-image subset is rebuilt from ../shared/data.
"""

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
BIN = Path(sys.executable).parent
CONCURRENCY = (1, 8, 64)
BATCH_IMAGES = 64


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(url: str, path: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + path, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    sys.exit(f"{url} never came up")


def multipart(field: str, images: list[bytes]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{i}.png"\r\n'
        f"Content-Type: image/png\r\n\r\n".encode()
        + image
        + b"\r\n"
        for i, image in enumerate(images)
    ]
    return b"".join(
        parts
    ) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_images(count: int) -> list[bytes]:
    rng = np.random.default_rng(0)
    out = []
    for _ in range(count):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buffer, "PNG")
        out.append(buffer.getvalue())
    return out


def load(
    port: int,
    path: str,
    body: bytes,
    content_type: str,
    concurrency: int,
    requests: int,
    scratch: Path,
) -> dict[str, object]:
    body_file = scratch / "body.bin"
    body_file.write_bytes(body)
    output = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "loadgen.py"),
            str(port),
            path,
            str(body_file),
            content_type,
            str(concurrency),
            str(requests),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, object] = json.loads(output)
    return result


def train_model(env: dict[str, str], url: str) -> str:
    with httpx.Client(base_url=url, timeout=30) as client:
        job = client.post(
            "/jobs",
            json={"epochs": 1, "max_train_samples": 2000, "max_test_samples": 500, "seed": 1},
        ).json()
        while job["status"] in ("queued", "running"):
            time.sleep(0.5)
            job = client.get(f"/jobs/{job['id']}").json()
    if job["status"] != "succeeded":
        sys.exit(f"training failed: {job['error']}")
    return f"jobs/{job['id']}/model-attempt{job['attempts']}.pt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=1, help="API server processes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        data_root = args.data_root
        if data_root is None:
            data_root = scratch / "data"
            subprocess.run(
                [
                    sys.executable,
                    str(SHARED / "tools" / "jpeg_to_cifar_batches.py"),
                    str(SHARED / "data" / "cifar10-jpeg.tar.gz"),
                    str(data_root),
                    "--train",
                    "2000",
                    "--test",
                    "500",
                ],
                check=True,
                capture_output=True,
            )
        env = {
            **os.environ,
            "TRAINSERVE_DATABASE_URL": f"sqlite:///{scratch}/bench.db",
            "TRAINSERVE_DATA_DIR": str(data_root),
            "TRAINSERVE_DOWNLOAD": "0",
            "TRAINSERVE_ARTIFACTS_DIR": str(scratch / "artifacts"),
            "TRAINSERVE_LOG_LEVEL": "WARNING",
        }
        port, naive_port = free_port(), free_port()
        url = f"http://127.0.0.1:{port}"
        api = subprocess.Popen(
            [str(BIN / "trainserve"), "api", "--port", str(port), "--workers", str(args.workers)],
            env=env,
        )
        processes = [api]
        try:
            wait_ready(url, "/readyz")
            worker = subprocess.Popen([str(BIN / "trainserve"), "worker"], env=env)
            model = train_model(env, url)
            worker.terminate()
            worker.wait(60)
            naive = subprocess.Popen(
                [
                    sys.executable,
                    str(REPO / "benchmarks" / "naive_server.py"),
                    str(scratch / "artifacts" / model),
                    str(naive_port),
                ],
                env=env,
                cwd=REPO,
            )
            processes.append(naive)
            wait_ready(f"http://127.0.0.1:{naive_port}", "/docs")

            one_body, one_type = multipart("file", test_images(1))
            batch_body, batch_type = multipart("files", test_images(BATCH_IMAGES))
            rows = []
            for name, target, path, body, ctype, images in (
                ("naive server, /predict", naive_port, "/predict", one_body, one_type, 1),
                ("trainserve, /predict", port, "/predict", one_body, one_type, 1),
                (
                    f"trainserve, /predict/batch x{BATCH_IMAGES}",
                    port,
                    "/predict/batch",
                    batch_body,
                    batch_type,
                    BATCH_IMAGES,
                ),
            ):
                load(target, path, body, ctype, 8, 200, scratch)  # warm-up
                for concurrency in CONCURRENCY:
                    requests = args.requests if images == 1 else max(200, args.requests // 20)
                    result = load(target, path, body, ctype, concurrency, requests, scratch)
                    rows.append((name, result, images))
        finally:
            for process in processes:
                process.terminate()
                process.wait(60)
    print(f"cores: {os.cpu_count()}, API server processes: {args.workers}")
    print(
        f"{'server':<34}{'conc':>5}{'req/s':>9}{'img/s':>9}{'p50 ms':>8}{'p95 ms':>8}"
        f"{'p99 ms':>8}  statuses"
    )
    for name, r, images in rows:
        rps = float(r["rps"])  # type: ignore[arg-type]
        print(
            f"{name:<34}{r['concurrency']:>5}{rps:>9.0f}{rps * images:>9.0f}{r['p50_ms']:>8}"
            f"{r['p95_ms']:>8}{r['p99_ms']:>8}  {r['statuses']}"
        )


if __name__ == "__main__":
    main()
