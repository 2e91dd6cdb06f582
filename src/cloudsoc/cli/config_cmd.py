"""``cloudsoc config``: the documented example config and the reference."""

from __future__ import annotations

import typer

from cloudsoc.config.reference import example_yaml, reference_markdown

app = typer.Typer(help="Print a documented example config or the config reference.", no_args_is_help=True)


@app.command("example")
def example() -> None:
    """Print a complete config with every setting, its default and its meaning."""
    typer.echo(example_yaml(), nl=False)


@app.command("reference")
def reference() -> None:
    """Print the config reference as Markdown (docs/specs/config.md)."""
    typer.echo(reference_markdown(), nl=False)
