"""``cloudsoc demo``: generate a simulated company, feed it through the real pipeline, show what was stored."""

from __future__ import annotations

import shutil
from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from cloudsoc.cli.state import err, fail, home_for, out
from cloudsoc.config.models import PipelineConfig
from cloudsoc.detect.alert import Alert, Severity
from cloudsoc.errors import CloudsocError
from cloudsoc.event import lookup
from cloudsoc.home import Home
from cloudsoc.storage.layout import StoreLayout

if TYPE_CHECKING:
    from cloudsoc.storage.duckdb import DuckdbStorage

CLOUD = {"aliyun_actiontrail": "aliyun", "aws_cloudtrail": "aws"}


def demo(
    seed: Annotated[int, typer.Option(help="Random seed: the same seed writes the same company.")] = 7,
    days: Annotated[int, typer.Option(min=2, help="Days of activity.")] = 7,
    events: Annotated[int, typer.Option(min=1000, help="At least this many events.")] = 50_000,
    fresh: Annotated[bool, typer.Option(help="Delete the previous demo store and data first.")] = True,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON summary object.")] = False,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve/--no-serve", help="Then serve the web console on console.host:console.port until Ctrl-C."
        ),
    ] = False,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Console port (default 8080).")] = None,
) -> None:
    """Generate a simulated company (30+ people, RAM/IAM users, access keys, a week of ActionTrail and
    CloudTrail in the real delivery layouts, and an attack story), ingest it through the real pipeline and
    show what was stored."""
    from cloudsoc.cli.ingest import run_ingest
    from cloudsoc.demo.generator import DemoGenerator, DemoOptions  # the generator is only needed here

    try:
        home, _ = home_for(None)
        data_dir = home.path / "demo-logs"
        journal_dir = home.path / "demo-bastion"  # apart: the trail directory is read as trail files
        if fresh:
            shutil.rmtree(data_dir, ignore_errors=True)
            shutil.rmtree(journal_dir, ignore_errors=True)
            StoreLayout.of(home.store_path).remove()
            (home.path / "status.json").unlink(missing_ok=True)
            for suffix in ("", "-wal", "-shm"):  # the demo's alerts go with its events
                (home.path / f"alerts.db{suffix}").unlink(missing_ok=True)
        end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        gen = DemoGenerator(DemoOptions(seed=seed, days=days, min_events=events, end=end))
        with Progress(
            TextColumn("[bold blue]generate"), BarColumn(), MofNCompleteColumn(), console=err, disable=json_out
        ) as bar:
            task = bar.add_task("generate", total=events)
            summary = gen.write(data_dir, progress=lambda n: bar.update(task, completed=n))
            bastion = gen.write_bastion(journal_dir, home.path)
        generated = summary.events_total + len(bastion.docs)
        storage = home.open_storage()
        stage = home.detection_stage()
        try:
            counters = run_ingest(
                storage,
                [data_dir],
                "auto",
                PipelineConfig(),
                show_progress=not json_out,
                status_path=home.path / "status.json",
                detection=stage,
                ecs_paths=[journal_dir],
            )
            alerts = _alerts(home)
            # the bastion session came first: the same leak held the bastion password and TOTP secret
            story = [_step(storage, step, alerts) for step in [bastion.step, *summary.attack]]
            stats = storage.stats()
        finally:
            storage.close()
            if stage is not None:
                stage.close()
    except CloudsocError as exc:
        raise fail(exc) from None
    if json_out:
        typer.echo(
            orjson.dumps(
                {
                    "people": summary.people,
                    "generated": generated,
                    "bastion": {
                        "events": len(bastion.docs),
                        "sessions": len(bastion.sessions),
                        "recordings": sum(s.recorded for s in bastion.sessions),
                    },
                    "files": len(summary.files),
                    "ingest": counters.summary(),
                    "store": str(home.store_path),
                    "attack": story,
                    "alerts": dict(Counter(a.rule_id for a in alerts).most_common()),
                }
            ).decode()
        )
        if serve:
            _serve(home, port)
        return
    local = datetime.now().astimezone().tzinfo
    by_cloud = ", ".join(f"{CLOUD.get(k, k)} {v:,}" for k, v in summary.events_by_provider.items())
    out.print(
        f"\n[bold]Simulated company[/]: {summary.people} people, keys leaked: "
        + ", ".join(f"{CLOUD.get(k, k)} {v}" for k, v in summary.leaked_access_keys.items())
    )
    out.print(
        f"[bold]Generated[/]: {generated:,} events ({by_cloud}, bastion {len(bastion.docs):,}) in "
        f"{len(summary.files):,} trail files and the bastion journal"
    )
    out.print(
        f"           {len(bastion.sessions)} bastion sessions, {sum(s.recorded for s in bastion.sessions)} "
        "recorded (replay them on the console's Bastion page)"
    )
    out.print(f"           under {data_dir} (AliyunLogs/Actiontrail/… and AWSLogs/…/CloudTrail/… layouts)")
    s = counters.summary()
    rate = s["stored"] / s["seconds"] if s["seconds"] else 0
    out.print(
        f"[bold]Ingested[/]: {s['stored']:,} events stored, {s['duplicates']:,} duplicates, "
        f"{s['dead_letters']:,} dead letters in {s['seconds']:.1f} s ({rate:,.0f} events/s)"
    )
    out.print(
        f"[bold]Store[/]: {stats['events']:,} events from {_local(stats['first'], local)} to "
        f"{_local(stats['last'], local)} in {home.store_path.parent}"
    )
    table = Table(title="\nThe attack story, as found in the store", header_style="bold", show_edge=False)
    zone_name = datetime.now().astimezone().strftime("%Z")
    for col in ("#", "step", "cloud", f"first seen ({zone_name})", "source", "stored", "alerted by"):
        table.add_column(col, no_wrap=col != "alerted by")
    for i, step in enumerate(story, 1):
        found = f"{step['stored']}/{step['events']}"
        fired = ", ".join(r.rsplit(".", 1)[0] for r in step["alerts"])
        table.add_row(
            str(i),
            step["name"],
            step["cloud"],
            _local(step["first"], local, "%m-%d %H:%M"),
            step["source_ip"],
            found if step["stored"] == step["events"] else f"[red]{found}[/]",
            fired or "[red]-[/]",
        )
    out.print(table)
    by_severity = Counter(a.severity.value for a in alerts)
    out.print(
        f"\n[bold]Alerts[/]: {len(alerts)} "
        f"({', '.join(f'{n} {sev}' for sev, n in sorted(by_severity.items(), key=lambda x: -Severity(x[0]).rank))}) "
        f"from {len({a.rule_id for a in alerts})} rules; "
        + (
            "every step of the story raised one. "
            if all(step["alerts"] for step in story)
            else f"[red]{sum(not step['alerts'] for step in story)} step(s) raised none[/]. "
        )
        + "Triage them with [bold]cloudsoc alerts list[/]."
    )
    ip = summary.attacker_ips[0] if summary.attacker_ips else ""
    out.print("\nTry:")
    out.print(f"  cloudsoc search 'source.ip:{ip}'", markup=False)
    out.print(
        "  cloudsoc search 'event.action:(ConsoleLogin OR ConsoleSignin) AND NOT event.outcome:success'", markup=False
    )
    out.print("  cloudsoc search --since 7d --json 'event.action:StopLogging'", markup=False)
    out.print("  cloudsoc search 'event.action:bastion-command AND NOT cloudsoc.bastion.verdict:accept'", markup=False)
    out.print("  cloudsoc alerts list --min-severity high", markup=False)
    out.print("  cloudsoc alerts show ID        (why it fired, what to do, the events)", markup=False)
    if serve:
        _serve(home, port)
    else:
        out.print("  cloudsoc serve                 (the web console on http://127.0.0.1:8080/)", markup=False)


