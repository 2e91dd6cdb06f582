"""``cloudsoc intel``: import indicators, look values up, see what the store holds."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
import orjson
import typer
from rich.markup import escape
from rich.table import Table

from cloudsoc.cli.state import err, fail, home_for, out
from cloudsoc.errors import CloudsocError, ParseError

if TYPE_CHECKING:
    from cloudsoc.intel.feeds.base import ImportResult
    from cloudsoc.intel.store import IndicatorStore, StoredIndicator

app = typer.Typer(
    help="Threat intelligence: import indicators, look values up, store statistics.", no_args_is_help=True
)
ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="Config file (for the home directory).")]
JsonOption = Annotated[bool, typer.Option("--json", help="JSON output for scripts.")]


def _store(config: Path | None) -> IndicatorStore:
    from cloudsoc.intel.store import IndicatorStore

    home, _ = home_for(config)
    return IndicatorStore(home.intel_path)


def _documentation(path: Path) -> bool:
    """Files that sit beside feeds in a tree and are not feeds (licences, read-mes, hidden files)."""
    name = path.name.lower()
    return name.startswith((".", "license", "licence", "readme", "provenance")) or path.suffix.lower() == ".md"


def _expand(paths: list[Path], fmt: str) -> list[tuple[Path, str]]:
    """Files to import with their default source names: a directory that is not a MISP feed is walked."""
    from cloudsoc.intel.feeds.misp_feed import MANIFEST

    found: list[tuple[Path, str]] = []
    for path in paths:
        if not path.exists():
            raise CloudsocError(f"{path}: no such file or directory")
        if path.is_dir() and not (path / MANIFEST).is_file():
            found += [(p, p.name) for p in sorted(path.rglob("*")) if p.is_file() and not _documentation(p)]
        else:
            found.append((path, path.name))
    return found


def _parse_path(path: Path, fmt: str, source: str) -> ImportResult:
    """One file, or a MISP feed directory (manifest.json + event files)."""
    from cloudsoc.intel.feeds.detect import detect
    from cloudsoc.intel.feeds.misp_feed import MANIFEST, MispFeed
    from cloudsoc.plugins import Registry

    if path.is_dir() and (path / MANIFEST).is_file():
        files = {p.name: p.read_bytes() for p in path.iterdir() if p.is_file() and p.suffix in (".json", ".csv")}
        synced, _state = MispFeed().sync(files, source=source, previous={})
        return synced
    data = path.read_bytes()
    kind = detect(data, path.name) if fmt == "auto" else fmt
    importer = Registry("intel_feeds").load(kind)()
    result: ImportResult = importer.parse(data, name=path.name, source=source)
    return result


@app.command("import")
def import_(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Feed files (STIX, MISP JSON, IPsum, Maltrail, Feodo, CSV, lists) or MISP feed directories."
        ),
    ],
    source: Annotated[
        str | None, typer.Option("--source", "-s", help="Name of the source (default: the file name).")
    ] = None,
    fmt: Annotated[
        str,
        typer.Option("--format", "-f", help="auto, stix, misp, misp_feed, csv_map, plain, ipsum, maltrail or feodo."),
    ] = "auto",
    hunt_days: Annotated[
        int,
        typer.Option(
            "--hunt-days",
            min=0,
            help="Retro-hunt: look for the imported addresses in this many days of stored events and raise "
            "(retro) alerts for past hits; 0 turns it off.",
        ),
    ] = 30,
    json_out: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Import indicators into the home's indicator store (the pipeline enriches events from it), then look for
    them in recent stored events (retro-hunt).

    Importing the same feed again refreshes last-seen times and sightings; nothing is stored twice."""
    started = time.perf_counter()
    by_type: Counter[str] = Counter()
    total = skipped = 0
    errors: list[str] = []
    addresses: set[str] = set()
    try:
        store = _store(config)
        try:
            for path, name in _expand(paths, fmt):
                try:
                    result = _parse_path(path, fmt, source or name)
                except ParseError as exc:
                    if fmt != "auto" or path in paths:
                        raise
                    errors.append(f"{path}: skipped, not a feed ({exc.reason})")  # LICENSE, README … in a tree
                    continue
                store.upsert(result.indicators)
                addresses.update(
                    i.value
                    for i in result.indicators
                    if i.type.value in ("ipv4", "ipv6") and i.detect and not i.revoked
                )
                by_type.update(result.by_type())
                total += len(result.indicators)
                skipped += result.skipped
                errors += result.errors
        finally:
            store.close()
    except CloudsocError as exc:
        raise fail(exc) from None
    try:
        hunted = _retro_hunt(config, addresses, hunt_days) if hunt_days and addresses else None
    except CloudsocError as exc:
        raise fail(exc) from None
    summary = {
        "indicators": total,
        "by_type": dict(by_type.most_common()),
        "skipped": skipped,
        "errors": errors,
        "retro_hunt": hunted,
        "seconds": round(time.perf_counter() - started, 3),
    }
    if json_out:
        typer.echo(orjson.dumps(summary).decode())
        return
    kinds = ", ".join(f"{k} {v:,}" for k, v in by_type.most_common()) or "none"
    out.print(
        f"[bold]{total:,}[/] indicators ({kinds}), {skipped:,} skipped, {len(errors)} errors in {summary['seconds']} s"
    )
    if hunted is not None:
        out.print(
            f"retro-hunt over the last {hunt_days} days: {hunted['events']:,} stored events from these addresses, "
            f"[bold]{hunted['alerts']}[/] new alert(s)" + (" — `cloudsoc alerts list`" if hunted["alerts"] else "")
        )
    for line in errors[:20]:
        err.print(f"  [yellow]{escape(line)}[/]")
    if len(errors) > 20:
        err.print(f"  … {len(errors) - 20} more (`--json` lists all)")


