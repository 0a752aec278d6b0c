"""The one job config: a request resolves to it once, it is stored as JSON, and the worker reads
the same config back; configs stored by earlier versions still read."""

import pytest
from pydantic import ValidationError

from app.jobs.config import JobConfig, JobCreate, JobFields, StoredConfigInvalid
from app.jobs.examples import REQUEST_EXAMPLES
from app.jobs.fields import SEED_MAX


def test_a_request_resolves_once_with_its_recipe_and_its_own_fields() -> None:
    config = JobCreate(recipe="fast", epochs=2, seed=7).resolved()
    assert isinstance(config, JobConfig)
    assert (config.recipe, config.epochs, config.seed) == ("fast", 2, 7)
    assert (config.batch_size, config.learning_rate, config.lr_schedule) == (256, 0.1, "onecycle")
    assert config.validation_fraction is None


def test_a_missing_seed_is_drawn_at_resolution_and_then_kept() -> None:
    seeds = {JobCreate().resolved().seed for _ in range(20)}
    assert len(seeds) > 1 and all(0 <= seed <= SEED_MAX for seed in seeds)


def test_early_stopping_holds_out_the_default_fraction() -> None:
    config = JobCreate(early_stopping_patience=3, seed=0).resolved()
    assert config.validation_fraction == 0.1


def test_the_stored_json_reads_back_as_the_same_config() -> None:
    config = JobCreate(optimizer="adam", hidden_layers=None, compile=False, seed=3).resolved()
    stored = config.model_dump(mode="json")
    assert list(stored) == list(JobFields.model_fields)  # the column keeps the fields' order
    assert JobConfig.from_stored(stored) == config


def test_a_config_stored_by_an_earlier_version_reads_with_todays_defaults() -> None:
    # Before hidden_layers, validation_fraction and early stopping existed, and with a field
    # since removed.
    stored = {"epochs": 3, "batch_size": 8, "seed": 11, "dataset": "cifar10", "retired": 1}
    config = JobConfig.from_stored(stored)
    assert (config.epochs, config.batch_size, config.seed) == (3, 8, 11)
    assert (config.hidden_layers, config.validation_fraction) == (None, None)
    assert config.early_stopping_patience is None and config.model == "tutorial_cnn"


def test_a_stored_value_out_of_todays_bounds_is_a_clear_error() -> None:
    stored = {**JobCreate(seed=1).resolved().model_dump(mode="json"), "log_every": 2**40}
    with pytest.raises(StoredConfigInvalid) as refused:
        JobConfig.from_stored(stored)
    assert refused.value.status_code == 409
    assert refused.value.message == (
        "the job's stored config is not valid in this version "
        "(log_every: Input should be less than or equal to 2147483647)"
    )


def test_a_config_made_in_code_refuses_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="learning_rat\n  Extra inputs are not permitted"):
        JobConfig(seed=0, learning_rat=0.1)  # type: ignore[call-arg]


def test_nothing_downstream_can_change_a_config() -> None:
    config = JobCreate(seed=1).resolved()
    with pytest.raises(ValidationError, match="frozen"):
        config.batch_size = 64  # type: ignore[misc]


def test_processes_and_device_follow_gpus_and_cpu_processes() -> None:
    assert JobConfig(seed=0).processes == 1 and JobConfig(seed=0).device_kind == "auto"
    assert JobConfig(seed=0, gpus=2).processes == 2
    assert JobConfig(seed=0, gpus=2).device_kind == "cuda"
    cpu = JobConfig(seed=0, cpu_processes=3)
    assert (cpu.processes, cpu.device_kind) == (3, "cpu")


@pytest.mark.parametrize(
    ("log_every", "steps_per_epoch", "interval"),
    [
        (None, 12_500, 2000),  # the tutorial: its points where it prints them
        (None, 6_000, 2000),
        (None, 5_999, 599),
        (None, 1_250, 125),  # 5,000 images in batches of 4: 10 points an epoch
        (None, 9, 1),
        (None, 1, 1),  # a full-batch table job: a point every epoch
        (7, 12_500, 7),
        (2000, 10, 2000),
    ],
)
def test_loss_points_default_to_the_tutorials_or_ten_an_epoch(
    log_every: int | None, steps_per_epoch: int, interval: int
) -> None:
    config = JobCreate.model_validate({"log_every": log_every}).resolved()
    assert config.loss_interval(steps_per_epoch) == interval


def test_the_fast94_recipe_trains_fast_cnn_as_the_airbench_paper_does() -> None:
    config = JobCreate(recipe="fast94", seed=1).resolved()
    assert (config.model, config.epochs, config.batch_size) == ("fast_cnn", 10, 1024)
    assert (config.optimizer, config.learning_rate, config.momentum, config.nesterov) == (
        "sgd",
        1.5,
        0.85,
        True,
    )
    assert (config.weight_decay, config.lr_schedule, config.label_smoothing) == (
        0.00133,
        "warmup_linear",
        0.2,
    )
    augment = (config.random_flip, config.alternating_flip, config.random_crop_padding)
    assert augment == (True, True, 2)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"alternating_flip": True},
            'alternating_flip true cannot go with random_flip false (from recipe "tutorial"): '
            "alternating_flip says how random_flip flips; without random_flip nothing is flipped",
        ),
        (
            {"recipe": "fast94", "random_flip": False},
            "alternating_flip true cannot go with random_flip false: alternating_flip says how "
            "random_flip flips; without random_flip nothing is flipped",
        ),
        (
            {"recipe": "fast94", "cuda_graphs": True},
            'cuda_graphs true cannot go with lr_schedule "warmup_linear" (from recipe "fast94"): '
            "a captured CUDA graph needs a GPU, a constant learning rate, one process, and no "
            "fp16 (its gradient scaler checks for overflow on the host) or compile",
        ),
    ],
)
def test_alternating_flips_need_flips_and_warmup_linear_no_graphs(
    body: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        JobCreate.model_validate(body)
    assert refused.value.errors()[0]["msg"] == f"Value error, {message}"


def test_each_request_schema_gets_its_own_copy_of_the_examples() -> None:
    first = JobCreate.model_json_schema()
    first["examples"][3]["recipe"] = "changed"
    first["examples"].append({"epochs": 3})
    assert REQUEST_EXAMPLES[3] == {"recipe": "fast"} and len(REQUEST_EXAMPLES) == 5
    assert JobCreate.model_json_schema()["examples"] == REQUEST_EXAMPLES
