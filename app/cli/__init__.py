"""The `trainserve` command: run the service, or talk to one."""

from typing import Annotated

import typer

from app.cli import (
    comparison,
    datasets,
    jobs,
    labels,
    models,
    predicting,
    server,
    weights,
    workers,
)
from app.version import package_version

cli = typer.Typer(
    name="trainserve",
    help="Train image classifiers over REST and serve them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _print_version(asked: bool) -> None:
    if asked:
        print(f"trainserve {package_version()}")
        raise typer.Exit()


@cli.callback()
def _options(
    _version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """Train image classifiers over REST and serve them."""


server.register(cli)
jobs.register(cli)
labels.register(cli)
comparison.register(cli)
workers.register(cli)
predicting.register(cli)
datasets.register(cli)
weights.register(cli)
models.register(cli)


def main() -> None:
    """Entry point of the `trainserve` console script."""
    cli()
