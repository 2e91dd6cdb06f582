"""``/api/v1/bastion``: the bastion's sessions (live and past), their commands, replay frames, the recording as
a file, kill requests, and the command-activity dashboard.

Sessions come from the bastion's ``bastion.db`` (``SessionLog``); commands, log-ins and refusals from the event
store, where the daemon puts the bastion's audit documents (``event.action: bastion-*``). Replay is done here,
server-side, from the recording's keyframes: the browser gets screen frames (changed rows as runs of text with a
style), a window of session time at a time, so a long recording is never one big load and no terminal emulator
runs in the page."""

from __future__ import annotations

import contextlib
import math
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from pyte.screens import Char

from cloudsoc.api.auth import Principal, require
from cloudsoc.api.console import Console, get_console
from cloudsoc.api.estate import Estate, get_estate, iso, window_now
from cloudsoc.api.paging import Page, Paging
from cloudsoc.api.permissions import Permission
from cloudsoc.api.routers.events import SinceParam, UntilParam, bucket_width, run_query, window
from cloudsoc.bastion.asciicast import CastReader
from cloudsoc.bastion.layout import BastionLayout
from cloudsoc.bastion.reviews import ReviewQueue
from cloudsoc.bastion.screen import TermScreen
from cloudsoc.bastion.sessions import COLUMNS, SessionLog
from cloudsoc.detect.builtin.bastion_high_risk_command import HIGH_RISK
from cloudsoc.errors import BastionError, ConsoleError

router = APIRouter(prefix="/api/v1/bastion", tags=["bastion"])
Auditor = Annotated[Principal, Depends(require(Permission.AUDIT))]
Admin = Annotated[Principal, Depends(require(Permission.ADMIN))]
EstateDep = Annotated[Estate, Depends(get_estate)]
ConsoleDep = Annotated[Console, Depends(get_console)]

COMMAND_ACTIONS: Final = ("bastion-command", "bastion-exec")
HIGH_VERDICTS: Final = ("reject", "warn", "review")
DEFAULT_WINDOW: Final = timedelta(days=7)
# A replay window: frames at most every STEP seconds of session time, at most MAX_FRAMES or MAX_CELLS runs'
# worth of text in one answer (the client asks again from `until`).
STEP: Final = 0.1
MAX_WINDOW: Final = 300.0
MAX_FRAMES: Final = 3000
MAX_CHARS: Final = 2_000_000
_OFFSET: Final = re.compile(r"[?&]t=([0-9]+(?:\.[0-9]+)?)")
_CMD: Final = "json_extract_string(doc, '$.process.command_line')"
_SESSION: Final = "json_extract_string(doc, '$.session.id')"
_VERDICT: Final = "json_extract_string(doc, '$.cloudsoc.bastion.verdict')"
_RISK: Final = "TRY_CAST(json_extract_string(doc, '$.event.risk_score') AS INTEGER)"
_HOST: Final = "json_extract_string(doc, '$.host.name')"
_URL: Final = "json_extract_string(doc, '$.url.full')"
_RULE: Final = "json_extract_string(doc, '$.cloudsoc.bastion.rule')"
_REASON: Final = "json_extract_string(doc, '$.event.reason')"
_HIGH: Final = f"({_VERDICT} IN ({', '.join(repr(v) for v in HIGH_VERDICTS)}) OR coalesce({_RISK}, 0) >= {HIGH_RISK})"
# pyte colour names → our palette; 256-colour and true-colour cells (pyte keeps them as hex) go to the nearest.
_PALETTE: Final = {
    "black": (0, 0, 0),
    "red": (205, 0, 0),
    "green": (0, 205, 0),
    "brown": (205, 205, 0),
    "blue": (0, 0, 238),
    "magenta": (205, 0, 205),
    "cyan": (0, 205, 205),
    "white": (229, 229, 229),
    "brightblack": (127, 127, 127),
    "brightred": (255, 0, 0),
    "brightgreen": (0, 255, 0),
    "brightbrown": (255, 255, 0),
    "brightblue": (92, 92, 255),
    "brightmagenta": (255, 0, 255),
    "brightcyan": (0, 255, 255),
    "brightwhite": (255, 255, 255),
}


