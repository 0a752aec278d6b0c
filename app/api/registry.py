"""The model registry: models, their versions (trained jobs' models) and aliases."""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response

from app.api.deps import SessionDep, WriteSessionDep
from app.errors import ErrorOut, NotFound
from app.models import Job
from app.registry.aliases import alias_history, alias_version, move_alias
from app.registry.names import VERSION_MAX, Name
from app.registry.schemas import (
    AliasMoveOut,
    AliasOut,
    AliasPut,
    Annotations,
    ModelOut,
    ModelSummaryOut,
    VersionCreate,
    VersionOut,
)
from app.registry.versions import delete_version, find_model, find_version, register_job
from app.registry.views import model_summaries, model_view, version_view

router = APIRouter(prefix="/models", tags=["models"])

ModelName = Annotated[Name, Path(description="The registered model's name.")]
AliasName = Annotated[Name, Path(description="The alias, e.g. production.")]
VersionNumber = Annotated[int, Path(ge=1, le=VERSION_MAX)]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No such model, version or alias."}
}


def _moved_by(request: Request) -> str:
    """Which key role made a change, for the alias history (set by app/middleware.ApiKeys)."""
    role: str = request.scope.get("state", {}).get("key_role", "open")
    return role


@router.get("", response_model=list[ModelSummaryOut], summary="List registered models")
def list_models(session: SessionDep) -> list[ModelSummaryOut]:
    """Every model by name, with its newest version and its aliases."""
    return model_summaries(session)


@router.get("/{name}", response_model=ModelOut, responses=NOT_FOUND, summary="One model")
def get_model(session: SessionDep, name: ModelName) -> ModelOut:
    """The model, its aliases and every version, newest first."""
    return model_view(session, find_model(session, name))


@router.patch("/{name}", response_model=ModelOut, responses=NOT_FOUND, summary="Edit a model")
def patch_model(session: WriteSessionDep, name: ModelName, body: Annotations) -> ModelOut:
    """Replace its description or tags."""
    model = find_model(session, name, lock=True)
    body.apply_to(model)
    view = model_view(session, model)
    session.commit()  # before the answer: a client that reads it back sees the change
    return view


@router.post(
    "/{name}/versions",
    status_code=201,
    response_model=VersionOut,
    responses={
        200: {"model": VersionOut, "description": "The job was registered as this already."},
        404: {"model": ErrorOut, "description": "No such job."},
        409: {"model": ErrorOut, "description": "The job has no trained model."},
    },
    summary="Register a job's model as a new version",
)
def register_version(
    session: WriteSessionDep, name: ModelName, body: VersionCreate, response: Response
) -> VersionOut:
    """The job's model becomes the next version (the model is created on first use). A job
    registered again under the same name answers 200 with its existing version."""
    # Locked: a DELETE of the job waits for this registration (and then refuses), or wins.
    job = session.get(Job, body.job_id, with_for_update=True)
    if job is None:
        raise NotFound(f"job {body.job_id} not found")
    registered = register_job(session, name, job, description=body.description, tags=body.tags)
    if not registered.created:
        response.status_code = 200
    view = version_view(session, registered.model, registered.version)
    session.commit()
    return view


@router.get(
    "/{name}/versions/{version}",
    response_model=VersionOut,
    responses=NOT_FOUND,
    summary="One version",
)
def get_version(session: SessionDep, name: ModelName, version: VersionNumber) -> VersionOut:
    """The version with its lineage and metrics."""
    model = find_model(session, name)
    return version_view(session, model, find_version(session, model, version))


@router.patch(
    "/{name}/versions/{version}",
    response_model=VersionOut,
    responses=NOT_FOUND,
    summary="Edit a version",
)
def patch_version(
    session: WriteSessionDep, name: ModelName, version: VersionNumber, body: Annotations
) -> VersionOut:
    """Replace its description or tags; the model, lineage and metrics never change."""
    model = find_model(session, name, lock=True)
    found = find_version(session, model, version)
    body.apply_to(found)
    view = version_view(session, model, found)
    session.commit()
    return view


@router.delete(
    "/{name}/versions/{version}",
    status_code=204,
    responses={
        409: {
            "model": ErrorOut,
            "description": "An alias names this version, or a queued or running job is to "
            "start from it.",
        },
        **NOT_FOUND,
    },
    summary="Delete a version",
)
def remove_version(session: WriteSessionDep, name: ModelName, version: VersionNumber) -> Response:
    """The version goes; its job and model file stay. Refused while an alias names it, or
    while a queued or running job is to start from it (init_from)."""
    delete_version(session, name, version)
    session.commit()
    return Response(status_code=204)


@router.put(
    "/{name}/aliases/{alias}",
    response_model=AliasOut,
    responses=NOT_FOUND,
    summary="Point an alias at a version",
)
def put_alias(
    request: Request, session: WriteSessionDep, name: ModelName, alias: AliasName, body: AliasPut
) -> AliasOut:
    """Create or move the alias; the move is recorded in its history. /predict follows a move
    of production within a second."""
    model = find_model(session, name, lock=True)
    move_alias(session, model, alias, body.version, moved_by=_moved_by(request))
    session.commit()
    return AliasOut(model=name, alias=alias, version=body.version)


@router.delete(
    "/{name}/aliases/{alias}", status_code=204, responses=NOT_FOUND, summary="Remove an alias"
)
def delete_alias(
    request: Request, session: WriteSessionDep, name: ModelName, alias: AliasName
) -> Response:
    """The alias goes (its history stays)."""
    model = find_model(session, name, lock=True)
    move_alias(session, model, alias, None, moved_by=_moved_by(request))
    session.commit()
    return Response(status_code=204)


@router.get(
    "/{name}/aliases/{alias}",
    response_model=AliasOut,
    responses=NOT_FOUND,
    summary="The version an alias names",
)
def get_alias(session: SessionDep, name: ModelName, alias: AliasName) -> AliasOut:
    model = find_model(session, name)
    version = alias_version(session, model, alias)
    if version is None:
        raise NotFound(f"model {name!r} has no alias {alias!r}")
    return AliasOut(model=name, alias=alias, version=version)


@router.get(
    "/{name}/aliases/{alias}/history",
    response_model=list[AliasMoveOut],
    responses=NOT_FOUND,
    summary="Every move of an alias",
)
def get_alias_history(session: SessionDep, name: ModelName, alias: AliasName) -> list[AliasMoveOut]:
    """Newest first: from which version to which, when and by whom. A rollback is one PUT back."""
    moves = alias_history(session, find_model(session, name), alias)
    return [AliasMoveOut.model_validate(move) for move in moves]
