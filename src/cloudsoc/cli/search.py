"""``cloudsoc search``: the Kibana-style query language over stored events."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
import typer
from rich.markup import escape
from rich.table import Table

from cloudsoc.cli.state import err, fail, home_for, out
from cloudsoc.cli.timeparse import parse_time
from cloudsoc.errors import CloudsocError
from cloudsoc.event import lookup


def search(
    query: Annotated[
        str,
        typer.Argument(
            help="e.g. 'event.action:ConsoleLogin AND NOT event.outcome:success', 'source.ip:203.0.113.0/24', "
            "'user.name:admin*', 'cloud.provider:(aliyun OR aws)', or free text. See docs/specs/query-language.md."
        ),
    ] = "*",
    since: Annotated[str | None, typer.Option(help="Start: a duration back from now (24h, 7d) or an ISO time.")] = None,
    until: Annotated[str | None, typer.Option(help="End (exclusive): a duration back from now or an ISO time.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many events, newest first.")] = 100,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print matching events as JSONL (stored ECS documents).")
    ] = False,
    tz: Annotated[
        str | None, typer.Option("--tz", help="Show times in this time zone, e.g. Asia/Shanghai (default: local).")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Config file (for the storage path).")] = None,
) -> None:
    """Search stored events, newest first."""
    try:
        now = datetime.now(UTC)
        t0 = parse_time(since, now=now) if since else None
        t1 = parse_time(until, now=now) if until else None
        zone = _zone(tz)
        home, _cfg = home_for(config)
        storage = home.open_storage(read_only=True)
        try:
            result = storage.search(query, since=t0, until=t1, limit=limit)
        finally:
            storage.close()
    except CloudsocError as exc:
        raise fail(exc) from None
    if json_out:
        for doc in result.events:
            typer.echo(orjson.dumps(doc).decode())
        return
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    offset = datetime.now(zone).strftime("%z")
    table.add_column(f"time ({offset[:3]}:{offset[3:]})", no_wrap=True)
    for col in ("action", "outcome", "user", "source"):
        table.add_column(col, no_wrap=True)
    table.add_column("cloud / region", overflow="fold")
    table.add_column("account", overflow="ellipsis", max_width=14)
    for doc in result.events:
        table.add_row(  # stored values are log content: never markup
            _time(doc.get("@timestamp"), zone),
            _get(doc, "event", "action"),
            _outcome(_get(doc, "event", "outcome")),
            _get(doc, "user", "name"),
            _get(doc, "source", "ip") or _get(doc, "source", "address"),
            f"{_get(doc, 'cloud', 'provider')} {_get(doc, 'cloud', 'region')}",
            _get(doc, "cloud", "account", "id"),
        )
    out.print(table)
    err.print(
        f"{len(result.events):,} of {result.total:,} matching events shown ({result.seconds * 1000:.0f} ms)",
        highlight=False,
    )


def _zone(name: str | None) -> Any:
    if not name:
        return datetime.now().astimezone().tzinfo
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CloudsocError(f"unknown time zone {name!r}: use an IANA name such as Asia/Shanghai or UTC") from None


def _time(value: Any, zone: Any) -> str:
    if not isinstance(value, str):
        return ""
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return value
    return t.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def _get(doc: dict[str, Any], *path: str) -> str:
    value = lookup(doc, path)
    return "" if value is None else escape(str(value))


def _outcome(value: str) -> str:
    return {"success": "[green]success[/]", "failure": "[red]failure[/]"}.get(value, value)
