"""Weights files as jobs use them: finding one, and deleting one no job still needs.

A file is refused deletion only while a queued or running job will start from it. Finished jobs
and the versions registered from them keep its sha256 and name in their config and lineage, so
deleting it loses no record; a retry of such a job then fails, saying that the file is gone.
"""

import logging

from sqlalchemy.orm import Session

from app.db import session_scope
from app.errors import NotFound
from app.jobs.unfinished import refuse_while_needed
from app.models import Job, WeightsFile
from app.storage.store import ArtifactStore, StoreError
from app.weights.files import weights_prefix

log = logging.getLogger("trainserve.api")


def find_weights(
    session: Session, weights_id: str, *, lock: bool = False, share: bool = False
) -> WeightsFile:
    """The weights file's row, else 404; locked for the transaction with `lock`, or with
    `share` against its deletion only (PostgreSQL; SQLite's writes take turns)."""
    locking = {"read": not lock} if lock or share else None
    row = session.get(WeightsFile, weights_id, with_for_update=locking)
    if row is None:
        raise NotFound(f"weights {weights_id} not found (GET /weights lists them)")
    return row


def remove_weights(store: ArtifactStore, weights_id: str) -> None:
    """Its row and file; 409 while a queued or running job starts from it."""
    with session_scope(write=True) as session:
        # Locked before the jobs are counted: a submit that starts from the file holds it shared
        # until its job is committed, so the job is counted or the submit finds the file gone.
        row = find_weights(session, weights_id, lock=True)
        refuse_while_needed(
            session,
            f"weights {weights_id}",
            Job.config[("init_from", "weights")].as_string() == weights_id,
        )
        session.delete(row)
    try:
        store.delete_prefix(weights_prefix(weights_id))
    except StoreError as exc:  # no row refers to it: the sweep removes it later
        log.warning("weights %s: its file was not removed: %s", weights_id, exc)
