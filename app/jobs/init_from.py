"""What a fine-tuning job starts from (`init_from`): a registered model's version, named by its
number or by an alias, or an uploaded weights file. A job stores the parent as submit resolved
it: an alias becomes the version it named then, and the parent's sha256 is kept, so that the job
trains from the same bytes whenever it runs (or is retried) and its lineage names them."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from app.jobs.fields import Integer
from app.registry.names import VERSION_MAX, Name
from app.weights.ids import WEIGHTS_ID_PATTERN

SHA256_PATTERN = r"^[0-9a-f]{64}$"

WeightsId = Annotated[
    str, Field(pattern=WEIGHTS_ID_PATTERN, description="An uploaded weights file (POST /weights).")
]
VersionNumber = Annotated[int, Field(ge=1, le=VERSION_MAX)]
Sha256 = Annotated[str, Field(pattern=SHA256_PATTERN)]


class _Parent(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class VersionParent(_Parent):
    """A registered model's version, by its number."""

    model: Name = Field(description="The registered model (GET /models).")
    version: Integer = Field(ge=1, le=VERSION_MAX)


class AliasParent(_Parent):
    """A registered model's version, by an alias; the job stores the version it names now."""

    model: Name = Field(description="The registered model (GET /models).")
    alias: Name = Field(description='The alias, e.g. "production".')


class WeightsParent(_Parent):
    """An uploaded weights file."""

    weights: WeightsId


class ResolvedVersion(VersionParent):
    """A version as a job stores it: with the sha256 of the model file it starts from."""

    sha256: Sha256


class ResolvedWeights(WeightsParent):
    """A weights file as a job stores it: with its sha256 and the name it was uploaded as."""

    sha256: Sha256
    filename: str


KINDS = ("version", "alias", "weights")
KINDS_MESSAGE = (
    'give {"model": ..., "version": ...}, {"model": ..., "alias": ...} or {"weights": ...}'
)


def _kind(value: Any) -> str | None:
    # Which kind an object is, told by the one field that only it has, so that an error names
    # that kind's fields rather than every kind's; None (KINDS_MESSAGE) for none or several.
    fields = value if isinstance(value, dict) else vars(value) if isinstance(value, _Parent) else {}
    kinds = [kind for kind in KINDS if kind in fields]
    return kinds[0] if len(kinds) == 1 else None


InitFrom = Annotated[
    Annotated[VersionParent, Tag("version")]
    | Annotated[AliasParent, Tag("alias")]
    | Annotated[WeightsParent, Tag("weights")],
    Discriminator(_kind, custom_error_type="init_from", custom_error_message=KINDS_MESSAGE),
]
ResolvedInitFrom = Annotated[
    Annotated[ResolvedVersion, Tag("version")] | Annotated[ResolvedWeights, Tag("weights")],
    Discriminator(_kind, custom_error_type="init_from", custom_error_message=KINDS_MESSAGE),
]
Freeze = Literal["backbone"]
