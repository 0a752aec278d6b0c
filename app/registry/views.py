"""The registry's rows as the API shows them: a model with its aliases, a version with its and
with its job's name and tags."""

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.jobs.labels import Labels, labels_of_jobs
from app.models import ModelAlias, ModelVersion, RegisteredModel
from app.registry.aliases import aliases_of
from app.registry.schemas import ModelOut, ModelSummaryOut, VersionOut


def model_summaries(session: Session) -> list[ModelSummaryOut]:
    """Every model, by name."""
    models = session.scalars(select(RegisteredModel).order_by(RegisteredModel.name)).all()
    latest = dict(
        session.execute(
            select(ModelVersion.model_id, func.max(ModelVersion.version)).group_by(
                ModelVersion.model_id
            )
        ).all()
    )
    aliases: dict[int, dict[str, int]] = {}
    for model_id, alias, version in session.execute(
        select(ModelAlias.model_id, ModelAlias.alias, ModelAlias.version).order_by(ModelAlias.alias)
    ):
        aliases.setdefault(model_id, {})[alias] = version
    return [_summary(model, latest.get(model.id), aliases.get(model.id, {})) for model in models]


def model_view(session: Session, model: RegisteredModel) -> ModelOut:
    """The model with every version, newest first."""
    aliases = aliases_of(session, model)
    versions = session.scalars(
        select(ModelVersion)
        .where(ModelVersion.model_id == model.id)
        .order_by(ModelVersion.version.desc())
    ).all()
    labels = labels_of_jobs(session, [version.job_id for version in versions])
    views = [_version(model, version, aliases, labels[version.job_id]) for version in versions]
    latest = versions[0].version if versions else None
    return ModelOut(**_summary(model, latest, aliases).model_dump(), versions=views)


def version_view(session: Session, model: RegisteredModel, version: ModelVersion) -> VersionOut:
    labels = labels_of_jobs(session, [version.job_id])
    return _version(model, version, aliases_of(session, model), labels[version.job_id])


def _summary(
    model: RegisteredModel, latest: int | None, aliases: dict[str, int]
) -> ModelSummaryOut:
    return ModelSummaryOut(
        name=model.name,
        description=model.description,
        tags=model.tags,
        created_at=model.created_at,
        latest_version=latest,
        aliases=aliases,
    )


def _version(
    model: RegisteredModel, version: ModelVersion, aliases: dict[str, int], job: Labels
) -> VersionOut:
    named_by = [alias for alias, number in aliases.items() if number == version.version]
    return VersionOut(
        model=model.name,
        version=version.version,
        job_id=version.job_id,
        job_name=job.name,
        job_tags=job.tags,
        description=version.description,
        tags=version.tags,
        aliases=named_by,
        test_accuracy=version.test_accuracy,
        model_sha256=version.model_sha256,
        promotion=version.promotion,
        lineage=version.lineage,
        created_at=version.created_at,
    )
