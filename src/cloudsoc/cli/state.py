"""Options shared by every command (set by the top-level callback) and how commands report errors."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import cast, get_args

import typer
from rich.console import Console
from rich.markup import escape

from cloudsoc.config.loader import load_config
from cloudsoc.config.models import Config, Format
from cloudsoc.errors import CloudsocError
from cloudsoc.home import Home

# Rich draws tables 80 columns wide when output is not a terminal (a pipe, a file, CI logs): too narrow for
# event and alert tables, which then truncate every cell. Pipes get 160 unless COLUMNS says otherwise.
_PIPE_WIDTH = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160
err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True, width=_PIPE_WIDTH)


class State:
    """Global CLI options."""

    home: Path | None = None


def home_for(config_path: Path | None) -> tuple[Home, Config | None]:
    config = load_config(config_path) if config_path is not None else None
    return Home(State.home, config), config


def fail(exc: CloudsocError, code: int = 2) -> typer.Exit:
    """Print a cloudsoc error for a person and return the Exit to raise."""
    err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, markup=True, soft_wrap=True)
    return typer.Exit(code)


def record_format(value: str) -> Format:
    """Validate a ``--format`` value."""
    for fmt in get_args(Format):
        if value == fmt:
            return cast(Format, fmt)
    raise fail(CloudsocError(f"--format {value!r}: use one of {', '.join(get_args(Format))}"))