def _retro_hunt(config: Path | None, addresses: set[str], days: int) -> dict[str, int] | None:
    """Run the threat-intel rules over the stored events of the last ``days`` that come from ``addresses``
    (the store narrows the scan to them); alerts are saved, marked retro, and queued for the outputs."""
    import fnmatch
    from datetime import timedelta

    from cloudsoc.detect.engine import latest_time
    from cloudsoc.detect.loader import load_rules
    from cloudsoc.pipeline.detection import DetectionStage
    from cloudsoc.pipeline.memory import batch_gc

    home, _ = home_for(config)
    if not home.store_path.exists():
        return None
    cfg = home.config.detection
    loaded = load_rules(cfg)
    loaded.rules = [r for r in loaded.rules if fnmatch.fnmatchcase(r.id, "threat_intel_*")]
    alerts = home.open_alerts()
    stage = DetectionStage(cfg, alerts, loaded=loaded, intel_path=str(home.intel_path), retro=True, persist_state=False)
    stage.dispatcher = home.dispatcher(stage)  # queued in the outbox; the running daemon delivers them
    storage = home.open_storage(read_only=True)
    events = 0
    try:
        with batch_gc():
            for docs in storage.scan(since=datetime.now(UTC) - timedelta(days=days), source_ips=addresses):
                events += len(docs)
                stage.enrich(docs)
                stage.handle(stage.select(docs), latest_time(docs))
            stage.finish()
    finally:
        storage.close()
        stage.close()
    return {"events": events, "alerts": stage.alerts}


def _row(found: StoredIndicator, now: datetime) -> dict[str, Any]:
    ind = found.indicator
    return {
        "type": ind.type.value,
        "value": ind.value,
        "source": ind.source,
        "intel_types": ind.intel_types,
        "confidence": ind.confidence,
        "tlp": ind.tlp.value if ind.tlp else None,
        "tags": ind.tags,
        "description": ind.description,
        "first_seen": ind.first_seen.isoformat() if ind.first_seen else None,
        "last_seen": ind.last_seen.isoformat() if ind.last_seen else None,
        "expires": found.expires.isoformat(),
        "active": found.active(now),
        "revoked": ind.revoked,
        "sightings": ind.sightings,
    }


