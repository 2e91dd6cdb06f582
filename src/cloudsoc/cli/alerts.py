"""``cloudsoc alerts``: the triage queue — list, show, ack, resolve, fp, reopen, assign, comment, suppress."""

from __future__ import annotations

import getpass
import sys
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Annotated

import msgspec
import orjson
import typer
from rich.markup import escape
from rich.table import Table

from cloudsoc.cli.state import err, fail, home_for, out
from cloudsoc.cli.timeparse import parse_time
from cloudsoc.detect.alert import Alert, Severity, Status
from cloudsoc.detect.suppression import parse_conditions
from cloudsoc.errors import CloudsocError
from cloudsoc.storage.alerts import ALERTS_FILE, AlertStore, HistoryEntry, StoredAlert

app = typer.Typer(
    help="Alerts: list and triage (new → acknowledged → resolved | false_positive).", no_args_is_help=True
)
ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="Config file (for the home directory).")]
JsonOption = Annotated[bool, typer.Option("--json", help="JSON output for scripts.")]
ActorOption = Annotated[str | None, typer.Option("--as", help="Who does this (default: the login name).")]

_SEVERITY_STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFORMATIONAL: "dim",
}


def open_alert_store(config: Path | None) -> AlertStore:
    home, _ = home_for(config)
    return AlertStore(home.path / ALERTS_FILE)


def local_time(iso: str) -> str:
    """An ISO time shown in this machine's time zone, with the zone (people read local time; logs are UTC)."""
    if not iso:
        return "-"
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    except ValueError:
        return iso


def _matched_text(alert: Alert, limit: int = 3) -> str:
    parts = [f"{m.field}={m.value}" for m in alert.matched[:limit]]
    more = len(alert.matched) - limit
    return ", ".join(parts) + (f" (+{more})" if more > 0 else "")


def print_alerts(alerts: Iterable[Alert], *, json_out: bool, with_events: bool = False) -> int:
    """Print alerts as one line each (people) or JSON lines (scripts); returns how many.

    Written in one go: an offline run over a month can raise a hundred thousand alerts, and a write (or a rich
    render) per alert would cost more than detecting them."""
    n = 0
    if json_out:
        buf = bytearray()
        for a in alerts:
            buf += orjson.dumps(a.export(with_events=with_events), default=str)
            buf += b"\n"
            n += 1
        sys.stdout.flush()
        sys.stdout.buffer.write(buf)
        sys.stdout.buffer.flush()
        return n
    lines = []
    for a in alerts:
        n += 1
        group = f" [{escape(a.group_key)}]" if a.group_key else ""
        count = f" x{a.count}" if a.count > 1 else ""
        status = "" if a.status is Status.NEW else f" ({a.status.value})"
        if a.retro:
            status += " (retro)"
        lines.append(
            f"[{_SEVERITY_STYLE[a.severity]}]{a.severity.value.upper():<8}[/] {local_time(a.first_time)}  "
            f"[bold]{escape(a.rule_id)}[/]{group}{count}{status}  {escape(_matched_text(a)[:160])}  "
            f"[dim]{a.id[:12]}[/]"
        )
    if lines:
        out.print("\n".join(lines), highlight=False)
    return n


def _actor(actor: str | None) -> str:
    if actor:
        return actor
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


