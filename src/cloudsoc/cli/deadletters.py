"""``cloudsoc deadletters``: inspect and replay rejected records."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.markup import escape
from rich.table import Table

from cloudsoc.cli.state import err, fail, home_for, out, record_format
from cloudsoc.errors import CloudsocError
from cloudsoc.storage.base import StoredDeadLetter

app = typer.Typer(help="Records that were rejected: list, show (with raw bytes), replay.", no_args_is_help=True)
ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="Config file (for the storage path).")]


def _as_json(d: StoredDeadLetter, *, raw: bool) -> dict[str, object]:
    doc: dict[str, object] = {
        "id": d.id,
        "received": d.received.isoformat() + "Z",
        "input": d.input,
        "path": d.path,
        "index": d.index,
        "offset": d.offset,
        "parser": d.parser,
        "reason": d.reason,
        "size": len(d.raw),
        "replayed": d.replayed,
    }
    if raw:
        doc["raw"] = d.raw.decode("utf-8", "backslashreplace")
    return doc


@app.command("list")
def list_(
    limit: Annotated[int, typer.Option(min=1)] = 100,
    all_: Annotated[bool, typer.Option("--all", help="Include replayed ones.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    config: ConfigOption = None,
) -> None:
    """List dead letters: id, origin (file, record index, byte offset), reason."""
    try:
        home, _ = home_for(config)
        storage = home.open_storage(read_only=True)
        rows = storage.dead_letters(limit=limit, include_replayed=all_)
        storage.close()
    except CloudsocError as exc:
        raise fail(exc) from None
    if json_out:
        for d in rows:
            typer.echo(orjson.dumps(_as_json(d, raw=False)).decode())
        return
    table = Table(show_edge=False, header_style="bold")
    for col in ("id", "received (UTC)", "origin", "parser", "reason", "bytes"):
        table.add_column(col, overflow="fold")
    for d in rows:
        where = f"{d.path}" + (f" #{d.index}" if d.index >= 0 else "") + (f" @{d.offset}" if d.offset >= 0 else "")
        table.add_row(  # paths and reasons carry log content: never markup
            str(d.id),
            f"{d.received:%Y-%m-%d %H:%M:%S}",
            escape(where),
            d.parser,
            escape(d.reason[:200]),
            f"{len(d.raw):,}",
        )
    out.print(table)
    err.print(f"{len(rows)} dead letter(s); `cloudsoc deadletters show ID` prints one with its raw bytes")


@app.command("show")
def show(
    dead_letter_id: Annotated[int, typer.Argument(help="The id from `deadletters list`.")],
    raw: Annotated[bool, typer.Option("--raw", help="Write only the raw bytes to stdout.")] = False,
    json_out: Annotated[bool, typer.Option("--json")] = False,
    config: ConfigOption = None,
) -> None:
    """Show one dead letter with its reason, origin and raw bytes."""
    try:
        home, _ = home_for(config)
        storage = home.open_storage(read_only=True)
        d = storage.dead_letter(dead_letter_id)
        storage.close()
    except CloudsocError as exc:
        raise fail(exc) from None
    if d is None:
        raise fail(CloudsocError(f"no dead letter with id {dead_letter_id}; see `cloudsoc deadletters list`"))
    if raw:
        sys.stdout.buffer.write(d.raw)
        return
    if json_out:
        typer.echo(orjson.dumps(_as_json(d, raw=True)).decode())
        return
    for k, v in _as_json(d, raw=False).items():
        out.print(f"[bold]{k}:[/] {escape(str(v))}", highlight=False)
    preview = d.raw[:4096].decode("utf-8", "backslashreplace")
    out.print("[bold]raw:[/]", highlight=False)
    out.print(preview + ("…" if len(d.raw) > 4096 else ""), markup=False, highlight=False)


@app.command("replay")
def replay(
    ids: Annotated[list[int] | None, typer.Argument(help="Dead letter ids; none means all not yet replayed.")] = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="Parse as: auto, cloudtrail, actiontrail, ndjson, ecs.")
    ] = "auto",
    json_out: Annotated[bool, typer.Option("--json")] = False,
    config: ConfigOption = None,
) -> None:
    """Parse dead letters again (after a fix, or with --format) and store what now parses."""
    from cloudsoc.pipeline.processor import Processor
    from cloudsoc.storage.duckdb import origin_of

    record_fmt = record_format(fmt)
    try:
        home, _ = home_for(config)
        storage = home.open_storage()
        try:
            rows = (
                [d for i in ids if (d := storage.dead_letter(i)) is not None]
                if ids
                else storage.dead_letters(limit=1_000_000)
            )
            processor = Processor(record_fmt)
            fixed: list[int] = []
            stored = still = 0
            for d in rows:
                if d.replayed:
                    continue
                origin = origin_of(d)
                events, dead, _n = processor.process(d.raw, origin.input, origin.path)
                if dead:
                    still += 1
                    continue
                result = storage.write(events, [], [])
                stored += result.stored
                fixed.append(d.id)
            storage.mark_replayed(fixed)
        finally:
            storage.close()
    except CloudsocError as exc:
        raise fail(exc) from None
    summary = {"replayed": len(fixed), "stored": stored, "still_failing": still}
    if json_out:
        typer.echo(orjson.dumps(summary).decode())
    else:
        out.print(f"replayed {len(fixed)} dead letter(s), stored {stored} event(s); {still} still fail")
