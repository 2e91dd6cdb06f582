"""``cloudsoc demo``: generate a simulated company, feed it through the real pipeline, show what was stored."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from typing import Annotated

import orjson
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from cloudsoc.cli.ingest import run_ingest
from cloudsoc.cli.state import err, fail, home_for, out
from cloudsoc.config.models import PipelineConfig
from cloudsoc.errors import CloudsocError

# What the demo shows after ingesting: (title, query).
SHOWCASE = (
    ("Console logins that failed", "event.action:(ConsoleLogin OR ConsoleSignin) AND event.outcome:failure"),
    ("Access keys created", "event.action:(CreateAccessKey)"),
    ("Admin policy attached", "event.action:(AttachPolicyToUser OR AttachUserPolicy OR PutUserPolicy)"),
    ("Trail stopped", "event.action:(StopLogging OR DeleteTrail)"),
    ("Access denied", "error.code:(AccessDenied OR NoPermission OR Forbidden* OR *Unauthorized*)"),
)


def demo(
    seed: Annotated[int, typer.Option(help="Random seed: the same seed writes the same company.")] = 7,
    days: Annotated[int, typer.Option(min=1, help="Days of activity.")] = 7,
    events: Annotated[int, typer.Option(min=1000, help="At least this many events.")] = 50_000,
    fresh: Annotated[bool, typer.Option(help="Delete the previous demo store and data first.")] = True,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON summary object.")] = False,
) -> None:
    """Generate a simulated company (30+ people, RAM/IAM users, access keys, a week of ActionTrail and
    CloudTrail, and an attack story), ingest it through the real pipeline and show what was stored."""
    from cloudsoc.demo.generator import DemoGenerator, DemoOptions  # the generator is only needed here

    try:
        home, _ = home_for(None)
        data_dir = home.path / "demo-logs"
        if fresh:
            shutil.rmtree(data_dir, ignore_errors=True)
            if home.store_path.exists():
                home.store_path.unlink()
                wal = home.store_path.with_suffix(home.store_path.suffix + ".wal")
                wal.unlink(missing_ok=True)
        gen = DemoGenerator(DemoOptions(seed=seed, days=days, min_events=events, end=_end_of_today()))
        with Progress(
            TextColumn("[bold blue]generate"), BarColumn(), MofNCompleteColumn(), console=err, disable=json_out
        ) as bar:
            task = bar.add_task("generate", total=None)
            summary = gen.write(data_dir, progress=lambda n: bar.update(task, completed=n))
        storage = home.open_storage()
        try:
            counters = run_ingest(storage, [data_dir], "auto", PipelineConfig(), show_progress=not json_out)
            found = {title: storage.search(q, limit=5) for title, q in SHOWCASE}
            stats = storage.stats()
        finally:
            storage.close()
    except CloudsocError as exc:
        raise fail(exc) from None
    if json_out:
        typer.echo(
            orjson.dumps(
                {
                    "generated": summary.events_total,
                    "files": len(summary.files),
                    "ingest": counters.summary(),
                    "store": str(home.store_path),
                    "showcase": {t: r.total for t, r in found.items()},
                }
            ).decode()
        )
        return
    out.print(
        f"\n[bold]Simulated company[/]: {summary.people} people, {summary.events_total:,} events in "
        f"{len(summary.files):,} files under {data_dir}"
    )
    s = counters.summary()
    out.print(
        f"[bold]Ingested[/]: {s['stored']:,} events stored ({s['duplicates']:,} duplicates, "
        f"{s['dead_letters']:,} dead letters) in {s['seconds']:.1f} s → {home.store_path}"
    )
    out.print(
        f"[bold]Store[/]: {stats['events']:,} events, by cloud: "
        + ", ".join(f"{k} {v:,}" for k, v in stats["by_provider"].items())
        + f"; from {stats['first']:%Y-%m-%d %H:%M} to {stats['last']:%Y-%m-%d %H:%M} UTC"
    )
    table = Table(title="What the attack story left behind", show_edge=False, header_style="bold")
    table.add_column("search")
    table.add_column("hits", justify="right")
    table.add_column("latest")
    for title, result in found.items():
        latest = result.events[0] if result.events else {}
        who = (latest.get("user") or {}).get("name", "")
        src = (latest.get("source") or {}).get("ip", "")
        action = (latest.get("event") or {}).get("action", "")
        table.add_row(title, f"{result.total:,}", f"{latest.get('@timestamp', '')} {action} {who} {src}".strip())
    out.print(table)
    out.print(
        "\nTry: [bold]cloudsoc search 'event.action:ConsoleLogin AND NOT event.outcome:success'[/]  "
        "[bold]cloudsoc search --json 'cloud.provider:aliyun' --limit 3[/]"
    )


def _end_of_today() -> datetime:
    now = datetime.now(UTC)
    return now.replace(minute=0, second=0, microsecond=0)