class SessionOut(BaseModel):
    id: str
    user: str
    source_ip: str
    target: str
    system_user: str
    kind: str
    started: str
    ended: str | None
    status: str
    live: bool
    bytes_in: int
    bytes_out: int
    commands: int
    recorded: bool


class CommandOut(BaseModel):
    time: str
    offset: float | None
    action: str
    command_line: str | None
    cwd: str | None
    outcome: str | None
    verdict: str | None
    rule: str | None
    risk_score: int | None
    high_risk: bool


class SessionDetail(BaseModel):
    session: SessionOut
    duration: float | None
    width: int | None
    height: int | None
    commands: list[CommandOut]


class Frame(BaseModel):
    t: float
    size: list[int] | None = None  # [cols, rows] when the terminal (re)sized: every row follows
    rows: list[tuple[int, list[tuple[str, str]]]]  # (row number, runs of (text, style classes))
    cursor: list[int]


class Frames(BaseModel):
    start: float
    until: float
    end: bool  # nothing after `until`
    duration: float
    frames: list[Frame]


class Count(BaseModel):
    value: str | None
    count: int


class Point(BaseModel):
    start: str
    commands: int
    high_risk: int


class RecentCommand(BaseModel):
    time: str
    user: str | None
    host: str | None
    source_ip: str | None
    action: str
    command_line: str | None
    session_id: str | None
    url: str | None
    verdict: str | None
    risk_score: int | None
    high_risk: bool


class Login(BaseModel):
    time: str
    user: str | None
    source_ip: str | None
    outcome: str | None
    reason: str | None


class Activity(BaseModel):
    since: str
    until: str
    interval_seconds: float
    commands: int
    high_risk: int
    timeline: list[Point]
    users: list[Count]
    top_programs: list[Count]
    top_commands: list[Count]
    latest: list[RecentCommand]
    risky: list[RecentCommand]
    logins: dict[str, int]
    refusals: list[Login]
    live_sessions: int


# -- sessions --------------------------------------------------------------------------------------------------
def _log(estate: Estate) -> SessionLog | None:
    """The bastion's session log, or None when this home never ran a bastion (do not create one)."""
    if not BastionLayout.of(estate.home.path).db.exists():
        return None
    return SessionLog(estate.home.path)


def _when(epoch: float | None) -> str | None:
    return None if epoch is None else iso(datetime.fromtimestamp(epoch, UTC))


def _session(row: dict[str, Any]) -> SessionOut:
    return SessionOut(
        id=row["id"],
        user=row["user"],
        source_ip=row["source_ip"],
        target=row["target"],
        system_user=row["system_user"],
        kind=row["kind"],
        started=_when(row["started"]) or "",
        ended=_when(row["ended"]),
        status=row["status"],
        live=row["status"] == "active",
        bytes_in=int(row["bytes_in"]),
        bytes_out=int(row["bytes_out"]),
        commands=int(row["commands"]),
        recorded=bool(row["recording"]),
    )


def _session_ids_with(estate: Estate, text: str, since: datetime | None) -> list[str]:
    """Sessions in which a command containing ``text`` (any case) ran, from the stored command events (from
    ``since`` on: a session that started then has no command before it)."""
    rows = run_query(
        estate,
        f"SELECT DISTINCT {_SESSION} FROM {{events}} WHERE {{where}} AND event_action IN (?, ?) "
        f"AND strpos(lower({_CMD}), lower(?)) > 0 AND {_SESSION} IS NOT NULL",
        "*",
        since,
        None,
        [*COMMAND_ACTIONS, text],
    )
    return [str(r[0]) for r in rows]


