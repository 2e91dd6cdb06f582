"""``cloudsoc``: the entry point and top-level options."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cloudsoc import __version__
from cloudsoc.cli import config_cmd, deadletters, demo, ingest, run, search, status
from cloudsoc.cli.state import State

app = typer.Typer(
    name="cloudsoc",
    help="A small security-operations centre for cloud-first companies: cloud audit logs in, "
    "normalised to ECS, stored, searched and (soon) detected on.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cloudsoc {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            envvar="CLOUDSOC_HOME",
            help="State directory (event store, checkpoints, dead letters). Default: ./cloudsoc-data",
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    State.home = home


app.command("ingest")(ingest.ingest)
app.command("search")(search.search)
app.command("run")(run.run)
app.command("validate")(run.validate)
app.command("status")(status.status)
app.command("demo")(demo.demo)
app.add_typer(config_cmd.app, name="config")
app.add_typer(deadletters.app, name="deadletters")


def main() -> None:
    app()
