"""``GET /api/v1/graph``: the entity graph of the events matching a query — who (identities and their access
keys) did what (actions) from where (source addresses) in which accounts.

Built from grouped aggregates (``GROUPING SETS`` over the typed columns, one scan): only the pairs and their
counts reach Python, never the events. Access keys live inside the stored document only, so they cost a
second scan that reads and parses it; that scan runs when the matches number at most :data:`KEY_SCAN_MAX`, and
the answer says when it was skipped (``access_keys: false``)."""

from __future__ import annotations

import time
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from cloudsoc.api.auth import Principal, require
from cloudsoc.api.estate import Estate, get_estate, iso
from cloudsoc.api.permissions import Permission
from cloudsoc.api.routers.events import QueryParam, SinceParam, UntilParam, run_query, window

router = APIRouter(prefix="/api/v1/graph", tags=["graph"])
Reader = Annotated[Principal, Depends(require(Permission.READ))]
EstateDep = Annotated[Estate, Depends(get_estate)]

# Reading and parsing the documents costs far more than the typed columns (a 24 h window of a 10M-event store:
# ~0.1 s without, ~0.8 s with, on a loaded 2-core machine); above this many matches the access keys
# are left out rather than make the graph slow.
KEY_SCAN_MAX: Final = 100_000
NodeKind = Literal["identity", "ip", "action", "account", "access_key"]
EdgeKind = Literal["identity-ip", "identity-action", "identity-account", "key-identity"]
# The node kinds grouped by the typed columns: kind → (column, ECS field).
_NODES: Final[dict[str, tuple[str, str]]] = {
    "identity": ("user_name", "user.name"),
    "ip": ("source_ip", "source.ip"),
    "action": ("event_action", "event.action"),
    "account": ("cloud_account_id", "cloud.account.id"),
}
# Edge kinds from the typed columns: kind → (source node kind, target node kind).
_EDGES: Final[dict[str, tuple[str, str]]] = {
    "identity-ip": ("identity", "ip"),
    "identity-action": ("identity", "action"),
    "identity-account": ("identity", "account"),
}
_COLS: Final = (*(col for col, _f in _NODES.values()), "cloud_region")
KEY_FIELD: Final = "cloudsoc.access_key_id"


class Intel(BaseModel):
    source: str
    intel_types: list[str]
    confidence: int


class Node(BaseModel):
    id: str  # "<kind>:<value>"
    kind: NodeKind
    value: str
    field: str  # the ECS field to search it by
    count: int
    failures: int
    intel: list[Intel] = []  # source addresses: the active indicators that list it now
    allowed: str | None = None  # an allow list that calls the address benign (then it is not a hit)
    provider: str | None = None  # accounts: their cloud
    regions: dict[str, int] = {}  # accounts: events by region


class Edge(BaseModel):
    source: str
    target: str
    kind: EdgeKind
    count: int
    failures: int


class Graph(BaseModel):
    since: str | None
    until: str | None
    events: int  # matching events
    nodes: list[Node]
    edges: list[Edge]
    pairs: dict[str, int]  # distinct pairs per edge kind before the cap
    truncated: bool  # some kind had more pairs than ``limit``: only its top ones by count are drawn
    access_keys: bool  # whether access keys were scanned (skipped above KEY_SCAN_MAX matches)
    seconds: float


def _gid(*grouped: str) -> int:
    """DuckDB's GROUPING() id of a set grouping by ``grouped`` (a set bit for each column not grouped, the first
    column the highest)."""
    return sum(1 << (len(_COLS) - 1 - i) for i, col in enumerate(_COLS) if col not in grouped)


