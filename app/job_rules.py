"""Job options that cannot go together, checked on submit and stated in the OpenAPI schema.

Each rule is data, so the check and its JSON Schema form come from one description and cannot
drift apart. Rules apply to a job's values after its recipe fills in what the job leaves out.
"""

import json
from dataclasses import dataclass
from typing import Any

from app.recipes import RECIPES


@dataclass(frozen=True)
class OptionRule:
    """When `field` is `value`, none of the `forbidden` values may be set; `why` says why."""

    field: str
    value: object
    forbidden: dict[str, tuple[object, ...]]
    why: str


RULES = (
    OptionRule(
        field="cuda_graphs",
        value=True,
        forbidden={
            "device": ("cpu",),
            "precision": ("fp16",),
            "compile": (True,),
            "lr_schedule": ("onecycle", "cosine"),
        },
        why="a captured CUDA graph needs a GPU, a constant learning rate, and no fp16 "
        "(its gradient scaler checks for overflow on the host) or compile",
    ),
)


def _same(a: object, b: object) -> bool:
    # In Python True == 1; in JSON (and to the user) they differ.
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def _one_of(value: object, choices: tuple[object, ...]) -> bool:
    return any(_same(value, choice) for choice in choices)


def broken_rule(config: dict[str, Any], given: set[str]) -> str | None:
    """Why the resolved `config` breaks a rule, or None; `given` names the fields the job set."""
    for rule in RULES:
        if not _same(config[rule.field], rule.value):
            continue
        clashes = [
            f"{name} {json.dumps(config[name])}"
            + ("" if name in given else f" (from recipe {json.dumps(config['recipe'])})")
            for name, values in rule.forbidden.items()
            if _one_of(config[name], values)
        ]
        if clashes:
            return (
                f"{rule.field} {json.dumps(rule.value)} cannot go with {', '.join(clashes)}: "
                f"{rule.why}"
            )
    return None


def _resolves_to(field: str, values: tuple[object, ...], default: object) -> dict[str, Any]:
    """JSON Schema for "after the recipe, `field` is one of `values`"."""
    given = {"required": [field], "properties": {field: {"enum": list(values)}}}
    recipes = [
        name for name, fields in RECIPES.items() if _one_of(fields.get(field, default), values)
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


def rules_json_schema(defaults: dict[str, object]) -> list[dict[str, Any]]:
    """The rules as JSON Schema, for the request body's "allOf"; `defaults` are the fields'."""
    return [
        {
            "description": f"{rule.field} {json.dumps(rule.value)}: {rule.why}",
            "anyOf": [
                {"not": _resolves_to(rule.field, (rule.value,), defaults[rule.field])},
                {
                    "allOf": [
                        {"not": _resolves_to(name, values, defaults[name])}
                        for name, values in rule.forbidden.items()
                    ]
                },
            ],
        }
        for rule in RULES
    ]
