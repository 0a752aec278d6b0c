"""A job's training checkpoints in the artifact store: each published under a key of its own,
the newest recorded on the job's row (by JobRun, under its lease), which is what a resumed
attempt loads, on this machine or another."""

import logging
import re
from pathlib import PurePosixPath
from typing import Any, BinaryIO

from app.jobs.files import checkpoint_key, checkpoint_prefix
from app.jobs.transitions import Lease
from app.ml.checkpoints import load_checkpoint, write_torch_file
from app.storage.store import ArtifactDamaged, ArtifactMissing, ArtifactStore, Published, StoreError

log = logging.getLogger("trainserve.worker")

# How checkpoints were named before their keys were recorded on the job's row (no attempt, no
# sha256): what a job running during the upgrade left in the local folder.
UNRECORDED_NAME = re.compile(r"^epoch\d{4}-step\d{8}\.pt$")


def checkpoint_name(key: str) -> str:
    """How the log names a checkpoint: its file name."""
    return PurePosixPath(key).name


class JobCheckpoints:
    def __init__(self, store: ArtifactStore, lease: Lease, *, pause_s: float = 0.0) -> None:
        self.store, self.lease, self.pause_s = store, lease, pause_s

    def load(self, key: str, sha256: str | None) -> dict[str, Any] | None:
        """The recorded checkpoint, verified; None (said in the log) when it is gone, damaged
        or does not load: the job then starts over. A store that does not answer or refuses
        raises: the checkpoint may well be good."""
        job = self.lease.job_id
        try:
            with self.store.open(key, sha256) as file:
                return self._loaded(file, key, "starting over")
        except (ArtifactMissing, ArtifactDamaged) as exc:
            log.warning("job %s: its checkpoint cannot be used (%s); starting over", job, exc)
        return None

    def _loaded(self, file: BinaryIO, key: str, otherwise: str) -> dict[str, Any] | None:
        """The checkpoint in `file`, or None (said in the log) when its bytes do not load."""
        try:
            return load_checkpoint(file)
        except Exception as exc:
            log.warning(
                "job %s: checkpoint %s does not load (%s); %s",
                self.lease.job_id,
                checkpoint_name(key),
                exc,
                otherwise,
            )
            return None

    def load_unrecorded(self) -> tuple[str, dict[str, Any]] | None:
        """The newest checkpoint under the names used before keys were recorded that loads,
        trying older ones when it does not; None when there is none (a job started since)."""
        prefix = checkpoint_prefix(self.lease.job_id)
        listed = [stored.key for stored in self.store.list(prefix)]
        found = [key for key in listed if UNRECORDED_NAME.match(checkpoint_name(key))]
        for key in sorted(found, reverse=True):
            try:
                with self.store.open(key, None) as file:
                    loaded = self._loaded(file, key, "trying the one before")
            except (ArtifactMissing, ArtifactDamaged) as exc:
                log.warning("job %s: %s; trying the one before", self.lease.job_id, exc)
                continue
            if loaded is not None:
                return key, loaded
        return None

    def remove_stale_temporaries(self) -> None:
        """Delete what a worker killed while writing a checkpoint left half-written."""
        self.store.remove_staged(checkpoint_prefix(self.lease.job_id))

    def publish(self, snapshot: dict[str, Any], epoch: int, step: int) -> Published:
        """The snapshot, stored whole under a key no other attempt writes."""
        key = checkpoint_key(self.lease.job_id, self.lease.attempt, epoch, step)
        return self.store.publish_new(
            key, lambda path: write_torch_file(snapshot, path, pause_s=self.pause_s)
        )

    def discard(self, key: str) -> None:
        """Remove a checkpoint no row records any more; on failure the sweep removes it later."""
        try:
            self.store.delete(key)
        except StoreError as exc:
            log.warning("job %s: %s", self.lease.job_id, exc)

    def clear(self) -> None:
        """Remove all the job's checkpoints (it succeeded or was cancelled)."""
        try:
            self.store.delete_prefix(checkpoint_prefix(self.lease.job_id))
        except (StoreError, OSError) as exc:
            log.warning("job %s: its checkpoints were not removed: %s", self.lease.job_id, exc)
