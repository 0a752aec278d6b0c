"""`trainserve api|up|worker|migrate|sweep|check`: the service's own processes."""

import ipaddress
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from enum import StrEnum
from types import FrameType
from typing import Annotated, Literal

import typer

from app.logs import configure_logging, logging_config
from app.parent_death import signal_when_parent_dies
from app.settings import Settings, get_settings, server_processes_setting

log = logging.getLogger("trainserve")

WORKER_STOP_TIMEOUT_S = 60
PANEL = "Run the service"


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


def server_processes(workers: int | Literal["auto"]) -> int:
    """How many server processes `workers` means: auto is one per core this process may use."""
    if workers == "auto":
        return len(os.sched_getaffinity(0))
    return workers


def run_api(host: str, port: int, workers: int | Literal["auto"] | None = None) -> None:
    """Serve the API under uvicorn, in `workers` processes (default TRAINSERVE_API_WORKERS;
    migrations are applied at start)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from app.process_listeners import ListenerPerProcess
    from app.slow_clients import HeaderDeadlineProtocol

    settings = get_settings()
    processes = server_processes(settings.api_workers if workers is None else workers)
    warning = open_access_warning(host, settings)
    if warning:
        log.warning(warning)
    if processes > 1:
        # Migrate once here rather than racing in every server process.
        run_migrations()
        os.environ["TRAINSERVE_MIGRATE_ON_START"] = "0"
        # Each server process writes its metrics here; a scrape of any one adds them all up.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="trainserve-metrics-")
    config = uvicorn.Config(
        "app.main:server_app",
        factory=True,
        host=host,
        port=port,
        workers=processes,
        log_level=settings.log_level.lower(),
        # uvicorn applies this in each of its server processes; its own default would print
        # its lines in its own format, whatever TRAINSERVE_LOG_FORMAT says.
        log_config=logging_config(settings.log_level, settings.log_format),
        # Event streams stay open until their job ends: without a limit, a stop would wait
        # for every one of them.
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
        http=HeaderDeadlineProtocol,
        limit_concurrency=settings.max_connections,
    )
    try:
        if processes == 1:
            uvicorn.Server(config).run()
            return
        try:
            listener = ListenerPerProcess(host, port)
        except OSError as exc:
            raise SystemExit(f"cannot listen on {host}:{port}: {exc}") from None
        log.info("listening on %s:%d with %d server processes", host, port, processes)
        Multiprocess(config, sockets=[listener]).run()
    finally:
        if processes > 1:
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


def parse_workers(value: str) -> int | Literal["auto"]:
    """`--workers`: a number of processes (1 or more), or auto."""
    try:
        return server_processes_setting(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _exit_cleanly(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def _stop_with_parent() -> None:
    """In the worker child: SIGTERM when `up` dies, even by SIGKILL."""
    signal_when_parent_dies(signal.SIGTERM)


def run_up(host: str, port: int, workers: int | Literal["auto"] | None = None) -> None:
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
        run_api(host, port, workers)
    finally:
        if worker.poll() is None:
            worker.terminate()  # SIGTERM: the worker hands its job back to the queue
            try:
                worker.wait(WORKER_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()


Host = Annotated[str, typer.Option(help="Address to listen on.")]
Workers = Annotated[
    int | None,
    typer.Option(
        parser=parse_workers,
        metavar="N|auto",
        help="Server processes: a number, or auto for one per core (default: "
        "TRAINSERVE_API_WORKERS, 1).",
        show_default=False,
    ),
]
Port = Annotated[int, typer.Option(help="Port to listen on.")]


def register(cli: typer.Typer) -> None:
    """Add the commands that run the service's own processes."""

    @cli.command("api", rich_help_panel=PANEL)
    def api_command(
        host: Host = "127.0.0.1",
        port: Port = 8000,
        workers: Workers = None,
    ) -> None:
        """Serve the HTTP API."""
        _logging()
        run_api(host, port, workers)

    @cli.command("up", rich_help_panel=PANEL)
    def up_command(host: Host = "127.0.0.1", port: Port = 8000, workers: Workers = None) -> None:
        """Serve the HTTP API with one training worker beside it."""
        _logging()
        run_up(host, port, workers)

    @cli.command("worker", rich_help_panel=PANEL)
    def worker_command() -> None:
        """Run a training worker."""
        _logging()
        run_worker()

    @cli.command("migrate", rich_help_panel=PANEL)
    def migrate_command() -> None:
        """Apply database migrations."""
        _logging()
        run_migrations()

    @cli.command("sweep", rich_help_panel=PANEL)
    def sweep_command(
        grace: Annotated[
            float | None,
            typer.Option(
                min=0,
                help="Leave files changed within this many seconds (default: "
                "TRAINSERVE_SWEEP_GRACE_SECONDS).",
            ),
        ] = None,
    ) -> None:
        """Remove files no row refers to: uploads a crash left, deleted datasets' and jobs'
        files, deleted model versions' exports (the API also does so at start and hourly)."""
        from app.sweep import sweep_unreferenced_files

        _logging()
        settings = get_settings()
        grace_s = settings.sweep_grace_seconds if grace is None else grace
        report = sweep_unreferenced_files(settings.data_dir, settings.artifacts_dir, grace_s)
        print(f"removed {report}")

    @cli.command("check", rich_help_panel=PANEL)
    def check_command(
        what: Annotated[
            Checked, typer.Argument(help="The API on loopback, or a worker on this machine.")
        ],
        port: Annotated[int, typer.Option(help="The API's port.")] = 8000,
    ) -> None:
        """Health check for containers: exit 0 when healthy, 1 when not."""
        from app.cli.checks import check_api, check_worker

        problem = check_api(port) if what == Checked.API else check_worker()
        if problem is not None:
            print(problem, file=sys.stderr)
            raise typer.Exit(1)


class Checked(StrEnum):
    API = "api"
    WORKER = "worker"


def _logging() -> None:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
