"""Differential test: our Sigma engine against pySigma + pysigma-backend-sqlite on the same rules and events.

Events: every CloudTrail record in ../shared/data/cloudaudit that our parser accepts (Panther's rule-test logs,
OTRF's breach export, OTRF's honey-bucket S3 data events, whose CSV columns are CloudTrail's fields). Rules: the
57 SigmaHQ AWS CloudTrail rules, plus the correlation rules below. The SQLite side flattens each event's
CloudTrail record (``aws.cloudtrail``, as stored) into one row (dotted column names; an object or list is also
stored whole as its JSON text, a boolean as ``true``/``false``, as Zircolite does), converts every rule with the
backend and runs the SQL. Our side runs :class:`RuleIndex.select` (and the correlations' aggregators) over the
parsed documents. Both must find exactly the same (rule, event) pairs and the same correlation groups.

The oracle (:class:`SqliteSigma`) is also what ``bench/detect_sigma_vs_sqlite.py`` times.
"""

from __future__ import annotations

import ast
import csv
import random
import re
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest
from sigma.backends.sqlite import sqliteBackend
from sigma.backends.sqlite.runtime import execute_plan
from sigma.collection import SigmaCollection

from cloudsoc.detect.correlation import SigmaCorrelation
from cloudsoc.detect.engine import RuleIndex, event_time
from cloudsoc.detect.rule import Finding, Rule
from cloudsoc.detect.sigma import json_text, load_sigma
from cloudsoc.errors import ParseError
from cloudsoc.parsers.aws_cloudtrail import AwsCloudtrail
from tests.golden.cloudaudit_samples import otrf_cloudtrail, panther_cloudtrail

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
CLOUDAUDIT = SHARED / "cloudaudit"
SIGMA_DIR = CLOUDAUDIT / "sigma-rules-aws" / "cloudtrail"
HONEY_BUCKET = CLOUDAUDIT / "otrf-security-datasets" / "AWS_S3_HoneyBucketLogs.csv"

