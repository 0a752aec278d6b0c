"""Registering trained jobs' models as numbered versions of a named model, and removing them.

Every change to a model's versions or aliases first locks the model's row, so that concurrent
registrations and alias moves on one model run one after the other (SQLite's write transactions
do so anyway): version numbers are never given twice and no alias move is lost.
"""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db import session_scope
from app.errors import Conflict, NotFound
from app.jobs.unfinished import refuse_while_needed
from app.models import Dataset, Job, JobStatus, ModelAlias, ModelVersion, RegisteredModel
from app.version import package_version


@dataclass(frozen=True)
class Registered:
    model: RegisteredModel  # its row locked for the rest of the transaction
    version: ModelVersion
    created: bool  # false: the job was registered under this name already


def find_model(
    session: Session, name: str, *, lock: bool = False, share: bool = False
) -> RegisteredModel:
    """The model called `name`, else 404; its row locked for the transaction with `lock`, or
    with `share` against changes only (PostgreSQL's FOR SHARE: a job that starts from one of its
    versions is then submitted wholly before or after a deletion of that version)."""
    model = _model_named(session, name, lock=lock, share=share)
    if model is None:
        raise NotFound(f"model {name!r} not found (GET /models lists them)")
    return model


def find_version(session: Session, model: RegisteredModel, number: int) -> ModelVersion:
    found = session.scalars(
        select(ModelVersion).where(
            ModelVersion.model_id == model.id, ModelVersion.version == number
        )
    ).first()
    if found is None:
        raise NotFound(f"model {model.name!r} has no version {number}")
    return found


def register_job(
    session: Session, name: str, job: Job, *, description: str = "", tags: dict[str, str] | None
) -> Registered:
    """`job`'s model as the next version of the model `name` (made on first use); the version
    it already is, when the job was registered under that name before."""
    if job.status != JobStatus.SUCCEEDED or job.model_path is None:
        raise Conflict(f"job {job.id} has no trained model (its status is {job.status})")
    model = _locked_or_created(session, name)
    existing = session.scalars(
        select(ModelVersion).where(ModelVersion.model_id == model.id, ModelVersion.job_id == job.id)
    ).first()
    if existing is not None:
        return Registered(model, existing, created=False)
    model.last_version += 1
    assert job.test_accuracy is not None
    version = ModelVersion(
        model_id=model.id,
        version=model.last_version,
        job_id=job.id,
        description=description,
        tags=tags or {},
        model_path=job.model_path,
        model_sha256=job.model_sha256,
        test_accuracy=job.test_accuracy,
        lineage=lineage(session, job),
    )
    session.add(version)
    session.flush()
    return Registered(model, version, created=True)


def delete_version(session: Session, name: str, number: int) -> None:
    """Remove a version; 409 while an alias names it or a queued or running job is to start
    from it. Its job and model file stay."""
    model = find_model(session, name, lock=True)
    version = find_version(session, model, number)
    aliases = session.scalars(
        select(ModelAlias.alias).where(
            ModelAlias.model_id == model.id, ModelAlias.version == number
        )
    ).all()
    if aliases:
        named = ", ".join(repr(alias) for alias in sorted(aliases))
        raise Conflict(
            f"version {number} of {name!r} is named by the alias {named}: move or delete the "
            "alias first"
        )
    refuse_while_needed(
        session,
        f"version {number} of {name!r}",
        Job.config[("init_from", "model")].as_string() == name,
        Job.config[("init_from", "version")].as_integer() == number,
    )
    session.delete(version)


def lineage(session: Session, job: Job) -> dict[str, Any]:
    """Where a job's model came from, as the version keeps it."""
    dataset_id = job.config["dataset"]
    return {
        "job_id": job.id,
        "config": job.config,
        "dataset": {
            "id": dataset_id,
            "kind": _dataset_kind(session, dataset_id),
            "sha256": job.dataset_sha256,
        },
        "test_images": job.test_images,
        "metrics": {
            "test_accuracy": job.test_accuracy,
            "per_class_accuracy": job.per_class_accuracy,
        },
        "weights_sha256": job.model_sha256,
        # What it was fine-tuned from, as the job stored it at submit: {"model", "version",
        # "sha256"} or {"weights", "sha256", "filename"}; null when trained from scratch.
        "parent": job.config.get("init_from"),
        "package_version": package_version(),
        "trained_at": job.finished_at.isoformat() if job.finished_at else None,
    }


def _dataset_kind(session: Session, dataset_id: str) -> str | None:
    if dataset_id == "cifar10":
        return "cifar10"
    return session.scalar(select(Dataset.kind).where(Dataset.id == dataset_id))


def _model_named(
    session: Session, name: str, *, lock: bool, share: bool = False
) -> RegisteredModel | None:
    query = select(RegisteredModel).where(RegisteredModel.name == name)
    if lock or share:  # ignored by SQLite, whose writes take the whole database in turn
        query = query.with_for_update(read=share and not lock)
    return session.scalars(query).first()


def _locked_or_created(session: Session, name: str) -> RegisteredModel:
    model = _model_named(session, name, lock=True)
    if model is not None:
        return model
    try:
        with session.begin_nested():
            model = RegisteredModel(name=name, description="", tags={}, last_version=0)
            session.add(model)
    except IntegrityError:
        # Another transaction made it first (PostgreSQL; SQLite's write lock serialises them).
        model = _model_named(session, name, lock=True)
        assert model is not None
    return model


def version_numbers(name: str) -> list[int]:
    """Every version number of the model `name`, oldest first (none for an unknown model)."""
    with session_scope() as session:
        return list(
            session.scalars(
                select(ModelVersion.version)
                .join(RegisteredModel, RegisteredModel.id == ModelVersion.model_id)
                .where(RegisteredModel.name == name)
                .order_by(ModelVersion.version)
            )
        )