def _serve(home: Home, port: int | None) -> None:
    """The console over the demo's stores, until Ctrl-C."""
    import signal
    import threading

    from cloudsoc.api.server import ConsoleServer
    from cloudsoc.cli.serve import prepare

    cfg = home.config
    try:
        prepare(home.path, cfg, cfg.console.host)
        web = ConsoleServer(home.path, cfg, port=port)
        url = web.start()
    except CloudsocError as exc:
        raise fail(exc) from None
    out.print(f"\n[bold]Console[/]: {url}  (Ctrl-C stops)", highlight=False)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        stop.wait()
    finally:
        web.stop()


def _alerts(home: Home) -> list[Alert]:
    store = home.open_alerts()
    try:
        return [row.alert for row in store.query(limit=100_000)]
    finally:
        store.close()


def _step(storage: DuckdbStorage, step: Any, alerts: list[Alert]) -> dict[str, Any]:
    ids = " OR ".join(f'"{i}"' for i in step.event_ids)
    found = storage.search(f"event.id:({ids})", limit=len(step.event_ids) or 1)
    times = sorted(str(lookup(doc, ["@timestamp"])) for doc in found.events)
    return {
        "name": step.name,
        "cloud": CLOUD.get(step.provider, step.provider),
        "events": len(step.event_ids),
        "stored": found.total,
        "first": datetime.fromisoformat(times[0]) if times else None,
        "source_ip": step.source_ip,
        "alerts": sorted({a.rule_id for a in alerts if set(a.event_ids) & set(step.event_ids)}),
    }


def _local(t: datetime | None, zone: Any, fmt: str = "%Y-%m-%d %H:%M %Z") -> str:
    if t is None:
        return "-"
    aware = t if t.tzinfo else t.replace(tzinfo=UTC)
    return aware.astimezone(zone).strftime(fmt)
