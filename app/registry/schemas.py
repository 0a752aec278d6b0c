"""The API's view of the registry: what it takes and what it answers."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.models import JOB_ID_MAX, ModelVersion, RegisteredModel
from app.registry.names import VERSION_MAX, Description, Tags


class VersionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job_id: int = Field(ge=1, le=JOB_ID_MAX, description="A succeeded job whose model to register.")
    description: Description = ""
    tags: Tags = Field(default_factory=dict)


class Annotations(BaseModel):
    """A PATCH of a model or a version: the fields given replace the old ones."""

    model_config = ConfigDict(extra="forbid")

    description: Description | None = None
    tags: Tags | None = None

    def apply_to(self, target: RegisteredModel | ModelVersion) -> None:
        """Replace the target's description and tags with those the PATCH gives."""
        if self.description is not None:
            target.description = self.description
        if self.tags is not None:
            target.tags = self.tags


class AliasPut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, le=VERSION_MAX, description="The version the alias names.")


class VersionOut(BaseModel):
    model: str
    version: int
    job_id: int
    job_name: str | None = Field(description="The job's name now (PATCH /jobs/{id}).")
    job_tags: dict[str, str] = Field(description="The job's tags now, sorted by key.")
    description: str
    tags: dict[str, str]
    aliases: list[str] = Field(description="The model's aliases that name this version.")
    test_accuracy: float
    model_sha256: str | None = Field(description="The sha256 of the weights file.")
    promotion: str | None = Field(
        description="What the job's promote policy did with this version, and why; null for a "
        "version registered by hand."
    )
    lineage: dict[str, Any] = Field(
        description="Where the model came from: job_id, the job's resolved config, the dataset "
        "(id, kind, sha256 of its files), test_images, the test metrics (overall and per "
        "class), weights_sha256, parent (what it was fine-tuned from: {model, version, "
        "sha256} or {weights, sha256, filename}; null when trained from scratch), "
        "package_version and trained_at."
    )
    created_at: datetime


class ModelSummaryOut(BaseModel):
    name: str
    description: str
    tags: dict[str, str]
    created_at: datetime
    latest_version: int | None = Field(description="The newest version; null with none.")
    aliases: dict[str, int] = Field(description="Each alias and the version it names.")


class ModelOut(ModelSummaryOut):
    versions: list[VersionOut] = Field(description="Newest first.")


class AliasOut(BaseModel):
    model: str
    alias: str
    version: int


class AliasMoveOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    from_version: int | None = Field(description="null: the alias did not exist before.")
    to_version: int | None = Field(description="null: the alias was removed.")
    moved_at: datetime
    moved_by: str = Field(
        description='"admin" (the admin key), "open" (the server has no keys), "job N" (its '
        'promote policy) or "upgrade" (the migration that registered what served before).'
    )
