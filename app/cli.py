"""The `trainserve` command: run the API, a worker, both, or the migrations."""

import argparse
import ipaddress
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from types import FrameType

import uvicorn

from app.checks import check_api, check_worker
from app.logs import configure_logging
from app.parent_death import signal_when_parent_dies
from app.settings import Settings, get_settings

log = logging.getLogger("trainserve")

WORKER_STOP_TIMEOUT_S = 60


def open_access_warning(host: str, settings: Settings) -> str | None:
    """The warning to give when the API would be open to more than this machine."""
    if settings.auth_enabled:
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        if host == "localhost":
            return None
    return (
        f"no API keys are set and the API listens on {host}: anyone who can reach it can start "
        "jobs; set TRAINSERVE_ADMIN_KEY (and TRAINSERVE_PREDICT_KEY) to require keys"
    )


def run_api(host: str, port: int, workers: int = 1) -> None:
    """Serve the API under uvicorn, in `workers` processes (migrations are applied at start)."""
    settings = get_settings()
    warning = open_access_warning(host, settings)
    if warning:
        log.warning(warning)
    if workers > 1:
        # Migrate once here rather than racing in every server process.
        run_migrations()
        os.environ["TRAINSERVE_MIGRATE_ON_START"] = "0"
        # Each server process writes its metrics here; a scrape of any one adds them all up.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="trainserve-metrics-")
    try:
        uvicorn.run(
            "app.main:app",
            host=host,
            port=port,
            workers=workers,
            log_level=settings.log_level.lower(),
        )
    finally:
        if workers > 1:
            shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


def run_worker() -> None:
    """Run the training worker in this process."""
    # Imported here: the worker package builds on app, never the other way round.
    from workers.worker import main as worker_main

    worker_main()


def run_migrations() -> None:
    """Upgrade the database schema to the newest migration."""
    from app.migrations import upgrade_to_head

    upgrade_to_head()
    log.info("database schema is current")


def _exit_cleanly(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def _stop_with_parent() -> None:
    """In the worker child: SIGTERM when `up` dies, even by SIGKILL."""
    signal_when_parent_dies(signal.SIGTERM)


def run_up(host: str, port: int) -> None:
    """The API and one worker on one machine: the worker is a child process."""
    run_migrations()
    # preexec_fn is safe here: `up` has started no threads yet.
    worker = subprocess.Popen([sys.executable, "-m", "workers"], preexec_fn=_stop_with_parent)
    log.info("worker started (pid %d)", worker.pid)
    # uvicorn shuts down on SIGTERM/SIGINT and then re-raises the signal to these handlers,
    # which unwind through the finally below so that the worker is stopped too.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    signal.signal(signal.SIGINT, _exit_cleanly)
    try:
        run_api(host, port)
    finally:
        if worker.poll() is None:
            worker.terminate()  # SIGTERM: the worker hands its job back to the queue
            try:
                worker.wait(WORKER_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trainserve", description="Train image classifiers over REST and serve them."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("api", "serve the HTTP API"),
        ("up", "serve the HTTP API with one training worker beside it"),
    ):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--host", default="127.0.0.1", help="address to listen on")
        sub.add_argument("--port", type=int, default=8000, help="port to listen on")
        if name == "api":
            sub.add_argument(
                "--workers", type=int, default=1, help="server processes (uvicorn workers)"
            )
    commands.add_parser("worker", help="run a training worker")
    commands.add_parser("migrate", help="apply database migrations")
    check = commands.add_parser(
        "check", help="health check for containers: exit 0 when healthy, 1 when not"
    )
    check.add_argument("what", choices=["api", "worker"], help="the API on loopback, or a worker")
    check.add_argument("--port", type=int, default=8000, help="the API's port")
    return parser


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `trainserve` console script."""
    args = build_parser().parse_args(argv)
    configure_logging(get_settings().log_level)
    if args.command == "api":
        if args.workers < 1:
            raise SystemExit("trainserve api: --workers must be at least 1")
        run_api(args.host, args.port, args.workers)
    elif args.command == "up":
        run_up(args.host, args.port)
    elif args.command == "worker":
        run_worker()
    elif args.command == "migrate":
        run_migrations()
    elif args.command == "check":
        problem = check_api(args.port) if args.what == "api" else check_worker()
        if problem is not None:
            print(problem, file=sys.stderr)
            raise SystemExit(1)


if __name__ == "__main__":
    main()
