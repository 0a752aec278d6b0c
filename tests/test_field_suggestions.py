"""The known field an unknown one most likely meant, and the known fields at a location."""

import pytest
from pydantic import BaseModel

from app.field_suggestions import model_fields_at, suggest_field
from app.jobs.config import JobCreate

JOB_FIELDS = model_fields_at(JobCreate | None, ())


@pytest.mark.parametrize(
    ("unknown", "meant"),
    [
        ("lr", "learning_rate"),  # initials
        ("wd", "weight_decay"),
        ("bs", "batch_size"),
        ("batchsize", "batch_size"),  # case and separators
        ("learningRate", "learning_rate"),
        ("EPOCHS", "epochs"),
        ("epoch", "epochs"),  # misspelt
        ("optimiser", "optimizer"),
        ("lr_scheduler", "lr_schedule"),
        ("valid", "validation_fraction"),  # a start
        ("gpu", "gpus"),
        ("patience", "early_stopping_patience"),  # a word
        ("patiance", "early_stopping_patience"),  # a word, misspelt
        ("num_epochs", "epochs"),
    ],
)
def test_the_job_field_meant_is_found(unknown: str, meant: str) -> None:
    assert suggest_field(unknown, JOB_FIELDS) == meant


@pytest.mark.parametrize(
    "unknown",
    [
        "colour",  # close to nothing
        "x",
        "",
        "ls",  # the initials of label_smoothing and of lr_schedule
        "max",  # the start of max_train_samples and of max_test_samples
        "random",  # the start of random_flip and of random_crop_padding
    ],
)
def test_nothing_is_suggested_when_nothing_or_several_are_close(unknown: str) -> None:
    assert suggest_field(unknown, JOB_FIELDS) is None


class Layer(BaseModel):
    width: int
    activation: str


class Network(BaseModel):
    layers: list[Layer]
    named: dict[str, Layer]
    head: Layer | None = None


def test_the_fields_at_a_location_are_those_of_the_model_there() -> None:
    assert model_fields_at(Network | None, ()) == ["layers", "named", "head"]
    assert model_fields_at(Network, ("layers", 2)) == ["width", "activation"]
    assert model_fields_at(Network, ("named", "first")) == ["width", "activation"]
    assert model_fields_at(Network, ("head",)) == ["width", "activation"]
    assert model_fields_at(Network, ("layers",)) == []  # a list, not a model
    assert model_fields_at(Network, ("nope",)) == []
    assert model_fields_at(None, ()) == []


def test_a_name_as_close_to_two_known_ones_suggests_neither() -> None:
    names = ["resnet18", "resnet34", "resnet50", "resnet101"]
    assert suggest_field("resnet", names) is None  # 0.86 from each of the first three
    assert suggest_field("resnet19", names) == "resnet18"
    assert suggest_field("ResNet-34", names) == "resnet34"