@router.get("/sessions", response_model=Page[SessionOut])
def sessions(
    _: Auditor,
    estate: EstateDep,
    paging: Annotated[Paging, Depends()],
    user: Annotated[str | None, Query(max_length=256)] = None,
    host: Annotated[str | None, Query(max_length=256, description="The target host (substring).")] = None,
    status: Annotated[Literal["live", "ended"] | None, Query()] = None,
    since: SinceParam = None,
    until: UntilParam = None,
    command: Annotated[
        str | None, Query(max_length=1024, description="Sessions in which a command containing this text ran.")
    ] = None,
) -> Page[SessionOut]:
    """Bastion sessions, newest first."""
    t0, t1 = window(since, until)
    clauses: list[str] = []
    params: list[Any] = []
    if user:
        clauses.append("user = ?")
        params.append(user)
    if host:
        clauses.append("instr(lower(target), lower(?)) > 0")
        params.append(host)
    if status == "live":
        clauses.append("status = 'active'")
    elif status == "ended":
        clauses.append("status != 'active'")
    if t0 is not None:
        clauses.append("started >= ?")
        params.append(t0.timestamp())
    if t1 is not None:
        clauses.append("started < ?")
        params.append(t1.timestamp())
    if command and command.strip():
        ids = _session_ids_with(estate, command.strip(), t0)
        if not ids:
            return paging.page([], 0)
        # One JSON parameter, not one per id: a common command can match more sessions than SQLite has variables.
        clauses.append("id IN (SELECT value FROM json_each(?))")
        params.append(orjson.dumps(ids).decode())
    log = _log(estate)
    if log is None:
        return paging.page([], 0)
    try:
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        total = int(log.conn.execute(f"SELECT count(*) FROM bastion_sessions {where}", params).fetchone()[0])
        rows = log.dicts(
            f"SELECT {', '.join(COLUMNS)} FROM bastion_sessions {where} ORDER BY started DESC LIMIT ? OFFSET ?",
            [*params, paging.limit, paging.offset],
        )
    finally:
        log.close()
    return paging.page([_session(row) for row in rows], total)


def _row(estate: Estate, session_id: str) -> dict[str, Any]:
    log = _log(estate)
    row = None
    if log is not None:
        try:
            row = log.get(session_id)
        finally:
            log.close()
    if row is None:
        raise ConsoleError("no such bastion session", status=404)
    return row


def _recording(estate: Estate, row: dict[str, Any]) -> Path:
    """The session's recording, which must lie under the home's bastion recordings folder."""
    root = BastionLayout.of(estate.home.path).recordings.resolve()
    raw = row.get("recording") or ""
    path = Path(raw).resolve() if raw else None
    if path is None or not path.is_relative_to(root) or not path.is_file():
        raise ConsoleError("this session has no recording", status=404)
    return path


def _offset(url: str | None) -> float | None:
    found = _OFFSET.search(url or "")
    return float(found.group(1)) if found else None


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _duration(path: Path) -> tuple[float, int, int]:
    """Length of a recording and its first size; reads only the last chunk (seek to the end)."""
    reader = CastReader(path)
    last = 0.0
    for event in reader.seek(float("inf")):
        last = event.time
    return last, reader.width, reader.height


@router.get("/sessions/{session_id}", response_model=SessionDetail)
def session_detail(session_id: str, _: Auditor, estate: EstateDep) -> SessionDetail:
    """One session and the commands, exec requests and their verdicts in it, with their offsets."""
    row = _row(estate, session_id)
    rows = run_query(
        estate,
        f"SELECT ts, event_action, {_CMD}, json_extract_string(doc, '$.process.working_directory'), event_outcome, "
        f"{_VERDICT}, {_RULE}, {_RISK}, {_URL}, {_HIGH} FROM {{events}} WHERE {{where}} "
        f"AND event_action IN (?, ?) AND {_SESSION} = ? ORDER BY ts, {_URL} LIMIT 5000",
        "*",
        None,
        None,
        [*COMMAND_ACTIONS, session_id],
    )
    commands = [
        CommandOut(
            time=iso(r[0]) or "",
            action=r[1],
            command_line=r[2],
            cwd=r[3],
            outcome=r[4],
            verdict=r[5],
            rule=r[6],
            risk_score=_int(r[7]),
            offset=_offset(r[8]),
            high_risk=bool(r[9]),
        )
        for r in rows
    ]
    commands.sort(key=lambda c: (c.offset is None, c.offset or 0.0, c.time))
    duration = width = height = None
    if row.get("recording"):
        with contextlib.suppress(ConsoleError, BastionError):
            duration, width, height = _duration(_recording(estate, row))
    return SessionDetail(session=_session(row), duration=duration, width=width, height=height, commands=commands)


