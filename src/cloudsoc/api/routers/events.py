"""``/api/v1/events``: search stored events with the query language of ``cloudsoc search``, counts over time,
the top values of a field among the matches, and one event with its original record."""

from __future__ import annotations

import base64
import binascii
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final

import duckdb
import orjson
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from cloudsoc.api.auth import Principal, require
from cloudsoc.api.estate import Estate, get_estate, iso, time_range, window_now
from cloudsoc.api.paging import Page, Paging
from cloudsoc.api.permissions import Permission
from cloudsoc.errors import ConsoleError, QueryError
from cloudsoc.storage.columns import COLUMNS

router = APIRouter(prefix="/api/v1/events", tags=["events"])
Reader = Annotated[Principal, Depends(require(Permission.READ))]
EstateDep = Annotated[Estate, Depends(get_estate)]
QueryParam = Annotated[
    str,
    Query(
        max_length=4096,
        description="The search language of `cloudsoc search`, e.g. `event.action:ConsoleLogin AND NOT "
        "event.outcome:success` or `source.ip:203.0.113.0/24` (docs/specs/query-language.md).",
    ),
]
SinceParam = Annotated[str | None, Query(max_length=64, description="Start: 24h, 7d or an ISO time.")]
UntilParam = Annotated[str | None, Query(max_length=64, description="End (exclusive): a duration back or an ISO time.")]

# A field name as the query language writes it (letters, digits, _ @ - and dots); anything else is refused
# before it reaches SQL (the JSON path is bound as a parameter all the same).
_FIELD: Final = re.compile(r"^[A-Za-z0-9_@][A-Za-z0-9_@\-]*(\.[A-Za-z0-9_@\-]+)*$")
# Where each provider keeps the record as it arrived.
_ORIGINALS: Final = (("aws", "cloudtrail"), ("aliyun", "actiontrail"))


class EventPage(Page[dict[str, Any]]):
    """Matching ECS documents, newest first. ``next_cursor`` continues after the last one (stable while new
    events arrive, unlike ``offset``)."""

    next_cursor: str | None
    seconds: float


class Bucket(BaseModel):
    start: str
    count: int


class Histogram(BaseModel):
    since: str | None
    until: str | None
    interval_seconds: float
    total: int
    buckets: list[Bucket]


class FieldValue(BaseModel):
    value: str | None
    count: int


class TopValues(BaseModel):
    field: str
    total: int
    values: list[FieldValue]


class EventDetail(BaseModel):
    event: dict[str, Any]
    original: dict[str, Any] | None


def run_query(
    estate: Estate, sql: str, q: str, since: datetime | None, until: datetime | None, params: list[Any]
) -> list[tuple[Any, ...]]:
    """``sql`` over the events matching ``q``; a malformed query is a 400 naming its position."""
    events = estate.events()
    key = (sql, q, since, until, tuple(params), events.version())
    try:
        rows: list[tuple[Any, ...]] = estate.answers.get(
            key, lambda: events.select(sql, query=q, since=since, until=until, params=params)
        )
        return rows
    except QueryError as exc:
        raise ConsoleError(f"bad query: {exc}", extra={"position": exc.position}) from None
    except duckdb.Error as exc:
        # A query that parses but cannot run on these columns (e.g. a comparison DuckDB cannot cast).
        raise ConsoleError(f"the query cannot run: {str(exc).splitlines()[0][:200]}") from None


