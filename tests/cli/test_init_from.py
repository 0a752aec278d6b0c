"""`trainserve submit --init-from`: the three ways to name what a job starts from."""

import pytest
import typer

from app.cli.jobs import parse_init_from


@pytest.mark.parametrize(
    ("given", "init_from"),
    [
        ("cifar10:3", {"model": "cifar10", "version": 3}),
        ("cifar10@production", {"model": "cifar10", "alias": "production"}),
        ("weights:wt-0123456789ab", {"weights": "wt-0123456789ab"}),
        ("weights:2", {"model": "weights", "version": 2}),  # a model may be called weights
    ],
)
def test_init_from_names_a_version_an_alias_or_a_weights_file(
    given: str, init_from: dict[str, object]
) -> None:
    assert parse_init_from(given) == init_from


@pytest.mark.parametrize("given", ["cifar10", "cifar10:latest", "@production", "cifar10@"])
def test_anything_else_is_a_usage_error_naming_the_forms(given: str) -> None:
    with pytest.raises(typer.BadParameter) as refused:
        parse_init_from(given)
    assert str(refused.value) == (
        f"{given!r} is none of MODEL:VERSION (cifar10:3), MODEL@ALIAS (cifar10@production) or "
        "weights:ID (weights:wt-...)"
    )
