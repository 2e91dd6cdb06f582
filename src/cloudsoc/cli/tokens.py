"""``cloudsoc tokens``: API tokens for scripts — create (prints the secret once), list, revoke."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.markup import escape
from rich.table import Table

from cloudsoc.api.permissions import Permission
from cloudsoc.cli.alerts import local_time
from cloudsoc.cli.state import err, fail, out
from cloudsoc.cli.users import cli_actor, open_console_store
from cloudsoc.errors import CloudsocError, ConsoleError

app = typer.Typer(help="API tokens for scripts: create, list, revoke.", no_args_is_help=True)
ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="Config file (for the home directory).")]
JsonOption = Annotated[bool, typer.Option("--json", help="JSON output for scripts.")]


def _scopes(values: list[str]) -> list[Permission]:
    scopes = []
    for v in values:
        try:
            scopes.append(Permission(v))
        except ValueError:
            raise ConsoleError(f"--scope {v!r}: use one of {', '.join(p.value for p in Permission)}") from None
    return scopes


@app.command("create")
def create(
    user: Annotated[str, typer.Option("--user", "-u", help="Owner; the token never does more than their role.")],
    scope: Annotated[list[str], typer.Option("--scope", "-s", help="read, ingest, triage, … (repeat).")],
    name: Annotated[str, typer.Option("--name", "-n", help="What the token is for (e.g. the script's name).")],
    json_out: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Create a token and print its secret (only now: only a hash is kept)."""
    try:
        store = open_console_store(config)
        secret, token = store.create_token(user, name, _scopes(scope))
        store.audit(
            cli_actor(), "token.create", token.id, ip="local",
            detail={"user": token.user, "name": token.name, "scopes": sorted(token.scopes)},
        )  # fmt: skip
        store.close()
    except CloudsocError as exc:
        raise fail(exc) from None
    if json_out:
        typer.echo(orjson.dumps({"token": token.export(), "secret": secret}).decode())
        return
    out.print(secret, highlight=False, soft_wrap=True)
    err.print(
        f"token {token.id} for {escape(token.user)} ({', '.join(sorted(token.scopes))}): send it as "
        "`Authorization: Bearer <secret>`; it is not shown again",
        highlight=False,
    )


@app.command("list")
def list_(
    user: Annotated[str | None, typer.Option("--user", "-u", help="Only this user's tokens.")] = None,
    json_out: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """API tokens (never their secrets)."""
    try:
        store = open_console_store(config)
        tokens, _ = store.tokens(user=user)
        store.close()
    except CloudsocError as exc:
        raise fail(exc) from None
    if json_out:
        typer.echo(orjson.dumps([t.export() for t in tokens]).decode())
        return
    table = Table("id", "user", "name", "scopes", "created", "last used", "state")
    for t in tokens:
        state = f"revoked {local_time(t.revoked)}" if t.revoked else "active"
        table.add_row(
            t.id, escape(t.user), escape(t.name), ", ".join(sorted(t.scopes)), local_time(t.created),
            local_time(t.last_used or ""), state,
        )  # fmt: skip
    out.print(table)


@app.command("revoke")
def revoke(token_id: Annotated[str, typer.Argument(metavar="ID", help="Token id (see `tokens list`).")],
           config: ConfigOption = None) -> None:  # fmt: skip
    """Revoke a token: it is refused from the next request on."""
    try:
        store = open_console_store(config)
        token = store.revoke_token(token_id)
        store.audit(cli_actor(), "token.revoke", token.id, ip="local", detail={"user": token.user, "name": token.name})
        store.close()
    except CloudsocError as exc:
        raise fail(exc) from None
    out.print(f"revoked {token.id} ({escape(token.name)}, {escape(token.user)})", highlight=False)
