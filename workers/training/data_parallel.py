"""A job trained by several processes with DistributedDataParallel, one per GPU (NCCL) or
several on the CPU (gloo).

The worker's own process is rank 0: it keeps the job's lease, records progress, evaluates and
writes checkpoints and the model, exactly as for a one-process job. The other ranks are spawned
with torch.multiprocessing and only train. Whether to stop (cancel, shutdown, lost lease) and
when to checkpoint are decided by rank 0 every SYNC_EVERY steps and at each epoch's end, and
sent to the others over a small gloo group, so that every rank stops at the same step.
"""

import logging
import os
import shutil
import signal
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from app import logs
from app.jobs.config import JobConfig
from app.parent_death import signal_when_parent_dies
from app.settings import get_settings
from app.settings_storage import COLLECTIVE_TIMEOUT_S
from workers.training.devices import runtime_for
from workers.training.hooks import (
    EpochMetrics,
    StopReason,
    TrainingDiverged,
    TrainingHooks,
    TrainingInterrupted,
    TrainInputs,
    TrainResult,
)
from workers.training.loop import train, train_follower
from workers.training.ranks import Ranks

log = logging.getLogger("trainserve.worker")

# Steps between two decisions of rank 0; a cancel or shutdown waits at most this many steps.
# A decision costs a gloo broadcast (about 0.4 ms on 2 CPU cores, as long as a small step).
SYNC_EVERY = 20
# How long a rank waits for the others at a collective: rank 0 evaluates meanwhile, and a rank
# that died before it joined is only noticed after this long.
COLLECTIVE_TIMEOUT = timedelta(seconds=COLLECTIVE_TIMEOUT_S)
# How long the other ranks get to finish after rank 0 is done or has failed.
FOLLOWER_EXIT_S = 60.0
# How long the other ranks get to start (import torch, receive the data, reach the store).
FOLLOWER_START_S = 300.0
STOP_CODES: list[StopReason | None] = [None, *StopReason]


class RankHooks:
    """A rank's training hooks. Rank 0 passes the job's own `hooks` on; the other ranks record
    nothing. Stop and checkpoint decisions are rank 0's, taken every SYNC_EVERY steps and at
    each epoch's end and broadcast to every rank, so that all stop at the same step."""

    def __init__(self, hooks: TrainingHooks | None) -> None:
        self.hooks = hooks  # None outside rank 0
        group = dist.new_group(backend="gloo")  # CPU messages: no GPU sync to read them
        assert isinstance(group, dist.ProcessGroup)
        self.group = group
        self.steps_per_epoch = 0
        self.step = 0
        self._checkpoint_due = False

    def started(self, device: str, classes: list[str], steps_per_epoch: int) -> None:
        self.steps_per_epoch = steps_per_epoch
        if self.hooks is not None:
            self.hooks.started(device, classes, steps_per_epoch)

    def progress(self, epoch: int, step: int) -> None:
        self.step = step
        if self.hooks is not None:
            self.hooks.progress(epoch, step)

    def loss_point(self, epoch: int, step: int, loss: float) -> None:
        self.step = step
        if self.hooks is not None:
            self.hooks.loss_point(epoch, step, loss)

    def epoch_done(self, metrics: EpochMetrics) -> None:
        if self.hooks is not None:
            self.hooks.epoch_done(metrics)

    def stop_reason(self) -> StopReason | None:
        self._checkpoint_due = False
        if self.step % SYNC_EVERY and self.step != self.steps_per_epoch:
            return None
        decision = torch.zeros(2, dtype=torch.long)
        if self.hooks is not None:
            reason = self.hooks.stop_reason()
            decision[0] = STOP_CODES.index(reason)
            decision[1] = reason is None and self.hooks.checkpoint_due()
        dist.broadcast(decision, src=0, group=self.group)
        self._checkpoint_due = bool(decision[1])
        return STOP_CODES[int(decision[0])]

    def checkpoint_due(self) -> bool:
        """What the last stop_reason call decided (the loop asks right after it)."""
        return self._checkpoint_due

    def save_checkpoint(self, snapshot: dict[str, Any], epoch: int, step: int) -> None:
        if self.hooks is not None:
            self.hooks.save_checkpoint(snapshot, epoch, step)


def _backend(config: JobConfig) -> str:
    return "nccl" if config.device_kind == "cuda" else "gloo"


def _ready_key(rank: int) -> str:
    return f"rank{rank}-ready"


