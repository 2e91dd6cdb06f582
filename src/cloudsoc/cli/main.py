"""``cloudsoc``: the entry point and top-level options."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from cloudsoc import __version__
from cloudsoc.cli import (
    alerts,
    bastion,
    config_cmd,
    deadletters,
    demo,
    detect,
    ingest,
    intel,
    rules,
    run,
    search,
    serve,
    status,
    tokens,
    users,
)
from cloudsoc.cli.state import State, err

app = typer.Typer(
    name="cloudsoc",
    help="A small security-operations centre for cloud-first companies: cloud audit logs in, "
    "normalised to ECS, stored, searched, detected on and triaged.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
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
app.command("detect")(detect.detect)
app.command("hunt")(detect.hunt)
app.command("serve")(serve.serve)
app.add_typer(rules.app, name="rules")
app.add_typer(alerts.app, name="alerts")
app.add_typer(intel.app, name="intel")
app.add_typer(config_cmd.app, name="config")
app.add_typer(deadletters.app, name="deadletters")
app.add_typer(users.app, name="users")
app.add_typer(tokens.app, name="tokens")
app.add_typer(bastion.app, name="bastion")


def main() -> None:
    try:
        app()
    except Exception as exc:
        if os.environ.get("CLOUDSOC_DEBUG"):
            raise
        # A bug or an environment problem we did not foresee: say what it was, not a wall of traceback.
        err.print(
            f"[bold red]error:[/] unexpected {type(exc).__name__}: {escape(str(exc))}\n"
            "  run again with CLOUDSOC_DEBUG=1 for the traceback, and please report it",
            markup=True,
            highlight=False,
        )
        raise SystemExit(1) from None
