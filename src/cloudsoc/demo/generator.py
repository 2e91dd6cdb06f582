"""``cloudsoc demo`` data: a simulated company's week on Alibaba Cloud and AWS, with an attack, as trail files.

>>> gen = DemoGenerator(DemoOptions(seed=7))
>>> summary = gen.write(Path("demo-data"))              # doctest: +SKIP
>>> summary.attack[0].event_ids                          # doctest: +SKIP

The same options give byte-identical files: every random choice comes from ``random.Random`` seeded with the
options' seed (never the global random, never the clock), and the period ends at ``options.end``.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import orjson

from cloudsoc.bastion.layout import BastionLayout
from cloudsoc.demo.actiontrail import ActionTrailRecords
from cloudsoc.demo.activity import DAY, HOUR, NormalActivity, local_midnight
from cloudsoc.demo.attack import AttackOutcome, AttackStep, AttackStory
from cloudsoc.demo.bastion import BastionActivity, BastionOutcome
from cloudsoc.demo.cloudtrail import CloudTrailRecords
from cloudsoc.demo.company import Company
from cloudsoc.demo.corpus import CloudTrailCorpus
from cloudsoc.demo.ids import IdFactory
from cloudsoc.demo.timeline import ACTIONTRAIL, CLOUDTRAIL, Timeline
from cloudsoc.demo.writer import DeliveryWriter

__all__ = ["AttackStep", "DemoGenerator", "DemoOptions", "DemoSummary"]

Item = tuple[int, int, str, str, dict[str, Any]]


class DemoOptions(msgspec.Struct, frozen=True, kw_only=True):
    """What to generate. ``end`` is a fixed date by default so that runs are reproducible."""

    seed: int = 7
    days: int = 7
    min_events: int = 50_000
    end: datetime = datetime(2026, 11, 20, tzinfo=UTC)
    gzip_level: int = 6


class DemoSummary(msgspec.Struct, kw_only=True):
    """What was written: files (relative to ``path``), counts, and the attack story with its record ids."""

    path: str
    files: list[str]
    events_total: int
    events_by_provider: dict[str, int]
    files_by_provider: dict[str, int]
    bytes_written: int
    people: int
    start: datetime
    end: datetime
    accounts: dict[str, str]  # provider -> account id
    attack: list[AttackStep] = msgspec.field(default_factory=list)
    response: list[AttackStep] = msgspec.field(default_factory=list)
    attack_start: datetime | None = None
    attacker_ips: list[str] = msgspec.field(default_factory=list)
    leaked_access_keys: dict[str, str] = msgspec.field(default_factory=dict)  # provider -> key id
    attacker_access_keys: dict[str, str] = msgspec.field(default_factory=dict)


def _stream(seed: int, name: str) -> random.Random:
    """An independent random stream per part, so that changing one part does not shift the others."""
    return random.Random(f"cloudsoc-demo:{seed}:{name}")


class DemoGenerator:
    def __init__(self, options: DemoOptions | None = None) -> None:
        self.options = options or DemoOptions()
        if self.options.days < 2:
            raise ValueError(
                f"days: must be >= 2 (the attack happens on the day before the last), got {self.options.days}"
            )
        if self.options.end.tzinfo is None:
            raise ValueError("end: must be timezone-aware")
        self.company = Company.build(_stream(self.options.seed, "company"))
        self._items: list[Item] | None = None
        self._outcome: AttackOutcome | None = None
        self._bastion: BastionOutcome | None = None

    @property
    def end(self) -> int:
        return int(self.options.end.timestamp())

    @property
    def start(self) -> int:
        return self.end - self.options.days * DAY

    @property
    def accounts(self) -> dict[str, str]:
        return {ACTIONTRAIL: self.company.aliyun_account_id, CLOUDTRAIL: self.company.aws_account_id}

    def records(self) -> tuple[list[Item], AttackOutcome]:
        """All records in time order as ``(epoch secs, seq, provider, region, record)``, and the attack story."""
        if self._items is None or self._outcome is None:
            self._items, self._outcome = self._generate()
        return self._items, self._outcome

    def _generate(self) -> tuple[list[Item], AttackOutcome]:
        seed = self.options.seed
        rng = _stream(seed, "records")
        ids = IdFactory(rng)
        timeline = Timeline()
        at = ActionTrailRecords(self.company, ids, rng, timeline)
        ct = CloudTrailRecords(self.company, ids, rng, timeline)
        # The attack: about 03:00 Shanghai time on the day before the last.
        story_rng = _stream(seed, "attack")
        t0 = local_midnight(self.end - 30 * HOUR) + 3 * HOUR + story_rng.randint(0, 20 * 60)
        outcome = AttackStory(self.company, at, ct, ids, story_rng).run(t0)
        week = NormalActivity(self.company, at, ct, ids, _stream(seed, "activity"), self.start, self.end)
        week.rotations[self.company.leaked_person] = outcome.rotation
        week.run()

        start, end = self.start, self.end
        gaps = outcome.gaps

        def dropped(t: int, provider: str) -> bool:
            if t < start or t >= end:
                return True
            return any(p == provider and stop < t < restart for p, stop, restart in gaps)

        kept = [item for item in timeline.items if not dropped(item[0], item[2])]
        missing = self.options.min_events - len(kept)
        if missing > 0:
            before = len(timeline.items)
            week.top_up(missing, lambda t: any(stop <= t <= restart for _, stop, restart in gaps))
            kept.extend(timeline.items[before:])
        kept.sort(key=lambda item: (item[0], item[1]))
        return kept, outcome

    def write(self, out_dir: Path, progress: Callable[[int], None] | None = None) -> DemoSummary:
        """Write the company's trail files under ``out_dir``; ``progress`` gets the running count of records."""
        items, outcome = self.records()
        writer = DeliveryWriter(out_dir, _stream(self.options.seed, "writer"), gzip_level=self.options.gzip_level)
        writer.write_timeline(items, self.accounts, progress)
        by_provider = Counter(item[2] for item in items)
        return DemoSummary(
            path=str(out_dir),
            files=writer.files,
            events_total=len(items),
            events_by_provider=dict(sorted(by_provider.items())),
            files_by_provider=_files_by_provider(writer.files),
            bytes_written=writer.bytes_written,
            people=len(self.company.people),
            start=datetime.fromtimestamp(self.start, UTC),
            end=datetime.fromtimestamp(self.end, UTC),
            accounts=self.accounts,
            attack=outcome.steps,
            response=outcome.response,
            attack_start=datetime.fromtimestamp(outcome.start, UTC),
            attacker_ips=list(self.company.attacker_ips),
            leaked_access_keys=outcome.leaked_keys,
            attacker_access_keys=outcome.attacker_keys,
        )

    def bastion(self) -> BastionOutcome:
        """The week's bastion sessions and their ECS documents (the attacker's session comes before the cloud
        story, from its second address)."""
        if self._bastion is None:
            _, outcome = self.records()
            rng = _stream(self.options.seed, "bastion")
            self._bastion = BastionActivity(self.company, rng, self.start, self.end, outcome.start).run()
        return self._bastion

    def write_bastion(self, journal_dir: Path, home: Path | None = None) -> BastionOutcome:
        """The bastion's journal as the real one seals it (NDJSON under ``YYYY/MM/DD/``, here one file an hour)
        for the pipeline's ``ecs`` format; with ``home``, also the recordings of the recorded sessions under
        ``<home>/bastion/recordings/YYYY/MM/DD/<id>.cast.gz`` and every session's row in ``bastion.db``, so the
        console has sessions to list and replay."""
        from cloudsoc.bastion.sessions import SessionLog
        from cloudsoc.demo.recording import SessionRecording

        bastion = self.bastion()
        hours: dict[str, list[bytes]] = {}
        for doc in bastion.docs:
            st = str(doc["@timestamp"])
            key = f"{st[0:4]}/{st[5:7]}/{st[8:10]}/{st[0:4]}{st[5:7]}{st[8:10]}T{st[11:13]}-demo"
            hours.setdefault(key, []).append(orjson.dumps(doc))
        for key, lines in hours.items():
            path = journal_dir / f"{key}.ndjson"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"\n".join(lines) + b"\n")
        if home is None:
            return bastion
        rng = _stream(self.options.seed, "recordings")
        ends = {d["session"]["id"]: d for d in bastion.docs if "session" in d}  # the last document of each session
        rows: list[dict[str, Any]] = []
        for s in bastion.sessions:
            recording = ""
            if s.recorded:
                day = datetime.fromtimestamp(s.start, UTC).strftime("%Y/%m/%d")
                path = BastionLayout.of(home).recordings / day / f"{s.id}.cast.gz"
                SessionRecording(s, rng).write(path)
                recording = str(path)
            counts = ends[s.id].get("cloudsoc", {}).get("bastion", {})
            rows.append(
                {
                    "id": s.id,
                    "user": s.user,
                    "source_ip": s.source_ip,
                    "target": s.host.name,
                    "system_user": s.system_user,
                    "kind": s.kind,
                    "started": s.start,
                    "ended": s.start + s.duration,
                    "recording": recording,
                    "bytes_in": counts.get("bytes_in", 0),
                    "bytes_out": counts.get("bytes_out", 0),
                    "commands": counts.get("commands", 0),
                    "status": "closed",
                }
            )
        log = SessionLog(home)
        try:
            log.record(rows)
        finally:
            log.close()
        return bastion

    def write_cloudtrail_corpus(
        self,
        out_dir: Path,
        events: int = 1_000_000,
        progress: Callable[[int], None] | None = None,
        *,
        days: int = 30,
        gzip_level: int = 1,
    ) -> DemoSummary:
        """A CloudTrail-only corpus of exactly ``events`` normal-activity records over ``days`` days and three
        regions, in the S3 delivery layout (for benchmarks)."""
        end = self.end
        start = end - days * DAY
        writer = DeliveryWriter(out_dir, _stream(self.options.seed, "corpus-writer"), gzip_level=gzip_level)
        corpus = CloudTrailCorpus(self.company, _stream(self.options.seed, "corpus"), start, end)
        corpus.write(writer, events, progress)
        return DemoSummary(
            path=str(out_dir),
            files=writer.files,
            events_total=events,
            events_by_provider={CLOUDTRAIL: events},
            files_by_provider=_files_by_provider(writer.files),
            bytes_written=writer.bytes_written,
            people=len(self.company.people),
            start=datetime.fromtimestamp(start, UTC),
            end=datetime.fromtimestamp(end, UTC),
            accounts={CLOUDTRAIL: self.company.aws_account_id},
        )


def _files_by_provider(files: list[str]) -> dict[str, int]:
    counts = {ACTIONTRAIL: 0, CLOUDTRAIL: 0}
    for f in files:
        counts[ACTIONTRAIL if f.startswith("AliyunLogs/") else CLOUDTRAIL] += 1
    return {k: v for k, v in counts.items() if v}
