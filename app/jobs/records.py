"""What training records as it goes, defined once: a loss point and an epoch's results.

The loop makes them, checkpoints keep them (as plain dicts), the job's tables and event log store
them, and the API answers with them.
"""

from pydantic import BaseModel, ConfigDict, Field


class _Record(BaseModel):
    # Read from the job's rows as well as made by the loop; every field is always answered.
    model_config = ConfigDict(
        from_attributes=True, frozen=True, json_schema_serialization_defaults_required=True
    )


class LossRecord(_Record):
    """Mean training loss over one log_every window of mini-batches."""

    epoch: int
    step: int
    loss: float


class EpochRecord(_Record):
    """Training loss and test-set results at the end of one epoch."""

    epoch: int
    train_loss: float
    test_loss: float
    test_accuracy: float
    validation_loss: float | None = Field(
        default=None, description="On the held-out training images (validation_fraction)."
    )
    validation_accuracy: float | None = None
    elapsed_s: float | None = Field(
        default=None,
        description="Seconds of training (evaluation included) from the job's start to the end "
        "of this epoch, summed over attempts; null for epochs recorded before this was kept.",
    )
