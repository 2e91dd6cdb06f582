"""Options shared by every command (set by the top-level callback) and how commands report errors."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from cloudsoc.config.loader import load_config
from cloudsoc.config.models import Config
from cloudsoc.errors import CloudsocError
from cloudsoc.home import Home

err = Console(stderr=True)
out = Console()


class State:
    """Global CLI options."""

    home: Path | None = None


def home_for(config_path: Path | None) -> tuple[Home, Config | None]:
    config = load_config(config_path) if config_path is not None else None
    return Home(State.home, config), config


def fail(exc: CloudsocError, code: int = 2) -> typer.Exit:
    """Print a cloudsoc error for a person and return the Exit to raise."""
    err.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True, soft_wrap=True)
    return typer.Exit(code)
