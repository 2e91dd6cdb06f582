"""The demo company generator: layouts, determinism, realism of the week and of the attack story."""

from __future__ import annotations

import gzip
import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest

from cloudsoc.config.models import DetectionConfig
from cloudsoc.demo.company import Role
from cloudsoc.demo.generator import DemoGenerator, DemoOptions, DemoSummary

AT = "aliyun_actiontrail"
CT = "aws_cloudtrail"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"

AT_PATH = re.compile(
    r"^AliyunLogs/Actiontrail/(?P<region>[a-z0-9-]+)/(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/"
    r"Actiontrail_(?P=region)_(?P<stamp>\d{14})_1002_(?P<n>\d+)_(?P<size>\d+)_(?P<md5>[0-9a-f]{32})\.gz$"
)
CT_PATH = re.compile(
    r"^AWSLogs/(?P<account>\d{12})/CloudTrail/(?P<region>[a-z0-9-]+)/(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/"
    r"(?P=account)_CloudTrail_(?P=region)_(?P<stamp>\d{8}T\d{4}Z)_[A-Za-z0-9]{16}\.json\.gz$"
)
EXPECTED_STEPS = {
    AT: [
        "leaked_key_first_use",
        "recon_access_denied",
        "create_access_key",
        "attach_admin_policy",
        "custom_admin_policy",
        "open_security_group",
        "make_bucket_public",
        "stop_logging",
    ],
    CT: [
        "leaked_key_first_use",
        "recon_access_denied",
        "create_access_key",
        "attach_admin_policy",
        "inline_admin_policy",
        "open_security_group",
        "make_bucket_public",
        "stop_logging",
    ],
}


@dataclass
class Written:
    summary: DemoSummary
    root: Path
    files: dict[str, bytes]  # relative path -> file bytes
    records: dict[str, list[dict[str, Any]]]  # provider -> records in file order
    by_id: dict[str, dict[str, Any]]
    progress: list[int]


def _read(summary: DemoSummary, root: Path, progress: list[int]) -> Written:
    files: dict[str, bytes] = {}
    records: dict[str, list[dict[str, Any]]] = {AT: [], CT: []}
    by_id: dict[str, dict[str, Any]] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        data = path.read_bytes()
        files[rel] = data
        body = orjson.loads(gzip.decompress(data))
        if rel.startswith("AliyunLogs/"):
            assert isinstance(body, list)
            records[AT].extend(body)
            for r in body:
                by_id[r["eventId"]] = r
        else:
            assert set(body) == {"Records"}
            records[CT].extend(body["Records"])
            for r in body["Records"]:
                by_id[r["eventID"]] = r
    return Written(summary, root, files, records, by_id, progress)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Written:
    root = tmp_path_factory.mktemp("demo")
    progress: list[int] = []
    summary = DemoGenerator(DemoOptions(seed=7)).write(root, progress.append)
    return _read(summary, root, progress)


def _ip(r: dict[str, Any]) -> str:
    return str(r.get("sourceIpAddress") or r.get("sourceIPAddress") or "")