@router.get("", response_model=Graph)
def graph(
    _: Reader,
    estate: EstateDep,
    q: QueryParam = "*",
    since: SinceParam = None,
    until: UntilParam = None,
    limit: Annotated[int, Query(ge=1, le=500, description="The most pairs drawn per edge kind.")] = 50,
) -> Graph:
    """Identities, source addresses (intel hits marked), actions, accounts and access keys of the events
    matching ``q`` in [since, until), linked by how often they occur together (and how often that failed)."""
    started = time.perf_counter()
    t0, t1 = window(since, until)
    edge_gids = {kind: _gid(_NODES[a][0], _NODES[b][0]) for kind, (a, b) in _EDGES.items()}
    node_gids = {kind: _gid(col) for kind, (col, _f) in _NODES.items()}
    region_gid = _gid("cloud_account_id", "cloud_region")
    sets = [f"({_NODES[a][0]}, {_NODES[b][0]})" for a, b in _EDGES.values()]
    sets += [f"({col})" for col, _f in _NODES.values()] + ["(cloud_account_id, cloud_region)", "()"]
    cols = ", ".join(_COLS)
    not_null = " OR ".join(
        f"(gid = {edge_gids[k]} AND {_NODES[a][0]} IS NOT NULL AND {_NODES[b][0]} IS NOT NULL)"
        for k, (a, b) in _EDGES.items()
    )
    # One scan: every grouping at once; the edge sets ranked and cut to ``limit`` each, the node sets kept
    # for the kept edges' ends only (a wide window has many addresses; the graph draws few).
    rows = run_query(
        estate,
        f"""WITH m AS (SELECT {cols}, cloud_provider, event_outcome FROM {{events}} WHERE {{where}}),
        g AS MATERIALIZED (SELECT GROUPING({cols}) AS gid, {cols}, count(*) AS n,
                count(*) FILTER (event_outcome = 'failure') AS failed, any_value(cloud_provider) AS provider
            FROM m GROUP BY GROUPING SETS ({", ".join(sets)})),
        e AS (SELECT *, row_number() OVER (PARTITION BY gid ORDER BY n DESC, {cols}) AS rank,
                count(*) OVER (PARTITION BY gid) AS pairs FROM g WHERE {not_null}),
        kept AS (SELECT * FROM e WHERE rank <= ?)
        SELECT gid, {cols}, n, failed, provider, pairs FROM kept
        UNION ALL
        SELECT gid, {cols}, n, failed, provider, 0 FROM g
        WHERE gid NOT IN ({", ".join(str(v) for v in edge_gids.values())})""",
        q,
        t0,
        t1,
        [limit],
    )
    total = 0
    pairs = dict.fromkeys(_EDGES, 0)
    edges: list[Edge] = []
    found: dict[str, dict[str, tuple[int, int, Any]]] = {kind: {} for kind in _NODES}
    regions: dict[str, dict[str, int]] = {}
    kinds_of_edge = {gid: kind for kind, gid in edge_gids.items()}
    kinds_of_node = {gid: kind for kind, gid in node_gids.items()}
    for row in rows:
        gid, values, n, failed, provider, count = int(row[0]), row[1 : 1 + len(_COLS)], *row[1 + len(_COLS) :]
        by_col = dict(zip(_COLS, values, strict=True))
        if gid in kinds_of_edge:
            kind = kinds_of_edge[gid]
            a, b = _EDGES[kind]
            pairs[kind] = int(count)
            edges.append(
                Edge(
                    source=f"{a}:{by_col[_NODES[a][0]]}",
                    target=f"{b}:{by_col[_NODES[b][0]]}",
                    kind=kind,
                    count=int(n),
                    failures=int(failed),
                )
            )
        elif gid in kinds_of_node:
            kind = kinds_of_node[gid]
            value = by_col[_NODES[kind][0]]
            if value is not None:
                found[kind][str(value)] = (int(n), int(failed), provider)
        elif gid == region_gid and by_col["cloud_account_id"] is not None:
            regions.setdefault(by_col["cloud_account_id"], {})[by_col["cloud_region"] or "-"] = int(n)
        elif gid == _gid():
            total = int(n)
    truncated = any(n > limit for n in pairs.values())
    keys_scanned = total <= KEY_SCAN_MAX
    key_counts: dict[str, list[int]] = {}
    if keys_scanned and total:
        key_rows = run_query(
            estate,
            """WITH m AS (SELECT user_name, event_outcome, json_extract_string(doc, '$.cloudsoc.access_key_id') AS ak
                FROM {events} WHERE {where})
            SELECT ak, user_name, count(*) AS n, count(*) FILTER (event_outcome = 'failure'),
                count(*) OVER () FROM m WHERE ak IS NOT NULL AND user_name IS NOT NULL
            GROUP BY 1, 2 ORDER BY n DESC, 1, 2 LIMIT ?""",
            q,
            t0,
            t1,
            [limit],
        )
        for ak, user, n, failed, count in key_rows:
            pairs["key-identity"] = int(count)
            edges.append(
                Edge(
                    source=f"access_key:{ak}",
                    target=f"identity:{user}",
                    kind="key-identity",
                    count=int(n),
                    failures=int(failed),
                )
            )
            seen = key_counts.setdefault(str(ak), [0, 0])
            seen[0] += int(n)
            seen[1] += int(failed)
        truncated = truncated or pairs.get("key-identity", 0) > limit
    nodes = _nodes(estate, edges, found, regions, key_counts)
    return Graph(
        since=iso(t0),
        until=iso(t1),
        events=total,
        nodes=nodes,
        edges=edges,
        pairs=pairs,
        truncated=truncated,
        access_keys=keys_scanned,
        seconds=round(time.perf_counter() - started, 4),
    )


def _nodes(
    estate: Estate,
    edges: list[Edge],
    found: dict[str, dict[str, tuple[int, int, Any]]],
    regions: dict[str, dict[str, int]],
    key_counts: dict[str, list[int]],
) -> list[Node]:
    """The ends of the drawn edges with their own totals; addresses marked with the intel that lists them now."""
    ends: dict[str, None] = {}
    for edge in edges:
        ends[edge.source] = None
        ends[edge.target] = None
    addresses = [end.partition(":")[2] for end in ends if end.startswith("ip:")]
    marks = estate.ip_intel(addresses)
    nodes = []
    for end in ends:
        kind, _sep, value = end.partition(":")
        if kind == "access_key":
            n, failed = key_counts.get(value, [0, 0])
            nodes.append(Node(id=end, kind="access_key", value=value, field=KEY_FIELD, count=n, failures=failed))
            continue
        # An identity reached only through an access key has no row of its own when the cap cut its pairs:
        # its keys' counts stand in.
        n, failed, provider = found[kind].get(value, (0, 0, None))
        if not n:
            n = sum(e.count for e in edges if e.target == end)
            failed = sum(e.failures for e in edges if e.target == end)
        node = Node(
            id=end,
            kind=kind,
            value=value,
            field=_NODES[kind][1],
            count=n,
            failures=failed,
        )
        if kind == "ip":
            hits, node.allowed = marks.get(value, ([], None))
            node.intel = [
                Intel(source=h.indicator.source, intel_types=h.indicator.intel_types, confidence=h.indicator.confidence)
                for h in hits
            ]
        elif kind == "account":
            node.provider = provider
            node.regions = regions.get(value, {})
        nodes.append(node)
    return nodes
