"""ElastAlert rule files: loading (the upstream examples, errors), rule types in event time, realert and
aggregation, alert text, alerters mapped onto our output configs, and state across a restart.

Events are real: the demo company's two days (with its attack) and Panther's CloudTrail test records.
elastalert2 itself is compared in tests/differential/test_elastalert_oracle.py.
"""

from __future__ import annotations

import copy
import logging
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest
import yaml
from pydantic import TypeAdapter

from cloudsoc.config.outputs import OutputConfig
from cloudsoc.demo.generator import DemoGenerator, DemoOptions
from cloudsoc.detect import sigma
from cloudsoc.detect.alert import Alert, Severity
from cloudsoc.detect.elastalert import ElastalertRule, is_elastalert, load_elastalert
from cloudsoc.detect.engine import Detector, RuleIndex, event_time
from cloudsoc.detect.rule import Match
from cloudsoc.errors import ConfigError
from cloudsoc.outputs.base import Output
from cloudsoc.parsers.aliyun_actiontrail import AliyunActiontrail
from cloudsoc.parsers.aws_cloudtrail import AwsCloudtrail

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
EXAMPLES = SHARED / "rules" / "elastalert2-examples"
PANTHER = SHARED / "cloudaudit" / "panther-cloudtrail-rules"
SIGMA = SHARED / "cloudaudit" / "sigma-rules-aws" / "cloudtrail"
OUTPUTS: TypeAdapter[Any] = TypeAdapter(OutputConfig)


@cache
def demo() -> tuple[dict[str, Any], ...]:
    """Two days of a simulated company on both clouds, with an attack on the second day (deterministic)."""
    generator = DemoGenerator(DemoOptions(seed=7, days=2, min_events=3000, end=datetime(2024, 6, 1, tzinfo=UTC)))
    items, _ = generator.records()
    aws, aliyun = AwsCloudtrail(), AliyunActiontrail()
    return tuple((aws if p == "aws_cloudtrail" else aliyun).parse(r) for _, _, p, _, r in items)


def panther(file_name: str, test_name: str) -> dict[str, Any]:
    spec = yaml.safe_load((PANTHER / file_name).read_text(encoding="utf-8"))
    (log,) = (t["Log"] for t in spec["Tests"] if t["Name"] == test_name)
    return AwsCloudtrail().parse(log)


def rule(body: str, name: str = "test rule", source: str = "rule.yaml") -> ElastalertRule:
    return load_elastalert(f"name: {name}\nindex: x\n{body}", source)


def run(r: ElastalertRule, docs: Iterable[dict[str, Any]], batch: int = 500) -> list[Alert]:
    """The engine over ``docs`` in batches, as the pipeline does, then flushed like an offline run."""
    index = RuleIndex([r])
    detector = Detector(index)
    docs = list(docs)
    alerts: list[Alert] = []
    for i in range(0, len(docs), batch):
        alerts.extend(detector.process(index.select(docs[i : i + batch])))
    return alerts


def at(doc: dict[str, Any], moment: datetime, **fields: Any) -> dict[str, Any]:
    """A copy of a real event at another time, with some fields changed (``a__b`` is ``a.b``)."""
    out = copy.deepcopy(doc)
    out["@timestamp"] = moment.isoformat()
    for path, value in fields.items():
        node = out
        *parents, leaf = path.split("__")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


T0 = datetime(2024, 5, 30, 12, 0, tzinfo=UTC)


# -- loading -----------------------------------------------------------------------------------------------------------


