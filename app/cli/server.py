"""`trainserve api|up|worker|migrate|sweep|check`: the service's own processes."""

import contextlib
import ipaddress
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from enum import StrEnum
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from app.cpus import usable_cpus
from app.logs import configure_logging, logging_config
from app.parent_death import signal_when_parent_dies
from app.settings import Settings, get_settings, server_processes_setting

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger("trainserve")

SERVER_APP = "app.main:server_app"  # a factory: see its docstring

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
    """How many server processes `workers` means: auto is one per core this process may use
    (its CPU affinity, capped by its cgroup's CPU quota)."""
    return usable_cpus() if workers == "auto" else workers


def run_api(
    host: str, port: int, workers: int | Literal["auto"] | None = None, *, migrated: bool = False
) -> None:
    """Serve the API under uvicorn, in `workers` processes (default TRAINSERVE_API_WORKERS;
    migrations are applied at start unless `migrated` says they already were)."""
    import uvicorn

    from app.slow_clients import HeaderDeadlineProtocol

    settings = get_settings()
    processes = server_processes(settings.api_workers if workers is None else workers)
    warning = open_access_warning(host, settings)
    if warning:
        log.warning(warning)
    options: dict[str, Any] = {
        "factory": True,
        "host": host,
        "port": port,
        "log_level": settings.log_level.lower(),
        # uvicorn applies this in each of its server processes; its own default would print
        # its lines in its own format, whatever TRAINSERVE_LOG_FORMAT says.
        "log_config": logging_config(settings.log_level, settings.log_format),
        # Event streams stay open until their job ends: without a limit, a stop would wait
        # for every one of them.
        "timeout_graceful_shutdown": settings.shutdown_grace_seconds,
        "http": HeaderDeadlineProtocol,
        "limit_concurrency": settings.max_connections,
    }
    if processes == 1:
        # uvicorn.run, not a Server of its own: a start that fails exits 3, not 0.
        uvicorn.run(SERVER_APP, **options)
        return
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(SERVER_APP, workers=processes, **options)
    with _listening(config) as listener:  # before the migrations: a port in use fails at once
        if not migrated:  # once here rather than racing in every server process
            run_migrations()
        os.environ["TRAINSERVE_MIGRATE_ON_START"] = "0"
        # Each server process writes its metrics here; a scrape of any one adds them all up.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="trainserve-metrics-")
        log.info("listening on %s with %d server processes", shown(listener), processes)
        try:
            Multiprocess(config, sockets=[listener]).run()
        finally:
            shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


@contextlib.contextmanager
def _listening(config: "uvicorn.Config") -> Iterator[socket.socket]:
    """The socket the supervisor hands its server processes, closed when they have stopped;
    exits with a message when the port cannot be had."""
    from app import process_listeners as listeners

    with contextlib.ExitStack() as held:
        try:
            if listeners.per_process_listeners():
                listener: socket.socket = listeners.ListenerPerProcess(config.host, config.port)
                held.enter_context(listener)
                held.enter_context(listeners.hold_port(listener.getsockname()[1]))
            else:  # one socket that every process accepts from, as uvicorn makes it
                listener = held.enter_context(config.bind_socket())
        except listeners.PortTaken as exc:
            raise SystemExit(str(exc)) from None
        except OSError as exc:
            raise SystemExit(f"cannot listen on {config.host}:{config.port}: {exc}") from None
        yield listener


def shown(listener: socket.socket) -> str:
    """The address a socket is bound to: host:port, or [host]:port for IPv6."""
    host, port = listener.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


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


def parse_workers(value: str | None) -> int | Literal["auto"] | None:
    """`--workers`: a number of processes, or auto; None when not given."""
    if value is None:
        return None
    try:
        return server_processes_setting(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--workers'") from None


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
        run_api(host, port, workers, migrated=True)
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
    str | None,  # parsed by parse_workers: typer takes no int | Literal["auto"]
    typer.Option(
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
        run_api(host, port, parse_workers(workers))

    @cli.command("up", rich_help_panel=PANEL)
    def up_command(host: Host = "127.0.0.1", port: Port = 8000, workers: Workers = None) -> None:
        """Serve the HTTP API with one training worker beside it."""
        _logging()
        run_up(host, port, parse_workers(workers))

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
                "TRAINSERVE_SWEEP_GRACE_SECONDS). 0 also removes a dataset or weights file "
                "being uploaded now, before its row is committed: only while nothing uploads.",
            ),
        ] = None,
    ) -> None:
        """Remove files no row refers to: uploads a crash left, deleted datasets' and jobs'
        files, deleted model versions' exports, and in a bucket any object no row names (the
        API also does so at start and hourly). `trainserve gc` is the same command."""
        from app.storage.config import get_store
        from app.storage.store import StoreError
        from app.sweep import sweep_unreferenced_files

        _logging()
        settings = get_settings()
        grace_s = settings.sweep_grace_seconds if grace is None else grace
        try:
            report = sweep_unreferenced_files(
                settings.data_dir, settings.artifacts_dir, grace_s, get_store()
            )
        except StoreError as exc:  # its message names the store and what failed
            print(f"trainserve sweep: {exc}", file=sys.stderr)
            raise typer.Exit(1) from None
        print(f"removed {report}")

    cli.command("gc", rich_help_panel=PANEL, help="The same as `trainserve sweep`.")(sweep_command)

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
