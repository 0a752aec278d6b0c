"""A job's config, defined once: the request body that asks for a job (JobCreate: the fields of
app/jobs/job_fields.py and the job's labels), and the resolved config (JobConfig) that is stored
with the job and that the worker trains with."""

import secrets
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationError, model_validator

from app.errors import Conflict
from app.jobs.examples import describe_job_request
from app.jobs.fields import SEED_MAX, Seed
from app.jobs.init_from import ResolvedInitFrom, ResolvedVersion, ResolvedWeights
from app.jobs.job_fields import JobFields
from app.jobs.labels import JobName, JobNotes, JobTags, Labels
from app.jobs.recipes import RECIPES
from app.jobs.rules import broken_rule

# Held out for early stopping when the job names no validation_fraction.
DEFAULT_VALIDATION_FRACTION = 0.1
# The tutorial prints the loss every 2,000 mini-batches; an epoch too short for 3 such points
# gets about 10 points instead, so that a short job still draws a curve.
TUTORIAL_LOG_EVERY = 2000
TUTORIAL_POINTS_AT_LEAST = 3
SHORT_EPOCH_POINTS = 10
# The model a CIFAR-10 job registers as unless it says otherwise.
CIFAR10_MODEL = "cifar10"


class StoredConfigInvalid(Conflict):
    """A config stored by an earlier version that today's bounds refuse."""


class JobConfig(JobFields):
    """A job's config with its recipe and seed resolved: what the job stores and trains with."""

    model_config = ConfigDict(frozen=True)

    seed: Seed = Field(description="Drawn at submit when the request gave none.")
    init_from: ResolvedInitFrom | None = Field(
        default=None,
        description="The weights the job starts from, as submit found them: a version by its "
        "number (an alias resolved), or a weights file, each with its sha256.",
    )

    @classmethod
    def from_stored(cls, stored: dict[str, Any]) -> "JobConfig":
        """The config a job row holds. Fields added since it was stored take their defaults and
        fields since removed are dropped; a value today's bounds refuse is a clear error."""
        known = {name: value for name, value in stored.items() if name in cls.model_fields}
        try:
            return cls.model_validate(known)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
                for error in exc.errors()
            )
            raise StoredConfigInvalid(
                f"the job's stored config is not valid in this version ({problems})"
            ) from None

    def loss_interval(self, steps_per_epoch: int) -> int:
        """Mini-batches per loss point: log_every when set, else the default rule."""
        if self.log_every is not None:
            return self.log_every
        if steps_per_epoch >= TUTORIAL_POINTS_AT_LEAST * TUTORIAL_LOG_EVERY:
            return TUTORIAL_LOG_EVERY
        return max(1, steps_per_epoch // SHORT_EPOCH_POINTS)

    @property
    def processes(self) -> int:
        """How many processes train the job together (one per GPU, or CPU processes)."""
        return self.gpus or self.cpu_processes or 1

    @property
    def device_kind(self) -> Literal["auto", "cpu", "cuda"]:
        """ "cpu", "cuda" or "auto", with `gpus` and `cpu_processes` taken into account."""
        if self.gpus:
            return "cuda"
        return "cpu" if self.cpu_processes else self.device


class JobCreate(JobFields):
    """A training job; every field is optional and the defaults are the CIFAR-10 tutorial."""

    model_config = ConfigDict(
        json_schema_extra=lambda schema, cls: describe_job_request(schema, cls.model_fields),
    )

    # Labels, not config: never trained with, and changeable later (PATCH /jobs/{id}).
    name: JobName | None = Field(
        default=None, description='What to call the job, e.g. "baseline" (not unique).'
    )
    tags: JobTags | None = Field(
        default=None, description='Key: value pairs to find the job by, e.g. {"sweep": "lr"}.'
    )
    notes: JobNotes | None = Field(default=None, description="Anything worth saying about it.")

    def labels(self) -> Labels:
        """The job's name, tags and notes."""
        return Labels(self.name, self.tags or {}, self.notes)

    @model_validator(mode="after")
    def _options_fit_together(self) -> "JobCreate":
        problem = broken_rule(self._values(), self.model_fields_set)
        if problem is not None:
            raise ValueError(problem)
        return self

    def _values(self) -> dict[str, Any]:
        """Every field's value: the recipe's where the job gives none, the job's own otherwise."""
        recipe = RECIPES[self.recipe]
        given = self.model_fields_set
        values = {
            name: recipe[name] if name in recipe and name not in given else value
            for name, value in self.model_dump(include=set(JobFields.model_fields)).items()
        }
        if values["early_stopping_patience"] and values["validation_fraction"] is None:
            values["validation_fraction"] = DEFAULT_VALIDATION_FRACTION
        if "register_as" not in given and values["dataset"] == "cifar10":
            values["register_as"] = CIFAR10_MODEL
        return values

    def resolved(self, parent: ResolvedVersion | ResolvedWeights | None = None) -> JobConfig:
        """The job's config: its recipe applied, a random seed drawn if it gives none, and
        init_from as `parent`, what submit resolved it to (app/jobs/fine_tuning.py)."""
        if (parent is None) != (self.init_from is None):
            raise ValueError("a job with init_from is resolved with its parent, and only then")
        values = {**self._values(), "init_from": parent}
        if values["seed"] is None:
            values["seed"] = secrets.randbelow(SEED_MAX + 1)
        return JobConfig.model_validate(values)
