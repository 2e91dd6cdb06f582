"""``cloudsoc run`` (the daemon) and ``cloudsoc validate``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from cloudsoc.cli.state import err, fail, home_for, out
from cloudsoc.config.loader import load_config
from cloudsoc.errors import CloudsocError

if TYPE_CHECKING:  # the pipeline loads only when the daemon starts
    from cloudsoc.api.server import ConsoleServer
    from cloudsoc.config.models import Config, DirectoryInputConfig
    from cloudsoc.home import Home
    from cloudsoc.inputs.base import Input
    from cloudsoc.pipeline.metrics import Counters
    from cloudsoc.pipeline.runner import Runner
    from cloudsoc.storage.base import WriteResult

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="The config file (see `cloudsoc config example`).")]


def run(
    config: ConfigOption,
    once: Annotated[bool, typer.Option(help="Poll every input once, store what is ready, then exit.")] = False,
    console: Annotated[
        bool,
        typer.Option(
            "--console/--no-console", help="Serve the web console too (console.host:console.port, 127.0.0.1:8080)."
        ),
    ] = True,
) -> None:
    """Run the pipeline: watch the configured inputs and store events until SIGTERM/SIGINT (then flush and exit)."""
    from cloudsoc.inputs.directory import Directory
    from cloudsoc.pipeline.runner import Runner, run_until_signal

    try:
        home, cfg = home_for(config)
        assert cfg is not None
        storage = home.open_storage()
    except CloudsocError as exc:
        raise fail(exc) from None
    stage = None
    web: ConsoleServer | None = None
    try:
        stage = home.detection_stage()
        retention_days = cfg.storage.retention_days

        def retention() -> None:
            if retention_days:
                dropped = storage.apply_retention(retention_days)
                err.print(f"retention: dropped {dropped:,} events older than {retention_days} days")

        retention()  # at start, then hourly while running
        inputs: list[Input] = []
        for name, icfg in cfg.inputs.items():
            if not icfg.path.is_dir():
                raise CloudsocError(f"inputs.{name}.path: {icfg.path} is not a directory (is the bucket mounted?)")
            inputs.append(Directory(name, icfg, storage.checkpoints(name)))
        journal = _bastion_journal(home.path, cfg)
        if journal is not None:
            inputs.append(Directory(BASTION_INPUT, journal, storage.checkpoints(BASTION_INPUT)))
        if not inputs:
            raise CloudsocError(f"{config}: no inputs configured; see `cloudsoc config example`")
        last = [time.monotonic()]

        def on_write(r: WriteResult) -> None:
            now = time.monotonic()
            if r.stored or r.dead_letters or now - last[0] > 60:
                last[0] = now
                err.print(
                    f"[dim]{time.strftime('%Y-%m-%d %H:%M:%S %z')}[/] stored {r.stored:,}, duplicates "
                    f"{r.duplicates:,}, dead letters {r.dead_letters:,}",
                    highlight=False,
                )

        runner = Runner(
            storage,
            cfg.pipeline,
            on_write=on_write,
            status_path=home.path / "status.json",
            housekeeping=retention if retention_days else None,
            detection=stage,
            chores=_chores(home, cfg),
        )
        if console and not once:
            from cloudsoc.api.server import ConsoleServer
            from cloudsoc.cli.serve import prepare

            prepare(home.path, cfg, cfg.console.host)
            web = ConsoleServer(home.path, cfg)
            err.print(f"console: {web.start()}")
        err.print(f"cloudsoc running: {len(inputs)} input(s), store {home.store_path}; Ctrl-C or SIGTERM stops")
        counters = asyncio.run(_once(runner, inputs)) if once else asyncio.run(run_until_signal(runner, inputs))
    except CloudsocError as exc:
        raise fail(exc) from None
    finally:
        if web is not None:
            web.stop()
        storage.close()
        if stage is not None:
            stage.close()
    err.print(
        f"stopped: {counters.files:,} files, {counters.stored:,} events stored, {counters.duplicates:,} duplicates, "
        f"{counters.dead_letters:,} dead letters, {counters.alerts:,} alerts; checkpoints saved"
    )


# The bastion (`cloudsoc bastion serve`, its own process) seals its audit events into NDJSON segments here;
# the daemon reads each sealed segment once, like any other file input.
BASTION_INPUT = "bastion"


def _bastion_journal(home: Path, cfg: Config) -> DirectoryInputConfig | None:
    from cloudsoc.bastion.layout import BastionLayout
    from cloudsoc.config.models import DirectoryInputConfig

    path = BastionLayout.of(home).journal
    if not path.is_dir() and not cfg.bastion.hosts:
        return None
    path.mkdir(parents=True, exist_ok=True)
    # Segments appear whole (renamed into place), so there is nothing to wait for: read them within a second.
    return DirectoryInputConfig(
        type="directory",
        path=path,
        format="ecs",
        include=[BastionLayout.JOURNAL_SEGMENTS],
        poll_secs=1.0,
        stable_secs=0.0,
    )


def _chores(home: Home, cfg: Config) -> list[tuple[Callable[[], None], float]]:
    """The daemon's periodic background work besides ingest: feed syncs and whois fetches."""
    chores: list[tuple[Callable[[], None], float]] = []
    chores.append((_feed_chore(home, dict(cfg.feeds)), 60.0))
    whois = home.whois()
    if whois is not None:
        batch = cfg.intel.whois.fetch_batch

        def fetch_whois() -> None:
            # Offline, each wanted name becomes "unknown" for a while: never an error, never blocking ingest.
            whois.fetch_wanted(limit=batch)

        chores.append((fetch_whois, cfg.intel.whois.fetch_secs))
    return chores


