"""What a person says about a job, apart from its config: a name, tags and notes. None of it is
trained with; all of it can change at any time, whatever the job's status."""

import re
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from app.errors import NotFound
from app.models import Job, JobTag
from app.registry.names import TAG_VALUE_MAX_CHARS, TAGS_MAX

NAME_MAX_CHARS = 100
NOTES_MAX_CHARS = 10_000
TAG_KEY_MAX_CHARS = 64
# No ":", so that a tag filter "key:value" splits at its first colon.
TAG_KEY_CHARACTERS = "A-Za-z0-9._-"
TAG_KEY_PATTERN = rf"^[{TAG_KEY_CHARACTERS}]{{1,{TAG_KEY_MAX_CHARS}}}$"
_TAG_KEY = re.compile(TAG_KEY_PATTERN)
TAG_KEY_RULE = f"1 to {TAG_KEY_MAX_CHARS} characters of A-Z, a-z, 0-9, '.', '_' and '-'"
# Control characters: C0 and DEL. One line of text has none; notes may have tabs and newlines.
_CONTROL = "\\x00-\\x1f\\x7f"
_CONTROL_BUT_LINES = "\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f"
ONE_LINE_CHARACTER = f"[^{_CONTROL}]"
ONE_LINE_PATTERN = f"^{ONE_LINE_CHARACTER}*$"
NOTES_PATTERN = f"^[^{_CONTROL_BUT_LINES}]*$"
_ONE_LINE, _NOTES_TEXT = re.compile(ONE_LINE_PATTERN), re.compile(NOTES_PATTERN)


def is_tag_key(text: str) -> bool:
    return _TAG_KEY.fullmatch(text) is not None


def is_one_line(text: str) -> bool:
    return _ONE_LINE.fullmatch(text) is not None


def _checked_name(value: object) -> object:
    # Before pydantic's own checks, to say what is meant rather than quote a pattern.
    if not isinstance(value, str):
        return value
    name = value.strip()
    if not name:
        raise ValueError("must not be blank (send null for no name)")
    if len(name) > NAME_MAX_CHARS:
        raise ValueError(f"at most {NAME_MAX_CHARS} characters, not {len(name)}")
    if not is_one_line(name):
        raise ValueError("must be one line of text, without control characters")
    return name


def _checked_tags(value: object) -> object:
    if not isinstance(value, dict):
        return value
    if len(value) > TAGS_MAX:
        raise ValueError(f"at most {TAGS_MAX} tags, not {len(value)}")
    for key, text in value.items():
        if not is_tag_key(key):
            raise ValueError(f"{key[:70]!r} is not a valid tag key: {TAG_KEY_RULE}")
        if not isinstance(text, str):
            continue  # pydantic says "Input should be a valid string", naming the key
        if len(text) > TAG_VALUE_MAX_CHARS:
            raise ValueError(
                f"the value of {key!r} has {len(text)} characters; at most {TAG_VALUE_MAX_CHARS}"
            )
        if not is_one_line(text):
            raise ValueError(f"the value of {key!r} must be one line, without control characters")
    return value


def _checked_notes(value: object) -> object:
    if isinstance(value, str):
        if len(value) > NOTES_MAX_CHARS:
            raise ValueError(f"at most {NOTES_MAX_CHARS:,} characters, not {len(value):,}")
        if not _NOTES_TEXT.fullmatch(value):
            raise ValueError("must be text: no control characters but tabs and line breaks")
    return value


# The schemas say exactly what the checks accept, so that a client built from them (or a fuzzer)
# sends nothing the server then refuses.
JobName = Annotated[
    str,
    BeforeValidator(_checked_name),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": NAME_MAX_CHARS,
            "pattern": f"^[^{_CONTROL}]*[^{_CONTROL}\\s][^{_CONTROL}]*$",
            "description": f"Up to {NAME_MAX_CHARS} characters on one line; spaces around it "
            "are dropped.",
        }
    ),
]
JobTags = Annotated[
    dict[str, str],
    BeforeValidator(_checked_tags),
    WithJsonSchema(
        {
            "type": "object",
            "maxProperties": TAGS_MAX,
            "propertyNames": {"pattern": TAG_KEY_PATTERN},
            "additionalProperties": {
                "type": "string",
                "maxLength": TAG_VALUE_MAX_CHARS,
                "pattern": ONE_LINE_PATTERN,
            },
            "description": f"Up to {TAGS_MAX} tags; a key is {TAG_KEY_RULE}, a value up to "
            f"{TAG_VALUE_MAX_CHARS} characters on one line (it may be empty).",
        }
    ),
]
JobNotes = Annotated[
    str,
    BeforeValidator(_checked_notes),
    WithJsonSchema(
        {
            "type": "string",
            "maxLength": NOTES_MAX_CHARS,
            "pattern": NOTES_PATTERN,
            "description": f"Free text, up to {NOTES_MAX_CHARS:,} characters.",
        }
    ),
]


@dataclass(frozen=True)
class Labels:
    """A job's name, tags and notes."""

    name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    notes: str | None = None


class LabelsPatch(BaseModel):
    """A PATCH of a job's labels: a field left out stays as it is, null clears it, and tags
    replace the whole mapping."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: JobName | None = None
    tags: JobTags | None = Field(default=None, description="The job's new tags, all of them.")
    notes: JobNotes | None = None


def write_labels(session: Session, job: Job, labels: Labels) -> None:
    """Give a job just created its labels."""
    job.name, job.notes = labels.name, labels.notes
    _replace_tags(session, job.id, labels.tags)


def labels_of(session: Session, job: Job) -> Labels:
    return Labels(job.name, tags_of(session, [job.id]).get(job.id, {}), job.notes)


def labels_of_jobs(session: Session, job_ids: list[int]) -> dict[int, Labels]:
    """The labels of each of these jobs that exists, in two queries."""
    tags = tags_of(session, job_ids)
    rows = session.execute(select(Job.id, Job.name, Job.notes).where(Job.id.in_(job_ids)))
    return {job_id: Labels(name, tags.get(job_id, {}), notes) for job_id, name, notes in rows}


def relabel_job(session: Session, job_id: int, patch: LabelsPatch) -> Job:
    """Change the labels the patch names, in the caller's write transaction; 404 for no job."""
    # Locked, so that two patches of the same job's tags take turns.
    job = session.get(Job, job_id, with_for_update=True, populate_existing=True)
    if job is None:
        raise NotFound(f"job {job_id} not found")
    given = patch.model_fields_set
    if "name" in given:
        job.name = patch.name
    if "notes" in given:
        job.notes = patch.notes
    if "tags" in given:
        _replace_tags(session, job_id, patch.tags or {})
    session.flush()
    return job


def tags_of(session: Session, job_ids: list[int]) -> dict[int, dict[str, str]]:
    """The tags of each of these jobs that has any, keys in order."""
    found: dict[int, dict[str, str]] = {}
    rows = session.execute(
        select(JobTag.job_id, JobTag.key, JobTag.value).where(JobTag.job_id.in_(job_ids))
    )
    # Sorted here, by code point: a database's ORDER BY follows its collation, which differs.
    for job_id, key, value in sorted(rows):
        found.setdefault(job_id, {})[key] = value
    return found


def _replace_tags(session: Session, job_id: int, tags: dict[str, str]) -> None:
    session.execute(delete(JobTag).where(JobTag.job_id == job_id))
    if tags:
        rows: list[dict[str, Any]] = [
            {"job_id": job_id, "key": key, "value": value} for key, value in tags.items()
        ]
        session.execute(insert(JobTag), rows)