@router.post("/sessions/{session_id}/kill", response_model=SessionOut)
def kill(session_id: str, request: Request, who: Admin, estate: EstateDep, console: ConsoleDep) -> SessionOut:
    """Ask the bastion to end a live session (it polls the request within a second)."""
    log = _log(estate)
    if log is None:
        raise ConsoleError("no such bastion session", status=404)
    try:
        row = log.get(session_id)
        if row is None:
            raise ConsoleError("no such bastion session", status=404)
        if row["status"] != "active":
            raise ConsoleError("the session has already ended", status=409)
        log.kill(session_id)
    finally:
        log.close()
    console.audit(request, who, "bastion.kill", session_id, detail={"user": row["user"], "target": row["target"]})
    return _session(row)


# -- review requests -------------------------------------------------------------------------------------------
class ReviewOut(BaseModel):
    """A command a `review` rule holds until someone decides."""

    id: str
    session_id: str
    user: str
    source_ip: str
    target: str
    system_user: str
    kind: str
    command: str
    rule: str
    command_group: str
    reason: str
    risk: str
    requested: str
    expires: str
    status: str
    decided_by: str | None
    decided: str | None
    note: str | None


class Decision(BaseModel):
    note: str = Field("", max_length=1000, description="Why (kept with the decision).")


def _review(row: dict[str, Any]) -> ReviewOut:
    times = {k: _when(row[k]) for k in ("requested", "expires", "decided")}
    return ReviewOut(**{**row, **times})


def _queue(estate: Estate) -> ReviewQueue | None:
    """The bastion's review queue, or None when this home never ran a bastion (do not create one)."""
    if not BastionLayout.of(estate.home.path).db.exists():
        return None
    return ReviewQueue(estate.home.path)


@router.get("/reviews", response_model=list[ReviewOut])
def reviews(
    _: Auditor, estate: EstateDep, pending: bool = False, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[ReviewOut]:
    """Review requests, newest first (``pending``: only those still waiting)."""
    queue = _queue(estate)
    if queue is None:
        return []
    try:
        return [_review(r) for r in queue.list(pending=pending, limit=limit)]
    finally:
        queue.close()


def _decide(review_id: str, approve: bool, body: Decision, request: Request, who: Principal, estate: Estate,
            console: Console) -> ReviewOut:  # fmt: skip
    queue = _queue(estate)
    if queue is None:
        raise ConsoleError(f"no review request {review_id!r}", status=404)
    try:
        if queue.get(review_id) is None:
            raise ConsoleError(f"no review request {review_id!r}", status=404)
        try:
            row = queue.decide(review_id, approve=approve, by=who.user, note=body.note)
        except BastionError as exc:
            raise ConsoleError(str(exc), status=409) from None
    finally:
        queue.close()
    action = "bastion.review.approve" if approve else "bastion.review.reject"
    console.audit(request, who, action, review_id, detail={"user": row["user"], "command": row["command"]})
    return _review(row)


@router.post("/reviews/{review_id}/approve", response_model=ReviewOut)
def approve(
    review_id: str, request: Request, who: Admin, estate: EstateDep, console: ConsoleDep, body: Decision | None = None
) -> ReviewOut:
    """Let a held command run (the waiting session sends it within a second)."""
    return _decide(review_id, True, body or Decision(), request, who, estate, console)


@router.post("/reviews/{review_id}/reject", response_model=ReviewOut)
def reject(
    review_id: str, request: Request, who: Admin, estate: EstateDep, console: ConsoleDep, body: Decision | None = None
) -> ReviewOut:
    """Refuse a held command (the line is erased on the host and the user told)."""
    return _decide(review_id, False, body or Decision(), request, who, estate, console)


# -- replay ----------------------------------------------------------------------------------------------------
def _nearest(value: str) -> str:
    if value in _PALETTE:
        return value
    try:
        r, g, b = int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)
    except ValueError:
        return "default"
    return min(_PALETTE, key=lambda n: sum((a - c) ** 2 for a, c in zip(_PALETTE[n], (r, g, b), strict=True)))


