"""``cloudsoc users``: console accounts — add, list, passwd, role, disable, enable, unlock.

Run on the console's machine (it writes ``<home>/console.db``); each change lands in the console's audit log as
``cli:<login name>``. There is no default password anywhere: ``add`` and ``passwd`` prompt, or read stdin.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.markup import escape
from rich.table import Table

from cloudsoc.api.accounts import CONSOLE_FILE, ConsoleStore
from cloudsoc.api.permissions import Role
from cloudsoc.cli.alerts import local_time
from cloudsoc.cli.state import fail, home_for, out
from cloudsoc.errors import CloudsocError, ConsoleError

app = typer.Typer(help="Console users: add, list, passwd, role, disable, enable, unlock.", no_args_is_help=True)
ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="Config file (for the home directory).")]
JsonOption = Annotated[bool, typer.Option("--json", help="JSON output for scripts.")]
StdinOption = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input (one line) instead of a prompt.")
]


def open_console_store(config: Path | None) -> ConsoleStore:
    home, _ = home_for(config)
    return ConsoleStore(home.path / CONSOLE_FILE)


def cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def read_password(from_stdin: bool) -> str:
    """A new password from stdin or a prompt typed twice (never an argument: it would sit in the shell history)."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("New password: ")
        if getpass.getpass("Again: ") != password:
            raise ConsoleError("the two passwords differ")
    if not password:
        raise ConsoleError("empty password")
    return password


def _role(value: str) -> Role:
    try:
        return Role.parse(value)
    except ValueError as exc:
        raise ConsoleError(f"--role: {exc}") from None


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="User name (letters, digits, . _ @ -).")],
    role: Annotated[str, typer.Option("--role", "-r", help="admin, analyst, viewer or auditor.")],
    password_stdin: StdinOption = False,
    config: ConfigOption = None,
) -> None:
    """Add a console user."""
    try:
        wanted = _role(role)
        password = read_password(password_stdin)
        store = open_console_store(config)
        user = store.add_user(name, password, wanted)
        store.audit(cli_actor(), "user.create", user.name, ip="local", detail={"role": user.role.value})
        store.close()
    except CloudsocError as exc:
        raise fail(exc) from None
    out.print(f"added {escape(user.name)} ({user.role.value})", highlight=False)


@app.command("list")
def list_(json_out: JsonOption = False, config: ConfigOption = None) -> None:
    """The console's users."""
    try:
        store = open_console_store(config)
        users, _ = store.users()
        store.close()
    except CloudsocError as exc:
        raise fail(exc) from None
    if json_out:
        typer.echo(orjson.dumps([u.export() for u in users]).decode())
        return
    table = Table("user", "role", "state", "last log-in", "created")
    for u in users:
        state = "disabled" if u.disabled else "locked" if u.locked_until else "active"
        if u.failures and state == "active":
            state += f" ({u.failures} failed)"
        table.add_row(escape(u.name), u.role.value, state, local_time(u.last_login or ""), local_time(u.created))
    out.print(table)


def _change(name: str, config: Path | None, action: str, what: str) -> None:
    try:
        store = open_console_store(config)
        if action == "user.disable":
            store.set_disabled(name, True)
        elif action == "user.enable":
            store.set_disabled(name, False)
        else:
            store.unlock(name)
        store.audit(cli_actor(), action, name, ip="local")
        store.close()
    except CloudsocError as exc:
        raise fail(exc) from None
    out.print(f"{escape(name)}: {what}", highlight=False)


@app.command("passwd")
def passwd(
    name: Annotated[str, typer.Argument(help="User name.")],
    password_stdin: StdinOption = False,
    config: ConfigOption = None,
) -> None:
    """Set a user's password (ends their sessions and clears a lock-out)."""
    try:
        password = read_password(password_stdin)
        store = open_console_store(config)
        store.set_password(name, password)
        store.audit(cli_actor(), "user.passwd", name, ip="local")
        store.close()
    except CloudsocError as exc:
        raise fail(exc) from None
    out.print(f"{escape(name)}: password changed, sessions ended", highlight=False)


@app.command("role")
def role(
    name: Annotated[str, typer.Argument(help="User name.")],
    new_role: Annotated[str, typer.Argument(metavar="ROLE", help="admin, analyst, viewer or auditor.")],
    config: ConfigOption = None,
) -> None:
    """Change a user's role (takes effect at their next request; their tokens shrink with it)."""
    try:
        wanted = _role(new_role)
        store = open_console_store(config)
        store.set_role(name, wanted)
        store.audit(cli_actor(), "user.role", name, ip="local", detail={"role": wanted.value})
        store.close()
    except CloudsocError as exc:
        raise fail(exc) from None
    out.print(f"{escape(name)}: role {wanted.value}", highlight=False)


@app.command("disable")
def disable(name: Annotated[str, typer.Argument(help="User name.")], config: ConfigOption = None) -> None:
    """Disable a user (ends their sessions; their API tokens stop working)."""
    _change(name, config, "user.disable", "disabled, sessions ended")


@app.command("enable")
def enable(name: Annotated[str, typer.Argument(help="User name.")], config: ConfigOption = None) -> None:
    """Enable a disabled user again."""
    _change(name, config, "user.enable", "enabled")


@app.command("unlock")
def unlock(name: Annotated[str, typer.Argument(help="User name.")], config: ConfigOption = None) -> None:
    """Clear a lock-out after too many failed log-ins."""
    _change(name, config, "user.unlock", "unlocked")
