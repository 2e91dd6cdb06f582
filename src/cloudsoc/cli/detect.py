"""``cloudsoc detect`` (offline, over files) and ``cloudsoc hunt`` (over stored history)."""

from __future__ import annotations

import contextlib
import fnmatch
import functools
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from cloudsoc.cli.alerts import print_alerts
from cloudsoc.cli.state import err, fail, home_for, record_format
from cloudsoc.cli.timeparse import parse_time
from cloudsoc.config.models import DetectionConfig
from cloudsoc.detect.loader import LoadedRules, load_file, load_rules
from cloudsoc.errors import CloudsocError

if TYPE_CHECKING:  # the pipeline (and outputs' HTTP client) load only when a command runs
    from cloudsoc.detect.alert import Alert

RulesOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--rules", "-r", help="Sigma / ElastAlert rule files or directories (repeatable); replaces the config's."
    ),
]
ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="Config file (detection settings).")]


def _detection_config(config: Path | None) -> DetectionConfig:
    _, cfg = home_for(config)
    return cfg.detection if cfg is not None else DetectionConfig()


def _report_skipped(loaded: LoadedRules) -> None:
    for s in loaded.skipped:
        err.print(f"[yellow]skipped[/] {escape(s.source)} {escape(s.title)}: {escape(s.reason)}")


def detect(
    paths: Annotated[list[Path], typer.Argument(help="Files (.json, .json.gz, NDJSON) or directory trees.")],
    rules: RulesOption = None,
    builtin: Annotated[bool, typer.Option(help="Run the built-in cloud rule pack.")] = True,
    fmt: Annotated[str, typer.Option("--format", "-f", help="auto, cloudtrail, actiontrail, ndjson or ecs.")] = "auto",
    json_out: Annotated[
        bool,
        typer.Option("--json", help="One JSON object per alert: rule.id, rule.name, severity, event.ids, matched …"),
    ] = False,
    events: Annotated[bool, typer.Option("--events", help="With --json: include the matching events.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar on stderr.")] = True,
    workers: Annotated[
        int,
        typer.Option(min=0, help="Processes that read and parse files (0: one per usable core; 1: this process only)."),
    ] = 0,
    config: ConfigOption = None,
) -> None:
    """Run detection rules over files without storing anything (fresh rule state every run).

    Reads the same files as `ingest`; prints the alerts. The built-in pack runs unless --no-builtin; add Sigma or
    ElastAlert rules with --rules.
    """
    from cloudsoc.pipeline.detection import DetectionStage, ScanPool, scan_files
    from cloudsoc.pipeline.memory import batch_gc
    from cloudsoc.pipeline.workers import RuleSource, usable_cores

    record_fmt = record_format(fmt)
    alerts: list[Alert] = []
    raised = [0]

    def emit(found: list[Alert]) -> None:
        # JSON lines go out as alerts are raised (scripts see them early, memory stays flat); the text view
        # is printed at the end.
        raised[0] += len(found)
        if json_out:
            print_alerts(found, json_out=True, with_events=events)
        else:
            alerts.extend(found)

    try:
        home, cfg_file = home_for(config)
        cfg = cfg_file.detection if cfg_file is not None else DetectionConfig()
        loaded = load_rules(cfg, rules, builtin=builtin)
        _report_skipped(loaded)
        if not loaded.rules:
            raise CloudsocError("no rules to run: give --rules or drop --no-builtin")
        # Events are enriched from the home's indicator store, as ingest would (nothing is written there).
        stage = DetectionStage(cfg, None, loaded=loaded, on_alerts=emit, intel_path=str(home.intel_path))
        total = sum(p.stat().st_size if p.is_file() else 0 for p in paths)
        workers = workers or usable_cores()
        with contextlib.ExitStack() as stack:
            pool = None
            # Made before the progress bar's thread starts (see ScanPool); one file has nothing to share out.
            if workers > 1 and not (len(paths) == 1 and paths[0].is_file()):
                source = RuleSource(cfg, tuple(str(p) for p in rules) if rules is not None else None, builtin)
                pool = stack.enter_context(ScanPool(workers, stage, source, keep_docs=events))
            scan = functools.partial(scan_files, paths, stage, record_fmt, pool=pool)
            if progress and err.is_terminal:
                bar = stack.enter_context(
                    Progress(
                        TextColumn("detect"),
                        BarColumn(),
                        DownloadColumn(),
                        TimeRemainingColumn(),
                        console=err,
                        transient=True,
                    )
                )
                task = bar.add_task("files", total=total or None)
                stats = scan(on_file=lambda size: bar.advance(task, size))
            else:
                stats = scan()
    except CloudsocError as exc:
        raise fail(exc) from None
    if not json_out:
        with batch_gc():  # a hundred thousand alerts hold their events: keep the collector off that heap
            print_alerts(alerts, json_out=False)
    rate = stats.events / stats.seconds if stats.seconds else 0.0
    message = (
        f"{raised[0]} alert(s) from {len(loaded.rules)} rules over {stats.events:,} events in {stats.files} files "
        f"({stats.dead_letters} unparseable records) in {stats.seconds:.2f} s ({rate:,.0f} events/s)"
    )
    err.print(message, highlight=False)