def _style(char: Char, cache: dict[tuple[Any, ...], str]) -> str:
    """CSS classes of a cell: `f-<colour>` and `b-<colour>` (reverse video swaps them), `t-b` bold, `t-i`, `t-u`,
    `t-s` (strike-through)."""
    key = (char.fg, char.bg, char.bold, char.italics, char.underscore, char.strikethrough, char.reverse)
    found = cache.get(key)
    if found is not None:
        return found
    fg, bg = _nearest(char.fg), _nearest(char.bg)
    if char.reverse:
        fg, bg = (bg if bg != "default" else "rdef"), (fg if fg != "default" else "rdef")
    classes = [f"f-{fg}" for _ in (1,) if fg != "default"] + [f"b-{bg}" for _ in (1,) if bg != "default"]
    for flag, name in (("bold", "b"), ("italics", "i"), ("underscore", "u"), ("strikethrough", "s")):
        if getattr(char, flag):
            classes.append(f"t-{name}")
    cache[key] = found = " ".join(classes)
    return found


def _runs(screen: TermScreen, y: int, cache: dict[tuple[Any, ...], str]) -> list[tuple[str, str]]:
    line = screen.buffer[y]
    runs: list[tuple[str, str]] = []
    text: list[str] = []
    style = ""
    for x in range(screen.columns):
        char = line[x]
        cls = _style(char, cache)
        if cls != style and text:
            runs.append(("".join(text), style))
            text = []
        style = cls
        text.append(char.data)
    if text:
        runs.append(("".join(text), style))
    # Trailing blanks with no background are not worth sending.
    while runs and runs[-1][1] == "" and not runs[-1][0].strip():
        runs.pop()
    if runs and runs[-1][1] == "":
        runs[-1] = (runs[-1][0].rstrip(), "")
    return runs


