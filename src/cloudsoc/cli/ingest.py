"""``cloudsoc ingest``: read files and directory trees once, store every event exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from cloudsoc.cli.state import err, fail, home_for, out, record_format
from cloudsoc.config.models import Format, PipelineConfig
from cloudsoc.errors import CloudsocError

if TYPE_CHECKING:  # the pipeline (Arrow, DuckDB, httpx) loads only when a command runs it: a snappier CLI
    from cloudsoc.inputs.base import FileData
    from cloudsoc.pipeline.detection import DetectionStage
    from cloudsoc.pipeline.metrics import Counters
    from cloudsoc.storage.base import Storage


def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files (.json, .json.gz, NDJSON) or directory trees.")],
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help="auto (detect per record), cloudtrail, actiontrail, ndjson (one record per line), or ecs (NDJSON of "
            "ECS documents with @timestamp and event.id).",
        ),
    ] = "auto",
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON summary object.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar on stderr.")] = True,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Config file (for storage and batch settings).")
    ] = None,
) -> None:
    """Ingest ActionTrail / CloudTrail files: gzip or plain, delivery layouts, SLS/EventBridge wrappers, NDJSON.

    Re-running on the same paths stores nothing twice: unchanged files are skipped by checkpoint, and events
    are de-duplicated by their event id. Records that cannot be parsed go to the dead-letter store
    (`cloudsoc deadletters list`).
    """
    record_fmt = record_format(fmt)
    try:
        home, cfg = home_for(config)
        storage = home.open_storage()
    except CloudsocError as exc:
        raise fail(exc) from None
    stage = None
    try:
        stage = home.detection_stage()
        counters = run_ingest(
            storage,
            paths,
            record_fmt,
            cfg.pipeline if cfg else PipelineConfig(),
            show_progress=progress and err.is_terminal,
            status_path=home.path / "status.json",
            detection=stage,
        )
    except CloudsocError as exc:
        raise fail(exc) from None
    finally:
        storage.close()
        if stage is not None:
            stage.close()
    if json_out:
        typer.echo(orjson.dumps(counters.summary()).decode())
        return
    s = counters.summary()
    rate = s["records"] / s["seconds"] if s["seconds"] else 0
    out.print(
        f"[bold]{s['files']}[/] files ({s['skipped_files']} unchanged, skipped), [bold]{s['records']:,}[/] records: "
        f"[green]{s['stored']:,} stored[/], {s['duplicates']:,} duplicates, "
        f"[{'red' if s['dead_letters'] else 'dim'}]{s['dead_letters']:,} dead letters[/] "
        f"in {s['seconds']:.1f} s ({rate:,.0f} records/s); store: {home.store_path}"
    )
    if s["dead_letters"]:
        out.print("  see them with [bold]cloudsoc deadletters list[/]")
    if s["alerts"]:
        out.print(f"  [bold yellow]{s['alerts']:,} new alert(s)[/]: see them with [bold]cloudsoc alerts list[/]")


def run_ingest(
    storage: Storage,
    paths: list[Path],
    fmt: Format,
    pipeline: PipelineConfig,
    *,
    show_progress: bool = False,
    status_path: Path | None = None,
    detection: DetectionStage | None = None,
    ecs_paths: Sequence[Path] = (),
) -> Counters:
    """Ingest ``paths`` into ``storage`` (shared by ``ingest`` and ``demo``); ``ecs_paths`` are read as ECS
    documents (the demo's bastion journal) in the same run."""
    from cloudsoc.bastion.layout import BastionLayout
    from cloudsoc.cli.run import BASTION_INPUT
    from cloudsoc.inputs.files import Files
    from cloudsoc.pipeline.runner import Runner, run_until_signal

    sources = [Files(paths, fmt=fmt)]
    if ecs_paths:
        sources.append(Files(ecs_paths, input_name=BASTION_INPUT, fmt="ecs", include=(BastionLayout.JOURNAL_SEGMENTS,)))
    total = sum(f.size for source in sources for f in source.plan(storage.checkpoints(source.input_name)))
    bar = Progress(
        TextColumn("[bold blue]ingest"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TextColumn("{task.fields[events]} events"),
        TimeRemainingColumn(),
        console=err,
        disable=not show_progress,
        transient=False,
    )
    task = bar.add_task("ingest", total=total, events="0")

    def on_file(f: FileData) -> None:
        bar.update(task, advance=f.size, events=f"{runner.counters.stored:,}")

    runner = Runner(storage, pipeline, on_file=on_file, status_path=status_path, detection=detection)
    with bar:
        counters = asyncio.run(run_until_signal(runner, sources))
    counters.skipped_files = sum(source.skipped for source in sources)
    return counters