# Correlations over CloudTrail's own field names, each with the base rules it needs (one Sigma file).
CORRELATIONS = """
title: AWS API call denied
name: aws_access_denied
logsource: {product: aws, service: cloudtrail}
detection:
    selection:
        errorCode: [AccessDenied, UnauthorizedOperation, Client.UnauthorizedOperation]
    condition: selection
level: low
---
title: Many denied AWS API calls from one identity
id: 5a1e9a55-7f0b-4a47-9a8e-6f1d2d3c0001
correlation:
    type: event_count
    rules: aws_access_denied
    group-by: [userIdentity.arn]
    timespan: 5m
    condition: {gte: 5}
level: medium
tags: [attack.discovery]
falsepositives: [A misconfigured deployment role]
---
title: AWS read-only discovery call
name: aws_recon_call
logsource: {product: aws, service: cloudtrail}
detection:
    selection:
        eventName|startswith: [Describe, List, Get]
    condition: selection
---
title: Many distinct discovery calls from one identity
id: 5a1e9a55-7f0b-4a47-9a8e-6f1d2d3c0002
correlation:
    type: value_count
    rules: aws_recon_call
    group-by: [userIdentity.arn]
    timespan: 1m
    condition: {gte: 10, field: eventName}
level: medium
---
title: S3 ListBuckets
name: aws_s3_list_buckets
logsource: {product: aws, service: cloudtrail}
detection:
    selection: {eventSource: s3.amazonaws.com, eventName: ListBuckets}
    condition: selection
---
title: S3 ListObjects
name: aws_s3_list_objects
logsource: {product: aws, service: cloudtrail}
detection:
    selection: {eventSource: s3.amazonaws.com, eventName: ListObjects}
    condition: selection
---
title: S3 GetObject
name: aws_s3_get_object
logsource: {product: aws, service: cloudtrail}
detection:
    selection: {eventSource: s3.amazonaws.com, eventName: GetObject}
    condition: selection
---
title: Buckets listed, then objects listed and read, by one identity
id: 5a1e9a55-7f0b-4a47-9a8e-6f1d2d3c0003
correlation:
    type: temporal_ordered
    rules: [aws_s3_list_buckets, aws_s3_list_objects, aws_s3_get_object]
    group-by: [userIdentity.arn]
    timespan: 15m
level: high
---
title: Role assumed by an AWS service
name: aws_role_assumed_by_service
logsource: {product: aws, service: cloudtrail}
detection:
    selection: {eventName: AssumeRole, userIdentity.type: AWSService}
    condition: selection
---
title: S3 call from a role session
name: aws_role_session_s3
logsource: {product: aws, service: cloudtrail}
detection:
    selection: {eventSource: s3.amazonaws.com, userIdentity.type: AssumedRole}
    condition: selection
---
title: Instance role used for S3 soon after it was assumed
id: 5a1e9a55-7f0b-4a47-9a8e-6f1d2d3c0004
correlation:
    type: temporal_ordered
    rules: [aws_role_assumed_by_service, aws_role_session_s3]
    group-by: [role]
    aliases:
        role:
            aws_role_assumed_by_service: requestParameters.roleArn
            aws_role_session_s3: userIdentity.sessionContext.sessionIssuer.arn
    timespan: 30m
level: medium
---
title: Anonymous S3 request
name: aws_s3_anonymous
logsource: {product: aws, service: cloudtrail}
detection:
    selection: {userIdentity.accountId: ANONYMOUS_PRINCIPAL}
    condition: selection
---
title: Anonymous S3 probing from one address
id: 5a1e9a55-7f0b-4a47-9a8e-6f1d2d3c0005
correlation:
    type: event_count
    rules: aws_s3_anonymous
    group-by: [sourceIPAddress]
    timespan: 1d
    condition: {gte: 2}
    generate: true
level: low
---
title: Anonymous S3 requests of several kinds from one address
id: 5a1e9a55-7f0b-4a47-9a8e-6f1d2d3c0006
correlation:
    type: value_count
    rules: aws_s3_anonymous
    group-by: [sourceIPAddress]
    timespan: 1d
    condition: {gt: 1, field: eventName}
    generate: true
level: low
---
title: IAM user created
name: aws_iam_create_user
logsource: {product: aws, service: cloudtrail}
detection:
    selection: {eventSource: iam.amazonaws.com, eventName: CreateUser}
    condition: selection
---
title: Access key created
name: aws_iam_create_access_key
logsource: {product: aws, service: cloudtrail}
detection:
    selection: {eventSource: iam.amazonaws.com, eventName: CreateAccessKey}
    condition: selection
---
title: Policy attached to a user
name: aws_iam_attach_user_policy
logsource: {product: aws, service: cloudtrail}
detection:
    selection: {eventSource: iam.amazonaws.com, eventName: AttachUserPolicy}
    condition: selection
---
title: New IAM user given a key and a policy
id: 5a1e9a55-7f0b-4a47-9a8e-6f1d2d3c0007
correlation:
    type: temporal_ordered
    rules: [aws_iam_create_user, aws_iam_create_access_key, aws_iam_attach_user_policy]
    group-by: [requestParameters.userName]
    timespan: 1h
level: high
---
title: IAM user, key or policy change for one user
id: 5a1e9a55-7f0b-4a47-9a8e-6f1d2d3c0008
correlation:
    type: temporal
    rules: [aws_iam_create_user, aws_iam_create_access_key, aws_iam_attach_user_policy]
    group-by: [requestParameters.userName]
    timespan: 1h
    condition: {gte: 2}
level: medium
"""


# ----------------------------------------------------------------------------------------------------- events


def honey_bucket_records(path: Path = HONEY_BUCKET) -> Iterator[tuple[str, dict[str, Any]]]:
    """OTRF's honey-bucket CSV rows as the CloudTrail records they were flattened from (its columns are CloudTrail
    fields under display names; the honeypot's own alert columns are left out)."""
    with path.open(newline="", encoding="utf-8") as fh:
        for index, row in enumerate(csv.DictReader(fh)):
            yield (
                f"{path.name}#{index}",
                {
                    "eventType": row["Event Type"],
                    "eventName": row["Event Name"],
                    "requestID": row["Request ID"],
                    "userIdentity": ast.literal_eval(row["User ID"]),
                    "requestParameters": ast.literal_eval(row["Request Parameters"]),
                    "eventID": row["Event ID"],
                    "eventTime": row["Event DateTime"],
                    "sourceIPAddress": row["Source IP"],
                    "userAgent": row["Request User Agent"],
                },
            )


