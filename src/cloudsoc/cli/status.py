"""``cloudsoc status``: is the pipeline running, what has it done, what is stored — without stopping it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.markup import escape

from cloudsoc.cli.state import fail, home_for, out
from cloudsoc.errors import CloudsocError
from cloudsoc.pipeline.metrics import writer_running
from cloudsoc.storage.layout import StoreLayout


def _alerts(home: Path) -> dict[str, Any]:
    """Alert counts by triage status and the outputs' delivery counts, when the alert store exists."""
    from cloudsoc.outputs.store import Outbox
    from cloudsoc.storage.alerts import ALERTS_FILE, AlertStore

    if not (home / ALERTS_FILE).exists():
        return {}
    store = AlertStore(home / ALERTS_FILE)
    try:
        return {"alerts": store.counts(), "deliveries": Outbox(store.conn).counts()}
    finally:
        store.close()


def status(
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Config file (for the home).")] = None,
) -> None:
    """Show the last pipeline run (`status.json`: counters, inputs) and what the store holds. Needs no lock,
    so it works while `cloudsoc run` is writing."""
    try:
        home, _ = home_for(config)
    except CloudsocError as exc:
        raise fail(exc) from None
    try:
        layout = StoreLayout.of(home.store_path)
        segments = layout.read_manifest() if layout.manifest.exists() else []
        status_path = home.path / "status.json"
        run: dict[str, Any] = orjson.loads(status_path.read_bytes()) if status_path.exists() else {}
    except (OSError, orjson.JSONDecodeError) as exc:
        raise fail(CloudsocError(f"cannot read the state under {home.path}: {exc}")) from None
    except CloudsocError as exc:
        raise fail(exc) from None
    store = {
        "events": sum(s["rows"] for s in segments),
        "segments": len(segments),
        "first": min((s["ts_min"] for s in segments), default=None),
        "last": max((s["ts_max"] for s in segments), default=None),
    }
    alerts = _alerts(home.path)
    running = bool(run) and writer_running(run.get("pid"))
    if json_out:
        doc = {"home": str(home.path), "running": running, "run": run, "store": store, **alerts}
        typer.echo(orjson.dumps(doc).decode())
        return
    out.print(f"[bold]home[/] {escape(str(home.path))}")
    out.print(
        f"[bold]store[/] {store['events']:,} events in {store['segments']} segments"
        + (f", {store['first']} … {store['last']}" if store["first"] else "")
    )
    if alerts:
        by_status = ", ".join(f"{k} {v:,}" for k, v in sorted(alerts["alerts"].items())) or "none yet"
        d = alerts["deliveries"]
        failed = f"[red]{d['failed']:,} failed[/]" if d["failed"] else "0 failed"
        out.print(
            f"[bold]alerts[/] {by_status}; deliveries: {d['delivered']:,} delivered, {d['pending']:,} pending, {failed}"
        )
    if not run:
        out.print("[bold]pipeline[/] no run recorded yet (`cloudsoc ingest` or `cloudsoc run` writes status.json)")
        return
    c = run.get("counters", {})
    state = "[green]running[/]" if running else "stopped"
    out.print(
        f"[bold]pipeline[/] {state} (pid {run.get('pid')}, started {run.get('started')}, updated {run.get('updated')})"
    )
    out.print(
        f"  files {c.get('files', 0):,}, records {c.get('records', 0):,}, stored {c.get('stored', 0):,}, "
        f"duplicates {c.get('duplicates', 0):,}, dead letters {c.get('dead_letters', 0):,}, "
        f"alerts {c.get('alerts', 0):,}, queued {run.get('queued', 0)}"
    )
    for name, info in run.get("inputs", {}).items():
        details = ", ".join(f"{k} {v}" for k, v in info.items() if k != "type")
        out.print(f"  input [bold]{escape(name)}[/] ({info.get('type')}): {escape(details)}")