def hunt(
    rules: Annotated[
        list[str], typer.Argument(help="Rule ids (globs, e.g. 'admin_*') of loaded rules, or rule files.")
    ],
    since: Annotated[str, typer.Option(help="Start: a duration back from now (30d) or an ISO time.")] = "30d",
    until: Annotated[str | None, typer.Option(help="End: a duration back from now or an ISO time.")] = None,
    save: Annotated[bool, typer.Option("--save", help="Store the alerts in the alert queue (deduplicated).")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per alert.")] = False,
    config: ConfigOption = None,
) -> None:
    """Run rules over stored history, oldest event first (a new rule over last month, a retro-hunt)."""
    from cloudsoc.detect.engine import latest_time
    from cloudsoc.pipeline.detection import DetectionStage
    from cloudsoc.pipeline.memory import batch_gc
    from cloudsoc.storage.alerts import ALERTS_FILE, AlertStore

    alerts: list[Alert] = []
    try:
        home, cfg_file = home_for(config)
        cfg = cfg_file.detection if cfg_file is not None else DetectionConfig()
        chosen = _choose(cfg, rules)
        _report_skipped(chosen)
        t0 = parse_time(since)
        t1 = parse_time(until) if until else None
        store = AlertStore(home.path / ALERTS_FILE) if save else None
        # Stored events are enriched again with today's indicators: a hunt also finds what intel learnt since.
        stage = DetectionStage(
            cfg,
            store,
            loaded=chosen,
            on_alerts=alerts.extend,
            intel_path=str(home.intel_path),
            retro=True,
            persist_state=False,
        )
        # Rules that all pin their actions let the store skip every other event.
        actions: set[str] | None = set()
        for rule in chosen.rules:
            if rule.actions is None or actions is None:
                actions = None
            else:
                actions |= rule.actions
        storage = home.open_storage(read_only=True)
        scanned = 0
        try:
            with batch_gc():
                for docs in storage.scan(since=t0, until=t1, actions=actions):
                    scanned += len(docs)
                    stage.enrich(docs)
                    stage.handle(stage.select(docs), latest_time(docs))
                stage.finish()
        finally:
            storage.close()
            if store is not None:
                store.close()
    except CloudsocError as exc:
        raise fail(exc) from None
    print_alerts(alerts, json_out=json_out)
    saved = " (saved to the alert queue)" if save else ""
    err.print(f"{len(alerts)} alert(s) from {len(chosen.rules)} rule(s) over {scanned:,} stored events{saved}")


def _choose(cfg: DetectionConfig, wanted: list[str]) -> LoadedRules:
    chosen = LoadedRules()
    available: LoadedRules | None = None
    for item in wanted:
        path = Path(item)
        if path.exists():
            part = load_file(path) if path.is_file() else load_rules(cfg, [path], builtin=False)
            chosen.rules.extend(part.rules)
            chosen.skipped.extend(part.skipped)
            continue
        if available is None:
            available = load_rules(cfg)
        found = [r for r in available.rules if fnmatch.fnmatchcase(r.id, item)]
        if not found:
            raise CloudsocError(f"no rule matches {item!r}; `cloudsoc rules list` shows the ids")
        chosen.rules.extend(r for r in found if r not in chosen.rules)
    for rule in chosen.rules:
        rule.enabled = True  # asked for by name: run it even if the config disables it
    return chosen