def _feed_chore(home: Home, feeds: dict[str, Any]) -> Callable[[], None]:
    """Sync the feeds that are due (each at its own `interval_secs`): the config file's and those added with
    `cloudsoc intel feeds add` (read again each round); the enricher picks the new indicators up. A feed's
    failure is in its status (`cloudsoc intel feeds list`); a broken indicator store is reported and tried again
    next time, never stopping ingest."""
    from cloudsoc.intel.store import IndicatorStore
    from cloudsoc.intel.sync import FeedSync

    def chore() -> None:
        if not feeds and not home.intel_path.exists():
            return  # no feed configured and none could have been added
        try:
            store = IndicatorStore(home.intel_path)
            try:
                sync = FeedSync(store)
                for name, status in sync.sync_due(sync.feeds(feeds)).items():
                    if status.outcome == "failed":
                        err.print(f"feed {escape(name)}: {escape(status.last_error or 'failed')}", highlight=False)
            finally:
                store.close()
        except CloudsocError as exc:
            err.print(f"feeds: {escape(str(exc))}; trying again in a minute", highlight=False)

    return chore


async def _once(runner: Runner, inputs: list[Input]) -> Counters:
    from cloudsoc.inputs.base import Input
    from cloudsoc.inputs.directory import Directory

    class Once(Input):
        name = "once"

        def __init__(self, inner: Directory) -> None:
            super().__init__(inner.input_name, inner.format, inner.include)
            self.inner = inner

        async def run(self, bus: object, stop: asyncio.Event) -> None:
            await self.inner.poll(bus, stop)  # type: ignore[arg-type]

    return await runner.run([Once(i) for i in inputs if isinstance(i, Directory)])


def validate(config: ConfigOption) -> None:
    """Check a config file; errors say file:line and what to change."""
    from cloudsoc.detect.loader import load_rules

    try:
        cfg = load_config(config)
        loaded = load_rules(cfg.detection) if cfg.detection.enabled else None
    except CloudsocError as exc:
        raise fail(exc) from None
    problems = [
        f"inputs.{name}.path: {i.path} does not exist (yet)" for name, i in cfg.inputs.items() if not i.path.exists()
    ]
    if loaded is not None:
        problems += [f"detection: {s.source}: {s.title} not loaded: {s.reason}" for s in loaded.skipped]
    for p in problems:
        err.print(f"[yellow]warning:[/] {escape(str(config))}: {escape(p)}")
    rules = f"{len(loaded.rules)} rule(s)" if loaded is not None else "detection off"
    out.print(f"{config}: OK ({len(cfg.inputs)} input(s), storage {cfg.storage.type}, {rules})")