@cache
def cloudtrail_documents() -> tuple[dict[str, Any], ...]:
    """Every CloudTrail record of ../shared/data/cloudaudit that our parser accepts, parsed, in a stable order."""
    parser = AwsCloudtrail()
    docs: list[dict[str, Any]] = []
    sources: Iterable[tuple[str, Any]] = [
        *panther_cloudtrail(SHARED),
        *otrf_cloudtrail(SHARED),
        *honey_bucket_records(),
    ]
    for _, record in sources:
        try:
            docs.append(parser.parse(record))
        except ParseError:  # Panther logs trimmed to a rule's fields (no eventTime) are not records
            continue
    return tuple(docs)


def sigmahq_texts() -> list[tuple[str, str]]:
    return [(p.name, p.read_text(encoding="utf-8")) for p in sorted(SIGMA_DIR.glob("*.yml"))]


# ----------------------------------------------------------------------------------------------- the oracle


def flatten(record: dict[str, Any], prefix: str = "", out: dict[str, Any] | None = None) -> dict[str, Any]:
    """One SQLite row of a record: dotted paths to leaves; objects and lists also whole, as JSON text."""
    row: dict[str, Any] = {} if out is None else out
    for key, value in record.items():
        path = prefix + key
        if isinstance(value, dict):
            row[path] = json_text(value)
            flatten(value, path + ".", row)
        elif isinstance(value, list):
            row[path] = json_text(value)
        elif isinstance(value, bool):
            row[path] = "true" if value else "false"
        else:
            row[path] = value
    return row


def _regexp(pattern: str, value: object) -> bool:
    return value is not None and re.search(pattern, str(value)) is not None


@dataclass(slots=True)
class OracleRule:
    title: str
    key: str  # our engine's rule id for the same rule
    sql: str  # for a correlation: the portable WITH query (the plan below is what runs)
    plan: dict[str, Any] | None = None  # a correlation's plan, for the backend's runtime


@dataclass(slots=True)
class SqliteSigma:
    """pySigma + pysigma-backend-sqlite: rules converted to SQL, events flattened into one table.

    Correlations run as the backend's own runtime runs them (``execute_plan``: the stages of the WITH query
    materialised with indexes), which is what Zircolite does; the plain WITH query is orders of magnitude slower
    on large windows.
    """

    rules: list[OracleRule] = field(default_factory=list)
    unconvertible: list[tuple[str, str]] = field(default_factory=list)
    fields: set[str] = field(default_factory=set)

    @classmethod
    def convert(cls, texts: Iterable[tuple[str, str]]) -> SqliteSigma:
        oracle = cls()
        for source, text in texts:
            # A backend per file: correlations read the conversion results of the rules of their own collection.
            backend = sqliteBackend(table="logs", timestamp_field="timestamp", collate_nocase=True, collect_errors=True)
            collection = SigmaCollection.from_yaml(text)
            keys = {(str(r.id) if r.id else r.title): str(r.id) if r.id else (r.name or r.title) for r in collection}
            converted = orjson.loads(backend.convert(collection, output_format="zircolite"))
            oracle.unconvertible.extend((f"{source}: {rule.title}", str(error)) for rule, error in backend.errors)
            for result in converted:
                key = keys[result["id"] or result["title"]]
                oracle.fields.update(set(result["required_fields"]) - {"timestamp"})
                (sql,) = result["rule"]
                oracle.rules.append(OracleRule(result["title"], key, sql, result.get("correlation_plan")))
        return oracle

    def load(self, docs: Iterable[dict[str, Any]]) -> sqlite3.Connection:
        """A fresh in-memory database with one row per document (rowid = position + 1)."""
        con = sqlite3.connect(":memory:")
        con.create_function("REGEXP", 2, _regexp, deterministic=True)
        columns = sorted(self.fields)
        quoted = ", ".join("`" + c.replace("`", "``") + "`" for c in columns)
        con.execute(f"CREATE TABLE logs (id INTEGER PRIMARY KEY, timestamp TEXT, {quoted})")
        marks = ", ".join("?" for _ in range(len(columns) + 2))
        con.executemany(
            f"INSERT INTO logs VALUES ({marks})",
            (
                (position, doc["@timestamp"], *(row.get(c) for c in columns))
                for position, doc in enumerate(docs, 1)
                for row in (flatten(doc["aws"]["cloudtrail"]),)
            ),
        )
        return con

    def matches(self, con: sqlite3.Connection) -> set[tuple[str, int]]:
        """(rule key, row) of every single-event rule's match."""
        found: set[tuple[str, int]] = set()
        for rule in self.rules:
            if rule.plan is None:
                found.update((rule.key, row[0]) for row in con.execute(rule.sql))
        return found

    def correlations(self, con: sqlite3.Connection) -> dict[str, list[dict[str, Any]]]:
        """Correlation key → its alerts (group_keys, occurrence_time, event rows …) as the backend reports them."""
        out: dict[str, list[dict[str, Any]]] = {}
        for rule in self.rules:
            if rule.plan is not None:
                alerts, _diagnostics = execute_plan(con, rule.plan, include_events=False)
                for alert in alerts:
                    alert["rows"] = {int(e.split(":", 1)[1]) for e in alert["event_ids"]}
                out[rule.key] = alerts
        return out


