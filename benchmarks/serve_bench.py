"""Serving, side by side: trainserve in each mode against LitServe, BentoML, a naive server
and what plain HTTP costs, on the same model and the same 64 real CIFAR-10 test images.

Every server runs at once, each on its own port; the rows are interleaved (each repeat runs
every row once, in turn) so that a noisy moment on the machine spreads over all of them.
benchmarks/loadgen.py drives each row in its own process over keep-alive connections; the
server's CPU time per request is read from /proc; `wrk`, where installed, cross-checks the p99
at the highest concurrency. LitServe and BentoML run in their own virtual environments, made on
first use (benchmarks/peers.py). The model is trained once per scratch folder.

Usage: python benchmarks/serve_bench.py [--requests N] [--repeats N] [--workers N]
       [--concurrency 1 64] [--only SERVER...] [--scratch DIR]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import bench_images as images
import peers
import proc_stats
import wrk_check
from bench_setup import ARCHIVE, free_port, service_env, stop, trained_model, wait_ready
from bench_table import print_table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.cpus import usable_cpus  # the count that --workers auto takes

HERE = Path(__file__).resolve().parent
IMAGES = 64
WARM_UP_REQUESTS = 300
SPLIT_SETTLE_S = 1.0
PROTOCOL_PATH = "/v2/models/cifar10/infer"


SERVER_KEYS = [
    "ceiling-multipart",
    "ceiling-raw",
    "naive",
    "litserve",
    "bentoml",
    "trainserve-1",
    "trainserve-N",
]


@dataclass
class Row:
    name: str
    server: str  # the key of the server it drives
    requests_file: Path
    ceiling: str | None = None  # the server whose throughput bounds this row's
    results: dict[int, list[dict[str, object]]] = field(default_factory=dict)


@dataclass
class Running:
    process: "subprocess.Popen[bytes]"
    port: int


def servers(model: Path, scratch: Path, workers: int) -> dict[str, Callable[[int], peers.Server]]:
    """Each server by key, made for a port."""
    env = service_env(scratch)
    return {
        "ceiling-multipart": lambda port: peers.ceiling("multipart", port),
        "ceiling-raw": lambda port: peers.ceiling("raw", port),
        "naive": lambda port: peers.naive(model, port),
        "litserve": lambda port: peers.litserve(model, port),
        "bentoml": lambda port: peers.bentoml(model, port),
        "trainserve-1": lambda port: peers.trainserve(1, port, env),
        "trainserve-N": lambda port: peers.trainserve(workers, port, env),
    }


def rows(scratch: Path, pngs: list[bytes], workers: int) -> list[Row]:
    def requests(name: str, path: str, body_of: images.BodyOf) -> Path:
        file = scratch / f"{name}.requests"
        images.write_requests(file, path, pngs, body_of)
        return file

    multipart = requests("multipart", "/predict", images.form("file"))
    raw = requests("raw", "/predict", images.raw_body)
    protocol = requests("protocol", PROTOCOL_PATH, images.binary_tensor)
    made = [
        Row("plain FastAPI, multipart parsed, constant", "ceiling-multipart", multipart),
        Row("plain FastAPI, raw body, constant", "ceiling-raw", raw),
        Row("naive FastAPI, a forward pass per request", "naive", multipart),
        Row("LitServe 0.2.19, 1 worker, batch 64", "litserve", multipart),
        Row(
            "BentoML 1.4.40, batchable, batch 64",
            "bentoml",
            requests("bentoml", "/predict", images.form("images")),
        ),
    ]
    for processes in sorted({1, workers}):
        label = f"trainserve, {processes} process{'es' if processes > 1 else ''}"
        server = "trainserve-1" if processes == 1 else "trainserve-N"
        made += [
            Row(f"{label}, multipart /predict", server, multipart, "ceiling-multipart"),
            Row(f"{label}, raw-body /predict", server, raw, "ceiling-raw"),
            Row(f"{label}, /v2 binary tensor", server, protocol, "ceiling-raw"),
        ]
    return made


def drive(port: int, requests_file: Path, concurrency: int, count: int) -> dict[str, object]:
    command = [sys.executable, str(HERE / "loadgen.py"), str(port), str(requests_file)]
    output = subprocess.run(
        [*command, str(concurrency), str(count)], check=True, capture_output=True, text=True
    ).stdout
    result: dict[str, object] = json.loads(output)
    return result


def measure(row: Row, running: Running, concurrency: int, count: int) -> dict[str, object]:
    """One load run, with the server's CPU time per request."""
    cpu_before = proc_stats.cpu_seconds(running.process.pid)
    result = drive(running.port, row.requests_file, concurrency, count)
    cpu_s = proc_stats.cpu_seconds(running.process.pid) - cpu_before
    result["cpu_ms"] = round(1000 * cpu_s / count, 2)
    return result


