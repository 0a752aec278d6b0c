"""Datasets as jobs use them: whether a job may train on one, and deleting one no job needs."""

import contextlib
import shutil
from pathlib import Path

from sqlalchemy.orm import Session

from app.datasets.files import dataset_prefix, legacy_folder
from app.datasets.mapped import MAPPED_TENSORS
from app.db import session_scope
from app.errors import Conflict, InvalidInput, NotFound
from app.jobs.unfinished import refuse_while_needed
from app.models import Dataset, DatasetStatus, Job
from app.storage.store import ArtifactStore, StoreError


def find_dataset(session: Session, dataset_id: str) -> Dataset:
    """The dataset row; 404 when there is none."""
    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        raise NotFound(f"dataset {dataset_id} not found")
    return dataset


def check_usable(session: Session, dataset_id: str, model: str) -> int | None:
    """For a job naming the dataset: 404 when it does not exist, 409 when it is not ready, 422
    when the job's model does not fit its kind; else its image size (None for a table)."""
    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        raise NotFound(f"dataset {dataset_id} not found (see GET /datasets)")
    if dataset.status != DatasetStatus.READY:
        reason = f": {dataset.error}" if dataset.error else ""
        raise Conflict(f"dataset {dataset_id} is {dataset.status}{reason}; a job needs it ready")
    if dataset.kind == "tabular":
        if model != "mlp":
            raise InvalidInput(
                f'model: dataset {dataset_id} holds tabular data; train it with model "mlp"'
            )
        return None
    if model == "mlp":
        raise InvalidInput(
            f'model: dataset {dataset_id} holds images; train it with "tutorial_cnn" or an '
            "architecture GET /architectures lists"
        )
    return dataset.image_size


def remove_dataset(store: ArtifactStore, data_dir: Path, dataset_id: str) -> None:
    """Its row, then its files (in the artifact store, and any kept under the data folder from
    before the store); 409 while a queued or running job trains on it."""
    with session_scope(write=True) as session:
        dataset = find_dataset(session, dataset_id)
        refuse_while_needed(
            session, f"dataset {dataset_id}", Job.config["dataset"].as_string() == dataset_id
        )
        session.delete(dataset)
    MAPPED_TENSORS.forget(dataset_id)  # else its file's disk stays held while mapped
    shutil.rmtree(legacy_folder(data_dir, dataset_id), ignore_errors=True)
    with contextlib.suppress(StoreError):  # else the sweep removes them: no row refers to them
        store.delete_prefix(dataset_prefix(dataset_id))
