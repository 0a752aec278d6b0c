"""Aliases name versions of a model; every move is recorded, so a rollback is one move back."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import NotFound
from app.models import AliasMove, ModelAlias, RegisteredModel
from app.registry.versions import find_version


def alias_version(session: Session, model: RegisteredModel, alias: str) -> int | None:
    """The version the alias names now, or None."""
    return session.scalar(
        select(ModelAlias.version).where(ModelAlias.model_id == model.id, ModelAlias.alias == alias)
    )


def move_alias(
    session: Session, model: RegisteredModel, alias: str, number: int | None, moved_by: str
) -> AliasMove | None:
    """Point the alias at version `number` (None: remove it) and record the move; None when it
    names that version already. The caller has locked the model's row: moves run one at a time,
    so each move's `from` is the `to` of the one before."""
    if number is not None:
        find_version(session, model, number)  # 404 for a version that does not exist
    row = session.scalars(
        select(ModelAlias).where(ModelAlias.model_id == model.id, ModelAlias.alias == alias)
    ).first()
    before = row.version if row is not None else None
    if before == number:
        if number is None:
            raise NotFound(f"model {model.name!r} has no alias {alias!r}")
        return None
    now = utcnow()
    if number is None:
        session.delete(row)
    elif row is None:
        session.add(ModelAlias(model_id=model.id, alias=alias, version=number, updated_at=now))
    else:
        row.version, row.updated_at = number, now
    move = AliasMove(
        model_id=model.id,
        alias=alias,
        from_version=before,
        to_version=number,
        moved_at=now,
        moved_by=moved_by,
    )
    session.add(move)
    session.flush()
    return move


def alias_history(session: Session, model: RegisteredModel, alias: str) -> list[AliasMove]:
    """Every move of the alias, newest first; 404 for an alias that never existed."""
    moves = session.scalars(
        select(AliasMove)
        .where(AliasMove.model_id == model.id, AliasMove.alias == alias)
        .order_by(AliasMove.id.desc())
    ).all()
    if not moves:
        raise NotFound(f"model {model.name!r} has never had an alias {alias!r}")
    return list(moves)


def aliases_of(session: Session, model: RegisteredModel) -> dict[str, int]:
    """Each alias of the model and the version it names."""
    rows = session.execute(
        select(ModelAlias.alias, ModelAlias.version)
        .where(ModelAlias.model_id == model.id)
        .order_by(ModelAlias.alias)
    )
    return {alias: version for alias, version in rows}
