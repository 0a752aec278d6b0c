"""What every command that talks to a server shares: its options, its consoles, the server."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from app.cli.remote import DEFAULT_URL, Remote, ServerError

API_KEY_VARIABLE = "TRAINSERVE_API_KEY"
UNAUTHORIZED = 401

Url = Annotated[
    str,
    typer.Option(
        "--url", envvar="TRAINSERVE_URL", help="The server (its API key: $TRAINSERVE_API_KEY)."
    ),
]
JobId = Annotated[int, typer.Argument(min=1, help="The job's id.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the server's JSON as it is.")]

# Result lines are never broken by the console (a terminal wraps them; a pipe keeps them whole);
# tables still fit its width.
out = Console(highlight=False, soft_wrap=True)
# An error is one line, however narrow the terminal.
err = Console(stderr=True, highlight=False, soft_wrap=True)

__all__ = ["DEFAULT_URL", "AsJson", "JobId", "Url", "err", "fail", "key_values", "out", "server"]


@contextmanager
def server(url: str) -> Iterator[Remote]:
    """The server at `url`; a ServerError inside ends the command with its line and exit 1."""
    api_key = os.environ.get(API_KEY_VARIABLE) or None
    remote = Remote(url, api_key)
    try:
        yield remote
    except ServerError as exc:
        if exc.status == UNAUTHORIZED and api_key is None:
            fail(f"the server at {remote.url} requires an API key: set {API_KEY_VARIABLE}")
        if exc.status == UNAUTHORIZED:
            fail(f"the server at {remote.url} refused the API key in {API_KEY_VARIABLE}")
        fail(str(exc))
    finally:
        remote.close()


def key_values(pairs: list[str], option: str) -> dict[str, str]:
    """KEY=VALUE pairs given to `option` as a dict; a usage error (exit 2) for any other shape."""
    found: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint=option)
        found[key] = value
    return found


def fail(message: str) -> NoReturn:
    """End the command with `error: message` on stderr and exit status 1."""
    err.print(f"[red]error:[/] {escape(message)}")
    raise typer.Exit(1)