# -------------------------------------------------------------------------------------------------- our side


def our_rules(texts: Iterable[tuple[str, str]]) -> list[Rule]:
    rules: list[Rule] = []
    for source, text in texts:
        loaded, skipped = load_sigma(text, source)
        assert skipped == [], skipped
        rules.extend(loaded)
    return rules


def our_matches(index: RuleIndex, docs: tuple[dict[str, Any], ...]) -> set[tuple[str, int]]:
    """(rule id, row) of every enabled single-event rule's match; rows are positions + 1, as in SQLite."""
    rows = {id(doc): position for position, doc in enumerate(docs, 1)}
    single = {rule.id for rule in index.rules if rule.enabled and not isinstance(rule, SigmaCorrelation)}
    return {(m.rule_id, rows[id(m.doc)]) for m in index.select(docs) if m.rule_id in single}


def our_findings(index: RuleIndex, docs: Iterable[dict[str, Any]]) -> dict[str, list[Finding]]:
    """Correlation id → findings, feeding the selected events to the aggregators in the order given."""
    out: dict[str, list[Finding]] = {r.id: [] for r in index.rules if isinstance(r, SigmaCorrelation)}
    for match in index.select(docs):
        if match.rule_id in out:
            out[match.rule_id].extend(index.by_id[match.rule_id].observe(match))
    return out


