"""Jobs side by side: the shared x axis in epochs, the config diff with the same fields collapsed,
the best job of each class (every one on a tie) and classes some jobs do not have."""

import pytest

from app.jobs.comparison import (
    best_indexes,
    compare_configs,
    compare_per_class,
    epoch_position,
    job_series,
    naming_jobs,
    resolved_config,
)
from app.jobs.comparison_schemas import ClassAccuracy, SeriesPoint
from app.jobs.config import JobCreate
from app.jobs.records import EpochRecord, LossRecord


@pytest.mark.parametrize(
    ("epoch", "step", "steps_per_epoch", "x"),
    [
        (1, 2000, 12500, 0.16),  # the tutorial's first point
        (1, 12500, 12500, 1.0),  # an epoch's last step is its end
        (2, 2000, 12500, 1.16),
        (3, 1, 4, 2.25),
    ],
)
def test_a_step_lies_at_its_fraction_of_the_epoch(
    epoch: int, step: int, steps_per_epoch: int, x: float
) -> None:
    assert epoch_position(epoch, step, steps_per_epoch) == pytest.approx(x, abs=1e-12)


def test_loss_points_and_epochs_share_the_axis() -> None:
    points = [LossRecord(epoch=e, step=s, loss=loss) for e, s, loss in [(1, 5, 2.3), (1, 10, 2.1)]]
    points.append(LossRecord(epoch=2, step=5, loss=1.9))
    epochs = [
        EpochRecord(epoch=1, train_loss=2.2, test_loss=2.0, test_accuracy=0.25),
        EpochRecord(epoch=2, train_loss=1.8, test_loss=1.7, test_accuracy=0.375),
    ]
    series = job_series(7, 10, points, epochs)
    assert series.model_dump() == {
        "job_id": 7,
        "steps_per_epoch": 10,
        "loss": [{"x": 0.5, "y": 2.3}, {"x": 1.0, "y": 2.1}, {"x": 1.5, "y": 1.9}],
        "train_loss": [{"x": 1.0, "y": 2.2}, {"x": 2.0, "y": 1.8}],
        "test_loss": [{"x": 1.0, "y": 2.0}, {"x": 2.0, "y": 1.7}],
        "test_accuracy": [{"x": 1.0, "y": 0.25}, {"x": 2.0, "y": 0.375}],
        "validation_loss": [],
        "validation_accuracy": [],
    }


def test_validation_series_come_from_the_epochs_that_have_them() -> None:
    epochs = [
        EpochRecord(
            epoch=1,
            train_loss=2.0,
            test_loss=1.9,
            test_accuracy=0.3,
            validation_loss=1.8,
            validation_accuracy=0.4,
        ),
        # Recorded before the job held images out (a config stored by an earlier version).
        EpochRecord(epoch=2, train_loss=1.5, test_loss=1.6, test_accuracy=0.5),
    ]
    series = job_series(3, 4, [], epochs)
    assert series.validation_loss == [SeriesPoint(x=1, y=1.8)]
    assert series.validation_accuracy == [SeriesPoint(x=1, y=0.4)]
    assert series.loss == []


def test_a_job_that_has_not_started_has_empty_series() -> None:
    series = job_series(9, None, [], [])
    assert series.steps_per_epoch is None
    assert all(getattr(series, name) == [] for name in ("loss", "train_loss", "test_accuracy"))


def test_fields_that_differ_list_every_value_and_the_rest_collapse() -> None:
    configs = [
        {"epochs": 2, "learning_rate": 0.001, "hidden_layers": [64, 32], "seed": 1},
        {"epochs": 2, "learning_rate": 0.01, "hidden_layers": [64, 32], "seed": 2},
        {"epochs": 2, "learning_rate": 0.001, "hidden_layers": [64, 16], "seed": 2},
    ]
    compared = compare_configs(configs)
    assert compared.differing == {
        "learning_rate": [0.001, 0.01, 0.001],
        "hidden_layers": [[64, 32], [64, 32], [64, 16]],
        "seed": [1, 2, 2],
    }
    assert compared.same == {"epochs": 2}
    assert list(compared.differing) == ["learning_rate", "hidden_layers", "seed"]  # config order


def test_values_equal_in_python_but_not_in_json_differ() -> None:
    # A field one config lacks reads as null there.
    compared = compare_configs([{"a": 1, "b": None}, {"a": 1.0, "b": None}, {"a": True}])
    assert compared.differing == {"a": [1, 1.0, True]}
    assert compared.same == {"b": None}


def test_identical_configs_are_all_the_same() -> None:
    config = JobCreate(seed=4).resolved().model_dump(mode="json")
    compared = compare_configs([config, dict(config)])
    assert compared.differing == {} and compared.same == config


def test_a_config_stored_before_a_field_existed_compares_with_its_default() -> None:
    today = JobCreate(seed=5).resolved().model_dump(mode="json")
    older = {"epochs": 2, "seed": 5, "batch_size": 4}  # before every other field
    compared = compare_configs([resolved_config(today), resolved_config(older)])
    assert compared.differing == {"register_as": ["cifar10", None]}
    assert list(compared.same) == [name for name in today if name != "register_as"]


def test_a_stored_value_todays_bounds_refuse_is_compared_as_stored() -> None:
    stored = {"epochs": 5000, "seed": 1}
    assert resolved_config(stored) == stored


@pytest.mark.parametrize(
    ("values", "best"),
    [
        ([0.5, 0.75, 0.25], [1]),
        ([0.75, 0.5, 0.75], [0, 2]),  # a tie marks every job that has it
        ([None, 0.5, None], [1]),
        ([0.0, 0.0], [0, 1]),
        ([None, None], []),
    ],
)
def test_the_best_value_is_marked(values: list[float | None], best: list[int]) -> None:
    assert best_indexes(values) == best


def test_per_class_accuracy_side_by_side_with_missing_classes_null() -> None:
    compared = compare_per_class(
        [
            {"cat": 0.5, "dog": 0.75},
            None,  # still running: no per-class results yet
            {"dog": 0.75, "cat": 0.25, "bird": 0.5},
        ]
    )
    assert compared == {
        "cat": ClassAccuracy(accuracy=[0.5, None, 0.25], best=[0]),
        "dog": ClassAccuracy(accuracy=[0.75, None, 0.75], best=[0, 2]),
        "bird": ClassAccuracy(accuracy=[None, None, 0.5], best=[2]),
    }
    assert list(compared) == ["cat", "dog", "bird"]


def test_no_job_with_results_has_no_classes() -> None:
    assert compare_per_class([None, None]) == {}


def test_jobs_are_named_singular_or_plural() -> None:
    assert naming_jobs([3]) == "job 3"
    assert naming_jobs([3, 7]) == "jobs 3, 7"