@app.command("lookup")
def lookup(
    values: Annotated[list[str], typer.Argument(help="IPs, domains, URLs, hashes, e-mail addresses.")],
    json_out: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """What intel knows about values: every active match (CIDRs and parent domains included) with its context,
    and whether an allow list (MISP warninglists, local entries) says the value is benign."""
    from cloudsoc.enrichers.intel import allowlist
    from cloudsoc.intel.matcher import Matcher

    now = datetime.now(UTC)
    try:
        store = _store(config)
        try:
            allow = allowlist(store)
        except BaseException:
            store.close()
            raise
        matcher = Matcher.from_store(store, now, allow)
    except CloudsocError as exc:
        raise fail(exc) from None
    try:
        results: list[tuple[str, str | None, list[dict[str, Any]]]] = [
            (value, matcher.allowed(value), [_row(f, now) for f in matcher.lookup(value)]) for value in values
        ]
    finally:
        matcher.close()
    if json_out:
        for value, allowed, matches in results:
            typer.echo(orjson.dumps({"value": value, "allowed": allowed, "matches": matches}).decode())
        return
    for value, allowed, matches in results:
        verdict = f"[green]allowed: {escape(allowed)}[/]" if allowed else ""
        head = f"[bold red]{len(matches)} match(es)[/]" if matches else "[dim]no match[/]"
        out.print(f"[bold]{escape(value)}[/]  {head}  {verdict}")
        for m in matches:
            kinds = ", ".join(m["intel_types"]) or "-"
            out.print(
                f"  {escape(m['type'])} {escape(m['value'])}  source={escape(m['source'])}  "
                f"confidence={m['confidence']}  intel={escape(kinds)}  last seen={m['last_seen'] or '-'}  "
                f"expires={m['expires'][:10]}"
            )


@app.command("stats")
def stats(json_out: JsonOption = False, config: ConfigOption = None) -> None:
    """Indicators in the store per type: all, and those that may match now (not expired, not revoked)."""
    now = datetime.now(UTC)
    try:
        store = _store(config)
        try:
            every = store.counts()
            active = store.counts(active_at=now)
        finally:
            store.close()
    except CloudsocError as exc:
        raise fail(exc) from None
    if json_out:
        typer.echo(orjson.dumps({"indicators": every, "active": active}).decode())
        return
    table = Table(show_edge=False, header_style="bold")
    for col in ("type", "indicators", "active"):
        table.add_column(col, justify="right" if col != "type" else "left")
    for kind in sorted(every):
        table.add_row(kind, f"{every[kind]:,}", f"{active.get(kind, 0):,}")
    out.print(table)


feeds_app = typer.Typer(help="Configured feeds (`feeds:` in the config): sync now, or see how each one is doing.")
app.add_typer(feeds_app, name="feeds")


@feeds_app.command("sync")
def feeds_sync(
    names: Annotated[list[str] | None, typer.Argument(help="Feeds to sync (default: every configured feed).")] = None,
    json_out: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Fetch configured feeds now (conditional requests: unchanged feeds cost one round trip). A feed that fails
    is reported and the others still sync; the running daemon syncs them every `interval_secs` by itself."""
    from cloudsoc.intel.sync import FeedSync

    try:
        _, cfg = home_for(config)
        feeds = dict(cfg.feeds) if cfg is not None else {}
        if not feeds:
            raise CloudsocError("no feeds configured: add a `feeds:` section (see `cloudsoc config example`)")
        unknown = sorted(set(names or ()) - feeds.keys())
        if unknown:
            raise CloudsocError(f"no feed named {', '.join(unknown)}; configured: {', '.join(sorted(feeds))}")
        chosen = {n: feeds[n] for n in (names or feeds)}
        store = _store(config)
        try:
            statuses = FeedSync(store).sync_all(chosen)
        finally:
            store.close()
    except CloudsocError as exc:
        raise fail(exc) from None
    _print_statuses(statuses, json_out=json_out)
    if any(s.outcome == "failed" for s in statuses.values()):
        raise typer.Exit(1)


@feeds_app.command("list")
def feeds_list(json_out: JsonOption = False, config: ConfigOption = None) -> None:
    """Every feed with its last attempt, last success, counts and last error."""
    from cloudsoc.intel.sync import FeedSync

    try:
        store = _store(config)
        try:
            statuses = FeedSync(store).statuses()
        finally:
            store.close()
    except CloudsocError as exc:
        raise fail(exc) from None
    _print_statuses(statuses, json_out=json_out)


def _print_statuses(statuses: dict[str, Any], *, json_out: bool) -> None:
    if json_out:
        for status in statuses.values():
            typer.echo(orjson.dumps(msgspec.to_builtins(status)).decode())
        return
    table = Table(show_edge=False, header_style="bold")
    for col in ("feed", "type", "outcome", "last success", "indicators", "last error"):
        table.add_column(col, overflow="fold")
    for name, st in sorted(statuses.items()):
        counts = ", ".join(f"{k} {v:,}" for k, v in sorted(st.by_type.items())) or "-"
        colour = {"failed": "red", "updated": "green"}.get(st.outcome or "", "dim")
        table.add_row(
            escape(name),
            st.type,
            f"[{colour}]{st.outcome or '-'}[/]",
            st.last_success.isoformat(timespec="seconds") if st.last_success else "never",
            escape(counts),
            escape(st.last_error or ""),
        )
    out.print(table)


@app.command("export")
def export(
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="stix (2.1 bundle), csv, or list (one value a line).")
    ] = "stix",
    types: Annotated[
        list[str] | None, typer.Option("--type", "-t", help="Only these types (ipv4, cidr, domain, url, md5 …).")
    ] = None,
    source: Annotated[str | None, typer.Option("--source", "-s", help="Only this source.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Also expired and revoked indicators.")] = False,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
    config: ConfigOption = None,
) -> None:
    """Export indicators: a STIX 2.1 bundle for other platforms, CSV, or a plain list for a firewall or DNS
    blocklist (e.g. `cloudsoc intel export -f list -t ipv4 -t cidr -o blocklist.txt`). Active ones by default."""
    import sys

    from cloudsoc.intel.export import to_csv, to_list, to_stix
    from cloudsoc.intel.indicator import IndicatorType

    if fmt not in ("stix", "csv", "list"):
        raise fail(CloudsocError(f"--format {fmt!r}: use stix, csv or list"))
    try:
        kinds = [IndicatorType(t) for t in types or ()]
    except ValueError:
        raise fail(CloudsocError(f"--type: use {', '.join(t.value for t in IndicatorType)}")) from None
    try:
        store = _store(config)
        try:
            rows = store.query(types=kinds, source=source, active_at=None if all_ else datetime.now(UTC))
        finally:
            store.close()
    except CloudsocError as exc:
        raise fail(exc) from None
    left_out = 0
    if fmt == "stix":
        data, left_out = to_stix(rows)
    elif fmt == "csv":
        data = to_csv(rows)
    else:
        data = to_list(rows)
    if output is not None:
        output.write_bytes(data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    note = f" ({left_out} without a STIX pattern left out)" if left_out else ""
    err.print(f"{len(rows) - left_out:,} indicators exported as {fmt}{note}")


@app.command("fp")
def false_positive(
    value: Annotated[
        str, typer.Argument(help="The indicator value that hit something benign (IP, domain, URL, hash).")
    ],
    reason: Annotated[str, typer.Option("--reason", "-m", help="Why it is benign (kept with the entry).")] = "",
    undo: Annotated[bool, typer.Option("--undo", help="Remove the local allow entry again.")] = False,
    actor: Annotated[str | None, typer.Option("--as", help="Who says so (default: the login name).")] = None,
    json_out: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Mark an indicator a false positive: its confidence is halved and counted, and the value gets a local allow
    entry so it no longer enriches events or raises alerts (the running daemon picks it up within a minute)."""
    import getpass

    from cloudsoc.intel.indicator import guess

    who = actor or getpass.getuser()
    try:
        found = guess(value)
        if found is None:
            raise CloudsocError(f"{value!r} is not an IP, CIDR, domain, URL, e-mail or hash")
        kind, normal = found
        store = _store(config)
        try:
            if undo:
                removed = store.remove_allow(normal)
                result: dict[str, Any] = {"value": normal, "allow_entry_removed": removed}
            else:
                changed = store.false_positive(kind, normal, reason=reason or "marked false positive", actor=who)
                result = {"value": normal, "type": kind.value, "rows_changed": changed, "allowed": True}
        finally:
            store.close()
    except CloudsocError as exc:
        raise fail(exc) from None
    if json_out:
        typer.echo(orjson.dumps(result).decode())
    elif undo:
        err.print(f"{escape(normal)}: local allow entry {'removed' if result['allow_entry_removed'] else 'not found'}")
    else:
        err.print(
            f"{escape(normal)}: allowed from now on ({result['rows_changed']} indicator row(s) counted false "
            "positive, confidence halved)"
        )
