"""``cloudsoc intel``: import indicators, look values up, see what the store holds."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec
import orjson
import typer
from rich.markup import escape
from rich.table import Table

from cloudsoc.cli.state import err, fail, home_for, out
from cloudsoc.errors import CloudsocError, ParseError

if TYPE_CHECKING:
    from cloudsoc.intel.feeds.base import ImportResult
    from cloudsoc.intel.feeds.detect import ListOptions
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


def _parse_path(path: Path, fmt: str, source: str, result: ImportResult, options: ListOptions | None = None) -> None:
    """One file, or a MISP feed directory (manifest.json + event files), into ``result``."""
    from cloudsoc.intel.feeds.detect import detect, importer
    from cloudsoc.intel.feeds.misp_feed import MANIFEST, MispFeed

    if path.is_dir() and (path / MANIFEST).is_file():
        files = {p.name: p.read_bytes() for p in path.iterdir() if p.is_file() and p.suffix in (".json", ".csv")}
        synced, _state = MispFeed().sync(files, source=source, previous={})
        for indicator in synced.indicators:
            result.add(indicator)
        result.skipped += synced.skipped
        result.errors += synced.errors
        return
    data = path.read_bytes()
    kind = detect(data, path.name) if fmt == "auto" else fmt
    importer(kind, options).parse(data, name=path.name, source=source, result=result)


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
            help="Retro-hunt: look for the imported addresses and networks in this many days of stored events and "
            "raise (retro) alerts for past hits; 0 turns it off.",
        ),
    ] = 30,
    confidence: Annotated[
        int,
        typer.Option(
            min=0,
            max=100,
            help="Confidence of values in plain lists and CSV files that give none (rules alert at "
            "detection.intel_min_confidence, 60 by default).",
        ),
    ] = 50,
    intel_type: Annotated[
        list[str] | None,
        typer.Option("--intel-type", help="What the values of plain lists and CSV files are (c2, scanner, …)."),
    ] = None,
    columns: Annotated[
        str | None,
        typer.Option(
            help="CSV column mapping as YAML, e.g. `{values: {dst_ip: ip}, first_seen: date, confidence: score}` "
            "(without it, columns named ip, domain, url, sha256 … are taken)."
        ),
    ] = None,
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
    imported_at = datetime.now(UTC)
    try:
        from cloudsoc.intel.feeds.base import ImportResult
        from cloudsoc.intel.feeds.detect import ListOptions, parse_columns
        from cloudsoc.pipeline.memory import batch_gc

        options = ListOptions(
            confidence=confidence,
            intel_types=tuple(intel_type or ()),
            columns=parse_columns(columns) if columns else None,
        )
        store = _store(config)
        try:
            with batch_gc():  # a million indicators pass through: keep the collector off them
                for path, name in _expand(paths, fmt):
                    # Streamed: the store takes the indicators as they come, a big list is never held whole.
                    result = ImportResult(store)
                    try:
                        _parse_path(path, fmt, source or name, result, options)
                    except ParseError as exc:
                        if fmt != "auto" or path in paths:
                            raise
                        errors.append(f"{path}: skipped, not a feed ({exc.reason})")  # LICENSE, README … in a tree
                        continue
                    result.close()
                    by_type.update(result.by_type())
                    total += result.count
                    skipped += result.skipped
                    errors += result.errors
        finally:
            store.close()
    except CloudsocError as exc:
        raise fail(exc) from None
    try:
        hunted = _retro_hunt(config, imported_at, hunt_days, by_type) if hunt_days else None
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
            f"retro-hunt over the last {hunt_days} days: {hunted['events_matched']:,} of "
            f"{hunted['events_scanned']:,} stored events from these addresses, "
            f"[bold]{hunted['alerts']}[/] new alert(s)" + (" — `cloudsoc alerts list`" if hunted["alerts"] else "")
        )
    for line in errors[:20]:
        err.print(f"  [yellow]{escape(line)}[/]")
    if len(errors) > 20:
        err.print(f"  … {len(errors) - 20} more (`--json` lists all)")


def _retro_hunt(config: Path | None, imported_at: datetime, days: int, by_type: Counter[str]) -> dict[str, Any] | None:
    """Hunt what this import added or refreshed (its addresses and networks) over the last ``days`` of stored
    events; None when it brought none or nothing is stored yet."""
    from datetime import timedelta

    from cloudsoc.intel.hunt import HUNTED_TYPES, RetroHunt

    if not any(by_type.get(t.value) for t in HUNTED_TYPES):
        return None
    home, _ = home_for(config)
    if not home.store_path.exists():
        return None
    hunt = RetroHunt(home)
    summary = hunt.run(hunt.indicators(updated_since=imported_at), since=datetime.now(UTC) - timedelta(days=days))
    return msgspec.to_builtins(summary)  # type: ignore[no-any-return]


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


WhoisOption = Annotated[
    bool,
    typer.Option(
        "--whois/--no-whois",
        help="Show whois for domains, URLs and e-mail addresses (cached; asks the registry on a miss).",
    ),
]


@app.command("lookup")
def lookup(
    values: Annotated[list[str], typer.Argument(help="IPs, domains, URLs, hashes, e-mail addresses.")],
    whois: WhoisOption = True,
    json_out: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """What intel knows about values: every active match (CIDRs and parent domains included) with its context,
    whether an allow list (MISP warninglists, local entries) says the value is benign, and whois for names."""
    from cloudsoc.enrichers.intel import allowlist
    from cloudsoc.intel.matcher import Matcher
    from cloudsoc.intel.whois import domains_of

    now = datetime.now(UTC)
    try:
        store = _store(config)
        try:
            allow = allowlist(store)
        except BaseException:
            store.close()
            raise
        matcher = Matcher.from_store(store, now, allow, only=values)
        service = home_for(config)[0].whois() if whois else None
    except CloudsocError as exc:
        raise fail(exc) from None
    results: list[dict[str, Any]] = []
    try:
        for value in values:
            row: dict[str, Any] = {
                "value": value,
                "allowed": matcher.allowed(value),
                "matches": [_row(f, now) for f in matcher.lookup(value)],
            }
            names = domains_of([value.rsplit("@", 1)[-1]]) if service is not None and _named(value) else []
            if service is not None and names:
                record = service.lookup(names[0], now=now)
                row["whois"] = record.summary() if record is not None else None
            results.append(row)
    finally:
        matcher.close()
    if json_out:
        for row in results:
            typer.echo(orjson.dumps(row).decode())
        return
    for row in results:
        allowed, matches = row["allowed"], row["matches"]
        verdict = f"[green]allowed: {escape(allowed)}[/]" if allowed else ""
        head = f"[bold red]{len(matches)} match(es)[/]" if matches else "[dim]no match[/]"
        out.print(f"[bold]{escape(row['value'])}[/]  {head}  {verdict}")
        for m in matches:
            kinds = ", ".join(m["intel_types"]) or "-"
            out.print(
                f"  {escape(m['type'])} {escape(m['value'])}  source={escape(m['source'])}  "
                f"confidence={m['confidence']}  intel={escape(kinds)}  last seen={m['last_seen'] or '-'}  "
                f"expires={m['expires'][:10]}"
            )
        if row.get("whois"):
            _print_whois(row["whois"], now)


def _named(value: str) -> bool:
    """A domain, URL or e-mail address (whois has something to say), not an address or a hash."""
    from cloudsoc.intel.indicator import IndicatorType, guess

    found = guess(value)
    return found is not None and found[0] in (IndicatorType.DOMAIN, IndicatorType.URL, IndicatorType.EMAIL)


def _print_whois(w: dict[str, Any], now: datetime) -> None:
    if w["state"] != "known":
        out.print(f"  whois {escape(w['domain'])}: [dim]{escape(w['state'])} — {escape(w.get('reason') or '')}[/]")
        return
    created, expires = w.get("created"), w.get("expires")
    age = f" ({(now - datetime.fromisoformat(created)).days:,} days ago)" if created else ""
    lapsed = " [yellow](expired)[/]" if expires and datetime.fromisoformat(expires) < now else ""
    out.print(
        f"  whois {escape(w['domain'])}: registrar={escape(w.get('registrar') or '-')}  "
        f"created={(created or '-')[:10]}{age}  updated={(w.get('updated') or '-')[:10]}  "
        f"expires={(expires or '-')[:10]}{lapsed}"
    )
    who = [str(w[k]) for k in ("registrant_name", "registrant_org", "registrant_country") if w.get(k)]
    if who or w.get("emails"):
        out.print(
            f"    registrant: {escape(', '.join(who) or '-')}  e-mail: {escape(', '.join(w.get('emails', [])) or '-')}"
        )
    if w.get("name_servers"):
        out.print(f"    name servers: {escape(', '.join(w['name_servers']))}")


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


feeds_app = typer.Typer(
    help="Feeds (`feeds:` in the config, or added here): add, remove, sync now, or see how each one is doing.",
    no_args_is_help=True,
)
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
        store = _store(config)
        try:
            sync = FeedSync(store)
            feeds = sync.feeds(dict(cfg.feeds) if cfg is not None else {})
            if not feeds:
                raise CloudsocError(
                    "no feeds: add one with `cloudsoc intel feeds add NAME URL` or a `feeds:` section in the config "
                    "(see `cloudsoc config example`)"
                )
            unknown = sorted(set(names or ()) - feeds.keys())
            if unknown:
                raise CloudsocError(f"no feed named {', '.join(unknown)}; known: {', '.join(sorted(feeds))}")
            statuses = sync.sync_all({n: feeds[n] for n in (names or feeds)})
        finally:
            store.close()
    except CloudsocError as exc:
        raise fail(exc) from None
    _print_statuses(statuses, json_out=json_out)
    if any(s.outcome == "failed" for s in statuses.values()):
        raise typer.Exit(1)


FeedType = Literal["auto", "http", "misp_feed", "taxii"]


@feeds_app.command("add")
def feeds_add(
    name: Annotated[str, typer.Argument(help="Name of the feed (also its source name unless --source).")],
    url: Annotated[
        str,
        typer.Argument(
            help="http(s) URL: a file, a MISP feed folder, or a TAXII server. Put keys in ${ENV_NAME}: the "
            "variable is read at each sync and the key never lands in intel.db."
        ),
    ],
    kind: Annotated[
        FeedType,
        typer.Option(
            "--type",
            help="http (one file), misp_feed (a folder with manifest.json) or taxii; auto: taxii with "
            "--collection, misp_feed for a URL ending in / or manifest.json, else http.",
        ),
    ] = "auto",
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="For http feeds: the importer (auto, stix, misp, plain, …).")
    ] = "auto",
    collection: Annotated[str | None, typer.Option(help="TAXII collection id or title.")] = None,
    user: Annotated[str | None, typer.Option(help="TAXII basic-auth user.")] = None,
    password_env: Annotated[str | None, typer.Option(help="Environment variable holding the TAXII password.")] = None,
    header: Annotated[
        list[str] | None,
        typer.Option("--header", "-H", help="Extra request header `Name: value` (values may be ${ENV_NAME})."),
    ] = None,
    source: Annotated[str | None, typer.Option(help="Source name of its indicators (default: the feed name).")] = None,
    confidence: Annotated[
        int, typer.Option(min=0, max=100, help="For plain lists and CSV files: the confidence of their values.")
    ] = 50,
    intel_type: Annotated[
        list[str] | None, typer.Option("--intel-type", help="For plain lists and CSV files: what their values are.")
    ] = None,
    columns: Annotated[str | None, typer.Option(help="For CSV files: the column mapping as YAML.")] = None,
    interval: Annotated[float, typer.Option(help="Seconds between two syncs.")] = 3600.0,
    sync_now: Annotated[bool, typer.Option("--sync/--no-sync", help="Sync it once now.")] = True,
    json_out: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Add a feed that the daemon syncs (kept in the home's intel.db beside the config file's `feeds:`), and
    sync it once now. Adding a name again replaces its settings."""
    from cloudsoc.intel.sync import FeedSync

    if kind == "auto":
        kind = "taxii" if collection else "misp_feed" if url.endswith(("/", "manifest.json")) else "http"
    settings: dict[str, Any] = {"type": kind, "url": url.removesuffix("manifest.json"), "interval_secs": interval}
    if source:
        settings["source"] = source
    if kind == "http":
        if fmt != "auto":
            settings["format"] = fmt
        settings.update({"confidence": confidence, "intel_types": intel_type or []})
        if columns:
            import yaml

            try:
                settings["columns"] = yaml.safe_load(columns)
            except yaml.YAMLError as exc:
                raise fail(CloudsocError(f"--columns: not YAML: {exc}")) from None
    if kind == "taxii":
        settings.update({"collection": collection, "user": user})
        if password_env:
            settings["password"] = f"${{{password_env}}}"
    if header:
        if kind == "taxii":
            raise fail(CloudsocError("--header: TAXII feeds take --user/--password-env, not headers"))
        pairs = [h.split(":", 1) for h in header]
        if any(len(p) != 2 for p in pairs):
            raise fail(CloudsocError("--header: write `Name: value`"))
        settings["headers"] = {k.strip(): v.strip() for k, v in pairs}
    try:
        _, cfg = home_for(config)
        store = _store(config)
        try:
            sync = FeedSync(store)
            feed = sync.add(name, settings, configured=dict(cfg.feeds) if cfg is not None else {})
            statuses = sync.sync_all({name: feed}) if sync_now else {}
        finally:
            store.close()
    except CloudsocError as exc:
        raise fail(exc) from None
    if not json_out:
        err.print(f"feed {escape(name)} added ({feed.type}); the daemon syncs it every {interval:,.0f} s")
    if statuses:
        _print_statuses(statuses, json_out=json_out)
    elif json_out:
        typer.echo(orjson.dumps({"name": name, "type": feed.type}).decode())
    if any(s.outcome == "failed" for s in statuses.values()):
        raise typer.Exit(1)


