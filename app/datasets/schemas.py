"""The API's views of uploaded datasets."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.models import DatasetStatus


class DatasetAttempt(BaseModel):
    """One claim of the dataset by a worker, and how it ended."""

    attempt: int = Field(description="1, 2, 3...")
    worker_id: str
    started_at: datetime
    ended_at: datetime | None
    outcome: Literal["decoding", "ready", "failed", "decoder died", "worker lost"] = Field(
        description="decoding (under way), ready, failed (the upload is at fault), decoder died "
        "or worker lost (counts against max_attempts)."
    )
    detail: str | None = Field(
        description="How it ended, in words: why it failed, or how the decoding process died "
        "(killed by SIGKILL, its peak memory...)."
    )


class DatasetOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str = Field(description='What a job names in its "dataset" field.')
    name: str = Field(description="The uploaded file's name.")
    kind: Literal["images", "tabular"]
    status: DatasetStatus = Field(
        description="queued (waits for a worker to decode it), ingesting, ready or failed."
    )
    options: dict[str, object] = Field(
        description="image_size, test_fraction and seed; target and drop for a CSV."
    )
    upload_bytes: int
    created_at: datetime
    finished_at: datetime | None
    error: str | None = Field(
        description="Why it failed (for example, the files that are not images, or that its "
        "decoding process died on its last attempt)."
    )
    attempts: int = Field(description="Times a worker claimed it to decode it.")
    max_attempts: int = Field(
        description="Attempts after which a decoding process or worker that dies fails it."
    )
    attempt_history: list[DatasetAttempt] = Field(
        description="Each attempt, oldest first: its worker, when, and how it ended.",
    )
    classes: list[str] | None = Field(description="Class names: train/'s folder names, sorted.")
    counts: dict[str, dict[str, int]] | None = Field(
        description='Images per class in each split: {"train": {...}, "test": {...}}.'
    )
    image_size: int | None = Field(description="Every image was resized to this square size.")
    feature_columns: list[str] | None = Field(
        description="A CSV's feature columns: what a row sent to /predict/rows must give."
    )
    test_split: Literal["archive", "drawn"] | None = Field(
        description="archive: its own test/ folders; drawn: test_fraction of each class of "
        "train/, drawn with the seed."
    )
    ignored_files: int | None = Field(
        description="Entries skipped: folders, files beside the splits and desktop junk."
    )


class DatasetList(BaseModel):
    items: list[DatasetOut] = Field(description="Newest first.")
    total: int
