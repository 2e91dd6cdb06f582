"""The demo company's bastion week: deterministic, verdicts from the real filter, recordings the extractor reads."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from cloudsoc.bastion.asciicast import CastReader
from cloudsoc.bastion.filters import CommandFilter
from cloudsoc.bastion.sessions import SessionLog
from cloudsoc.bastion.terminal import CommandExtractor
from cloudsoc.config.bastion import BastionConfig
from cloudsoc.demo.activity import SHANGHAI
from cloudsoc.demo.bastion import ATTACK_STEP, BASTION, BastionOutcome
from cloudsoc.demo.company import Role
from cloudsoc.demo.generator import DemoGenerator, DemoOptions
from cloudsoc.pipeline.processor import Processor

OPTIONS = DemoOptions(seed=7, min_events=0)


@pytest.fixture(scope="module")
def gen() -> DemoGenerator:
    return DemoGenerator(OPTIONS)


@pytest.fixture(scope="module")
def week(gen: DemoGenerator) -> BastionOutcome:
    return gen.bastion()


@pytest.fixture(scope="module")
def written(gen: DemoGenerator, tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("home")
    gen.write_bastion(home / "journal", home)
    return home


def _local_hour(doc: dict[str, object]) -> float:
    t = datetime.fromisoformat(str(doc["@timestamp"])).timestamp() + SHANGHAI
    return (t % 86400) / 3600


def test_same_seed_gives_the_same_documents_and_another_seed_does_not(week: BastionOutcome) -> None:
    again = DemoGenerator(OPTIONS).bastion()
    assert orjson.dumps(again.docs) == orjson.dumps(week.docs)
    assert [s.id for s in again.sessions] == [s.id for s in week.sessions]
    other = DemoGenerator(DemoOptions(seed=8, min_events=0)).bastion()
    assert {d["event"]["id"] for d in other.docs}.isdisjoint({d["event"]["id"] for d in week.docs})


def test_documents_have_the_journal_shape_and_unique_ids(week: BastionOutcome) -> None:
    ids = [d["event"]["id"] for d in week.docs]
    assert len(ids) == len(set(ids)) and all(len(i) == 32 for i in ids)
    assert [d["@timestamp"] for d in week.docs] == sorted(d["@timestamp"] for d in week.docs)
    actions = Counter(d["event"]["action"] for d in week.docs)
    assert set(actions) == {"bastion-login", "bastion-session", "bastion-command", "bastion-sftp"}
    assert actions["bastion-command"] > 300
    for d in week.docs:
        assert d["event"]["module"] == "bastion" and d["source"]["ip"]
        if d["event"]["action"] == "bastion-command":
            assert d["process"]["command_line"] and d["session"]["id"] and d["host"]["name"]
            assert d["url"]["full"].startswith(f"/bastion/sessions/{d['session']['id']}?t=")
            assert d["labels"]["cloud"] in ("aliyun", "aws")
    # The pipeline takes every one of them as an ECS document, none a dead letter.
    body = b"\n".join(orjson.dumps(d) for d in week.docs)
    events, dead, seen = Processor("ecs").process(body, "bastion", "x.ndjson")
    assert (len(events), dead, seen) == (len(week.docs), [], len(week.docs))


def test_engineers_work_from_the_office_on_working_days(gen: DemoGenerator, week: BastionOutcome) -> None:
    company = gen.company
    engineers = {p.name for p in company.people if p.role in (Role.OPS, Role.DEV)}
    office = set(company.offices["hangzhou"]) | set(company.offices["shenzhen"])
    normal = [s for s in week.sessions if not s.attack]
    assert {s.user for s in normal} <= engineers and len({s.user for s in normal}) >= 12
    assert {s.source_ip for s in normal} <= office
    for s in normal:
        local = datetime.fromtimestamp(s.start + SHANGHAI, UTC)
        assert local.weekday() < 5 and 9 <= local.hour < 19, s
    # both clouds' servers, named as the estate's
    hosts = {s.host.name for s in week.sessions}
    assert len(hosts) >= 8 and hosts & {"web-01", "web-02", "web-03"} and hosts & {"web-sg-01", "web-sg-02"}
    assert {s.host.labels["cloud"] for s in week.sessions} == {"aliyun", "aws"}
    logins = [d for d in week.docs if d["event"]["action"] == "bastion-login"]
    refused = [d for d in logins if d["event"]["outcome"] == "failure"]
    assert refused and all(d["event"]["reason"] == "wrong TOTP code" for d in refused)
    assert len(refused) < len(logins) / 5
    uploads = [
        d for d in week.docs if d["event"]["action"] == "bastion-sftp" and "upload" in d["process"]["command_line"]
    ]
    assert uploads and all(d["file"]["size"] > 0 and d["event"]["type"] == ["creation"] for d in uploads)
    typed = Counter(
        d["process"]["command_line"].split()[0] for d in week.docs if d["event"]["action"] == "bastion-command"
    )
    assert {"docker", "kubectl", "tail", "sudo", "./deploy.sh", "psql", "exit"} <= set(typed)


def test_attack_commands_get_the_filters_verdicts(gen: DemoGenerator, week: BastionOutcome) -> None:
    company = gen.company
    attack = [d for d in week.docs if d["source"]["ip"] in company.attacker_ips]
    assert {d["user"]["name"] for d in attack} == {company.leaked_person}
    assert all(not 8 <= _local_hour(d) < 20 for d in attack)  # at night, Shanghai time
    verdict = {
        d["process"]["command_line"]: d.get("cloudsoc", {}).get("bastion", {}).get("verdict")
        for d in attack
        if d["event"]["action"] == "bastion-command"
    }
    by_start = {
        line.split()[0] + (" " + line.split()[1] if line.startswith("sudo") else ""): v for line, v in verdict.items()
    }
    assert verdict["id; uname -a; cat /etc/passwd"] == "accept"
    assert by_start["curl"] == "review"  # download-exec
    assert by_start["echo"] == "review"  # ssh-keys: >> ~/.ssh/authorized_keys
    assert by_start["bash"] == "reject"  # reverse-shell
    assert verdict["rm -rf /var/log/*"] == "review"  # log-wipe
    assert verdict["history -c"] == "review"
    assert verdict["sudo rm -rf /var/*"] == "reject"
    # Every document's verdict is what the real filter says of its line, normal ones included.
    real = CommandFilter.from_config(BastionConfig())
    for d in week.docs:
        if d["event"]["action"] != "bastion-command":
            continue
        v = real.check(d["process"]["command_line"], user=d["user"]["name"])
        assert d.get("cloudsoc", {}).get("bastion", {}).get("verdict") == v.action, d
        assert d["event"]["outcome"] == ("failure" if v.action == "reject" else "success")
        if v.action != "accept":
            assert d["cloudsoc"]["bastion"]["group"] == v.group and d["event"]["reason"] == v.reason
    step = week.step
    assert step.name == ATTACK_STEP and step.provider == BASTION and step.source_ip in company.attacker_ips
    flagged = {
        d["event"]["id"]
        for d in attack
        if d.get("cloudsoc", {}).get("bastion", {}).get("verdict") in ("review", "reject")
    }
    assert set(step.event_ids) == flagged and len(flagged) == 6
    dump = [d for d in attack if d["event"]["action"] == "bastion-sftp"]
    assert dump and dump[0]["event"]["type"] == ["access"] and dump[0]["file"]["size"] > 10**9


def test_recordings_read_back_and_give_exactly_the_commands(week: BastionOutcome, written: Path) -> None:
    log = SessionLog(written)
    try:
        rows = {r["id"]: r for r in log.list(limit=10_000)}
    finally:
        log.close()
    assert set(rows) == {s.id for s in week.sessions}
    recorded = [s for s in week.sessions if s.recorded]
    assert len(recorded) == 12 and any(s.attack for s in recorded)
    features = Counter()
    for s in recorded:
        row = rows[s.id]
        path = Path(row["recording"])
        assert path.is_file() and path.name == f"{s.id}.cast.gz" and row["status"] == "closed"
        assert row["started"] == s.start and row["ended"] > row["started"] and row["commands"] == len(s.lines)
        reader = CastReader(path)
        assert reader.header["timestamp"] == int(s.start) and reader.header["title"] == f"{s.user}@{s.host.name}"
        extractor = CommandExtractor(reader.width, reader.height)
        got = []
        for e in reader:
            if e.code == "o":
                got += extractor.output(e.time, e.data.encode())
            elif e.code == "i":
                got += extractor.input(e.time, e.data.encode())
            features[e.code] += 1
            if e.code == "o" and "\x1b[?1049h" in e.data:
                features["vim"] += 1
            if e.code == "i" and e.data == "*":
                features["masked"] += 1
            if e.code == "m" and e.data.startswith("rejected: "):
                features["rejected"] += 1
        got += extractor.close(s.duration + 1)
        assert [c.text for c in got] == [line.text for line in s.lines if line.verdict.action != "reject"], s.id
        assert all(c.cwd == "~" for c in got)
        # Enter comes when the documents say (the url.full offsets point into the recording).
        assert [round(c.time, 3) for c in got] == [line.at for line in s.lines if line.verdict.action != "reject"]
    assert (
        features["vim"] >= 1 and features["masked"] >= 8 and features["rejected"] == 2
    )  # the reverse shell and `rm -rf /var/*`
    # human typing: keys are tens to hundreds of milliseconds apart
    attack = next(s for s in recorded if s.attack)
    keys = [e.time for e in CastReader(Path(rows[attack.id]["recording"])) if e.code == "i"]
    gaps = [b - a for a, b in itertools.pairwise(keys) if b - a < 1]
    assert min(gaps) > 0.03 and max(gaps) < 0.25


def test_journal_files_are_hourly_ndjson_of_every_document(week: BastionOutcome, written: Path) -> None:
    files = sorted((written / "journal").rglob("*.ndjson"))
    docs = [orjson.loads(line) for f in files for line in f.read_bytes().splitlines()]
    assert docs == week.docs
    for f in files:
        y, m, d = f.parts[-4:-1]
        assert f.name.startswith(f"{y}{m}{d}T")
