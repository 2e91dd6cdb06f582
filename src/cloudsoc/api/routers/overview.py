"""``GET /api/v1/overview``: the dashboard in one call — events and alerts over time, the estate by cloud,
account and region, top source addresses (intel hits marked), identities and actions, and failed operations.

Every figure comes from the typed columns (never a stored document): one grouped scan for the breakdowns
(``GROUPING SETS``) and one for the time series, so a window of millions of events answers in well under a
second."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from cloudsoc.api.auth import Principal, require
from cloudsoc.api.estate import Estate, get_estate, iso, window_now
from cloudsoc.api.permissions import Permission
from cloudsoc.api.routers.events import QueryParam, SinceParam, UntilParam, bucket_width, run_query, window

router = APIRouter(prefix="/api/v1/overview", tags=["overview"])
Reader = Annotated[Principal, Depends(require(Permission.READ))]
EstateDep = Annotated[Estate, Depends(get_estate)]

DEFAULT_WINDOW: Final = timedelta(hours=24)
# The breakdowns: (name, column) in GROUPING SETS order.
_GROUPS: Final = (
    ("clouds", "cloud_provider"),
    ("accounts", "cloud_account_id"),
    ("regions", "cloud_region"),
    ("source_ips", "source_ip"),
    ("identities", "user_name"),
    ("actions", "event_action"),
)


class Point(BaseModel):
    start: str
    events: int
    failures: int
    alerts: int


class Count(BaseModel):
    value: str | None
    count: int
    failures: int


class SourceCount(Count):
    intel: list[str]  # the intel sources that list this address (empty: none)
    allowed: str | None  # an allow list that calls it benign


class Overview(BaseModel):
    since: str
    until: str
    interval_seconds: float
    events: int
    failures: int
    alerts: int
    alerts_by_severity: dict[str, int]
    alerts_by_status: dict[str, int]
    timeline: list[Point]
    clouds: list[Count]
    accounts: list[Count]
    regions: list[Count]
    source_ips: list[SourceCount]
    identities: list[Count]
    actions: list[Count]
    failed_actions: list[Count]


@router.get("", response_model=Overview)
def overview(
    _: Reader,
    estate: EstateDep,
    since: SinceParam = None,
    until: UntilParam = None,
    q: QueryParam = "*",
    top: Annotated[int, Query(ge=1, le=50, description="How many entries per breakdown.")] = 10,
    buckets: Annotated[int, Query(ge=1, le=500, description="Points of the time series.")] = 48,
) -> Overview:
    """The dashboard over [since, until) (default: the last 24 hours), optionally narrowed by a query."""
    t0, t1 = window(since, until)
    t1 = t1 or window_now()
    t0 = t0 or t1 - DEFAULT_WINDOW
    width = bucket_width(t0, t1, buckets)
    start_us = int(t0.timestamp() * 1_000_000)
    series = run_query(
        estate,
        "WITH m AS (SELECT ts, event_outcome FROM {events} WHERE {where}) SELECT (epoch_us(ts) - ?) // ? AS b, "
        "count(*), count(*) FILTER (event_outcome = 'failure') FROM m GROUP BY 1",
        q,
        t0,
        t1,
        [start_us, width],
    )
    by_bucket = {int(b): (int(n), int(f)) for b, n, f in series}
    sets = ", ".join(f"({col})" for _name, col in _GROUPS) + ", (event_action, event_outcome)"
    ranked = run_query(
        estate,
        f"""WITH m AS (SELECT {", ".join(col for _n, col in _GROUPS)}, event_outcome FROM {{events}} WHERE {{where}}),
        g AS (SELECT GROUPING({", ".join(col for _n, col in _GROUPS)}, event_outcome) AS gid,
                     {", ".join(col for _n, col in _GROUPS)}, event_outcome,
                     count(*) AS n, count(*) FILTER (event_outcome = 'failure') AS failed
              FROM m GROUP BY GROUPING SETS ({sets})),
        r AS (SELECT *, row_number() OVER (PARTITION BY gid ORDER BY n DESC) AS rank FROM g
              WHERE gid != {_gid_failed()} OR event_outcome = 'failure')
        SELECT * FROM r WHERE rank <= ? ORDER BY gid, rank""",
        q,
        t0,
        t1,
        [top],
    )
    groups: dict[str, list[Count]] = {name: [] for name, _c in _GROUPS}
    failed_actions: list[Count] = []
    positions = {_gid(i): name for i, (name, _c) in enumerate(_GROUPS)}
    for row in ranked:
        gid, values, n, failed = int(row[0]), row[1 : 1 + len(_GROUPS)], int(row[-3]), int(row[-2])
        name = positions.get(gid)
        if name is not None:
            value = values[[g for g, _c in _GROUPS].index(name)]
            groups[name].append(Count(value=value, count=n, failures=failed))
        elif gid == _gid_failed():
            failed_actions.append(Count(value=values[-1], count=n, failures=failed))
    sources = _mark(estate, groups.pop("source_ips"))
    alerts_series, by_severity, by_status, alert_total = _alerts(estate, t0, t1, start_us, width)
    timeline = [
        Point(
            start=iso(datetime.fromtimestamp((start_us + i * width) / 1_000_000, UTC)) or "",
            events=by_bucket.get(i, (0, 0))[0],
            failures=by_bucket.get(i, (0, 0))[1],
            alerts=alerts_series.get(i, 0),
        )
        for i in range(buckets)
    ]
    return Overview(
        since=iso(t0) or "",
        until=iso(t1) or "",
        interval_seconds=width / 1_000_000,
        events=sum(n for n, _f in by_bucket.values()),
        failures=sum(f for _n, f in by_bucket.values()),
        alerts=alert_total,
        alerts_by_severity=by_severity,
        alerts_by_status=by_status,
        timeline=timeline,
        source_ips=sources,
        failed_actions=failed_actions,
        **groups,
    )


def _gid(position: int) -> int:
    """DuckDB's GROUPING() id of the set that groups by the column at ``position`` alone (a set bit for every
    column not grouped, the first column the highest bit; event_outcome is the lowest)."""
    columns = len(_GROUPS) + 1
    return (1 << columns) - 1 - (1 << (columns - 1 - position))


def _gid_failed() -> int:
    """The GROUPING() id of the (event_action, event_outcome) set."""
    columns = len(_GROUPS) + 1
    action = [c for _n, c in _GROUPS].index("event_action")
    return (1 << columns) - 1 - (1 << (columns - 1 - action)) - 1


def _mark(estate: Estate, rows: list[Count]) -> list[SourceCount]:
    """Source addresses with the intel sources that list them now (not only when the events arrived)."""
    marks = estate.ip_intel(row.value for row in rows if row.value)
    out = []
    for row in rows:
        hits, allowed = marks.get(row.value or "", ([], None))
        sources = sorted({hit.indicator.source for hit in hits})
        out.append(SourceCount(value=row.value, count=row.count, failures=row.failures, intel=sources, allowed=allowed))
    return out


def _alerts(
    estate: Estate, t0: datetime, t1: datetime, start_us: int, width: int
) -> tuple[dict[int, int], dict[str, int], dict[str, int], int]:
    """Alerts whose activity began in the window (their first event's time, as the event series counts), per
    time bucket, by severity and by status. Alert volumes are small: times are compared in Python, where the
    stored spellings (``Z`` or ``+00:00``) do not matter."""
    with estate.alerts() as store:
        rows = store.conn.execute("SELECT first_time, created, severity, status FROM alerts").fetchall()
    series: Counter[int] = Counter()
    severity: Counter[str] = Counter()
    status: Counter[str] = Counter()
    total = 0
    for first, created, sev, st in rows:
        try:
            at = datetime.fromisoformat(first or created)
        except ValueError:
            continue
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
        if not t0 <= at < t1:
            continue
        total += 1
        series[int((at.timestamp() * 1_000_000 - start_us) // width)] += 1
        severity[sev] += 1
        status[st] += 1
    return dict(series), dict(severity), dict(status), total
