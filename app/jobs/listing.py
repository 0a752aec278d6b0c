"""Finding jobs: by status, name, tags, net and dataset, newest or most accurate first."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field
from sqlalchemy import ColumnElement, exists, func, select
from sqlalchemy.orm import Session

from app.jobs.job_fields import JobFields
from app.jobs.labels import (
    ONE_LINE_CHARACTER,
    TAG_KEY_CHARACTERS,
    TAG_KEY_MAX_CHARS,
    TAG_KEY_RULE,
    is_one_line,
    is_tag_key,
)
from app.models import Job, JobStatus, JobTag
from app.registry.names import TAG_VALUE_MAX_CHARS

JobSort = Literal["created_at", "-created_at", "test_accuracy", "-test_accuracy"]
TAG_FILTERS_MAX = 32
TAG_FILTER_PATTERN = (
    f"^[{TAG_KEY_CHARACTERS}]{{1,{TAG_KEY_MAX_CHARS}}}"
    f"(:{ONE_LINE_CHARACTER}{{0,{TAG_VALUE_MAX_CHARS}}})?$"
)


def _checked_tag_filter(value: object) -> object:
    # Before the pattern check, to say what is meant rather than quote the regular expression.
    if isinstance(value, str):
        key, _, tag_value = value.partition(":")
        if not is_tag_key(key):
            raise ValueError(f"{value[:70]!r} is not KEY or KEY:VALUE (a key is {TAG_KEY_RULE})")
        if len(tag_value) > TAG_VALUE_MAX_CHARS or not is_one_line(tag_value):
            raise ValueError(
                f"the value in {value[:70]!r} is not a tag value: at most "
                f"{TAG_VALUE_MAX_CHARS} characters on one line"
            )
    return value


# "key": jobs with the tag, whatever its value; "key:value": with exactly that value (which may
# hold colons, and may be empty).
TagFilter = Annotated[str, Field(pattern=TAG_FILTER_PATTERN), BeforeValidator(_checked_tag_filter)]


@dataclass(frozen=True)
class JobFilter:
    """Which jobs to list: each field given narrows the list; tags must all match."""

    statuses: Sequence[JobStatus] = ()
    name: str | None = None
    tags: Sequence[str] = ()
    model: str | None = None
    dataset: str | None = None


def find_jobs(
    session: Session, found: JobFilter, sort: JobSort, limit: int, offset: int
) -> tuple[list[Job], int]:
    """A page of the jobs the filter matches, in `sort`'s order, and how many it matches."""
    conditions = _conditions(found)
    jobs = session.scalars(
        select(Job).where(*conditions).order_by(*_order(sort)).limit(limit).offset(offset)
    ).all()
    total = session.scalar(select(func.count()).select_from(Job).where(*conditions)) or 0
    return list(jobs), total


def _conditions(found: JobFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if found.statuses:
        conditions.append(Job.status.in_(list(found.statuses)))
    if found.name is not None:
        conditions.append(Job.name.icontains(found.name, autoescape=True))
    for tag in found.tags:
        key, colon, value = tag.partition(":")
        matches = [JobTag.job_id == Job.id, JobTag.key == key]
        if colon:
            matches.append(JobTag.value == value)
        conditions.append(exists().where(*matches))
    if found.model is not None:
        conditions.append(_config_value("model") == found.model)
    if found.dataset is not None:
        conditions.append(_config_value("dataset") == found.dataset)
    return conditions


def _config_value(field: str) -> ColumnElement[Any]:
    """A field of the job's stored config; a config stored before the field existed has its
    default."""
    default = JobFields.model_fields[field].default
    return func.coalesce(Job.config[field].as_string(), default)


def _order(sort: JobSort) -> list[ColumnElement[Any]]:
    # Ids grow in the order jobs are submitted, and the id is indexed where created_at is not.
    if sort == "created_at":
        return [Job.id.asc()]
    if sort == "-created_at":
        return [Job.id.desc()]
    accuracy = Job.test_accuracy.asc() if sort == "test_accuracy" else Job.test_accuracy.desc()
    # Jobs without an accuracy last either way (false sorts before true on every database);
    # equal accuracies newest first.
    return [Job.test_accuracy.is_(None), accuracy, Job.id.desc()]
