"""Which version answers for an alias when lookups overlap; what a request may name."""

import pytest

from app.errors import InvalidInput
from app.serving.lookup import ServedModel, ServingJobs, Target

OLD = ServedModel(1, "jobs/1/model.pt", None, "cifar10", 1)
NEW = ServedModel(2, "jobs/2/model.pt", None, "cifar10", 2)
DEFAULT = Target()


def test_a_lookup_begun_earlier_neither_replaces_nor_answers_over_a_later_one() -> None:
    serving = ServingJobs("cifar10", ttl_s=60)
    # The lookup that began at 20.0 saw the alias moved to v2 and finished first; the one begun
    # at 10.0, before the move was committed, saw v1 and finishes afterwards.
    assert serving.remember(DEFAULT, 20.0, NEW) == NEW
    assert serving.remember(DEFAULT, 10.0, OLD) == NEW
    assert serving._found[DEFAULT] == (20.0, NEW)


def test_a_later_lookup_takes_over() -> None:
    serving = ServingJobs("cifar10", ttl_s=60)
    assert serving.remember(DEFAULT, 10.0, OLD) == OLD
    assert serving.remember(DEFAULT, 20.0, NEW) == NEW
    assert serving._found[DEFAULT] == (20.0, NEW)


def test_targets_are_kept_apart() -> None:
    serving = ServingJobs("cifar10", ttl_s=60)
    serving.remember(Target(model="cifar10", version=1), 10.0, OLD)
    assert serving.cached(Target(model="cifar10", version=2)) is None


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (
            {"job_id": 3, "model": "cifar10"},
            "job_id: give either job_id or model (with alias or version)",
        ),
        (
            {"job_id": 3, "version": 1},
            "job_id: give either job_id or model (with alias or version)",
        ),
        ({"alias": "production", "version": 1}, "alias: give either alias or version, not both"),
    ],
)
def test_a_request_names_one_model(target: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        Target(**target)  # type: ignore[arg-type]
    assert str(raised.value) == message
