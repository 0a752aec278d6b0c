"""The `trainserve` command: run the service, or talk to one."""

import typer

from app.cli import client, models, server

cli = typer.Typer(
    name="trainserve",
    help="Train image classifiers over REST and serve them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
server.register(cli)
client.register(cli)
models.register(cli)


def main() -> None:
    """Entry point of the `trainserve` console script."""
    cli()
