"""The test images a job's model gets wrong, most confident mistakes first, from the predictions
its worker stored beside the model (app/ml/example_predictions.py)."""

import logging

from pydantic import BaseModel, Field

from app.errors import Conflict, InvalidInput, Unavailable
from app.jobs.files import predictions_key
from app.jobs.job_fields import JobFields
from app.ml.example_predictions import ExamplePredictions, load_example_predictions, rank_mistakes
from app.models import Job, JobStatus
from app.storage.store import ArtifactMissing, ArtifactStore, StoreError

log = logging.getLogger("trainserve.api")

# What the list needs of a job's stored config (an old one without a field had its default).
FIELDS = ("dataset", "model")


class MistakeOut(BaseModel):
    index: int = Field(
        description="The example's position in its dataset's test split: the image "
        "GET /datasets/{dataset}/images/test/{index}.png serves, or a table's test row."
    )
    true: str = Field(description="Its class.")
    predicted: str = Field(description="The class the model gave it.")
    confidence: float = Field(description="The probability the model gave that class.")
    image: str | None = Field(description="Where to get the image; null for a table's row.")


class MistakeList(BaseModel):
    job_id: int
    dataset: str
    total: int = Field(
        description="Mistakes matching the filters (with both classes given and different, "
        "that cell of the confusion matrix)."
    )
    items: list[MistakeOut]


def list_mistakes(
    job: Job,
    store: ArtifactStore,
    *,
    true: str | None,
    predicted: str | None,
    limit: int,
    offset: int,
) -> MistakeList:
    """The job's wrongly predicted test examples, of class `true` and given class `predicted`
    when these are set, most confident first; 409 when it has no stored predictions, 422 for
    a class it does not have."""
    predictions = _stored_predictions(job, store)
    classes = job.classes or []
    rows = rank_mistakes(
        predictions, _class_index(job, "true", true), _class_index(job, "predicted", predicted)
    )
    # Read as stored, not through today's bounds: only what it was trained on matters here. A
    # table's rows have no image; every other dataset's test images are served by index.
    dataset, model = (job.config.get(f, JobFields.model_fields[f].default) for f in FIELDS)
    images = None if model == "mlp" else f"/datasets/{dataset}/images/test"
    page = rows[offset : offset + limit].tolist()
    items = [
        MistakeOut(
            index=int(predictions.index[row]),
            true=classes[int(predictions.true[row])],
            predicted=classes[int(predictions.predicted[row])],
            confidence=float(predictions.confidence[row]),
            image=None if images is None else f"{images}/{int(predictions.index[row])}.png",
        )
        for row in page
    ]
    return MistakeList(job_id=job.id, dataset=str(dataset), total=len(rows), items=items)


def _stored_predictions(job: Job, store: ArtifactStore) -> ExamplePredictions:
    if job.status in (JobStatus.QUEUED, JobStatus.RUNNING):
        raise Conflict(
            f"job {job.id} is {job.status}: its test predictions are stored when it succeeds"
        )
    if job.status != JobStatus.SUCCEEDED:
        ended = "failed" if job.status == JobStatus.FAILED else "was cancelled"
        raise Conflict(
            f"job {job.id} {ended}: only a job that succeeds stores its test predictions"
        )
    try:
        key = predictions_key(job.id, job.attempts)
        with store.open(key, job.predictions_sha256) as file:
            return load_example_predictions(file)
    except ArtifactMissing:
        # Trained before jobs kept them (or deleted since this request read its row: a rare race
        # that is no reason for a 500).
        raise Conflict(
            f"job {job.id} has no stored test predictions: it was trained before jobs kept "
            "them; submit its config again to get them"
        ) from None
    except StoreError as exc:  # damaged, or the store does not answer
        raise Unavailable(f"job {job.id}: its test predictions cannot be read: {exc}") from None
    except Exception as exc:  # a file from before sha256s were recorded, changed on the disk
        log.error("job %s: its test predictions do not load: %s", job.id, exc)
        raise Unavailable(f"job {job.id}: its test predictions cannot be loaded") from None


def _class_index(job: Job, field: str, name: str | None) -> int | None:
    """The position of class `name` among the job's classes; 422 naming them when it is not."""
    if name is None:
        return None
    classes = job.classes or []
    if name not in classes:
        raise InvalidInput(
            f"{field}: job {job.id} has no class {name!r}; its classes are {', '.join(classes)}"
        )
    return classes.index(name)