@app.command("list")
def list_(
    status: Annotated[
        list[str] | None, typer.Option("--status", "-s", help="new, acknowledged, resolved, false_positive; or open.")
    ] = None,
    severity: Annotated[str | None, typer.Option("--min-severity", help="low, medium, high, critical.")] = None,
    rule: Annotated[str | None, typer.Option("--rule", help="Rule id (glob).")] = None,
    assignee: Annotated[str | None, typer.Option("--assignee")] = None,
    since: Annotated[str | None, typer.Option(help="Raised since: 24h, 7d or an ISO time.")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 50,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many (paging).")] = 0,
    json_out: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """The alert queue, newest first. Default: open alerts (new and acknowledged)."""
    try:
        wanted: list[Status] = []
        for s in status or ["open"]:
            if s == "open":
                wanted += [Status.NEW, Status.ACKNOWLEDGED]
            elif s == "all":
                wanted = []
                break
            else:
                try:
                    wanted.append(Status(s))
                except ValueError:
                    raise CloudsocError(
                        f"--status {s!r}: use new, acknowledged, resolved, false_positive, open or all"
                    ) from None
        store = open_alert_store(config)
        rows = store.query(
            status=wanted,
            min_severity=Severity.parse(severity) if severity else None,
            rule=rule,
            assignee=assignee,
            since=parse_time(since) if since else None,
            limit=limit,
            offset=offset,
        )
        counts = store.counts()
        store.close()
    except CloudsocError as exc:
        raise fail(exc) from None
    n = print_alerts((r.alert for r in rows), json_out=json_out)
    if not json_out:
        summary = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "no alerts yet"
        err.print(f"{n} shown ({summary}); `cloudsoc alerts show ID` explains one")


@app.command("show")
def show(
    alert_id: Annotated[str, typer.Argument(help="Alert id (or a unique prefix).")],
    json_out: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """One alert: why it fired (matched fields), its events, and its triage history."""
    try:
        store = open_alert_store(config)
        found = store.get(alert_id)
        if found is None:
            raise CloudsocError(f"no alert {alert_id!r}; `cloudsoc alerts list --status all` shows the ids")
        history = store.history(found.alert.id)
        store.close()
    except CloudsocError as exc:
        raise fail(exc) from None
    a = found.alert
    if json_out:
        doc = a.export(with_events=True)
        doc["history"] = msgspec.to_builtins(history)
        typer.echo(orjson.dumps(doc, default=str).decode())
        return
    _print_detail(found, history)


def _print_detail(found: StoredAlert, history: list[HistoryEntry]) -> None:
    a = found.alert
    out.print(f"[{_SEVERITY_STYLE[a.severity]}]{a.severity.value.upper()}[/] [bold]{escape(a.rule_name)}[/]")
    rows = [
        ("id", a.id),
        ("rule", f"{a.rule_id} ({a.rule_kind}{', retro-hunt' if a.retro else ''})"),
        ("tags", ", ".join(a.tags)),
        ("status", f"{found.status.value}" + (f", assigned to {found.assignee}" if found.assignee else "")),
        ("group", a.group_key),
        ("count", str(a.count)),
        ("first event", local_time(a.first_time)),
        ("last event", local_time(a.last_time)),
        ("raised", local_time(a.created)),
    ]
    for k, v in rows:
        if v:
            out.print(f"  [bold]{k:12}[/] {escape(v)}")
    if a.text:
        out.print(f"\n{escape(a.text)}")
    out.print("\n[bold]Why it fired[/]")
    for m in a.matched:
        out.print(f"  {escape(m.field)} = {escape(str(m.value))}")
    if a.description:
        out.print(f"\n[bold]Why it matters[/]\n  {escape(a.description)}")
    if a.response:
        out.print(f"\n[bold]What to do[/]\n  {escape(a.response)}")
    out.print(f"\n[bold]Events[/] ({len(a.event_ids)}, {len(a.events)} shown)")
    for doc in a.events:
        ev = doc.get("event", {}) if isinstance(doc, dict) else {}
        src = doc.get("source", {}) if isinstance(doc, dict) else {}
        user = doc.get("user", {}) if isinstance(doc, dict) else {}
        out.print(
            f"  {local_time(str(doc.get('@timestamp', '')))}  {escape(str(ev.get('action', '')))}  "
            f"{escape(str(ev.get('outcome', '')))}  user={escape(str(user.get('name', '')))}  "
            f"src={escape(str(src.get('ip', '')))}  id={escape(str(ev.get('id', '')))}"
        )
    out.print("\n[bold]History[/]")
    for h in history:
        change = f" {h.old or '-'} → {h.new}" if h.new is not None else ""
        note = f": {h.comment}" if h.comment else ""
        out.print(f"  {local_time(h.at)}  {escape(h.actor)}  {h.action}{escape(change)}{escape(note)}")


def _set_status(
    alert_ids: list[str], status: Status, comment: str | None, actor: str | None, config: Path | None
) -> None:
    try:
        store = open_alert_store(config)
        who = _actor(actor)
        for alert_id in alert_ids:
            found = store.set_status(alert_id, status, actor=who, comment=comment)
            err.print(f"{found.alert.id[:12]} {escape(found.alert.rule_id)}: {status.value}")
        store.close()
    except CloudsocError as exc:
        raise fail(exc) from None


CommentOption = Annotated[str | None, typer.Option("--comment", "-m", help="Why (kept in the history).")]
IdsArgument = Annotated[list[str], typer.Argument(help="Alert ids (or unique prefixes).")]


@app.command("ack")
def ack(
    alert_ids: IdsArgument, comment: CommentOption = None, actor: ActorOption = None, config: ConfigOption = None
) -> None:
    """Acknowledge: someone is looking at it."""
    _set_status(alert_ids, Status.ACKNOWLEDGED, comment, actor, config)


@app.command("resolve")
def resolve(
    alert_ids: IdsArgument, comment: CommentOption = None, actor: ActorOption = None, config: ConfigOption = None
) -> None:
    """Resolve: it was real and it is dealt with."""
    _set_status(alert_ids, Status.RESOLVED, comment, actor, config)


@app.command("fp")
def false_positive(
    alert_ids: IdsArgument, comment: CommentOption = None, actor: ActorOption = None, config: ConfigOption = None
) -> None:
    """Mark as false positive (consider `alerts suppress` so it does not come back)."""
    _set_status(alert_ids, Status.FALSE_POSITIVE, comment, actor, config)


@app.command("reopen")
def reopen(
    alert_ids: IdsArgument, comment: CommentOption = None, actor: ActorOption = None, config: ConfigOption = None
) -> None:
    """Put a closed alert back to new."""
    _set_status(alert_ids, Status.NEW, comment, actor, config)


@app.command("assign")
def assign(
    alert_id: Annotated[str, typer.Argument(help="Alert id.")],
    assignee: Annotated[str, typer.Argument(help="Who takes it ('-' to unassign).")],
    actor: ActorOption = None,
    config: ConfigOption = None,
) -> None:
    """Give an alert to someone."""
    try:
        store = open_alert_store(config)
        found = store.assign(alert_id, None if assignee == "-" else assignee, actor=_actor(actor))
        store.close()
    except CloudsocError as exc:
        raise fail(exc) from None
    err.print(f"{found.alert.id[:12]} assigned to {escape(found.assignee or 'nobody')}")


@app.command("comment")
def comment_(
    alert_id: Annotated[str, typer.Argument(help="Alert id.")],
    text: Annotated[str, typer.Argument(help="The comment.")],
    actor: ActorOption = None,
    config: ConfigOption = None,
) -> None:
    """Add a comment to an alert's history."""
    try:
        store = open_alert_store(config)
        found = store.comment(alert_id, text, actor=_actor(actor))
        store.close()
    except CloudsocError as exc:
        raise fail(exc) from None
    err.print(f"comment added to {found.alert.id[:12]}")


@app.command("suppress")
def suppress(
    rule: Annotated[str, typer.Argument(help="Rule id or glob, e.g. access_key_new_source.aws or '*'.")],
    conditions: Annotated[
        list[str] | None,
        typer.Argument(
            help="field=value conditions: a CIDR for IP fields, else a glob (cloudsoc.access_key_id=AKIA…)."
        ),
    ] = None,
    days: Annotated[float | None, typer.Option("--days", help="Expire after this many days (default: never).")] = None,
    reason: Annotated[str, typer.Option("--reason", "-m", help="Why (shown with every silenced alert).")] = "",
    actor: ActorOption = None,
    json_out: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Silence future alerts of a rule that match conditions, e.g.
    `cloudsoc alerts suppress access_key_new_source.aws cloudsoc.access_key_id=AKIA… source.ip=198.51.100.0/24
    --days 7`.
    The running daemon picks it up within a minute."""
    from datetime import UTC, timedelta

    try:
        parsed = parse_conditions(conditions or [])
        if not parsed and rule in ("*", ""):
            raise CloudsocError("refusing to suppress every alert of every rule: name a rule or give conditions")
        expires = datetime.now(UTC) + timedelta(days=days) if days else None
        store = open_alert_store(config)
        sid = store.add_suppression(rule, parsed, reason, actor=_actor(actor), expires=expires)
        store.close()
    except CloudsocError as exc:
        raise fail(exc) from None
    if json_out:
        typer.echo(
            orjson.dumps({"id": sid, "rule": rule, "conditions": parsed, "expires": str(expires or "")}).decode()
        )
    else:
        until = f" until {local_time(expires.isoformat())}" if expires else ""
        err.print(f"suppression {sid}: {escape(rule)} {escape(str(parsed))}{until}")


@app.command("suppressions")
def suppressions(
    remove: Annotated[int | None, typer.Option("--remove", help="Remove the suppression with this id.")] = None,
    json_out: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """List suppressions (with how many alerts each silenced), or remove one."""
    try:
        store = open_alert_store(config)
        if remove is not None:
            if not store.remove_suppression(remove):
                raise CloudsocError(f"no suppression {remove}")
            err.print(f"suppression {remove} removed")
            store.close()
            return
        rows = store.suppressions()
        store.close()
    except CloudsocError as exc:
        raise fail(exc) from None
    if json_out:
        for r in rows:
            typer.echo(orjson.dumps(msgspec.to_builtins(r)).decode())
        return
    table = Table(show_edge=False, header_style="bold")
    for col in ("id", "rule", "conditions", "reason", "by", "expires", "silenced"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            str(r.id),
            escape(r.rule),
            escape(", ".join(f"{k}={v}" for k, v in r.conditions.items())),
            escape(r.reason),
            escape(r.created_by),
            local_time(r.expires) if r.expires else "never",
            str(r.hits),
        )
    out.print(table)