def replay_frames(path: Path, start: float, end: float) -> Frames:
    """Screen frames for session time (start, end]: a full frame at ``start``, then the rows that changed, at most
    one frame per :data:`STEP` seconds. Cut short (``until`` < end) when the answer would grow too big."""
    reader = CastReader(path)
    screen = TermScreen(reader.width, reader.height)
    cache: dict[tuple[Any, ...], str] = {}
    frames: list[Frame] = []
    chars = 0
    pending: float | None = None  # time of the first change not yet in a frame
    last = start
    resized = True
    started = False
    until = end
    done = True
    duration = 0.0

    def emit(t: float, full: bool) -> None:
        nonlocal chars, resized
        ys = range(screen.lines) if full or resized else sorted(y for y in screen.dirty if y < screen.lines)
        rows = [(y, _runs(screen, y, cache)) for y in ys]
        chars += sum(len(text) + len(style) + 8 for _y, runs in rows for text, style in runs) + 16
        size = [screen.columns, screen.lines] if resized else None
        # Rounded up: a frame never shows before its last event, so a seek to a command's (rounded) offset
        # draws nothing that came after the command.
        at = t if full else math.ceil(t * 1000 - 1e-6) / 1000
        frames.append(Frame(t=at, size=size, rows=rows, cursor=[screen.cursor.x, screen.cursor.y]))
        screen.dirty.clear()
        resized = False

    def apply(code: str, data: str) -> None:
        nonlocal resized
        if code == "o":
            screen.feed(data)
        elif code == "r":
            cols, lines = data.split("x")
            screen.resize(lines=int(lines), columns=int(cols))
            resized = True

    for event in reader.seek(start):
        duration = event.time
        if event.time <= start:
            apply(event.code, event.data)
            continue
        if not started:
            emit(start, True)
            started = True
        if event.time > end or len(frames) >= MAX_FRAMES or chars >= MAX_CHARS:
            if pending is not None:
                emit(last, False)
                pending = None
            until = end if event.time > end else last
            done = False
            break
        if pending is not None and event.time - pending >= STEP:
            emit(last, False)
            pending = None
        if event.code in ("o", "r"):
            apply(event.code, event.data)
            if pending is None and (screen.dirty or resized):
                pending = event.time
        last = event.time
    if not started:
        emit(start, True)
    if pending is not None:
        emit(last, False)
    if done:
        until = max(last, start)
    else:
        # Seek to the end for the length only when the client may need it: a cheap read of one chunk.
        duration = _duration(path)[0]
    return Frames(start=start, until=until, end=done, duration=max(duration, until), frames=frames)


@router.get("/sessions/{session_id}/frames", response_model=Frames)
def frames(
    session_id: str,
    _: Auditor,
    estate: EstateDep,
    start: Annotated[float, Query(alias="from", ge=0, description="Session time (seconds) to start at.")] = 0.0,
    to: Annotated[float | None, Query(ge=0, description="Session time to stop at (default: from + 60 s).")] = None,
) -> Frames:
    """Replay frames of the session's recording for [from, to]; a long window is cut (ask again from `until`)."""
    end = start + 60.0 if to is None else to
    if end < start:
        raise ConsoleError("to must not be before from")
    end = min(end, start + MAX_WINDOW)
    path = _recording(estate, _row(estate, session_id))
    try:
        return replay_frames(path, start, end)
    except BastionError as exc:
        raise ConsoleError(f"the recording cannot be read: {exc}", status=422) from None


@router.get("/sessions/{session_id}/cast", response_class=StreamingResponse)
def cast(session_id: str, _: Auditor, estate: EstateDep) -> StreamingResponse:
    """The recording as an asciicast v2 file (`asciinema play`, asciinema-player)."""
    path = _recording(estate, _row(estate, session_id))
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", session_id)[:100]
    return StreamingResponse(
        CastReader(path).v2_lines(),
        media_type="text/plain; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{safe}.cast"'},
    )


# -- dashboard -------------------------------------------------------------------------------------------------
def _recent(r: tuple[Any, ...]) -> RecentCommand:
    return RecentCommand(
        time=iso(r[0]) or "",
        user=r[1],
        host=r[2],
        source_ip=r[3],
        action=r[4],
        command_line=r[5],
        session_id=r[6],
        url=r[7],
        verdict=r[8],
        risk_score=_int(r[9]),
        high_risk=bool(r[10]),
    )