def _follow(
    index: int,
    parent_pid: int,
    size: int,
    store_path: str,
    inputs: TrainInputs,
    job_id: int | None,
) -> None:
    """A spawned rank (1 and up): trains until rank 0 says stop or the job ends."""
    signal_when_parent_dies(signal.SIGKILL)
    if os.getppid() != parent_pid:  # the worker died before the line above took effect
        return
    # A spawned process starts with no logging: it logs as the worker does (its environment is
    # the worker's), under the job's id.
    settings = get_settings()
    logs.configure_logging(settings.log_level, settings.log_format)
    logs.job_id.set(job_id)
    # Stopping is rank 0's to decide: a Ctrl-C to the terminal's process group must not
    # kill this rank under it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    ranks = Ranks(rank=index + 1, size=size)
    config = inputs.config
    if config.device_kind == "cuda":
        torch.cuda.set_device(ranks.rank)
    store = dist.FileStore(store_path, size)
    store.set(_ready_key(ranks.rank), "1")
    dist.init_process_group(
        _backend(config),
        store=store,
        rank=ranks.rank,
        world_size=size,
        timeout=COLLECTIVE_TIMEOUT,
    )
    try:
        train_follower(inputs, RankHooks(None), ranks)
    except (TrainingInterrupted, TrainingDiverged):
        pass  # rank 0 saw the same and reports it
    finally:
        dist.destroy_process_group()


def train_data_parallel(inputs: TrainInputs, hooks: TrainingHooks) -> TrainResult:
    """Train with config.processes processes: this one as rank 0, the others spawned."""
    config = inputs.config
    size = config.processes
    # An option this worker lacks fails here, before any process is spawned.
    runtime_for(config, inputs.batch_size, Ranks(rank=0, size=size))
    folder = Path(tempfile.mkdtemp(prefix="trainserve-ddp-"))
    store_path = str(folder / "store")
    # Spawned, not forked: a forked CUDA context is unusable. The datasets' tensors reach the
    # other ranks through shared memory, not copies.
    followers = mp.start_processes(
        _follow,
        args=(os.getpid(), size, store_path, inputs, logs.job_id.get()),
        nprocs=size - 1,
        join=False,
        start_method="spawn",
    )
    assert followers is not None
    ranks = Ranks(rank=0, size=size)
    try:
        if config.device_kind == "cuda":
            torch.cuda.set_device(0)
        store = dist.FileStore(store_path, size)
        _wait_until_ready(store, followers)
        dist.init_process_group(
            _backend(config),
            store=store,
            rank=0,
            world_size=size,
            timeout=COLLECTIVE_TIMEOUT,
        )
        try:
            result = train(inputs, RankHooks(hooks), ranks)
        finally:
            dist.destroy_process_group()
        _join(followers)
        return result
    except BaseException as exc:
        failure = _follower_failure(followers)
        _stop(followers)
        if failure is not None and not isinstance(exc, TrainingInterrupted | TrainingDiverged):
            raise RuntimeError(f"a training process failed: {failure}") from exc
        raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _wait_until_ready(store: dist.Store, followers: mp.ProcessContext) -> None:
    """Wait for every other rank to reach the store, failing at once if one dies first
    (the process group's own rendezvous would wait out its whole timeout)."""
    keys = [_ready_key(rank) for rank in range(1, len(followers.processes) + 1)]
    deadline = time.monotonic() + FOLLOWER_START_S
    while not store.check(keys):
        for rank, process in enumerate(followers.processes, start=1):
            if not process.is_alive():
                raise RuntimeError(f"training process {rank} exited before it started")
        if time.monotonic() > deadline:
            raise RuntimeError(f"training processes not started after {FOLLOWER_START_S:.0f} s")
        time.sleep(0.05)


def _join(followers: mp.ProcessContext) -> None:
    """Wait for the other ranks to exit after a finished job; an error in one is the job's."""
    if not followers.join(timeout=FOLLOWER_EXIT_S):
        log.warning("a training process did not exit after the job; killing it")
        _stop(followers)


def _follower_failure(followers: mp.ProcessContext) -> str | None:
    """Why another rank failed, if one did (looked for briefly: its error ended ours)."""
    try:
        followers.join(timeout=5)
    except mp.ProcessRaisedException as exc:
        return f"rank {exc.error_index + 1} raised {str(exc).strip().splitlines()[-1]}"
    except mp.ProcessExitedException as exc:
        how = f"was killed by {exc.signal_name}" if exc.signal_name else f"exited ({exc.exit_code})"
        return f"rank {exc.error_index + 1} {how}"
    return None


def _stop(followers: mp.ProcessContext) -> None:
    for process in followers.processes:
        if process.is_alive():
            process.kill()
        process.join(timeout=FOLLOWER_EXIT_S)