@feeds_app.command("remove")
def feeds_remove(
    name: Annotated[str, typer.Argument(help="An added feed.")],
    config: ConfigOption = None,
) -> None:
    """Stop syncing an added feed (its indicators stay; `intel export --source` / revocation handle those)."""
    from cloudsoc.intel.sync import FeedSync

    try:
        store = _store(config)
        try:
            gone = FeedSync(store).remove(name)
        finally:
            store.close()
    except CloudsocError as exc:
        raise fail(exc) from None
    if not gone:
        raise fail(CloudsocError(f"no added feed named {name} (feeds of the config file are removed there)"))
    err.print(f"feed {escape(name)} removed")


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


@app.command("hunt")
def hunt(
    days: Annotated[int, typer.Option("--days", min=1, help="Hunt over this many days of stored events.")] = 30,
    since: Annotated[
        str | None, typer.Option(help="Start of the events hunted instead of --days: a duration (7d) or ISO time.")
    ] = None,
    until: Annotated[str | None, typer.Option(help="End of the events hunted: a duration or an ISO time.")] = None,
    source: Annotated[str | None, typer.Option("--source", "-s", help="Only this source's indicators.")] = None,
    types: Annotated[
        list[str] | None, typer.Option("--type", "-t", help="Only these indicator types: ipv4, ipv6, cidr.")
    ] = None,
    added_since: Annotated[
        str | None,
        typer.Option("--added-since", help="Only indicators imported or refreshed since (a duration or ISO time)."),
    ] = None,
    json_out: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Retro-hunt: look for the active indicators (addresses and CIDRs) in stored events and raise alerts, marked
    retro, for past hits; each is raised once however often the hunt runs. `intel import` hunts what it imports by
    itself (`--hunt-days`); this hunts on demand, e.g. over a longer history or one source's indicators."""
    from datetime import timedelta

    from cloudsoc.cli.timeparse import parse_time
    from cloudsoc.intel.hunt import HUNTED_TYPES, RetroHunt
    from cloudsoc.intel.indicator import IndicatorType

    names = ", ".join(t.value for t in HUNTED_TYPES)
    try:
        kinds = [IndicatorType(t) for t in types or ()]
    except ValueError:
        raise fail(CloudsocError(f"--type: use {names}")) from None
    if any(k not in HUNTED_TYPES for k in kinds):
        raise fail(
            CloudsocError(f"--type: only {names} can be hunted (the event store keeps no column for the others)")
        )
    try:
        now = datetime.now(UTC)
        t0 = parse_time(since, now=now) if since else now - timedelta(days=days)
        t1 = parse_time(until, now=now) if until else None
        home, _ = home_for(config)
        if not home.store_path.exists():
            raise CloudsocError(f"no event store at {home.store_path}: ingest something first (`cloudsoc ingest PATH`)")
        retro = RetroHunt(home)
        chosen = retro.indicators(
            now=now,
            types=kinds or HUNTED_TYPES,
            source=source,
            updated_since=parse_time(added_since, now=now) if added_since else None,
        )
        summary = retro.run(chosen, since=t0, until=t1)
    except CloudsocError as exc:
        raise fail(exc) from None
    if json_out:
        typer.echo(orjson.dumps(msgspec.to_builtins(summary)).decode())
        return
    window = f"{summary.since} – {summary.until or 'now'}"
    out.print(
        f"[bold]{summary.indicators:,}[/] indicators hunted over {summary.events_scanned:,} events ({window}): "
        f"{summary.events_matched:,} past hits, [bold]{summary.alerts}[/] new alert(s) in {summary.seconds} s"
        + (" — `cloudsoc alerts list`" if summary.alerts else "")
    )
    if summary.allowed_events:
        out.print(f"  {summary.allowed_events:,} more events matched addresses an allow list calls benign")
    for h in summary.hits[:20]:
        out.print(
            f"  {escape(h.type)} {escape(h.value)}  {h.events:,} events from {h.addresses:,} address(es)  "
            f"source={escape(', '.join(h.sources))}"
        )
    if len(summary.hits) > 20:
        out.print(f"  … {len(summary.hits) - 20} more indicators hit (`--json` lists all)")
