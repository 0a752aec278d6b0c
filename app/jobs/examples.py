"""What the job request's JSON Schema shows besides its fields: examples of requests, and the
option rules (app/jobs/rules.py) that its `allOf` states."""

import copy
from collections.abc import Mapping
from typing import Any

from pydantic.fields import FieldInfo

from app.jobs.rules import rules_json_schema

# The first, {}, is the tutorial.
REQUEST_EXAMPLES: list[dict[str, Any]] = [
    {},
    {"epochs": 1, "max_train_samples": 5000, "max_test_samples": 1000, "seed": 7},
    {"optimizer": "adam", "learning_rate": 0.001, "batch_size": 64, "epochs": 5},
    {"recipe": "fast"},
    {"recipe": "fast94"},
]


def describe_job_request(schema: dict[str, Any], fields: Mapping[str, FieldInfo]) -> None:
    """Add to the job request's JSON Schema (whose `fields` these are) its examples, a copy of
    its own that whoever changes the schema cannot change here, and its rules."""
    schema["examples"] = copy.deepcopy(REQUEST_EXAMPLES)
    schema["allOf"] = rules_json_schema({name: field.default for name, field in fields.items()})