def connection_split(running: Running, requests_file: Path, connections: int) -> list[int]:
    """How `connections` keep-alive connections spread over the server's processes."""
    command = [sys.executable, str(HERE / "loadgen.py"), str(running.port), str(requests_file)]
    load = subprocess.Popen(
        [*command, str(connections), str(connections * 100)], stdout=subprocess.DEVNULL
    )
    time.sleep(SPLIT_SETTLE_S)
    split = proc_stats.connections_by_process(running.process.pid, running.port)
    load.wait()
    return split


def start_all(
    keys: list[str], makers: dict[str, Callable[[int], peers.Server]], logs: Path
) -> dict[str, Running]:
    started: dict[str, Running] = {}
    try:
        for key in keys:
            server = makers[key](free_port())
            started[key] = Running(peers.start(server, logs / f"{key}.log"), server.port)
            wait_ready(server.port, server.ready_path, started[key].process)
    except BaseException:
        for running in started.values():
            stop(running.process)
        raise
    return started


def run(args: argparse.Namespace, scratch: Path) -> None:
    model = trained_model(scratch)
    pngs = images.cifar_test_pngs(ARCHIVE, IMAGES)
    chosen = [
        r for r in rows(scratch, pngs, args.workers) if not args.only or r.server in args.only
    ]
    keys = list(dict.fromkeys(r.server for r in chosen))
    started = start_all(keys, servers(model, scratch, args.workers), scratch)
    top = max(args.concurrency)
    try:
        for row in chosen:
            drive(started[row.server].port, row.requests_file, 8, WARM_UP_REQUESTS)
        for _repeat in range(args.repeats):
            for concurrency in args.concurrency:
                for row in chosen:
                    result = measure(row, started[row.server], concurrency, args.requests)
                    row.results.setdefault(concurrency, []).append(result)
        wrk_p99 = {}
        if wrk_check.available():
            for row in chosen:
                port = started[row.server].port
                wrk_p99[row.name] = wrk_check.p99_ms(port, row.requests_file, top, args.wrk_seconds)
        splits = {
            row.name: connection_split(started[row.server], row.requests_file, top)
            for row in chosen
            if row.server == "trainserve-N"
        }
    finally:
        for running in started.values():
            stop(running.process)
    print_table(chosen, args.concurrency, wrk_p99 if wrk_check.available() else None, splits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000, help="per row and repeat")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workers", type=int, default=usable_cpus())
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--only", nargs="+", help="servers to run: " + ", ".join(SERVER_KEYS))
    parser.add_argument("--scratch", type=Path, help="keep the trained model here between runs")
    parser.add_argument("--wrk-seconds", type=float, default=5.0)
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}, usable: {usable_cpus()}", flush=True)
    if args.scratch is not None:
        args.scratch.mkdir(parents=True, exist_ok=True)
        run(args, args.scratch)
        return
    with tempfile.TemporaryDirectory() as tmp:
        run(args, Path(tmp))


if __name__ == "__main__":
    main()
