"""Property tests: the job config accepts exactly what its documented ranges and rules allow."""

import json
import math
from typing import Any

import jsonschema_rs
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from app.jobs.config import JobCreate
from app.jobs.fields import COUNT_MAX, PROCESSES_MAX, SEED_MAX
from app.jobs.rules import UNSTATED_RULES
from app.ml.torchvision_nets import torchvision_names

INT_RANGES = {
    "epochs": (1, 1000),
    "batch_size": (1, 65536),
    "log_every": (1, COUNT_MAX),
    "max_train_samples": (1, COUNT_MAX),
    "max_test_samples": (1, COUNT_MAX),
    "seed": (0, SEED_MAX),
    "random_crop_padding": (0, 8),
    "gpus": (1, PROCESSES_MAX),
    "cpu_processes": (1, PROCESSES_MAX),
    "early_stopping_patience": (1, 1000),
}
NULLABLE = {
    "batch_size",  # the whole training set at every step
    "seed",
    "log_every",  # about 10 points an epoch, or the tutorial's 2,000
    "max_train_samples",
    "max_test_samples",
    "gpus",
    "cpu_processes",
    "early_stopping_patience",
    "validation_fraction",
    "freeze",
    "backbone_learning_rate",
}
FLOAT_RANGES = {  # (low, low inclusive, high, high inclusive)
    "learning_rate": (0.0, False, 10.0, True),
    "momentum": (0.0, True, 1.0, False),
    "weight_decay": (0.0, True, 1.0, True),
    "label_smoothing": (0.0, True, 1.0, False),
    "validation_fraction": (0.0, False, 0.5, True),
    "backbone_learning_rate": (0.0, False, 10.0, True),
}
CHOICES = {
    # "mlp" alone breaks a rule: it needs a tabular dataset.
    "model": {"tutorial_cnn", "fast_cnn", *torchvision_names()},
    "dataset": {"cifar10"},
    "optimizer": {"sgd", "adam"},
    "device": {"auto", "cpu", "cuda"},
    "recipe": {"tutorial", "fast", "fast94"},
    "lr_schedule": {"constant", "onecycle", "cosine", "warmup_linear"},
    "precision": {"auto", "fp32", "bf16", "fp16"},
    "freeze": {"backbone"},
}
BOOLEANS = {"nesterov", "random_flip"}
TOGGLES = {"channels_last", "compile", "cuda_graphs"}  # true, false or "auto"
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=5,
)


def int_ok(field: str, value: Any) -> bool:
    if value is None and field in NULLABLE:
        return True
    if type(value) is float and value.is_integer():
        value = int(value)  # JSON's 2.0 is the integer 2
    if type(value) is not int:
        return False
    low, high = INT_RANGES[field]
    return low <= value <= high


def float_ok(field: str, value: Any) -> bool:
    if value is None and field in NULLABLE:
        return True
    if type(value) not in (int, float) or not math.isfinite(value):
        return False
    low, low_in, high, high_in = FLOAT_RANGES[field]
    return (value >= low if low_in else value > low) and (
        value <= high if high_in else value < high
    )


def expected_valid(field: str, value: Any) -> bool:
    if field in INT_RANGES:
        return int_ok(field, value)
    if field in FLOAT_RANGES:
        return float_ok(field, value)
    if field in BOOLEANS:
        return type(value) is bool
    if field in TOGGLES:
        return type(value) is bool or value == "auto"
    if value is None:
        return field in NULLABLE
    return value in CHOICES[field] if isinstance(value, str) else False


FIELDS = sorted([*INT_RANGES, *FLOAT_RANGES, *CHOICES, *BOOLEANS, *TOGGLES])


@settings(max_examples=400, derandomize=True, deadline=None)
@given(
    field=st.sampled_from(FIELDS),
    value=st.one_of(
        JSON_VALUES,
        st.integers(-5, 70000),
        st.integers(2**62, 2**64),
        st.floats(-1, 12, allow_nan=False),
        st.sampled_from(sorted(set().union(*CHOICES.values()))),
        st.booleans(),
        st.sampled_from([0, 1, 1.0, "true", "auto"]),
    ),
)
def test_one_field_is_accepted_exactly_when_it_is_in_range(field: str, value: Any) -> None:
    try:
        spec = JobCreate.model_validate_json(_json({field: value}))
    except ValidationError as exc:
        assert not expected_valid(field, value), exc
        assert [error["loc"] for error in exc.errors()] == [(field,)]
    else:
        assert expected_valid(field, value)
        assert getattr(spec, field) == value


