"""What a job's model gets wrong: its misclassified test examples, most confident first."""

from typing import Annotated, Any

from fastapi import APIRouter, Query

from app.api.deps import JobDep, StoreDep
from app.errors import ErrorOut
from app.jobs.fields import COUNT_MAX
from app.jobs.mistakes import MistakeList, list_mistakes

router = APIRouter(prefix="/jobs", tags=["jobs"])

LIMIT_MAX = 500
CLASS_NAME_MAX = 200
RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No job with this id."},
    409: {
        "model": ErrorOut,
        "description": "The job has no stored test predictions: it has not succeeded, or it "
        "was trained before jobs kept them.",
    },
    422: {"model": ErrorOut, "description": "A class the job does not have, or a bad limit."},
    503: {
        "model": ErrorOut,
        "description": "The stored predictions are damaged, or the artifact store does not answer.",
    },
}


@router.get(
    "/{job_id}/errors",
    response_model=MistakeList,
    responses=RESPONSES,
    summary="Misclassified test examples, most confident first",
)
def list_job_errors(
    job: JobDep,
    store: StoreDep,
    true: Annotated[
        str | None, Query(max_length=CLASS_NAME_MAX, description="Only examples of this class.")
    ] = None,
    predicted: Annotated[
        str | None,
        Query(max_length=CLASS_NAME_MAX, description="Only examples the model gave this class."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=LIMIT_MAX)] = 50,
    offset: Annotated[int, Query(ge=0, le=COUNT_MAX)] = 0,
) -> MistakeList:
    """The test examples the job's final model predicts wrongly, as its worker recorded them
    when the job succeeded: the most confident mistakes first. `total` counts those matching
    `true` and `predicted`: with two different classes, that cell of the confusion matrix (the
    diagonal's cells count correct answers, which are not mistakes)."""
    return list_mistakes(
        job,
        store,
        true=true,
        predicted=predicted,
        limit=limit,
        offset=offset,
    )
