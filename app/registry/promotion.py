"""A job that names a model registers its own model when it succeeds, and its promote policy
decides whether the new version takes the production alias."""

from dataclasses import dataclass
from typing import Literal

from sqlalchemy.orm import Session

from app.models import Job, ModelVersion
from app.registry.aliases import alias_version, move_alias
from app.registry.names import PRODUCTION
from app.registry.versions import find_version, register_job

PromotePolicy = Literal["if_better", "always", "never"]


@dataclass(frozen=True)
class Registration:
    model: str
    version: int
    promoted: bool
    reason: str  # why it was or was not promoted, for the job's events and the version


def register_finished_job(
    session: Session, job: Job, model_name: str, policy: PromotePolicy
) -> Registration:
    """Register the succeeded `job` as the next version of `model_name` and apply its policy,
    in the caller's transaction (the one that marks the job succeeded)."""
    registered = register_job(session, model_name, job, tags=None)
    model, candidate = registered.model, registered.version
    current = alias_version(session, model, PRODUCTION)
    production = None if current is None else find_version(session, model, current)
    promoted, reason = decide(policy, candidate, production)
    if promoted:
        move_alias(session, model, PRODUCTION, candidate.version, moved_by=f"job {job.id}")
    candidate.promotion = reason
    return Registration(model.name, candidate.version, promoted, reason)


def decide(
    policy: PromotePolicy, candidate: ModelVersion, production: ModelVersion | None
) -> tuple[bool, str]:
    """Whether `candidate` takes the production alias from `production`, and why."""
    if policy == "never":
        return False, 'not promoted: the job\'s promote is "never"'
    if policy == "always":
        return True, 'promoted: the job\'s promote is "always"'
    if production is None:
        return True, "promoted: no version was in production"
    ours, theirs = _percent(candidate.test_accuracy), _percent(production.test_accuracy)
    holder = f"production v{production.version}'s {theirs}"
    test_set = _test_set(candidate)
    if test_set is None or test_set != _test_set(production):
        return False, (
            f"not promoted: its test set differs from production v{production.version}'s, so "
            f"{ours} and {theirs} cannot be compared; promote it by hand if it is better"
        )
    on_same = f"on the same {test_set[2]:,} test images"
    if candidate.test_accuracy > production.test_accuracy:
        return True, f"promoted: {ours} is above {holder} {on_same}"
    relation = "equals" if candidate.test_accuracy == production.test_accuracy else "is below"
    return False, f"not promoted: {ours} {relation} {holder} {on_same}"


def _percent(accuracy: float) -> str:
    return f"{100 * accuracy:.1f}%"


def _test_set(version: ModelVersion) -> tuple[str, str, int] | None:
    """The dataset, its content's sha256 and the number of test images; None when unknown
    (a job trained before they were recorded)."""
    dataset = version.lineage["dataset"]
    images = version.lineage.get("test_images")
    if dataset.get("sha256") is None or images is None:
        return None
    return dataset["id"], dataset["sha256"], images