def _time(r: dict[str, Any]) -> datetime:
    return datetime.strptime(r["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _all(demo: Written) -> list[dict[str, Any]]:
    return demo.records[AT] + demo.records[CT]


# --- layout --------------------------------------------------------------------------------------------


def test_layouts_match_the_real_delivery_paths(demo: Written) -> None:
    assert demo.summary.files == list(demo.summary.files)
    assert sorted(demo.summary.files) == sorted(demo.files)
    account = demo.summary.accounts[CT]
    for rel, data in demo.files.items():
        assert data[:2] == b"\x1f\x8b"
        assert data[4:8] == b"\x00\x00\x00\x00", "gzip mtime must be 0 for byte-identical output"
        if rel.startswith("AliyunLogs/"):
            m = AT_PATH.match(rel)
            assert m, rel
            body = gzip.decompress(data)
            assert int(m["size"]) == len(body)
            assert m["md5"] == hashlib.md5(body).hexdigest()
            assert m["stamp"][:8] == m["y"] + m["m"] + m["d"]
            assert all(r["acsRegion"] == m["region"] for r in orjson.loads(body))
        else:
            m = CT_PATH.match(rel)
            assert m, rel
            assert m["account"] == account
            assert m["stamp"][:8] == m["y"] + m["m"] + m["d"]
            assert all(r["awsRegion"] == m["region"] for r in orjson.loads(gzip.decompress(data))["Records"])


def test_actiontrail_sequence_numbers_count_up_per_region(demo: Written) -> None:
    seqs: dict[str, list[int]] = {}
    for rel in demo.summary.files:
        m = AT_PATH.match(rel)
        if m:
            seqs.setdefault(m["region"], []).append(int(m["n"]))
    assert seqs
    for numbers in seqs.values():
        assert numbers == list(range(1, len(numbers) + 1))


def test_files_hold_five_minute_windows_delivered_after_them(demo: Written) -> None:
    for rel, data in list(demo.files.items())[:400]:
        body = orjson.loads(gzip.decompress(data))
        records = body if isinstance(body, list) else body["Records"]
        times = [_time(r).timestamp() for r in records]
        assert times == sorted(times)
        assert max(times) // 300 == min(times) // 300
        m = AT_PATH.match(rel) or CT_PATH.match(rel)
        assert m is not None
        stamp = m["stamp"]
        fmt = "%Y%m%dT%H%MZ" if "T" in stamp else "%Y%m%d%H%M%S"
        delivered = datetime.strptime(stamp, fmt).replace(tzinfo=UTC).timestamp()
        assert delivered > max(times)


# --- determinism ---------------------------------------------------------------------------------------


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    opts = DemoOptions(seed=11, days=3, min_events=0)
    a = DemoGenerator(opts).write(tmp_path / "a")
    b = DemoGenerator(opts).write(tmp_path / "b")
    assert a.files == b.files
    assert _snapshot(tmp_path / "a") == _snapshot(tmp_path / "b")
    assert msgspec.json.encode(a.attack) == msgspec.json.encode(b.attack)


def test_different_seed_gives_different_files(tmp_path: Path) -> None:
    a = DemoGenerator(DemoOptions(seed=11, days=3, min_events=0)).write(tmp_path / "a")
    b = DemoGenerator(DemoOptions(seed=12, days=3, min_events=0)).write(tmp_path / "b")
    assert set(a.files) != set(b.files)
    assert a.accounts != b.accounts


def test_default_demo_matches_the_reference_seed(demo: Written) -> None:
    """The default options are the ones the demo fixture used: same company, same attack."""
    gen = DemoGenerator()
    assert gen.company.aliyun_account_id == demo.summary.accounts[AT]
    assert gen.options.end == datetime(2026, 11, 20, tzinfo=UTC)


# --- the company and the week --------------------------------------------------------------------------


def test_company_has_people_in_all_six_roles() -> None:
    company = DemoGenerator().company
    assert len(company.people) >= 30
    roles = Counter(p.role for p in company.people)
    assert set(roles) == set(Role)
    names = [p.name for p in company.people]
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[a-z]+\.[a-z]+", n) for n in names)
    assert any(not p.display_name.isascii() for p in company.people)  # Chinese names
    assert any(p.display_name.isascii() for p in company.people)  # English names


def test_access_key_formats() -> None:
    company = DemoGenerator().company
    keys = company.access_keys()
    assert len(keys) >= 10
    for k in keys:
        if k.provider == "aliyun":
            assert re.fullmatch(r"LTAI[A-Za-z0-9]{20}", k.key_id), k
        else:
            assert re.fullmatch(r"AKIA[A-Z2-7]{16}", k.key_id), k
    assert {k.purpose for k in keys} >= {"personal", "ci", "backup", "monitoring"}


def test_volume_span_and_both_providers(demo: Written) -> None:
    s = demo.summary
    assert s.events_total >= 50_000
    assert s.events_total == len(demo.records[AT]) + len(demo.records[CT])
    assert s.events_by_provider == {AT: len(demo.records[AT]), CT: len(demo.records[CT])}
    assert min(s.events_by_provider.values()) >= 10_000
    times = [_time(r) for r in _all(demo)]
    assert (max(times) - min(times)).total_seconds() >= 7 * 86400 - 3600
    assert s.people >= 30
    assert demo.progress[-1] == s.events_total
    assert demo.progress == sorted(demo.progress)


def test_event_ids_are_unique(demo: Written) -> None:
    assert len(demo.by_id) == demo.summary.events_total


def test_console_logins_with_and_without_mfa_on_both_clouds(demo: Written) -> None:
    signins = [r for r in demo.records[AT] if r["eventName"] == "ConsoleSignin"]
    mfa = Counter(
        r["additionalEventData"].get("mfaChecked", r["additionalEventData"].get("isMFAChecked")) for r in signins
    )
    assert mfa["true"] > 0 and mfa["false"] > 0
    assert any("isMFAChecked" in r["additionalEventData"] for r in signins)
    assert any("mfaChecked" in r["additionalEventData"] for r in signins)
    assert all(r["additionalEventData"]["loginAccount"] for r in signins)
    assert any(r["userIdentity"]["type"] == "root-account" for r in signins)
    assert any(r.get("errorMessage") not in (None, "success") for r in signins)

    logins = [r for r in demo.records[CT] if r["eventName"] == "ConsoleLogin"]
    used = Counter(r["additionalEventData"]["MFAUsed"] for r in logins)
    assert used["Yes"] > 0 and used["No"] > 0
    results = Counter(r["responseElements"]["ConsoleLogin"] for r in logins)
    assert results["Success"] > 0 and results["Failure"] > 0
    assert all(r["eventType"] == "AwsConsoleSignIn" for r in logins)
    assert any(r["userIdentity"]["type"] == "Root" for r in logins)


def test_failures_are_present(demo: Written) -> None:
    at_codes = Counter(r.get("errorCode") for r in demo.records[AT])
    ct_codes = Counter(r.get("errorCode") for r in demo.records[CT])
    assert at_codes["NoPermission"] and at_codes["Forbidden.RAM"]
    assert ct_codes["AccessDenied"] and ct_codes["Client.UnauthorizedOperation"]
    failed = sum(v for k, v in (at_codes + ct_codes).items() if k)
    assert failed < 0.02 * demo.summary.events_total  # a few, not a flood


def test_identity_types_and_services_acting_for_the_company(demo: Written) -> None:
    at_types = Counter(r["userIdentity"]["type"] for r in demo.records[AT])
    ct_types = Counter(r["userIdentity"]["type"] for r in demo.records[CT])
    assert set(at_types) >= {"ram-user", "assumed-role", "root-account", "system"}
    assert set(ct_types) >= {"IAMUser", "AssumedRole", "Root", "AWSService"}
    ct_ips = {_ip(r) for r in demo.records[CT]}
    assert {"autoscaling.amazonaws.com", "ec2.amazonaws.com", "AWS Internal"} <= ct_ips
    at_ips = {_ip(r) for r in demo.records[AT]}
    assert {"ecs.aliyuncs.com", "ess.aliyuncs.com"} <= at_ips
    assert any(r["eventType"] == "AliyunServiceEvent" for r in demo.records[AT])


def test_keys_in_records_have_the_real_shapes(demo: Written) -> None:
    at_keys = {r["userIdentity"].get("accessKeyId") for r in demo.records[AT]} - {None}
    ct_keys = {r["userIdentity"].get("accessKeyId") for r in demo.records[CT]} - {None, ""}
    assert all(re.fullmatch(r"LTAI[A-Za-z0-9]{20}|STS\.[A-Za-z0-9]{21}", k) for k in at_keys)
    assert any(k.startswith("STS.") for k in at_keys)
    assert all(re.fullmatch(r"(AKIA|ASIA)[A-Z2-7]{16}", k) for k in ct_keys)
    assert any(k.startswith("ASIA") for k in ct_keys) and any(k.startswith("AKIA") for k in ct_keys)


def test_user_agents_of_sdks_clis_and_terraform(demo: Written) -> None:
    agents = {r["userAgent"] for r in _all(demo)}
    for prefix in (
        "aliyun-sdk-java/",
        "AlibabaCloud (Linux; amd64) Python/3.11.4 Core/2.13.10 python-requests/2.31.0",
        "aws-cli/2.",
        "Boto3/1.34.",
        "APN/1.0 HashiCorp/1.0 Terraform/",
        "Terraform/",
        "AliyunConsole",
        "console.ec2.amazonaws.com",
    ):
        assert any(a.startswith(prefix) for a in agents), prefix
    assert any("terraform-provider-aws/" in a for a in agents)


def test_records_carry_the_fields_of_real_ones(demo: Written) -> None:
    ct_required = {
        "eventVersion",
        "userIdentity",
        "eventTime",
        "eventSource",
        "eventName",
        "awsRegion",
        "sourceIPAddress",
        "userAgent",
        "requestParameters",
        "responseElements",
        "eventID",
        "eventType",
        "recipientAccountId",
        "eventCategory",
        "managementEvent",
        "readOnly",
    }
    uuid = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
    for r in demo.records[CT]:
        assert ct_required <= set(r), r
        assert uuid.fullmatch(r["eventID"])
        assert r["eventVersion"] in {"1.08", "1.09", "1.10"}
        assert r["eventType"] in {"AwsApiCall", "AwsConsoleSignIn"}
        if r["eventType"] == "AwsApiCall":
            assert r["requestID"]
    at_required = {
        "eventId",
        "eventVersion",
        "acsRegion",
        "eventName",
        "eventSource",
        "eventType",
        "eventTime",
        "serviceName",
        "sourceIpAddress",
        "userAgent",
        "requestId",
        "userIdentity",
        "isGlobal",
        "recipientAccountId",
    }
    for r in demo.records[AT]:
        assert at_required <= set(r), r
        assert r["eventVersion"] == "1"
        assert r["eventType"] in {"ApiCall", "ConsoleSignin", "AliyunServiceEvent"}
        params = r.get("requestParameters", {})
        assert all(not isinstance(v, dict | list) for v in params.values()), "ActionTrail parameters are flat"
        if r["eventType"] == "ApiCall":
            assert "requestParameters" in r and "eventRW" in r


def test_security_group_changes_in_both_parameter_styles(demo: Written) -> None:
    sg = [r for r in demo.records[AT] if r["eventName"] == "AuthorizeSecurityGroup"]
    assert any("SourceCidrIp" in r["requestParameters"] for r in sg)
    assert any("Permissions.1.SourceCidrIp" in r["requestParameters"] for r in sg)
    ingress = [r for r in demo.records[CT] if r["eventName"] == "AuthorizeSecurityGroupIngress"]
    cidrs = {
        rng["cidrIp"]
        for r in ingress
        for item in r["requestParameters"]["ipPermissions"]["items"]
        for rng in item["ipRanges"]["items"]
    }
    assert "0.0.0.0/0" in cidrs and len(cidrs) > 1


def test_office_hours_rhythm_and_quiet_weekends(demo: Written) -> None:
    people = [r for r in _all(demo) if r["userIdentity"].get("userName", "").count(".") == 1]
    local_hours = Counter((_time(r).hour + 8) % 24 for r in people)
    office = sum(local_hours[h] for h in range(10, 18))
    night = sum(local_hours[h] for h in range(0, 7))
    assert office > 20 * max(night, 1)
    assert night > 0  # ops on call
    days = Counter(datetime.fromtimestamp(_time(r).timestamp() + 8 * 3600, UTC).weekday() for r in people)
    assert min(days[d] for d in range(5)) > 3 * max(days[5], days[6])


def test_main_accounts_are_rarely_used(demo: Written) -> None:
    root = [r for r in _all(demo) if r["userIdentity"]["type"] in ("root-account", "Root")]
    assert 2 <= len(root) <= 20


def test_normal_ips_are_not_on_block_lists(demo: Written) -> None:
    ipsum = SHARED / "intel" / "ipsum" / "ipsum.txt"
    if not ipsum.exists():
        pytest.skip("shared intel data not present")
    listed = {line.split()[0] for line in ipsum.read_text().splitlines() if line[:1].isdigit()}
    attacker = set(demo.summary.attacker_ips)
    assert attacker <= listed  # the attack IPs are known-bad, so intel enrichment hits in the demo
    normal = {_ip(r) for r in _all(demo)} - attacker
    assert not (normal & listed)


# --- the attack ----------------------------------------------------------------------------------------


def test_each_attack_step_is_in_the_files(demo: Written) -> None:
    steps: dict[str, list[str]] = {AT: [], CT: []}
    for step in demo.summary.attack:
        steps[step.provider].append(step.name)
        assert step.event_ids and step.description
        for event_id in step.event_ids:
            record = demo.by_id[event_id]
            assert record in demo.records[step.provider]
    assert steps == EXPECTED_STEPS
    for step in demo.summary.response:
        for event_id in step.event_ids:
            assert event_id in demo.by_id


def _step(demo: Written, provider: str, name: str) -> list[dict[str, Any]]:
    (step,) = [s for s in demo.summary.attack if s.provider == provider and s.name == name]
    return [demo.by_id[i] for i in step.event_ids]


def test_attack_records_say_what_happened(demo: Written) -> None:
    recon = _step(demo, AT, "recon_access_denied")
    assert sum(1 for r in recon if r.get("errorCode")) >= len(recon) // 2
    (attach,) = _step(demo, AT, "attach_admin_policy")
    assert attach["requestParameters"]["PolicyName"] == "AdministratorAccess"
    assert any(
        r["requestParameters"].get("SourceCidrIp") == "0.0.0.0/0" for r in _step(demo, AT, "open_security_group")
    )
    assert any(
        r["requestParameters"].get("Permissions.1.SourceCidrIp") == "0.0.0.0/0"
        and r["requestParameters"]["Permissions.1.PortRange"] == "22/22"
        for r in _step(demo, AT, "open_security_group")
    )
    (acl,) = _step(demo, AT, "make_bucket_public")
    assert acl["requestParameters"]["x-oss-acl"] == "public-read"
    (stop,) = _step(demo, AT, "stop_logging")
    assert (stop["eventName"], stop["serviceName"]) == ("StopLogging", "Actiontrail")

    recon = _step(demo, CT, "recon_access_denied")
    assert sum(1 for r in recon if r.get("errorCode")) >= len(recon) // 2
    (attach,) = _step(demo, CT, "attach_admin_policy")
    assert attach["requestParameters"]["policyArn"] == "arn:aws:iam::aws:policy/AdministratorAccess"
    (inline,) = _step(demo, CT, "inline_admin_policy")
    document = orjson.loads(inline["requestParameters"]["policyDocument"])
    assert document["Statement"][0]["Action"] == "*" and document["Statement"][0]["Resource"] == "*"
    (ingress,) = _step(demo, CT, "open_security_group")
    item = ingress["requestParameters"]["ipPermissions"]["items"][0]
    assert item["fromPort"] == 22 and item["ipRanges"]["items"][0]["cidrIp"] == "0.0.0.0/0"
    public = {r["eventName"] for r in _step(demo, CT, "make_bucket_public")}
    assert {"DeleteBucketPublicAccessBlock", "PutBucketPolicy"} <= public
    (policy,) = [r for r in _step(demo, CT, "make_bucket_public") if r["eventName"] == "PutBucketPolicy"]
    assert policy["requestParameters"]["bucketPolicy"]["Statement"][0]["Principal"] == "*"
    (create,) = _step(demo, CT, "create_access_key")
    assert create["responseElements"]["accessKey"]["accessKeyId"] == demo.summary.attacker_access_keys[CT]
    (stop,) = _step(demo, CT, "stop_logging")
    assert (stop["eventName"], stop["eventSource"]) == ("StopLogging", "cloudtrail.amazonaws.com")


def test_leaked_key_is_used_from_a_foreign_ip_never_seen_before(demo: Written) -> None:
    s = demo.summary
    assert s.attack_start is not None
    for provider in (AT, CT):
        leaked = s.leaked_access_keys[provider]
        first = _step(demo, provider, "leaked_key_first_use")[0]
        assert first["userIdentity"]["accessKeyId"] == leaked
        foreign = _ip(first)
        assert foreign in s.attacker_ips
        first_time = _time(first)
        assert first_time >= s.attack_start
        before = [r for r in demo.records[provider] if _time(r) < first_time]
        assert not any(_ip(r) in s.attacker_ips for r in before)
        # The key was in normal use before, from the company's own addresses.
        own = [r for r in before if r["userIdentity"].get("accessKeyId") == leaked]
        assert len(own) > 10
        assert all(not _ip(r).startswith(("45.", "193.")) for r in own)
        # The attack is on the day before the last, at night in Shanghai.
        assert (first_time - s.start).days >= 5 and (s.end - first_time).days < 2
        assert 1 <= (first_time.hour + 8) % 24 <= 5


def test_trail_is_silent_while_stopped(demo: Written) -> None:
    for provider in (AT, CT):
        (stop,) = _step(demo, provider, "stop_logging")
        (restart,) = [s for s in demo.summary.response if s.provider == provider and s.name == "restart_logging"]
        started = demo.by_id[restart.event_ids[0]]
        assert started["eventName"] == "StartLogging"
        gap = [r for r in demo.records[provider] if _time(stop) < _time(r) < _time(started)]
        assert not gap
        assert (_time(started) - _time(stop)).total_seconds() > 5 * 60


def test_summary_is_json(demo: Written) -> None:
    data = msgspec.json.decode(msgspec.json.encode(demo.summary))
    assert data["events_total"] == demo.summary.events_total
    assert {s["name"] for s in data["attack"]} == set(EXPECTED_STEPS[AT]) | set(EXPECTED_STEPS[CT])


def test_min_events_is_honoured(tmp_path: Path) -> None:
    gen = DemoGenerator(DemoOptions(seed=3, days=2, min_events=20_000))
    items, _ = gen.records()
    assert len(items) == 20_000  # two days are not enough on their own: topped up exactly
    times = [t for t, *_ in items]
    assert times == sorted(times)
    assert gen.start <= times[0] and times[-1] < gen.end


def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="days"):
        DemoGenerator(DemoOptions(days=1))
    with pytest.raises(ValueError, match="end"):
        DemoGenerator(DemoOptions(end=datetime(2026, 11, 20)))


# --- the benchmark corpus ------------------------------------------------------------------------------


def test_cloudtrail_corpus_has_the_requested_count(tmp_path: Path) -> None:
    progress: list[int] = []
    summary = DemoGenerator().write_cloudtrail_corpus(tmp_path, events=5_000, progress=progress.append, days=3)
    assert summary.events_total == 5_000
    assert progress[-1] == 5_000
    records: list[dict[str, Any]] = []
    regions = set()
    for rel in summary.files:
        m = CT_PATH.match(rel)
        assert m, rel
        regions.add(m["region"])
        body = orjson.loads(gzip.decompress((tmp_path / rel).read_bytes()))
        records.extend(body["Records"])
    assert len(records) == 5_000
    assert len({r["eventID"] for r in records}) == 5_000
    assert regions == {"ap-southeast-1", "us-east-1", "ap-northeast-1"}
    assert {"IAMUser", "AssumedRole", "AWSService"} <= {r["userIdentity"]["type"] for r in records}
    assert any(r.get("errorCode") for r in records)
    times = [_time(r) for r in records]
    assert (max(times) - min(times)).days >= 2


def test_cloudtrail_corpus_is_deterministic(tmp_path: Path) -> None:
    a = DemoGenerator().write_cloudtrail_corpus(tmp_path / "a", events=2_000, days=2)
    b = DemoGenerator().write_cloudtrail_corpus(tmp_path / "b", events=2_000, days=2)
    assert a.files == b.files
    assert _snapshot(tmp_path / "a") == _snapshot(tmp_path / "b")


@pytest.mark.parametrize("weekday_end", range(7))
def test_leaked_keys_are_known_past_the_learning_period_whatever_day_the_week_ends(weekday_end: int) -> None:
    # `cloudsoc demo` ends its week at the current hour: a week that began on a Friday afternoon once left the
    # leaked AWS key unused until Monday, still inside access_key_new_source's learning period at the attack.
    learning = timedelta(days=DetectionConfig().learning_days)
    end = datetime(2026, 11, 27, 8, tzinfo=UTC) + timedelta(days=weekday_end)
    generator = DemoGenerator(DemoOptions(seed=11, end=end, min_events=0))
    items, outcome = generator.records()
    person = generator.company.person(generator.company.leaked_person)
    leaked = {AT: person.ram_key, CT: person.iam_key}
    for provider, key in leaked.items():
        assert key is not None
        used = [t for t, _, p, _, r in items if p == provider and r["userIdentity"].get("accessKeyId") == key.key_id]
        assert datetime.fromtimestamp(outcome.start, UTC) - datetime.fromtimestamp(min(used), UTC) > learning