def test_every_upstream_example_loads_or_fails_with_its_reason() -> None:
    outcomes: dict[str, str] = {}
    for path in sorted(EXAMPLES.glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        assert is_elastalert(yaml.safe_load(text)), path.name
        try:
            loaded = load_elastalert(text, str(path))
        except ConfigError as exc:
            outcomes[path.name] = str(exc)
        else:
            assert loaded.kind == "elastalert" and loaded.id and loaded.title
            outcomes[path.name] = "ok"
    assert outcomes.pop("example_single_metric_agg.yaml").endswith(
        "rule 'Metricbeat CPU Spike Rule': type metric_aggregation is not supported: it computes metric_agg_type "
        "over metric_agg_key inside Elasticsearch (an aggregation query), which an event stream does not have"
    )
    assert "type spike_aggregation is not supported" in outcomes.pop("example_spike_single_metric_agg.yaml")
    # elastalert2 rejects this one too: a frequency rule needs a timeframe.
    thehive = outcomes.pop("example_thehive_frequency.yaml")
    assert thehive == (
        f"{EXAMPLES / 'example_thehive_frequency.yaml'}: rule 'Example TheHive with frequency and query_key': "
        "type frequency needs timeframe"
    )
    assert set(outcomes.values()) == {"ok"} and len(outcomes) == 12


def test_upstream_examples_keep_their_meaning() -> None:
    change = load_elastalert((EXAMPLES / "example_change.yaml").read_text(), str(EXAMPLES / "example_change.yaml"))
    assert change.id == "new_country_login" and change.title == "New country login"
    assert change.ruletype.spec.compare_key == ("country_name",) and change.ruletype.spec.timeframe_secs == 86400
    assert change.output_configs["new_country_login/email"]["to"] == ["elastalert@example.com"]
    ssh = load_elastalert((EXAMPLES / "ssh.yaml").read_text(), "ssh.yaml")
    assert ssh.realert_secs == 60 and ssh.ruletype.spec.num_events == 20 and ssh.group_by == ("source.ip",)
    pct = load_elastalert((EXAMPLES / "example_percentage_match.yaml").read_text(), "pct.yaml")
    assert pct.ruletype.spec.bucket_secs == 300 and pct.ruletype.spec.min_percentage == 95
    discord = load_elastalert((EXAMPLES / "exemple_discord_any.yaml").read_text(), "discord.yaml")
    assert discord.warnings == [
        "alerter 'discord' is not supported (supported: post, post2, email, dingtalk, command, debug); "
        "the rule's alerts go to the configured outputs only"
    ]
    assert discord.output_configs == {} and discord.outputs == ()


def test_elastalert_and_sigma_rules_are_told_apart() -> None:
    for path in sorted(SIGMA.glob("*.yml"))[:10]:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert sigma.is_sigma(data) and not is_elastalert(data), path.name
    assert is_elastalert({"type": "frequency", "num_events": 3})
    assert is_elastalert({"type": "mymodule.MyRule", "index": "x"})
    assert not is_elastalert({"type": "frequency", "detection": {}})
    assert not is_elastalert({"title": "x", "type": 3})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("type: frequency\nnum_events: 3\n", "rule 'test rule': type frequency needs timeframe"),
        ("type: frequency\nnum_events: 0\ntimeframe: {hours: 1}\n", "num_events: must be > 0"),
        ("type: frequency\nnum_events: 2\ntimeframe: {fortnights: 1}\n", "timeframe: unknown unit 'fortnights'"),
        ("type: spike\ntimeframe: {hours: 1}\nspike_height: 2\nspike_type: sideways\n", "spike_type: must be up"),
        ("type: nosuchtype\n", "type: must be one of any, blacklist, whitelist, frequency"),
        ("type: any\nfilter: [{geo_shape: {}}]\n", "filter[0].geo_shape: query type 'geo_shape' is not supported"),
        ("type: any\naggregation: {schedule: '2 4 * * mon,fri'}\n", "aggregation.schedule (cron) is not supported"),
        ("type: any\nalert_text: 'x {0} {1}'\nalert_text_args: [a]\n", "alert_text: does not format with"),
        ("type: any\nalert: [post]\n", "alert: post needs http_post_url"),
        (
            "type: cardinality\ncardinality_field: a\ntimeframe: {hours: 1}\n",
            "needs max_cardinality or min_cardinality",
        ),
        ("type: blacklist\ncompare_key: a\nblacklist: [x, '!file /no/such/list']\n", "list file '/no/such/list'"),
        ("type: any\nfilter: []\nfilter: []\n", "duplicate key 'filter'"),
        ("type: any\nimport: no-such-base.yaml\n", "import 'no-such-base.yaml': cannot read"),
    ],
)
def test_bad_rules_say_where_and_what(body: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        rule(body)
    assert str(err.value).startswith("rule.yaml")
    assert message in str(err.value)
    with pytest.raises(ConfigError, match="import needs the rule to be loaded from a file"):
        load_elastalert("name: x\ntype: any\nimport: base.yaml\n", "<string>")


def test_name_is_required_and_ids_are_slugs() -> None:
    with pytest.raises(ConfigError, match="every rule needs a name"):
        load_elastalert("type: any\n", "<string>")
    assert rule("type: any\n", name="SSH abuse (ElastAlert 3.0.1) - 2").id == "ssh_abuse_elastalert_3_0_1_2"
    assert rule("type: any\n", name="主账号 登录").id == "主账号_登录"


def test_options_and_defaults() -> None:
    r = rule("type: any\npriority: 1\ncategory: iam\ndescription: why\nis_enabled: false\n")
    assert r.severity == Severity.CRITICAL and r.tags == ("iam",) and r.description == "why" and not r.enabled
    assert r.realert_secs == 60  # ElastAlert's default realert: one minute
    assert rule("type: any\n").severity == Severity.MEDIUM
    assert rule("type: any\nrealert: {hours: 2, minutes: 30}\n").realert_secs == 9000
    aggregated = rule("type: any\naggregation: {minutes: 10}\n")
    assert aggregated.realert_secs == 0 and aggregated.aggregation_secs == 600
    compound = rule("type: any\nquery_key: user.name,source.ip\ncompound_query_key: [user.name, source.ip]\n")
    assert (
        compound.group_by
        == ("user.name", "source.ip")
        == rule("type: any\nquery_key: [user.name, source.ip]\n").group_by
    )
    noted = rule(
        "type: frequency\nnum_events: 2\ntimeframe: {hours: 1}\nuse_count_query: true\nquery_delay: {minutes: 5}\n"
    )
    assert noted.warnings == [
        "counts come from the events themselves (use_count_query is ignored)",
        "query_delay is not needed: events are evaluated as they arrive",
    ]


def test_environment_variables_are_expanded_like_elastalert(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EA_TEST_ACTION", "ConsoleLogin")
    r = rule("type: any\nfilter: [{term: {event.action: $EA_TEST_ACTION}}]\n")
    assert r.actions == frozenset({"consolelogin"})


def test_import_merges_options_and_ands_filters(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(
        "index: trails\ntype: any\nrealert: {minutes: 0}\nfilter: [{term: {event.dataset: aws.cloudtrail}}]\n"
    )
    child = tmp_path / "child.yaml"
    child.write_text("name: child\nimport: base.yaml\nfilter: [{term: {event.action: ConsoleLogin}}]\n")
    r = load_elastalert(child.read_text(), str(child))
    assert r.realert_secs == 0 and r.actions == frozenset({"consolelogin"})
    assert r.datasets == frozenset({"aws.cloudtrail"})
    login = panther("aws_console_login_without_mfa.yml", "No MFA Login - IAM User")
    assert r.select(login) == [("event.dataset", "aws.cloudtrail"), ("event.action", "ConsoleLogin")]
    assert r.select(at(login, T0, event__dataset="aliyun.actiontrail")) is None


# -- rule types over real events ---------------------------------------------------------------------------------------


def test_any_with_realert_per_query_key_in_event_time() -> None:
    failures = [d for d in demo() if d["event"]["outcome"] == "failure"]
    alerts = run(
        rule("type: any\nquery_key: user.name\nrealert: {minutes: 5}\nfilter: [{term: {event.outcome: failure}}]\n"),
        failures,
    )
    last: dict[str, datetime] = {}
    expected = []
    for doc in failures:
        key, when = doc["user"]["name"], event_time(doc)
        if key not in last or when - last[key] >= timedelta(minutes=5):
            last[key] = when
            expected.append(doc["event"]["id"])
    assert [a.event_ids[0] for a in alerts] == expected
    assert len(expected) < len(failures)
    assert all(a.group_key == a.events[0]["user"]["name"] for a in alerts)


def test_frequency_finds_the_attackers_access_denied_burst() -> None:
    r = rule(
        "type: frequency\nnum_events: 10\ntimeframe: {minutes: 10}\nquery_key: source.ip\nrealert: {minutes: 0}\n"
        "filter: [{term: {event.outcome: failure}}]\n"
    )
    alerts = run(r, demo())
    assert {a.group_key for a in alerts} == {"45.148.10.240"}  # only the attacker's recon burst
    for alert in alerts:
        assert alert.count == len(alert.event_ids) == 10
        times = [datetime.fromisoformat(e["@timestamp"]) for e in alert.events]
        assert max(times) - min(times) < timedelta(minutes=10)
        assert alert.text.startswith("test rule\n\nAt least 10 events occurred between ")
    assert {m.field for m in alerts[0].matched} >= {"event.outcome", "count"}


def test_flatline_fires_when_a_trail_goes_quiet() -> None:
    """The demo's attacker stops ActionTrail for ~23 minutes: the steady monitoring calls vanish. With event time
    advanced by every batch, the gap is reported 10 and 20 minutes into it."""
    r = rule(
        "type: flatline\nthreshold: 1\ntimeframe: {minutes: 10}\nrealert: {minutes: 0}\n"
        "filter: [{term: {event.action: DescribeMetricList}}]\n"
    )
    index = RuleIndex([r])
    detector = Detector(index)
    docs = list(demo())
    alerts: list[Alert] = []
    for i in range(0, len(docs), 20):
        batch = docs[i : i + 20]
        alerts += detector.process(index.select(batch), now=max(event_time(d) for d in batch))
    assert len(alerts) == 2
    assert all(a.count == 1 and a.event_ids == [] for a in alerts)
    assert [m.value for m in alerts[0].matched if m.field == "count"] == [0]
    assert "there were less than 1 events" in alerts[0].text
    # Reported a timeframe after the last call before the gap (the text has minutes; batches are seconds apart).
    noticed = datetime.strptime(alerts[0].text.split("around ")[1][:16], "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    calls = sorted(event_time(d) for d in docs if r.select(d) is not None)
    before = max(t for t in calls if t < noticed)
    assert timedelta(minutes=9) <= noticed - before <= timedelta(minutes=11)
    assert min(t for t in calls if t > noticed) - before > timedelta(minutes=20)


def test_flatline_without_engine_ticks_reports_the_gap_when_it_ends() -> None:
    """When event time advances only with the rule's own matches, the first event after the gap reports it."""
    r = rule(
        "type: flatline\nthreshold: 1\ntimeframe: {minutes: 10}\nrealert: {minutes: 0}\n"
        "filter: [{term: {event.action: DescribeMetricList}}]\n"
    )
    (alert,) = run(r, demo(), batch=20)
    assert "there were less than 1 events" in alert.text
    assert alert.text.split("around ")[1][:13] == "2024-05-30 19"


def test_flatline_ticks_without_events_and_forget_keys() -> None:
    base = panther("aws_console_login_without_mfa.yml", "No MFA Login - IAM User")
    r = rule(
        "type: flatline\nthreshold: 2\ntimeframe: {minutes: 30}\nquery_key: user.name\nforget_keys: true\n"
        "realert: {minutes: 0}\n"
    )
    index = RuleIndex([r])
    detector = Detector(index)
    docs = [at(base, T0 + timedelta(minutes=m), user__name=u) for m, u in [(2, "b"), (5, "a"), (10, "a")]]
    assert detector.process(index.select(docs)) == []
    assert detector.process([], now=T0 + timedelta(minutes=31)) == []  # a: 2 events, b: first seen 29 min ago
    quiet = detector.process([], now=T0 + timedelta(minutes=33))
    assert [(a.group_key, a.rule_id) for a in quiet] == [("b", "test_rule")]  # b had 1 < 2 in its timeframe
    later = detector.process([], now=T0 + timedelta(minutes=70))
    assert [a.group_key for a in later] == ["a"]  # b was forgotten after firing; a went quiet too
    assert detector.process([], now=T0 + timedelta(minutes=200)) == []


def test_spike_on_the_attack_and_alert_on_new_data() -> None:
    r = rule(
        "type: spike\ntimeframe: {minutes: 30}\nspike_height: 3\nspike_type: up\nthreshold_cur: 10\n"
        "realert: {minutes: 0}\nfilter: [{term: {event.outcome: failure}}]\n"
    )
    (alert,) = run(r, demo())
    facts = {m.field: m.value for m in alert.matched}
    assert facts["spike_count"] >= 10 and facts["spike_count"] >= 3 * facts["reference_count"]
    assert alert.count == facts["spike_count"] == len(alert.event_ids)
    assert "An abnormal number" in alert.text


def test_spike_windows_close_on_ticks() -> None:
    """A spike down needs no event to be noticed: the current window empties as event time passes."""
    base = panther("aws_console_login_without_mfa.yml", "No MFA Login - IAM User")
    r = rule(
        "type: spike\ntimeframe: {minutes: 10}\nspike_height: 2\nspike_type: down\nthreshold_ref: 5\n"
        "realert: {minutes: 0}\n"
    )
    index = RuleIndex([r])
    detector = Detector(index)
    steady = [at(base, T0 + timedelta(minutes=m)) for m in range(0, 30)]
    assert detector.process(index.select(steady)) == []
    quiet = []
    for minute in range(31, 45):
        quiet += detector.process([], now=T0 + timedelta(minutes=minute))
    assert len(quiet) == 1
    facts = {m.field: m.value for m in quiet[0].matched}
    assert facts["reference_count"] >= 5 and facts["spike_count"] <= facts["reference_count"] / 2


def test_change_new_term_and_cardinality_on_the_attack() -> None:
    users = [
        d for d in demo() if d["event"]["dataset"] == "aws.cloudtrail" and d["cloudsoc"]["identity_type"] == "user"
    ]
    change = run(
        rule(
            "type: change\nquery_key: user.name\ncompare_key: source.ip\nignore_null: true\nrealert: {minutes: 0}\n"
            "timeframe: {hours: 12}\n"
        ),
        users,
    )
    assert any(a.group_key == "cathy.zhou" and {"value": "45.148.10.240"} for a in change)
    attacker = [a for a in change if a.events[0]["source"]["ip"] == "45.148.10.240"]
    assert attacker and attacker[0].group_key == "cathy.zhou"
    assert "source.ip changed from" in attacker[0].text
    new_ips = run(rule("type: new_term\nfields: [source.ip]\nrealert: {minutes: 0}\n"), users)
    seen_before: set[str] = set()
    expected = []
    for doc in users:
        ip = (doc.get("source") or {}).get("ip")
        if ip and ip not in seen_before:  # a missing value is not a new term
            seen_before.add(ip)
            expected.append(doc["event"]["id"])
    assert [a.event_ids[0] for a in new_ips] == expected
    many = run(
        rule(
            "type: cardinality\ncardinality_field: source.ip\nmax_cardinality: 1\ntimeframe: {hours: 1}\n"
            "query_key: user.name\nrealert: {minutes: 0}\n"
        ),
        users,
    )
    assert "cathy.zhou" in {a.group_key for a in many}


def test_new_term_missing_and_composite_fields() -> None:
    login = panther("aws_console_login_without_mfa.yml", "No MFA Login - IAM User")
    r = rule(
        "type: new_term\nfields: [[user.name, source.ip], cloudsoc.access_key_id]\nalert_on_missing_field: true\n"
        "realert: {minutes: 0}\n"
    )
    alerts = run(r, [login, at(login, T0), at(login, T0, source__ip="10.9.9.9")])
    texts = [a.text.splitlines()[-1] for a in alerts]
    assert texts == [
        "New user.name,source.ip: tester, 111.111.111.111",
        "Missing field cloudsoc.access_key_id",
        "Missing field cloudsoc.access_key_id",
        "New user.name,source.ip: tester, 10.9.9.9",
        "Missing field cloudsoc.access_key_id",
    ]


def test_blacklist_and_whitelist_with_files_and_regexes(tmp_path: Path) -> None:
    (tmp_path / "bad.txt").write_text("45.148.10.240\n")
    path = tmp_path / "r.yaml"
    black = load_elastalert(
        "name: b\ntype: blacklist\ncompare_key: source.ip\nblacklist: ['!file bad.txt', '/^193\\.47\\./']\n", str(path)
    )
    ips = Counter(d["source"]["ip"] for d in demo() if black.select(d) is not None)
    assert set(ips) == {"45.148.10.240", "193.47.62.69"}
    white = rule("type: whitelist\ncompare_key: source.ip\nwhitelist: ['/^115\\.236\\.88\\./']\nignore_null: false\n")
    selected = [d for d in demo() if white.select(d) is not None]
    assert all(not (d.get("source") or {}).get("ip", "").startswith("115.236.88.") for d in selected)
    assert any(not (d.get("source") or {}).get("ip") for d in selected)  # no source.ip, ignore_null false: a match
    ignoring = rule("type: whitelist\ncompare_key: source.ip\nwhitelist: [x]\nignore_null: true\n")
    assert all((d.get("source") or {}).get("ip") for d in demo() if ignoring.select(d) is not None)
    pinned = rule("type: blacklist\ncompare_key: event.action\nblacklist: [StopLogging, DeleteTrail]\n")
    assert pinned.actions == frozenset({"stoplogging", "deletetrail"})


def test_percentage_match_buckets() -> None:
    users = [d for d in demo() if d["cloudsoc"]["identity_type"] == "user"]
    r = rule(
        "type: percentage_match\nmatch_bucket_filter: [{term: {event.outcome: success}}]\nmin_percentage: 90\n"
        "buffer_time: {hours: 1}\nmin_denominator: 5\nquery_key: event.dataset\nrealert: {minutes: 0}\n"
    )
    alerts = run(r, users)
    alerts_by_hour = {(a.group_key, a.last_time[:13]) for a in alerts}
    # The attack (from 19:06, most calls denied) on both clouds.
    assert {("aws.cloudtrail", "2024-05-30T19"), ("aliyun.actiontrail", "2024-05-30T19")} <= alerts_by_hour
    for alert in alerts:
        facts = {m.field: m.value for m in alert.matched}
        assert facts["percentage"] < 90 and facts["denominator"] >= 5
        assert all(e["event"]["outcome"] == "failure" for e in alert.events)  # the evidence: what did not match
    buckets = r.ruletype.buckets  # type: ignore[attr-defined]
    assert buckets  # the last hour is still open at the end of the stream ...
    r.flush()
    assert not buckets  # ... until an offline run ends


def test_aggregation_groups_findings_and_counts_them() -> None:
    failures = [d for d in demo() if d["event"]["outcome"] == "failure"]
    r = rule(
        "type: any\naggregation: {minutes: 15}\naggregation_key: source.ip\nsummary_table_fields: [user.name]\n"
        "filter: [{term: {event.outcome: failure}}]\n"
    )
    alerts = run(r, failures)
    flushed = r.flush()
    assert sum(a.count for a in alerts) + sum(f.count for f in flushed) == len(failures)
    attacker = [a for a in alerts if a.group_key == "45.148.10.240"]
    assert attacker and attacker[0].count > 1 and attacker[0].count == len(attacker[0].event_ids)
    assert "Aggregation resulted in the following data for summary_table_fields ==> ['user.name', 'count']" in (
        attacker[0].text
    )
    assert "| cathy.zhou |" in attacker[0].text
    assert attacker[0].text.count("----------------------------------------") == attacker[0].count


def test_timestamp_field_and_type() -> None:
    login = panther("aws_console_login_without_mfa.yml", "No MFA Login - IAM User")
    r = rule(
        "type: frequency\nnum_events: 2\ntimeframe: {minutes: 1}\ntimestamp_field: when\ntimestamp_type: unix_ms\n"
        "realert: {minutes: 0}\n"
    )
    docs = [
        at(login, T0, when=1_700_000_000_000),
        at(login, T0, when=1_700_000_100_000),
        at(login, T0, when=1_700_000_130_000),
    ]
    alerts = run(r, docs)
    assert len(alerts) == 1 and alerts[0].count == 2  # 100 s apart is outside the minute; 30 s is inside
    custom = rule("type: any\ntimestamp_field: ts\ntimestamp_type: custom\ntimestamp_format: '%d/%m/%Y %H:%M'\n")
    match = Match(rule_id=custom.id, event_id="1", time=T0, hits=[], doc={"ts": "02/01/2024 10:30"})
    assert custom.event_secs(match) == datetime(2024, 1, 2, 10, 30, tzinfo=UTC).timestamp()


# -- alert text --------------------------------------------------------------------------------------------------------


def test_alert_text_args_kw_missing_values_and_rule_options() -> None:
    login = panther("aws_console_login_without_mfa.yml", "No MFA Login - IAM User")
    r = rule(
        "type: any\nowner: secops\nalert_text: 'Login by {0} from {1} ({2}, {3})'\n"
        "alert_text_args: [user.name, source.ip, no.such.field, owner]\ninclude: [user.name, cloud.region]\n"
    )
    (alert,) = run(r, [login])
    assert alert.text.splitlines() == [
        "Login by tester from 111.111.111.111 (<MISSING VALUE>, secops)",
        "",
        "cloud.region: us-east-1",
        "user.name: tester",
    ]
    assert {"field": "cloud.region", "value": "us-east-1"} in [msgspec.to_builtins(m) for m in alert.matched]
    kw = rule(
        "type: any\nalert_text: '{who} at {where}'\nalert_text_kw: {user.name: who, cloud.region: where}\n"
        "alert_text_type: alert_text_only\nalert_missing_value: '?'\n"
    )
    assert run(kw, [login])[0].text == "tester at us-east-1"


def test_alert_subject_and_jinja_text() -> None:
    login = panther("aws_console_login_without_mfa.yml", "No MFA Login - IAM User")
    r = rule(
        "type: any\nalert_subject: 'Login: {} <{}>'\nalert_subject_args: [user.name, source.ip]\n"
        "alert_text_type: alert_text_jinja\n"
        'alert_text: \'{{ user.name }} / {{ _data["cloud"]["region"] }} / {{ index }}\'\n'
    )
    (alert,) = run(r, [login])
    assert alert.text == "Login: tester <111.111.111.111>\n\ntester / us-east-1 / x"


# -- alerters ----------------------------------------------------------------------------------------------------------


ALERTERS = """type: any
filter: [{term: {event.action: ConsoleLogin}}]
alert_subject: "Login by {}"
alert_subject_args: [user.name]
alert_text: "{0} from {1}"
alert_text_args: [user.name, source.ip]
alert:
- post:
    http_post_url: [http://127.0.0.1:9/a, http://127.0.0.1:9/b]
    http_post_payload: {ip: source.ip, user: user.name, gone: no.such.field}
    http_post_static_payload: {team: 'sec "ops"', n: 3}
    http_post_headers: {X-Token: $token$}
    http_post_timeout: 5
    http_post_ignore_ssl_errors: true
- post2:
    http_post2_url: http://127.0.0.1:9/c
    http_post2_payload: {summary: '{{ user.name }} said "hi" from {{ source.ip }}', n: 1, "{{ event.action }}": x}
    http_post2_raw_fields: {account: cloud.account.id}
- email:
    email: [secops, ops@example.com]
    email_add_domain: example.com
    cc: boss
    smtp_host: smtp.example.com
    smtp_auth_file: smtp.yaml
    from_addr: soc@example.com
- dingtalk:
    dingtalk_access_token: abc123
    dingtalk_sign: SECxyz
    dingtalk_msgtype: action_card
- command:
    command: ["/usr/local/bin/page", "--user", "%(user.name)s"]
    pipe_match_json: true
- slack
token: s3cret-token
"""


@pytest.fixture
def alerting_rule(tmp_path: Path) -> ElastalertRule:
    (tmp_path / "smtp.yaml").write_text("user: mailer\npassword: hunter2-secret\n")
    path = tmp_path / "login.yaml"
    path.write_text("name: console login\nindex: x\n" + ALERTERS)
    return load_elastalert(path.read_text(), str(path))


def test_alerters_become_output_configs_our_models_accept(alerting_rule: ElastalertRule) -> None:
    configs = alerting_rule.output_configs
    assert list(configs) == [
        "console_login/post",
        "console_login/post.2",
        "console_login/post2",
        "console_login/email",
        "console_login/dingtalk",
        "console_login/command",
    ]
    assert alerting_rule.outputs == tuple(configs)
    for config in configs.values():
        assert config["rules"] == []  # only this rule's alerts
        OUTPUTS.validate_python(config)
    email = configs["console_login/email"]
    assert email["to"] == ["secops@example.com", "ops@example.com"] and email["cc"] == ["boss@example.com"]
    assert (email["smtp_host"], email["smtp_port"], email["starttls"], email["implicit_tls"]) == (
        "smtp.example.com",
        25,
        True,
        False,
    )
    assert (email["username"], email["password"]) == ("mailer", "hunter2-secret")
    ding = configs["console_login/dingtalk"]
    assert ding["url"] == "https://oapi.dingtalk.com/robot/send?access_token=abc123"
    assert (ding["secret"], ding["msgtype"]) == ("SECxyz", "markdown")
    assert configs["console_login/command"]["argv"] == ["/usr/local/bin/page", "--user", "%(user.name)s"]
    post = configs["console_login/post"]
    assert (post["headers"], post["timeout_secs"], post["verify_tls"]) == ({"X-Token": "s3cret-token"}, 5.0, False)
    assert alerting_rule.warnings == [
        "dingtalk: msgtype 'action_card' is not supported, sent as markdown",
        "command: placeholders like %(field)s in arguments are not filled in; the alert JSON is on stdin",
        "alerter 'slack' is not supported (supported: post, post2, email, dingtalk, command, debug); "
        "the rule's alerts go to the configured outputs only",
    ]


def test_smtp_credentials_never_reach_logs_or_errors(
    tmp_path: Path, alerting_rule: ElastalertRule, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        path = tmp_path / "again.yaml"
        path.write_text("name: again\nindex: x\n" + ALERTERS)
        load_elastalert(path.read_text(), str(path))
    assert caplog.records and "hunter2" not in caplog.text
    (tmp_path / "smtp.yaml").write_text("user: mailer\npass: hunter2-secret\n")
    with pytest.raises(ConfigError) as err:
        load_elastalert(path.read_text(), str(path))
    assert "must have `user` and `password`" in str(err.value) and "hunter2" not in str(err.value)


def test_webhook_bodies_render_like_elastalert_payloads(alerting_rule: ElastalertRule) -> None:
    login = panther("aws_console_login_without_mfa.yml", "No MFA Login - IAM User")
    (alert,) = run(alerting_rule, [login])
    outputs = Output.build({k: OUTPUTS.validate_python(v) for k, v in alerting_rule.output_configs.items()})
    post = orjson.loads(outputs["console_login/post"].body(alert))  # type: ignore[attr-defined]
    assert post == {"ip": "111.111.111.111", "user": "tester", "gone": None, "team": 'sec "ops"', "n": 3}
    post2 = orjson.loads(outputs["console_login/post2"].body(alert))  # type: ignore[attr-defined]
    assert post2 == {
        "summary": 'tester said "hi" from 111.111.111.111',
        "n": 1,
        "ConsoleLogin": "x",
        "account": "123456789012",
    }
    _, title, message = outputs["console_login/email"].texts(alert)
    assert title == "Login by tester"
    assert message.strip() == "tester from 111.111.111.111"


def test_post_without_payload_sends_the_event_itself() -> None:
    login = panther("aws_console_login_without_mfa.yml", "No MFA Login - IAM User")
    r = rule(
        "type: any\nalert: [post]\nhttp_post_url: https://hooks.example.com/x\nhttp_post_static_payload: {src: ea}\n"
    )
    (alert,) = run(r, [login])
    webhook = Output.build({"w": OUTPUTS.validate_python(r.output_configs["test_rule/post"])})["w"]
    body = orjson.loads(webhook.body(alert))  # type: ignore[attr-defined]
    assert body["src"] == "ea" and body["event"]["action"] == "ConsoleLogin" and body["user"]["name"] == "tester"


# -- state -------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "type: frequency\nnum_events: 10\ntimeframe: {minutes: 10}\nquery_key: source.ip\nrealert: {minutes: 0}\n",
        "type: spike\ntimeframe: {minutes: 30}\nspike_height: 3\nspike_type: up\nthreshold_cur: 10\n"
        "realert: {minutes: 0}\n",
        "type: flatline\nthreshold: 3\ntimeframe: {minutes: 30}\nquery_key: user.name\nrealert: {minutes: 0}\n",
        "type: new_term\nfields: [user.name]\nrealert: {minutes: 0}\n",
        "type: change\nquery_key: user.name\ncompare_key: source.ip\nignore_null: true\nrealert: {minutes: 0}\n",
        "type: cardinality\ncardinality_field: event.action\nmax_cardinality: 3\ntimeframe: {hours: 1}\n"
        "query_key: user.name\nrealert: {minutes: 0}\n",
        "type: percentage_match\nmatch_bucket_filter: [{term: {event.outcome: success}}]\nmin_percentage: 90\n"
        "buffer_time: {hours: 1}\nrealert: {minutes: 0}\n",
        "type: any\naggregation: {minutes: 30}\naggregation_key: source.ip\nrealert: {minutes: 1}\n",
    ],
)
def test_a_restart_in_the_middle_changes_nothing(body: str) -> None:
    """Snapshot mid-stream, restore into a freshly loaded rule: the alerts are those of an uninterrupted run."""
    docs = [d for d in demo() if d["event"]["outcome"] == "failure" or d["event"]["action"] == "ConsoleLogin"]
    filtered = "filter: [{terms: {event.outcome: [failure, success]}}]\n"
    whole = run(rule(body + filtered), docs, batch=25)
    first = rule(body + filtered)
    index = RuleIndex([first])
    detector = Detector(index)
    half = len(docs) // 50 * 25  # on a batch boundary: ticks (flatline, spike) come at the same instants
    alerts: list[Alert] = []
    for i in range(0, half, 25):
        alerts += detector.process(index.select(docs[i : min(i + 25, half)]))
    state = first.snapshot()
    assert state is not None
    second = rule(body + filtered)
    second.restore(state)
    index = RuleIndex([second])
    resumed = Detector(index)
    resumed.watermark = detector.watermark
    resumed._last_raised = dict(detector._last_raised)  # the engine's own realert state is persisted with alerts
    for i in range(half, len(docs), 25):
        alerts += resumed.process(index.select(docs[i : i + 25]))
    assert [(a.id, a.count, a.event_ids) for a in alerts] == [(a.id, a.count, a.event_ids) for a in whole]
    assert whole, "the case must fire to be a test"
    second.reset()
    after = second.snapshot()
    assert after is None or msgspec.json.decode(after)["pending"] == []


def test_a_snapshot_of_another_rule_type_is_dropped(caplog: pytest.LogCaptureFixture) -> None:
    failures = [d for d in demo() if d["event"]["outcome"] == "failure"]
    counting = rule("type: frequency\nnum_events: 1000\ntimeframe: {hours: 1}\n")
    run(counting, failures)
    state = counting.snapshot()
    assert state is not None
    edited = rule("type: spike\ntimeframe: {hours: 1}\nspike_height: 2\nspike_type: up\n")
    with caplog.at_level(logging.WARNING):
        edited.restore(state)
        edited.restore(b"not json")
    assert "saved state dropped (the snapshot is of a frequency rule)" in caplog.text
    assert edited.ruletype.curs == {}  # type: ignore[attr-defined]
    assert rule("type: any\n").snapshot() is None  # nothing worth keeping


def test_selection_is_fast() -> None:
    """Selection runs per event on the hot path; 20 rules over the demo's events."""
    import time

    rules = [
        rule(
            f"type: any\nfilter: [{{term: {{event.action: {a}}}}}, {{term: {{event.outcome: success}}}}]\n",
            name=f"r{i}",
        )
        for i, a in enumerate(["ConsoleLogin", "GetObject", "PutObject", "CreateAccessKey", "StopLogging"] * 2)
    ] + [
        rule(
            f'type: any\nfilter: [{{query: {{query_string: {{query: "user.name:u{i} AND NOT source.ip:10.*"}}}}}}]\n',
            name=f"q{i}",
        )
        for i in range(10)
    ]
    index = RuleIndex(rules)
    docs = list(demo())
    started = time.perf_counter()
    matches = index.select(docs)
    elapsed = time.perf_counter() - started
    assert Counter(m.rule_id for m in matches)["r1"] == sum(
        1 for d in docs if d["event"]["action"] == "GetObject" and d["event"]["outcome"] == "success"
    )
    assert len(docs) / elapsed > 20_000, f"{len(docs) / elapsed:.0f} events/s"
