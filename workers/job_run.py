"""One claimed job as the worker runs it: its lease heartbeat, its records and its checkpoints
(published to the artifact store, then recorded on the job's row)."""

import contextvars
import logging
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from app.db import in_write_session, session_scope
from app.db_outages import OutageLog, outage_of, retry_through_outages
from app.jobs.progress import (
    RecordedCheckpoint,
    fall_back_to_previous_checkpoint,
    heartbeat,
    record_checkpoint,
    record_epoch,
    record_loss_point,
    record_start,
    recorded_checkpoints,
    restore_history,
)
from app.jobs.records import LossRecord
from app.jobs.transitions import Lease, LostJob
from app.settings import Settings
from app.storage.outages import StoreOutageLog, retry_through_store_outages
from app.storage.store import ArtifactStore
from workers.job_checkpoints import JobCheckpoints, checkpoint_name
from workers.training.hooks import EpochMetrics, StopReason
from workers.training.run_state import snapshot_history

log = logging.getLogger("trainserve.worker")
T = TypeVar("T")


class TrainedImages:
    """The training images a worker process has trained, over all its jobs: it only grows.

    Only the training thread adds to it; the heartbeat reads it (reading an int needs no lock).
    """

    def __init__(self) -> None:
        self.total = 0


class JobRun:
    """Training hooks for one leased job, with a heartbeat thread that keeps the lease alive.

    The heartbeat renews the lease, stores the latest progress and notices a cancel request; when
    the lease is lost it says so, and training stops without writing anything more.
    """

    def __init__(
        self,
        lease: Lease,
        settings: Settings,
        shutdown: threading.Event,
        trained: TrainedImages,
        store: ArtifactStore,
    ) -> None:
        self.lease, self.settings, self.shutdown = lease, settings, shutdown
        self.trained = trained
        self.outages = OutageLog(log, f"job {lease.job_id}")
        self.store_outages = StoreOutageLog(log, f"job {lease.job_id}")
        # Both known once the data is loaded.
        self.batch_size: int | None = None
        self.train_images: int | None = None
        self._rate_mark: tuple[float, int] | None = None  # (time, images) at the last beat
        self.checkpoints = JobCheckpoints(
            store, lease, pause_s=settings.failpoint_checkpoint_pause_seconds
        )
        # The keys the job's row records, the newest first (the one before is the fallback).
        self._checkpoints: list[str] = []
        self.cancelled = threading.Event()
        self.lost = threading.Event()
        self._finished = threading.Event()
        self._position = (0, 0)
        self._last_checkpoint = time.monotonic()
        # Started with a copy of this context: its lines carry the job's id as the worker's do.
        self._heartbeat = threading.Thread(
            target=contextvars.copy_context().run,
            args=(self._beat,),
            name=f"heartbeat-job-{lease.job_id}",
            daemon=True,
        )

    # -- lease -------------------------------------------------------------------------------

    def __enter__(self) -> "JobRun":
        self._heartbeat.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._finished.set()
        self._heartbeat.join()

    def _images_at(self, epoch: int, step: int) -> int | None:
        """Training images of this job up to `step` of `epoch`; None before the data is known.

        Every batch of an epoch is full but its last, which takes what is left.
        """
        if self.batch_size is None or self.train_images is None:
            return None
        if epoch < 1:  # not started
            return 0
        return (epoch - 1) * self.train_images + min(step * self.batch_size, self.train_images)

    def _images_per_s(self, epoch: int, step: int) -> float | None:
        """Training images a second since the last beat; None until two beats have seen it."""
        done = self._images_at(epoch, step)
        if done is None or epoch < 1:
            return None
        now = time.monotonic()
        mark, self._rate_mark = self._rate_mark, (now, done)
        if mark is None or now <= mark[0] or done < mark[1]:
            return None
        return (done - mark[1]) / (now - mark[0])

    def _advance(self, epoch: int, step: int) -> None:
        """Training has reached `step` of `epoch`: count the images trained since the last call."""
        before, after = self._images_at(*self._position), self._images_at(epoch, step)
        if before is not None and after is not None and after > before:
            self.trained.total += after - before
        self._position = (epoch, step)

    def _beat(self) -> None:
        while not self._finished.wait(self.settings.heartbeat_seconds):
            epoch, step = self._position
            rate = self._images_per_s(epoch, step)
            try:
                with session_scope(write=True) as session:
                    cancel = heartbeat(
                        session, self.lease, self.settings.lease_seconds, epoch, step, rate
                    )
            except LostJob:
                log.warning(
                    "job %s: lease lost; stopping without further writes", self.lease.job_id
                )
                self.lost.set()
                return
            except Exception as exc:
                # The database may come back before the lease runs out; if not, the
                # next guarded write finds the lease gone.
                outage = outage_of(exc)
                if outage is None:
                    log.exception("job %s: heartbeat failed", self.lease.job_id)
                else:
                    self.outages.failed(outage, exc)
                continue
            self.outages.succeeded()
            if cancel and not self.cancelled.is_set():
                log.info("job %s: cancel requested", self.lease.job_id)
                self.cancelled.set()

    # -- writes ------------------------------------------------------------------------------

    def write(self, write: Callable[[], T]) -> T:
        """`write()`, waited out while the database is out of space or out of reach: training
        pauses meanwhile (the lease may run out; the next guarded write then finds out)."""
        return retry_through_outages(
            write, self.outages, self.settings.database_outage_seconds, self.shutdown
        )

    def in_store(self, call: Callable[[], T]) -> T:
        """`call()` on the artifact store, waited out while the store is out of reach: training
        pauses meanwhile (the heartbeat keeps the lease); StoreOutage after
        TRAINSERVE_STORE_OUTAGE_LIMIT_SECONDS, or when the worker is told to stop."""
        return retry_through_store_outages(
            call, self.store_outages, self.settings.store_outage_limit_seconds, self.shutdown
        )

    def _in_session(self, record: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`record(session, lease, ...)` in a write transaction of its own."""
        return in_write_session(record, self.lease, *args, **kwargs)

    # -- resume ------------------------------------------------------------------------------

    def load_checkpoint(self) -> dict[str, Any] | None:
        """The checkpoint the job's row records, if usable, with the stored history made to
        match it."""

        def read() -> list[RecordedCheckpoint]:
            with session_scope() as session:
                return recorded_checkpoints(session, self.lease.job_id)

        recorded = self.write(read)  # a read, waited out like the writes
        self.in_store(self.checkpoints.remove_stale_temporaries)
        self._checkpoints = [key for key, _ in recorded]
        snapshot, loaded = None, None
        for key, sha256 in recorded:  # the newest, else the one before
            snapshot = self.in_store(partial(self.checkpoints.load, key, sha256))
            if snapshot is not None:
                loaded = key
                break
        if loaded is not None and loaded != recorded[0][0]:
            self.write(lambda: self._in_session(fall_back_to_previous_checkpoint))
            self.checkpoints.discard(recorded[0][0])  # recorded no more
            self._checkpoints = [loaded]
        if not recorded and (unrecorded := self.in_store(self.checkpoints.load_unrecorded)):
            # Running when the service was upgraded to recording checkpoints: its newest file.
            loaded, snapshot = unrecorded
            self._checkpoints = [loaded]
        epoch, step = (0, 0) if snapshot is None else (snapshot["epoch"], snapshot["step"])
        loss_points, epochs = snapshot_history(snapshot)
        history = {"epoch": epoch, "step": step, "loss_points": loss_points, "epochs": epochs}
        self.write(lambda: self._in_session(restore_history, **history))
        if loaded is not None and snapshot is not None:
            log.info(
                "job %s: resuming from checkpoint %s (epoch %d, step %d), attempt %d",
                self.lease.job_id,
                checkpoint_name(loaded),
                epoch,
                step,
                self.lease.attempt,
            )
        self._position = (epoch, step)
        return snapshot

    # -- training hooks ----------------------------------------------------------------------

    def started(self, device: str, classes: list[str], steps_per_epoch: int) -> None:
        log.info(
            "job %s: training on %s, %d steps per epoch", self.lease.job_id, device, steps_per_epoch
        )
        start = {"device": device, "classes": classes, "steps_per_epoch": steps_per_epoch}
        self.write(lambda: self._in_session(record_start, **start))

    def progress(self, epoch: int, step: int) -> None:
        self._advance(epoch, step)  # the heartbeat stores the position

    def loss_point(self, epoch: int, step: int, loss: float) -> None:
        self._advance(epoch, step)
        log.info("job %s: [%d, %5d] loss: %.3f", self.lease.job_id, epoch, step, loss)
        point = LossRecord(epoch=epoch, step=step, loss=loss)
        self.write(lambda: self._in_session(record_loss_point, point))

    def epoch_done(self, metrics: EpochMetrics) -> None:
        log.info(
            "job %s: epoch %d train loss %.3f, test loss %.3f, test accuracy %.2f%%",
            self.lease.job_id,
            metrics.epoch,
            metrics.train_loss,
            metrics.evaluation.loss,
            100 * metrics.evaluation.accuracy,
        )
        self.write(lambda: self._in_session(record_epoch, metrics.record(), metrics.steps))

    def stop_reason(self) -> StopReason | None:
        if self.lost.is_set():
            return StopReason.LOST
        if self.cancelled.is_set():
            return StopReason.CANCEL
        if self.shutdown.is_set():
            return StopReason.SHUTDOWN
        return None

    def checkpoint_due(self) -> bool:
        return time.monotonic() - self._last_checkpoint >= self.settings.checkpoint_seconds

    def confirm_lease(self) -> None:
        """Renew the lease now, raising LostJob if it is gone: files are written only after this."""
        renew = (self.settings.lease_seconds, *self._position)
        try:
            self.write(lambda: self._in_session(heartbeat, *renew))
        except LostJob:
            self.lost.set()
            raise

    def save_checkpoint(self, snapshot: dict[str, Any], epoch: int, step: int) -> None:
        # Another worker may own the job by now; its checkpoints are not ours to touch.
        self.confirm_lease()
        published = self.in_store(lambda: self.checkpoints.publish(snapshot, epoch, step))
        try:
            self.write(
                lambda: self._in_session(
                    record_checkpoint, key=published.key, sha256=published.sha256
                )
            )
        except LostJob:
            self.lost.set()
            self.checkpoints.discard(published.key)  # under this attempt's name: no one's else
            raise
        # The newest and the one before stay; the one before that is recorded no more.
        recorded = list(dict.fromkeys([published.key, *self._checkpoints[:1]]))
        for older in self._checkpoints[1:]:
            if older not in recorded:
                self.checkpoints.discard(older)
        self._checkpoints = recorded
        self._last_checkpoint = time.monotonic()
        log.info("job %s: checkpoint %s written", self.lease.job_id, checkpoint_name(published.key))
