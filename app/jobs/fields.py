"""Field types of a job's config: integers as JSON means them, bounds the schema shows."""

import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, WithJsonSchema

from app.field_suggestions import suggest_field
from app.ml.architectures import is_known, known_names

SEED_MAX = 2**63 - 1
COUNT_MAX = 2**31 - 1
PROCESSES_MAX = 64


def _integral_float_to_int(value: object) -> object:
    # JSON (and JSON Schema) treat 2.0 as the integer 2; strict mode alone would refuse it.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# An integer field that refuses strings, booleans and fractions but takes 2.0 as 2.
Integer = Annotated[int, BeforeValidator(_integral_float_to_int)]
# Bounds inside the type, so that they reach the JSON schema also where the field is optional.
Count = Annotated[int, Field(ge=1, le=COUNT_MAX), BeforeValidator(_integral_float_to_int)]
Seed = Annotated[int, Field(ge=0, le=SEED_MAX), BeforeValidator(_integral_float_to_int)]
Processes = Annotated[int, Field(ge=1, le=PROCESSES_MAX), BeforeValidator(_integral_float_to_int)]
Patience = Annotated[int, Field(ge=1, le=1000), BeforeValidator(_integral_float_to_int)]
BatchSize = Annotated[int, Field(ge=1, le=65536), BeforeValidator(_integral_float_to_int)]
Width = Annotated[int, Field(ge=1, le=4096), BeforeValidator(_integral_float_to_int)]
Fraction = Annotated[float, Field(gt=0, le=0.5)]


DATASET_NAME = re.compile(r"^(cifar10|ds-[0-9a-f]{12})$")


def _dataset_name(value: object) -> object:
    # Before the pattern check, to say what is meant rather than quote the regular expression.
    if isinstance(value, str) and not DATASET_NAME.match(value):
        raise ValueError(
            f'{value[:40]!r} is neither "cifar10" nor a dataset id (ds- and 12 hex digits; '
            "see GET /datasets)"
        )
    return value


# The pattern is for the schema; the check before it says what is wrong.
DatasetName = Annotated[str, Field(pattern=DATASET_NAME.pattern), BeforeValidator(_dataset_name)]

MODEL_NAME_MAX = 64


def _model_name(value: object) -> object:
    # Checked here rather than by a Literal: the names depend on the installed torchvision, which
    # is imported only once a job names one of its architectures (or the schema is made).
    if isinstance(value, str) and not is_known(value):
        guess = suggest_field(value, known_names()) if len(value) <= MODEL_NAME_MAX else None
        hint = f"did you mean {guess!r}? " if guess else ""
        raise ValueError(
            f"unknown architecture {value[:40]!r}; {hint}GET /architectures lists them"
        )
    return value


def _list_model_names(schema: dict[str, Any]) -> None:
    schema["enum"] = known_names()


ModelName = Annotated[str, BeforeValidator(_model_name), Field(json_schema_extra=_list_model_names)]


def _true_false_or_auto(value: object) -> object:
    # A Literal of booleans alone would take 1 and 0 as true and false; JSON does not.
    if type(value) is bool or value == "auto":
        return value
    raise ValueError('Input should be true, false or "auto"')


# A speed option the worker may decide for itself ("auto") or that the job fixes. Its schema
# keeps booleans and the string apart: an enum that mixes types defeats client generators.
Toggle = Annotated[
    Literal["auto", True, False],
    BeforeValidator(_true_false_or_auto),
    WithJsonSchema({"anyOf": [{"type": "boolean"}, {"type": "string", "enum": ["auto"]}]}),
]
