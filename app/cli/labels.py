"""`trainserve label`: name, tag or annotate a job after it was submitted."""

from typing import Annotated, Any

import typer

from app.cli import render
from app.cli.connection import DEFAULT_URL, AsJson, JobId, Url, key_values, out, server
from app.cli.jobs import PANEL


def new_tags(
    current: dict[str, str], added: dict[str, str], removed: list[str], clear: bool
) -> dict[str, str]:
    """The job's tags after a label command: cleared first, then untagged, then tagged."""
    kept = {} if clear else {key: value for key, value in current.items() if key not in removed}
    return {**kept, **added}


def labels_line(job: dict[str, Any]) -> str:
    """A job's labels on one line: `job 3: name "baseline", tags sweep=lr`."""
    parts = [
        f'name "{job["name"]}"' if job["name"] else "no name",
        f"tags {render.tags_text(job['tags'])}" if job["tags"] else "no tags",
    ]
    if job["notes"]:
        parts.append(f"notes: {job['notes'].splitlines()[0]}")
    return f"job {job['id']}: {render.literal(', '.join(parts))}"


def register(cli: typer.Typer) -> None:
    """Add the command that labels jobs."""

    @cli.command(rich_help_panel=PANEL)
    def label(
        job_id: JobId,
        url: Url = DEFAULT_URL,
        name: Annotated[str | None, typer.Option(help="A new name.")] = None,
        tags: Annotated[
            list[str] | None,
            typer.Option("--tag", metavar="KEY=VALUE", help="Add or change a tag (repeatable)."),
        ] = None,
        untag: Annotated[
            list[str] | None, typer.Option(metavar="KEY", help="Remove a tag (repeatable).")
        ] = None,
        notes: Annotated[str | None, typer.Option(help="New notes, in place of the old.")] = None,
        clear_name: Annotated[bool, typer.Option(help="Remove the name.")] = False,
        clear_tags: Annotated[bool, typer.Option(help="Remove every tag first.")] = False,
        clear_notes: Annotated[bool, typer.Option(help="Remove the notes.")] = False,
        as_json: AsJson = False,
    ) -> None:
        """Name, tag or annotate a job, whatever its status; other labels stay as they are."""
        if name is not None and clear_name:
            raise typer.BadParameter("give --name or --clear-name, not both", param_hint="--name")
        if notes is not None and clear_notes:
            raise typer.BadParameter(
                "give --notes or --clear-notes, not both", param_hint="--notes"
            )
        patch: dict[str, Any] = {}
        if name is not None or clear_name:
            patch["name"] = name
        if notes is not None or clear_notes:
            patch["notes"] = notes
        added = key_values(tags or [], "--tag")
        with server(url) as remote:
            if added or untag or clear_tags:
                # The server replaces all the tags: start from the job's own.
                current = remote.request("GET", f"/jobs/{job_id}")["tags"]
                patch["tags"] = new_tags(current, added, untag or [], clear_tags)
            job = remote.request("PATCH", f"/jobs/{job_id}", json=patch)
        if as_json:
            render.print_json(out, job)
        else:
            out.print(labels_line(job))