@settings(max_examples=200, derandomize=True, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=12), JSON_VALUES, max_size=4))
def test_unknown_fields_are_always_named(body: dict[str, Any]) -> None:
    # Any field of the request is known, not only those generated above: Hypothesis also tries
    # string constants it finds in the code under test, such as "register_as".
    unknown = sorted(set(body) - set(JobCreate.model_fields))
    try:
        JobCreate.model_validate_json(_json(body))
    except ValidationError as exc:
        named = {error["loc"][0] for error in exc.errors() if error["type"] == "extra_forbidden"}
        assert named == set(unknown)
    else:
        assert unknown == []


def _json(body: dict[str, Any]) -> str:
    return json.dumps(body)


RULE_FIELDS = {
    "recipe": st.sampled_from(["tutorial", "fast", "fast94"]),
    "optimizer": st.sampled_from(["sgd", "adam"]),
    "momentum": st.sampled_from([0, 0.0, 0.5, 0.9]),
    "nesterov": st.booleans(),
    "lr_schedule": st.sampled_from(["constant", "onecycle", "cosine", "warmup_linear"]),
    "random_flip": st.booleans(),
    "alternating_flip": st.booleans(),
    "device": st.sampled_from(["auto", "cpu", "cuda"]),
    "precision": st.sampled_from(["auto", "fp32", "bf16", "fp16"]),
    "compile": st.sampled_from(["auto", True, False]),
    "cuda_graphs": st.sampled_from(["auto", True, False]),
    "gpus": st.sampled_from([None, 1, 2, 2.0]),
    "cpu_processes": st.sampled_from([None, 1, 2]),
    "early_stopping_patience": st.sampled_from([None, 1, 5]),
}
JOB_SCHEMA = jsonschema_rs.validator_for(JobCreate.model_json_schema())


@settings(max_examples=1500, derandomize=True, deadline=None)
@given(st.fixed_dictionaries({}, optional=RULE_FIELDS))
def test_the_schema_states_exactly_the_rules_the_api_enforces(body: dict[str, Any]) -> None:
    try:
        JobCreate.model_validate_json(_json(body))
    except ValidationError as exc:
        (error,) = exc.errors()
        assert "cannot go with" in error["msg"]
        # Every rule is in the schema but those left out on purpose (checked after the others).
        unstated = any(
            error["msg"].startswith(f"Value error, {rule.when.field} ") for rule in UNSTATED_RULES
        )
        assert JOB_SCHEMA.is_valid(body) == unstated, body
    else:
        assert JOB_SCHEMA.is_valid(body), body


def test_a_rule_names_the_clash_and_where_it_came_from() -> None:
    try:
        JobCreate.model_validate({"recipe": "fast", "cuda_graphs": True, "precision": "fp16"})
    except ValidationError as exc:
        message = exc.errors()[0]["msg"]
    else:
        raise AssertionError("accepted")
    assert message == (
        'Value error, cuda_graphs true cannot go with precision "fp16", lr_schedule "onecycle" '
        '(from recipe "fast"): a captured CUDA graph needs a GPU, a constant learning rate, '
        "one process, and no fp16 (its gradient scaler checks for overflow on the host) or "
        "compile"
    )


def test_several_processes_rule_out_graphs_and_compile_and_the_other_device() -> None:
    problems = {
        json.dumps(body): _refusal(body)
        for body in (
            {"gpus": 2, "cuda_graphs": True},
            {"cpu_processes": 2, "compile": True},
            {"gpus": 1, "device": "cpu"},
            {"gpus": 2, "cpu_processes": 2},
            {"cpu_processes": 1, "device": "cuda"},
        )
    }
    assert problems == {
        '{"gpus": 2, "cuda_graphs": true}': "cuda_graphs true cannot go with gpus 2: a captured "
        "CUDA graph needs a GPU, a constant learning rate, one process, and no fp16 (its "
        "gradient scaler checks for overflow on the host) or compile",
        '{"cpu_processes": 2, "compile": true}': "compile true cannot go with cpu_processes 2: "
        "compiling a model trained by several processes is not supported",
        '{"gpus": 1, "device": "cpu"}': 'gpus 1 cannot go with device "cpu": gpus trains on '
        "GPUs; device cpu and cpu_processes train on the CPU",
        '{"gpus": 2, "cpu_processes": 2}': "gpus 2 cannot go with cpu_processes 2: gpus trains "
        "on GPUs; device cpu and cpu_processes train on the CPU",
        '{"cpu_processes": 1, "device": "cuda"}': "cpu_processes 1 cannot go with device "
        '"cuda": cpu_processes trains on the CPU',
    }
    # One GPU may still be graphed, and one CPU process compiled.
    JobCreate.model_validate({"gpus": 1, "cuda_graphs": True})
    JobCreate.model_validate({"cpu_processes": 1, "compile": True})


def _refusal(body: dict[str, Any]) -> str:
    try:
        JobCreate.model_validate(body)
    except ValidationError as exc:
        return str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
    raise AssertionError(f"{body} accepted")
