"""The worker process: claim a queued job, train it, record the results, repeat."""

import logging
import os
import signal
import socket
import threading
import uuid
from collections.abc import Callable
from types import FrameType

from app.db import in_write_session, session_scope
from app.db_outages import DatabaseOutage, OutageLog, outage_of, retry_through_outages
from app.jobs.transitions import (
    Lease,
    LostJob,
    cancel_running_job,
    claim_next_job,
    fail_job,
    recover_expired_leases,
    release_job,
)
from app.jobs.worker_registry import (
    WorkerOffer,
    register_worker,
    unregister_worker,
    worker_heartbeat,
)
from app.logs import configure_logging, logging_job
from app.migrations import schema_is_current
from app.settings import Settings, get_settings
from app.storage.config import open_store
from app.storage.health import StoreHealth
from app.storage.outages import StoreOutage, StoreOutageLog
from app.storage.store import ArtifactStore, StoreError
from workers.dataset_cache import DatasetCache
from workers.failures import failure_message
from workers.ingest import Ingest
from workers.job_checkpoints import JobCheckpoints
from workers.job_run import TrainedImages
from workers.job_training import train_and_save
from workers.offer import detect_offer
from workers.training.hooks import (
    StopReason,
    TrainingInterrupted,
)
from workers.waiting import wait_until

log = logging.getLogger("trainserve.worker")


