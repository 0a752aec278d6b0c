"""Job options that cannot go together, checked on submit and stated in the OpenAPI schema.

Each rule is data, so the check and its JSON Schema form come from one description and cannot
drift apart. Rules apply to a job's values after its recipe fills in what the job leaves out.
"""

import json
from dataclasses import dataclass
from typing import Any

from app.jobs.recipes import RECIPES


def _same(a: object, b: object) -> bool:
    # In Python True == 1; in JSON (and to the user) they differ.
    return a == b and isinstance(a, bool) == isinstance(b, bool)


@dataclass(frozen=True)
class Condition:
    """A field's value is one of `values`, or (with `at_least`) an integer of at least that, or
    (with `present`) anything but null."""

    field: str
    values: tuple[object, ...] = ()
    at_least: int | None = None
    present: bool = False

    def holds(self, value: object) -> bool:
        if self.present:
            return value is not None
        if self.at_least is not None:
            return type(value) is int and value >= self.at_least
        return any(_same(value, choice) for choice in self.values)

    def value_schema(self) -> dict[str, Any]:
        if self.present:  # spelled as types: a "not" here is more than fuzzers can take
            return {"type": ["array", "boolean", "integer", "number", "object", "string"]}
        if self.at_least is not None:
            return {"type": "integer", "minimum": self.at_least}
        return {"enum": list(self.values)}


@dataclass(frozen=True)
class OptionRule:
    """When `when` holds, none of the `forbidden` conditions may; `why` says why."""

    when: Condition
    forbidden: tuple[Condition, ...]
    why: str


RULES = (
    OptionRule(
        when=Condition("cuda_graphs", (True,)),
        forbidden=(
            Condition("device", ("cpu",)),
            Condition("precision", ("fp16",)),
            Condition("compile", (True,)),
            Condition("lr_schedule", ("onecycle", "cosine", "warmup_linear")),
            Condition("gpus", at_least=2),
            Condition("cpu_processes", at_least=2),
        ),
        why="a captured CUDA graph needs a GPU, a constant learning rate, one process, and no "
        "fp16 (its gradient scaler checks for overflow on the host) or compile",
    ),
    OptionRule(
        when=Condition("gpus", at_least=1),
        forbidden=(Condition("device", ("cpu",)), Condition("cpu_processes", at_least=1)),
        why="gpus trains on GPUs; device cpu and cpu_processes train on the CPU",
    ),
    OptionRule(
        when=Condition("cpu_processes", at_least=1),
        forbidden=(Condition("device", ("cuda",)),),
        why="cpu_processes trains on the CPU",
    ),
    OptionRule(
        when=Condition("model", ("mlp",)),
        forbidden=(
            Condition("dataset", ("cifar10",)),
            Condition("random_flip", (True,)),
            Condition("random_crop_padding", at_least=1),
            Condition("channels_last", (True,)),
        ),
        why="the mlp model trains on rows of a tabular dataset, which have no pixels to flip, "
        "shift or lay out",
    ),
    OptionRule(
        when=Condition("early_stopping_patience", at_least=1),
        forbidden=(Condition("gpus", at_least=2), Condition("cpu_processes", at_least=2)),
        why="early stopping is not supported yet for a job trained by several processes",
    ),
    OptionRule(
        when=Condition("validation_fraction", present=True),
        forbidden=(Condition("gpus", at_least=2), Condition("cpu_processes", at_least=2)),
        why="a validation split is not supported yet for a job trained by several processes",
    ),
    OptionRule(
        when=Condition("compile", (True,)),
        forbidden=(Condition("gpus", at_least=2), Condition("cpu_processes", at_least=2)),
        why="compiling a model trained by several processes is not supported",
    ),
)

# Checked on submit like the rules above but left out of the schema: with one more rule the
# request body's schema is more than the fuzzers' generators can expand (schemathesis gives up
# on POST /jobs), so these are only documented (docs/api.md).
UNSTATED_RULES = (
    OptionRule(
        when=Condition("alternating_flip", (True,)),
        forbidden=(Condition("random_flip", (False,)),),
        why="alternating_flip says how random_flip flips; without random_flip nothing is flipped",
    ),
)


def broken_rule(config: dict[str, Any], given: set[str]) -> str | None:
    """Why the resolved `config` breaks a rule, or None; `given` names the fields the job set."""
    for rule in (*RULES, *UNSTATED_RULES):
        field = rule.when.field
        if not rule.when.holds(config[field]):
            continue
        clashes = [
            f"{c.field} {json.dumps(config[c.field])}"
            + ("" if c.field in given else f" (from recipe {json.dumps(config['recipe'])})")
            for c in rule.forbidden
            if c.holds(config[c.field])
        ]
        if clashes:
            return (
                f"{field} {json.dumps(config[field])} cannot go with {', '.join(clashes)}: "
                f"{rule.why}"
            )
    return None


def _resolves_to(condition: Condition, default: object) -> dict[str, Any]:
    """JSON Schema for "after the recipe, the condition holds"."""
    field = condition.field
    given = {"required": [field], "properties": {field: condition.value_schema()}}
    recipes = [
        name for name, fields in RECIPES.items() if condition.holds(fields.get(field, default))
    ]
    if not recipes:
        return given
    left_out: dict[str, Any] = {
        "not": {"required": [field]},
        "properties": {"recipe": {"enum": recipes}},
    }
    if "tutorial" not in recipes:  # no recipe means the tutorial's
        left_out["required"] = ["recipe"]
    return {"anyOf": [given, left_out]}


def _describe(condition: Condition) -> str:
    if condition.present:
        return f"{condition.field} given"
    if condition.at_least is not None:
        return f"{condition.field} >= {condition.at_least}"
    return f"{condition.field} {' or '.join(json.dumps(v) for v in condition.values)}"


def rules_json_schema(defaults: dict[str, object]) -> list[dict[str, Any]]:
    """The rules as JSON Schema, for the request body's "allOf"; `defaults` are the fields'."""
    return [
        {
            "description": f"{_describe(rule.when)}: {rule.why}",
            "anyOf": [
                {"not": _resolves_to(rule.when, defaults[rule.when.field])},
                {"allOf": [{"not": _resolves_to(c, defaults[c.field])} for c in rule.forbidden]},
            ],
        }
        for rule in RULES
    ]