def window(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    return time_range(since, until, now=window_now())


def bucket_width(t0: datetime, t1: datetime, buckets: int) -> int:
    """Microseconds a bucket, rounded up so that ``buckets`` of them cover [t0, t1) whole."""
    span = round((t1 - t0).total_seconds() * 1_000_000)
    return max(-(-span // buckets), 1)


def _cursor(ts: datetime, event_id: str | None) -> str:
    raw = orjson.dumps([ts.isoformat(), event_id or ""])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _after(cursor: str) -> tuple[datetime, str]:
    try:
        ts, event_id = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(ts), str(event_id)
    except (binascii.Error, ValueError, TypeError, orjson.JSONDecodeError):
        raise ConsoleError("cursor: not a cursor this API returned") from None


@router.get("", response_model=EventPage)
def search(
    _: Reader,
    estate: EstateDep,
    paging: Annotated[Paging, Depends()],
    q: QueryParam = "*",
    since: SinceParam = None,
    until: UntilParam = None,
    cursor: Annotated[str | None, Query(max_length=512, description="`next_cursor` of the previous page.")] = None,
) -> EventPage:
    """Stored events matching ``q`` in [since, until), newest first."""
    started = time.perf_counter()
    t0, t1 = window(since, until)
    extra = ""
    params: list[Any] = []
    if cursor:
        ts, event_id = _after(cursor)
        extra = " AND (ts < ? OR (ts = ? AND coalesce(event_id, '') < ?))"
        params = [ts, ts, event_id]
    # The page and the number of all matches in one statement: the matches are found once, not twice.
    rows = run_query(
        estate,
        "WITH m AS (SELECT filename, file_row_number, ts, event_id FROM {events} WHERE {where}) "
        "SELECT * FROM (SELECT * FROM m WHERE TRUE"
        + extra
        + " ORDER BY ts DESC, coalesce(event_id, '') DESC LIMIT ? OFFSET ?) "
        "UNION ALL SELECT NULL, count(*), NULL, NULL FROM m",
        q,
        t0,
        t1,
        [*params, paging.limit, paging.offset],
    )
    keys = [r for r in rows if r[0] is not None]
    total = next(int(r[1]) for r in rows if r[0] is None)
    docs = estate.events().documents([(k[0], k[1]) for k in keys])
    next_cursor = _cursor(keys[-1][2], keys[-1][3]) if len(keys) == paging.limit else None
    return EventPage(
        items=docs,
        total=total,
        limit=paging.limit,
        offset=paging.offset,
        next_cursor=next_cursor,
        seconds=round(time.perf_counter() - started, 4),
    )


@router.get("/histogram", response_model=Histogram)
def histogram(
    _: Reader,
    estate: EstateDep,
    q: QueryParam = "*",
    since: SinceParam = None,
    until: UntilParam = None,
    buckets: Annotated[int, Query(ge=1, le=500, description="How many time buckets.")] = 60,
) -> Histogram:
    """How many events match ``q`` in each of ``buckets`` equal slices of [since, until) (default: the time
    range of the matches)."""
    t0, t1 = window(since, until)
    if t0 is not None and t1 is None:
        t1 = window_now()
    if t0 is None or t1 is None:
        lo, hi, n = run_query(estate, "SELECT min(ts), max(ts), count(*) FROM {events} WHERE {where}", q, t0, t1, [])[0]
        if not n:
            return Histogram(since=iso(t0), until=iso(t1), interval_seconds=0, total=0, buckets=[])
        t0 = t0 or lo.replace(tzinfo=UTC)
        t1 = t1 or hi.replace(tzinfo=UTC) + timedelta(microseconds=1)  # the newest match in the last bucket
    assert t0 is not None and t1 is not None
    width = bucket_width(t0, t1, buckets)
    start_us = int(t0.timestamp() * 1_000_000)
    rows = run_query(
        estate,
        "WITH m AS (SELECT ts FROM {events} WHERE {where}) "
        "SELECT (epoch_us(ts) - ?) // ? AS b, count(*) FROM m GROUP BY 1",
        q,
        t0,
        t1,
        [start_us, width],
    )
    counts = {int(b): int(n) for b, n in rows}
    out = [
        Bucket(start=iso(datetime.fromtimestamp((start_us + i * width) / 1_000_000, UTC)) or "", count=counts.get(i, 0))
        for i in range(buckets)
    ]
    return Histogram(
        since=iso(t0), until=iso(t1), interval_seconds=width / 1_000_000, total=sum(counts.values()), buckets=out
    )


@router.get("/fields", response_model=TopValues)
def top_values(
    _: Reader,
    estate: EstateDep,
    field: Annotated[str, Query(max_length=200, description="An ECS field, e.g. source.ip or user.name.")],
    q: QueryParam = "*",
    since: SinceParam = None,
    until: UntilParam = None,
    size: Annotated[int, Query(ge=1, le=100, description="How many values.")] = 10,
) -> TopValues:
    """The most frequent values of ``field`` among the events matching ``q`` (the search page's field bar)."""
    if not _FIELD.match(field):
        raise ConsoleError(f"field: {field[:80]!r} is not a field name (letters, digits, _ @ - and dots)")
    t0, t1 = window(since, until)
    column = COLUMNS.get(field)
    if column is not None:
        value_sql, params = (f"CAST({column[0]} AS VARCHAR)", [])
    else:
        path = "$." + ".".join(f'"{part}"' for part in field.split("."))
        value_sql, params = ("json_extract_string(doc, ?)", [path])
    rows = run_query(
        estate,
        f"WITH m AS (SELECT {'doc' if column is None else column[0]} FROM {{events}} WHERE {{where}}), "
        f"v AS (SELECT {value_sql} AS value FROM m) "
        "SELECT value, count(*) AS n, sum(count(*)) OVER () FROM v GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ?",
        q,
        t0,
        t1,
        [*params, size],
    )
    total = int(rows[0][2]) if rows else 0
    return TopValues(field=field, total=total, values=[FieldValue(value=v, count=int(n)) for v, n, _t in rows])


@router.get("/{event_id}", response_model=EventDetail)
def event(event_id: str, _: Reader, estate: EstateDep) -> EventDetail:
    """One stored event by its ``event.id``, with the record as it arrived (CloudTrail or ActionTrail)."""
    keys = run_query(
        estate,
        "SELECT filename, file_row_number FROM {events} WHERE {where} AND event_id = ? LIMIT 1",
        "*",
        None,
        None,
        [event_id[:256]],
    )
    docs = estate.events().documents([(k[0], k[1]) for k in keys])
    if not docs:
        raise ConsoleError(f"no stored event with id {event_id[:80]!r}", status=404)
    doc = docs[0]
    original: dict[str, Any] | None = None
    for provider, key in _ORIGINALS:
        part = doc.get(provider)
        if isinstance(part, dict) and isinstance(part.get(key), dict):
            original = part[key]
    return EventDetail(event=doc, original=original)