def in_time_order(docs: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    return sorted(docs, key=event_time)


# ------------------------------------------------------------------------------------------------------ tests


@cache
def oracle_and_database() -> tuple[SqliteSigma, sqlite3.Connection]:
    oracle = SqliteSigma.convert([*sigmahq_texts(), ("correlations.yml", CORRELATIONS)])
    return oracle, oracle.load(cloudtrail_documents())


def test_the_events_are_all_cloudtrail_records_of_the_shared_data() -> None:
    docs = cloudtrail_documents()
    # 436 Panther test logs that are whole records, 103 OTRF breach events, 301 honey-bucket S3 data events.
    assert len(docs) == 436 + 103 + 301
    assert {doc["event"]["dataset"] for doc in docs} == {"aws.cloudtrail"}


def test_every_rule_converts_to_sql() -> None:
    oracle, _ = oracle_and_database()
    # Nothing the backend cannot convert: 57 SigmaHQ rules, the 2 correlated rules that also alert on their own
    # (generate: true) and 8 correlations.
    assert oracle.unconvertible == []
    assert sum(r.plan is None for r in oracle.rules) == 57 + 1
    assert sum(r.plan is not None for r in oracle.rules) == 8


def test_sigmahq_aws_rules_match_exactly_what_sqlite_matches() -> None:
    oracle, con = oracle_and_database()
    docs = cloudtrail_documents()
    index = RuleIndex(our_rules([*sigmahq_texts(), ("correlations.yml", CORRELATIONS)]))
    expected = oracle.matches(con)
    ours = our_matches(index, docs)
    assert ours == expected
    # The comparison has teeth: 29 of the 58 rules fire, 616 times in all (SigmaHQ's rules on Panther's positive
    # and negative test events, and on the two OTRF scenarios).
    assert len(expected) >= 600
    assert len({rule for rule, _ in expected}) >= 29


def _first_fires(findings: list[Finding]) -> dict[tuple[object, ...], float]:
    first: dict[tuple[object, ...], float] = {}
    for finding in findings:
        key = tuple(m.value for m in finding.matched[:-1])
        first.setdefault(key, max(m.time for m in finding.matches).timestamp())
    return first


def test_correlations_fire_for_the_same_groups_at_the_same_time_as_sqlite() -> None:
    oracle, con = oracle_and_database()
    docs = cloudtrail_documents()
    index = RuleIndex(our_rules([("correlations.yml", CORRELATIONS)]))
    expected = oracle.correlations(con)
    ours = our_findings(index, in_time_order(docs))
    assert set(ours) == set(expected)
    rows = {id(doc): position for position, doc in enumerate(docs, 1)}
    fired = 0
    for key, alerts in expected.items():
        theirs: dict[tuple[object, ...], float] = {}
        for alert in sorted(alerts, key=lambda a: a["occurrence_time"]):
            theirs.setdefault(tuple(alert["group_keys"].values()), alert["occurrence_time"])
        mine = _first_fires(ours[key])
        assert mine == pytest.approx(theirs), key
        # Every alert of ours is one of SQLite's: same group, same window end, our events among its evidence.
        for finding in ours[key]:
            group = tuple(m.value for m in finding.matched[:-1])
            end = max(m.time for m in finding.matches).timestamp()
            same = [a for a in alerts if tuple(a["group_keys"].values()) == group and a["occurrence_time"] == end]
            assert same, (key, group, end)
            assert {rows[id(m.doc)] for m in finding.matches} <= same[0]["rows"]
        fired += len(mine)
    assert fired >= 5


def test_correlation_verdicts_on_the_real_events() -> None:
    index = RuleIndex(our_rules([("correlations.yml", CORRELATIONS)]))
    ours = our_findings(index, in_time_order(cloudtrail_documents()))
    groups = {key: {f.group_key for f in findings} for key, findings in ours.items()}
    prefix = "5a1e9a55-7f0b-4a47-9a8e-6f1d2d3c000"
    # Panther's denied calls: 7 by testuser and 5 by tester in the same second; developer's 10 are days apart.
    assert groups[prefix + "1"] == {"arn:aws:iam::111111111111:user/testuser", "arn:aws:iam::123456789012:user/tester"}
    # OTRF: pedro's console enumerates EC2 (many Describe* calls a minute); the stolen role lists and reads S3.
    assert groups[prefix + "2"] == {"arn:aws:iam::123456789123:user/pedro"}
    role = "arn:aws:sts::123456789123:assumed-role/mordornginxstack-bankingwafrole-9s3e0uae1mm0/i-0317f6c6b66ae9c40"
    assert groups[prefix + "3"] == {role}
    # The instance role assumed by EC2 at 00:48:30 and used for S3 at 01:00:04; the log collector role never is.
    assert groups[prefix + "4"] == {"arn:aws:iam::123456789123:role/mordornginxstack-bankingwafrole-9s3e0uae1mm0"}
    # Panther's IAM events all carry the same second: no strict order, so no sequence; unordered, one user has two.
    assert groups[prefix + "7"] == set()


def test_out_of_order_events_fire_the_same_groups() -> None:
    docs = in_time_order(cloudtrail_documents())
    index = RuleIndex(our_rules([("correlations.yml", CORRELATIONS)]))
    ordered = {k: set(_first_fires(v)) for k, v in our_findings(index, docs).items()}
    # Shuffle within a sliding two-minute band: the order files and batches deliver in, not the order of time.
    rng = random.Random(3)
    jittered = sorted(docs, key=lambda d: event_time(d).timestamp() + rng.uniform(0, 120))
    index = RuleIndex(our_rules([("correlations.yml", CORRELATIONS)]))
    assert {k: set(_first_fires(v)) for k, v in our_findings(index, jittered).items()} == ordered
