"""Several jobs side by side. Registered before the jobs router: otherwise /jobs/{job_id} would
take /jobs/compare for a job whose id is "compare"."""

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AfterValidator, BeforeValidator, Field

from app.api.deps import SessionDep
from app.errors import ErrorOut
from app.jobs import comparison
from app.jobs.comparison import COMPARE_JOBS_MAX, COMPARE_JOBS_MIN
from app.jobs.comparison_schemas import ComparisonOut
from app.models import JOB_ID_MAX

router = APIRouter(prefix="/jobs", tags=["jobs"])

COUNT_RULE = f"{COMPARE_JOBS_MIN} to {COMPARE_JOBS_MAX} distinct job ids"


def _split_ids(given: object) -> list[int]:
    """The ids of every `ids` parameter, each a comma-separated list: `ids=1,2` and
    `ids=1&ids=2` alike."""
    parts = [
        part.strip()
        for value in (given if isinstance(given, list) else [given])
        for part in str(value).split(",")
    ]
    for part in parts:
        # The length first: a number of thousands of digits is slow to convert, and refused.
        digits = part.isascii() and part.isdigit() and len(part) <= len(str(JOB_ID_MAX))
        if not (digits and 1 <= int(part) <= JOB_ID_MAX):
            raise ValueError(f"{part!r} is not a job id (a whole number from 1 to {JOB_ID_MAX})")
    return [int(part) for part in parts]


def _distinct_ids(job_ids: list[int]) -> list[int]:
    if not COMPARE_JOBS_MIN <= len(job_ids) <= COMPARE_JOBS_MAX:
        raise ValueError(f"give {COUNT_RULE} (got {len(job_ids)})")
    repeated = sorted({job_id for job_id in job_ids if job_ids.count(job_id) > 1})
    if repeated:
        raise ValueError(f"{comparison.naming_jobs(repeated)} named more than once")
    return job_ids


JobIdsQuery = Annotated[
    list[Annotated[int, Field(ge=1, le=JOB_ID_MAX)]],
    BeforeValidator(_split_ids),
    AfterValidator(_distinct_ids),
    Query(
        description=f"The jobs to compare, {COUNT_RULE}, in the order to show them: "
        "comma-separated (`ids=1,2,3`) or repeated (`ids=1&ids=2&ids=3`).",
        json_schema_extra={
            "minItems": COMPARE_JOBS_MIN,
            "maxItems": COMPARE_JOBS_MAX,
            "uniqueItems": True,
        },
    ),
]


@router.get(
    "/compare",
    response_model=ComparisonOut,
    responses={
        404: {"model": ErrorOut, "description": "Some of the ids name no job (all of them said)."},
        422: {
            "model": ErrorOut,
            "description": f"The ids are not {COUNT_RULE}: fewer, more, repeated or not ids.",
        },
    },
    summary="Compare jobs side by side",
)
def compare_jobs(session: SessionDep, ids: JobIdsQuery) -> ComparisonOut:
    """The config fields that differ (and those that do not), each job's final metrics and
    per-class accuracy with the best marked, and every job's loss and accuracy curves on one x
    axis in epochs. A running job shows what it has so far, a queued one empty curves."""
    return comparison.compare_jobs(session, ids)