class Worker:
    """Runs queued jobs one at a time until asked to stop."""

    def __init__(
        self,
        settings: Settings,
        worker_id: str | None = None,
        offer: WorkerOffer | None = None,
        store: ArtifactStore | None = None,
    ) -> None:
        self.settings = settings
        self.store = store or open_store(settings)
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.offer = offer or detect_offer()
        self.stop = threading.Event()
        self.datasets = DatasetCache(settings, self.store)
        self.current_job: int | None = None
        self.trained = TrainedImages()
        self._gone = threading.Event()
        # The heartbeat thread and the end of each job both store `trained`: one at a time, so
        # that an older total is never written over a newer one.
        self._record_lock = threading.Lock()
        # The worker's own writes (its record, claims): an outage is said once, not every second.
        self.outages = OutageLog(log, f"worker {self.worker_id}")
        self.store_health = StoreHealth(self.store, writes=True)
        self.ingest = Ingest(settings, self.store, self.store_health)
        self.store_outages = StoreOutageLog(
            log, f"worker {self.worker_id}", "claiming no job until it answers"
        )

    def request_stop(self, signum: int = 0, _frame: FrameType | None = None) -> None:
        """Stop after handing the current job back to the queue."""
        if signum:
            log.info("worker %s: received signal %d, stopping", self.worker_id, signum)
        self.stop.set()

    def wait_for_schema(self) -> bool:
        """Wait until the migrations have been applied (by the API or `trainserve migrate`)."""
        return wait_until(
            lambda: (
                None
                if schema_is_current()
                else "waiting for the database schema (start the API or run `trainserve migrate`)"
            ),
            logging.INFO,
            self.stop,
            self.settings.worker_poll_seconds,
        )

    def wait_for_store(self) -> bool:
        """Wait until the artifact store answers (a bucket reachable, the credentials taken):
        no job or dataset is claimed before."""
        return wait_until(
            lambda: (
                None
                if (problem := self.store.problem(writes=True)) is None
                else f"worker {self.worker_id}: {problem}; claiming nothing until it answers"
            ),
            logging.ERROR,
            self.stop,
            self.settings.worker_poll_seconds,
        )

    def _store_answers(self) -> bool:
        """Whether a job may be claimed: not while the store cannot be used (said once when
        that starts and once when it ends)."""
        problem = self.store_health.problem()
        if problem is None:
            self.store_outages.succeeded()
            return True
        self.store_outages.failed(StoreError(problem))
        return False

    def _register(self) -> None:
        with session_scope(write=True) as session:
            register_worker(session, self.worker_id, self.offer)

    def _beat(self) -> None:
        """Keeps the worker's record live, with the job it runs and the images it has trained,
        until the worker ends."""
        while not self._gone.wait(self.settings.heartbeat_seconds):
            try:
                with self._record_lock, session_scope(write=True) as session:
                    total = self.trained.total
                    if not worker_heartbeat(session, self.worker_id, self.current_job, total):
                        register_worker(session, self.worker_id, self.offer, total)
            except Exception as exc:
                self._failed_outside_a_job(exc, "heartbeat failed")

    def _record_trained(self) -> None:
        """Store the images trained so far now, so that a finished job's are all counted at once."""
        try:
            with self._record_lock, session_scope(write=True) as session:
                worker_heartbeat(session, self.worker_id, None, self.trained.total)
        except Exception as exc:
            self._failed_outside_a_job(exc, "could not store its images")

    def run_forever(self) -> None:
        """Claim and run jobs until stopped."""
        gpus = ", ".join(f"{g.name} ({g.memory_mb} MiB)" for g in self.offer.gpus) or "no GPU"
        log.info(
            "worker %s started: %d CPUs, %s; %s",
            self.worker_id,
            self.offer.cpus,
            gpus,
            self.store.description,
        )
        if not (self.wait_for_schema() and self.wait_for_store()):
            return
        self._register()
        heartbeat = threading.Thread(target=self._beat, name="worker-heartbeat", daemon=True)
        heartbeat.start()
        try:
            self._claim_until_stopped()
        finally:
            self._gone.set()
            heartbeat.join()
            try:
                with session_scope(write=True) as session:
                    unregister_worker(session, self.worker_id)
            except Exception:
                log.exception("worker %s: could not remove its record", self.worker_id)
        log.info("worker %s stopped", self.worker_id)

    def _claim_until_stopped(self) -> None:
        while not self.stop.is_set():
            try:
                ran = self.run_once()
            except Exception as exc:
                # A database hiccup must not end the worker; the job rows stay as they were.
                self._failed_outside_a_job(exc, "error outside a job")
                ran = False
            else:
                self.outages.succeeded()
            if not ran:
                self.stop.wait(self.settings.worker_poll_seconds)

    def _failed_outside_a_job(self, exc: Exception, what: str) -> None:
        """An outage of the database is said once until it ends; anything else in full."""
        outage = outage_of(exc)
        if isinstance(exc, DatabaseOutage):
            log.error("worker %s: %s; %s", self.worker_id, what, exc)  # said when it began
        elif outage is None:
            log.exception("worker %s: %s; retrying", self.worker_id, what)
        else:
            self.outages.failed(outage, exc)

    def run_once(self) -> bool:
        """Decode one uploaded dataset, or else claim and run one queued job; False when there
        was nothing to do."""
        # Datasets too live in the store: none is claimed while it cannot be used.
        store_answers = self._store_answers()
        dataset = self.ingest.claim(self.worker_id) if store_answers else None
        if dataset is not None:
            self.ingest.run(dataset, self.stop)
            return True
        with session_scope(write=True) as session:
            requeued, failed = recover_expired_leases(session)
        if requeued or failed:
            log.warning("expired leases: %d job(s) requeued, %d failed", requeued, failed)
        if not store_answers:
            return False
        with session_scope(write=True) as session:
            lease = claim_next_job(
                session, self.worker_id, self.settings.lease_seconds, gpus=len(self.offer.gpus)
            )
        if lease is None:
            return False
        with logging_job(lease.job_id):
            log.info(
                "worker %s claimed job %s (attempt %d)", self.worker_id, lease.job_id, lease.attempt
            )
            self.current_job = lease.job_id
            try:
                self._run_job(lease)
            except LostJob as exc:
                log.warning("%s; leaving it to its new owner", exc)
            finally:
                self.current_job = None
                self._record_trained()
        return True

    def _run_job(self, lease: Lease) -> None:
        try:
            train_and_save(lease, self.settings, self.store, self.datasets, self.stop, self.trained)
        except TrainingInterrupted as exc:
            self._interrupted(lease, exc)
        except LostJob:
            raise
        except DatabaseOutage as exc:
            # Nothing can be recorded now: the job keeps its row as it is, its lease runs out,
            # and once the database is back it is queued again and resumes from its checkpoint.
            log.error("job %s: %s; leaving it to its lease", lease.job_id, exc)
        except StoreOutage as exc:
            # Its answer of a moment ago may be stale: no job is claimed before it is asked again.
            self.store_health.forget()
            if self.stop.is_set():  # not given up on: told to stop while waiting for the store
                log.info("job %s: stopping while %s; handing it back", lease.job_id, exc)
                self._write(lambda: in_write_session(release_job, lease))
            else:  # waited out for TRAINSERVE_STORE_OUTAGE_LIMIT_SECONDS: it fails naming the store
                # Its checkpoints are left to the sweep: the store does not answer now.
                self._fail(lease, failure_message(exc, lease.job_id, self.settings.artifacts_dir))
        except Exception as exc:
            self._fail(lease, failure_message(exc, lease.job_id, self.settings.artifacts_dir))
            # A failed job is never resumed (its retry is a new job): its row records none now.
            JobCheckpoints(self.store, lease).clear()

    def _interrupted(self, lease: Lease, exc: TrainingInterrupted) -> None:
        log.info("job %s: %s", lease.job_id, exc)
        if exc.reason is StopReason.LOST:
            return
        cancelled = exc.reason is StopReason.CANCEL
        self._write(
            lambda: in_write_session(cancel_running_job if cancelled else release_job, lease)
        )
        if cancelled:
            JobCheckpoints(self.store, lease).clear()

    def _fail(self, lease: Lease, message: str) -> None:
        log.error("job %s failed: %s", lease.job_id, message)
        self._write(lambda: in_write_session(fail_job, lease, message))

    def _write(self, write: Callable[[], None]) -> None:
        """`write()`, waited out while the database is out of space or out of reach (until the
        worker is told to stop, or TRAINSERVE_DATABASE_OUTAGE_SECONDS)."""
        retry_through_outages(write, self.outages, self.settings.database_outage_seconds, self.stop)


def main() -> None:
    """Entry point of `trainserve worker` and `python -m workers`."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    worker = Worker(settings)
    signal.signal(signal.SIGTERM, worker.request_stop)
    signal.signal(signal.SIGINT, worker.request_stop)
    worker.run_forever()
