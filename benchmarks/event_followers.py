"""What followers of a running job cost everyone else: GET /jobs latency and API CPU with 1, 200
and 1,000 clients on its event stream, this code against a baseline revision, interleaved.

Two API servers (one process each) share one SQLite file: this checkout's, and the baseline's
`app/` taken from git (by default the revision before the event hub, where every stream polls
the database on its own). A simulated worker, a process of its own calling the real job
functions, holds one job running and records what a training job does: a loss point every 0.2 s
and a heartbeat every second. For each round, each follower count and each server in turn
(the order alternating between rounds), a separate process opens that many streams on the job
and reads them; once every stream has its first event, the script waits a second, then sends
GET /jobs one at a time for the measured seconds and reads the server's CPU time from /proc.
Prints one row per measurement and the median of the rounds.

Usage: python benchmarks/event_followers.py [--followers 1,200,1000] [--rounds 2]
       [--seconds 6] [--baseline REV]
"""

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
LISTED_JOBS = 50  # queued jobs besides the running one, for GET /jobs to list
LOSS_EVERY_S = 0.2
HEARTBEAT_EVERY_S = 1.0
SETTLE_S = 1.0
REQUEST_GAP_S = 0.02
CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(url: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    sys.exit(f"{url} never came up")


def default_baseline() -> str:
    """The revision before the one that added the event hub."""
    added = subprocess.run(
        [
            "git",
            "-C",
            str(REPO),
            "log",
            "--diff-filter=A",
            "--format=%H",
            "--",
            "app/jobs/event_hub.py",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if not added:
        sys.exit("no event hub in this history: name the baseline with --baseline")
    return added[-1] + "^"


def export_revision(revision: str, into: Path) -> Path:
    """The revision's app/ and alembic/ under `into`, to put first on PYTHONPATH."""
    into.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", revision, "app", "alembic"],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of the process, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_S


# --- the simulated worker (its own process) ---------------------------------------------------


def simulate_worker() -> None:
    """Create the jobs, hold the first one running and record its events until stopped."""
    from app.db import session_scope
    from app.jobs.config import JobConfig
    from app.jobs.progress import heartbeat, record_loss_point
    from app.jobs.records import LossRecord
    from app.jobs.transitions import claim_next_job, create_job

    with session_scope(write=True) as session:
        create_job(session, JobConfig(epochs=1000, seed=0))
    with session_scope(write=True) as session:
        lease = claim_next_job(session, "benchmark-worker", 60)
    assert lease is not None
    with session_scope(write=True) as session:
        for _ in range(LISTED_JOBS):
            create_job(session, JobConfig(epochs=1, seed=0))
    print(lease.job_id, flush=True)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    step, next_heartbeat = 0, time.monotonic()
    while not stopping:
        step += 1
        with session_scope(write=True) as session:
            record_loss_point(session, lease, LossRecord(epoch=1, step=step, loss=1 / step))
        if time.monotonic() >= next_heartbeat:
            next_heartbeat += HEARTBEAT_EVERY_S
            with session_scope(write=True) as session:
                heartbeat(session, lease, 60, 1, step, images_per_s=1000.0)
        time.sleep(LOSS_EVERY_S)


# --- the followers (their own process) ---------------------------------------------------------


async def follow(port: int, job_id: int, first_event: asyncio.Event) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET /jobs/{job_id}/events HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
    received = b""
    while b"\nid: " not in received:
        chunk = await reader.read(65536)
        if not chunk:
            raise SystemExit("a stream closed before its first event")
        received += chunk
    first_event.set()
    while await reader.read(65536):
        pass


async def run_followers(port: int, job_id: int, count: int) -> None:
    """Open `count` streams, say "ready" once each has had an event, read them until killed."""
    started = [asyncio.Event() for _ in range(count)]
    tasks = [asyncio.create_task(follow(port, job_id, event)) for event in started]
    await asyncio.gather(*(event.wait() for event in started))
    print("ready", flush=True)
    await asyncio.gather(*tasks)


# --- the measurement --------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    url: str
    port: int
    process: subprocess.Popen[bytes]


@dataclass
class Measurement:
    server: str
    followers: int
    p50_ms: float
    p99_ms: float
    cpu_percent: float


def start_server(name: str, pythonpath: Path, env: dict[str, str], log_dir: Path) -> Server:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from app.cli.server import run_api; run_api('127.0.0.1', {port})",
        ],
        env={**env, "PYTHONPATH": str(pythonpath)},
        cwd=pythonpath,  # `python -c` puts the working folder first on sys.path
        stdout=(log_dir / f"{name}.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    wait_ready(url)
    return Server(name, url, port, process)


def measure(server: Server, job_id: int, followers: int, seconds: float) -> Measurement:
    crowd = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--run-followers",
            str(server.port),
            str(job_id),
            str(followers),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert crowd.stdout is not None
        if crowd.stdout.readline().strip() != b"ready":
            sys.exit(f"the followers of {server.name} never all got an event")
        time.sleep(SETTLE_S)
        latencies: list[float] = []
        with httpx.Client(base_url=server.url, timeout=60) as client:
            cpu_before, started = cpu_seconds(server.process.pid), time.monotonic()
            while time.monotonic() - started < seconds:
                sent = time.perf_counter()
                assert client.get("/jobs").status_code == 200
                latencies.append(time.perf_counter() - sent)
                time.sleep(REQUEST_GAP_S)
            cpu = cpu_seconds(server.process.pid) - cpu_before
            wall = time.monotonic() - started
    finally:
        crowd.kill()
        crowd.wait()
    time.sleep(SETTLE_S)  # the server lets go of the dropped streams before the next run
    latencies.sort()
    return Measurement(
        server.name,
        followers,
        statistics.median(latencies) * 1000,
        latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        100 * cpu / wall,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--followers", default="1,200,1000")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--baseline", default=None, help="git revision (default: before the hub)")
    args = parser.parse_args()
    counts = [int(n) for n in args.followers.split(",")]
    baseline = args.baseline or default_baseline()
    label = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", baseline],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()

    with tempfile.TemporaryDirectory(prefix="event-followers-") as tmp:
        root = Path(tmp)
        env = {
            **os.environ,
            "TRAINSERVE_DATABASE_URL": f"sqlite:///{root / 'trainserve.db'}",
            "TRAINSERVE_DATA_DIR": str(root / "data"),
            "TRAINSERVE_ARTIFACTS_DIR": str(root / "artifacts"),
            "TRAINSERVE_DOWNLOAD": "0",
            "TRAINSERVE_LOG_LEVEL": "WARNING",
        }
        current = start_server("hub", REPO, env, root)
        servers = [current]
        worker = None
        try:
            servers.append(
                start_server(
                    f"baseline {label}", export_revision(baseline, root / "baseline"), env, root
                )
            )
            worker = subprocess.Popen(
                [sys.executable, __file__, "--simulate-worker"],
                env={**env, "PYTHONPATH": str(REPO)},
                stdout=subprocess.PIPE,
            )
            assert worker.stdout is not None
            job_id = int(worker.stdout.readline())
            print(
                f"cores: {os.cpu_count()}; job {job_id} running; {args.seconds:g} s a measurement"
            )
            print(f"{'server':<18} {'followers':>9} {'p50 ms':>8} {'p99 ms':>8} {'API CPU %':>9}")
            results: list[Measurement] = []
            for round_ in range(args.rounds):
                for count in counts:
                    order = servers if round_ % 2 == 0 else servers[::-1]
                    for server in order:
                        result = measure(server, job_id, count, args.seconds)
                        results.append(result)
                        print(
                            f"{result.server:<18} {count:>9} {result.p50_ms:>8.1f} "
                            f"{result.p99_ms:>8.1f} {result.cpu_percent:>9.1f}",
                            flush=True,
                        )
            print("\nmedian of the rounds")
            for count in counts:
                for server in servers:
                    runs = [r for r in results if r.server == server.name and r.followers == count]
                    print(
                        f"{server.name:<18} {count:>9} "
                        f"{statistics.median(r.p50_ms for r in runs):>8.1f} "
                        f"{statistics.median(r.p99_ms for r in runs):>8.1f} "
                        f"{statistics.median(r.cpu_percent for r in runs):>9.1f}"
                    )
        finally:
            if worker is not None:
                worker.terminate()
                worker.wait()
            for server in servers:
                server.process.terminate()
                server.process.wait()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--simulate-worker"]:
        simulate_worker()
    elif sys.argv[1:2] == ["--run-followers"]:
        port, job_id, count = (int(value) for value in sys.argv[2:5])
        asyncio.run(run_followers(port, job_id, count))
    else:
        main()