@router.get("/activity", response_model=Activity)
def activity(
    _: Auditor,
    estate: EstateDep,
    since: SinceParam = None,
    until: UntilParam = None,
    top: Annotated[int, Query(ge=1, le=50)] = 10,
    buckets: Annotated[int, Query(ge=1, le=500)] = 48,
) -> Activity:
    """Command activity over [since, until) (default: the last 7 days): over time, by user, top programs and
    lines, the latest and the high-risk commands, log-ins and refusals."""
    t0, t1 = window(since, until)
    t1 = t1 or window_now()
    t0 = t0 or t1 - DEFAULT_WINDOW
    width = bucket_width(t0, t1, buckets)
    start_us = int(t0.timestamp() * 1_000_000)
    actions = [*COMMAND_ACTIONS]
    series = run_query(
        estate,
        f"WITH m AS (SELECT ts, {_HIGH} AS high FROM {{events}} WHERE {{where}} AND event_action IN (?, ?)) "
        "SELECT (epoch_us(ts) - ?) // ? AS b, count(*), count(*) FILTER (high) FROM m GROUP BY 1",
        "*",
        t0,
        t1,
        [*actions, start_us, width],
    )
    by_bucket = {int(b): (int(n), int(h)) for b, n, h in series}
    grouped = run_query(
        estate,
        f"""WITH m AS (SELECT user_name, {_CMD} AS line FROM {{events}} WHERE {{where}} AND event_action IN (?, ?)),
        g AS (SELECT 'u' AS k, user_name AS v, count(*) AS n FROM m GROUP BY 2
              UNION ALL SELECT 'p', split_part(trim(line), ' ', 1), count(*) FROM m WHERE line IS NOT NULL GROUP BY 2
              UNION ALL SELECT 'c', line, count(*) FROM m WHERE line IS NOT NULL GROUP BY 2),
        r AS (SELECT *, row_number() OVER (PARTITION BY k ORDER BY n DESC, v) AS rank FROM g)
        SELECT k, v, n FROM r WHERE rank <= ? ORDER BY k, rank""",
        "*",
        t0,
        t1,
        [*actions, top],
    )
    parts: dict[str, list[Count]] = {"u": [], "p": [], "c": []}
    for k, v, n in grouped:
        parts[k].append(Count(value=v, count=int(n)))
    recent_sql = (
        f"SELECT ts, user_name, {_HOST}, source_ip, event_action, {_CMD}, {_SESSION}, {_URL}, {_VERDICT}, {_RISK}, "
        f"{_HIGH} FROM {{events}} WHERE {{where}} AND event_action IN (?, ?) %s ORDER BY ts DESC LIMIT ?"
    )
    latest = run_query(estate, recent_sql % "", "*", t0, t1, [*actions, 20])
    risky = run_query(estate, recent_sql % f"AND {_HIGH}", "*", t0, t1, [*actions, 50])
    logins = run_query(
        estate,
        "SELECT coalesce(event_outcome, 'unknown'), count(*) FROM {events} WHERE {where} AND event_action = ? "
        "GROUP BY 1",
        "*",
        t0,
        t1,
        ["bastion-login"],
    )
    refusals = run_query(
        estate,
        f"SELECT ts, user_name, source_ip, event_outcome, {_REASON} FROM {{events}} WHERE {{where}} "
        "AND event_action = ? AND event_outcome = 'failure' ORDER BY ts DESC LIMIT 20",
        "*",
        t0,
        t1,
        ["bastion-login"],
    )
    live = 0
    log = _log(estate)
    if log is not None:
        try:
            live = int(log.conn.execute("SELECT count(*) FROM bastion_sessions WHERE status = 'active'").fetchone()[0])
        finally:
            log.close()
    timeline = [
        Point(
            start=iso(datetime.fromtimestamp((start_us + i * width) / 1_000_000, UTC)) or "",
            commands=by_bucket.get(i, (0, 0))[0],
            high_risk=by_bucket.get(i, (0, 0))[1],
        )
        for i in range(buckets)
    ]
    return Activity(
        since=iso(t0) or "",
        until=iso(t1) or "",
        interval_seconds=width / 1_000_000,
        commands=sum(n for n, _h in by_bucket.values()),
        high_risk=sum(h for _n, h in by_bucket.values()),
        timeline=timeline,
        users=parts["u"],
        top_programs=parts["p"],
        top_commands=parts["c"],
        latest=[_recent(r) for r in latest],
        risky=[_recent(r) for r in risky],
        logins={str(k): int(n) for k, n in logins},
        refusals=[Login(time=iso(r[0]) or "", user=r[1], source_ip=r[2], outcome=r[3], reason=r[4]) for r in refusals],
        live_sessions=live,
    )
