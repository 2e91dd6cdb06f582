"""A large CloudTrail-only corpus of normal activity, fast enough to write a million records in seconds.

Each day, the company's AWS callers (people with keys and console sessions, role sessions, CI, the metrics
exporter, AWS services) make one prototype record per (caller, call, region) with the same builder as the demo;
the prototypes become templates whose per-record fields (time, ids) are filled in by a cheap dict copy.
Records are spread over 5-minute windows with office-hours rhythm for people and a flat rate for machines.
"""

from __future__ import annotations

import functools
import itertools
import random
import time
from collections.abc import Callable
from typing import Any

from cloudsoc.demo.activity import (
    AWS_DENIED,
    AWS_DEV_CLI,
    AWS_DEV_CONSOLE,
    AWS_OPS,
    AWS_SECURITY,
    AWS_TERRAFORM,
    DAY,
    HOUR,
    SHANGHAI,
    Mix,
    weighted,
)
from cloudsoc.demo.actor import Actor
from cloudsoc.demo.clients import Clients
from cloudsoc.demo.cloudtrail import APIS, CloudTrailRecords
from cloudsoc.demo.company import Company, Person, Role
from cloudsoc.demo.ids import IdFactory
from cloudsoc.demo.timeline import Timeline
from cloudsoc.demo.writer import WINDOW_SECS, DeliveryWriter

Template = dict[str, Any]
Pools = dict[str, tuple[list[Template], list[float]]]
_S3 = "\x00s3"  # requestID placeholder: S3 request ids are 16 hex digits, not UUIDs

_ATHENA: Mix = (
    ("ListWorkGroups", "GetDatabases", "GetTables", "StartQueryExecution", "GetQueryExecution", "GetQueryResults"),
    (0.3, 0.6, 1.2, 3.2, 8.2, 10.0),
)
_EXPORTER = weighted(
    {"GetMetricData": 3, "DescribeInstances": 1, "DescribeAutoScalingGroups": 1, "DescribeTargetHealth": 0.3}
)
_CI = weighted(
    {
        "GetCallerIdentity": 1,
        "GetAuthorizationToken": 1,
        "DescribeRepositories": 1,
        "RegisterTaskDefinition": 1,
        "UpdateService": 1,
        "DescribeServices": 4,
    }
)
_BACKUP = weighted({"ListBuckets": 1, "GetBucketLocation": 1, "GetBucketEncryption": 1})
_SCALING = weighted({"RunInstances": 1, "TerminateInstances": 1})
_ASSUME = weighted({"AssumeRole": 1})


class CloudTrailCorpus:
    def __init__(self, company: Company, rng: random.Random, start: int, end: int) -> None:
        self.c = company
        self.rng = rng
        self.ids = IdFactory(rng)
        self.start = start
        self.end = end
        self.regions = list(company.aws_regions)
        self.region_share = (0.62, 0.28, 0.10)[: len(self.regions)]
        self._scratch = Timeline()
        self.ct = CloudTrailRecords(company, self.ids, rng, self._scratch)

    # --- where the records go --------------------------------------------------------------------------

    def _human_weight(self, t: int) -> float:
        local = t + SHANGHAI
        hour = (local % DAY) // HOUR
        weekday = time.gmtime(local).tm_wday
        w = 1.0 if 9 <= hour < 19 else 0.25 if 19 <= hour < 23 else 0.03
        return w if weekday < 5 else w * 0.1

    def _allocate(self, events: int) -> list[tuple[int, int, int, int]]:
        """``(window start, region index, people records, machine records)``, summing to exactly ``events``."""
        windows = list(range(self.start - self.start % WINDOW_SECS, self.end, WINDOW_SECS))
        weights: list[float] = []
        for w in windows:
            human = self._human_weight(w) * 1.6
            machine = 0.35
            for share in self.region_share:
                weights.append(human * share)
                weights.append(machine * share)
        total = sum(weights)
        counts: list[int] = []
        acc = 0.0
        prev = 0
        for wt in weights:
            acc += wt
            cur = round(acc * events / total)
            counts.append(cur - prev)
            prev = cur
        out = []
        i = 0
        for w in windows:
            for r in range(len(self.region_share)):
                out.append((w, r, counts[i], counts[i + 1]))
                i += 2
        return out

    # --- what the records are --------------------------------------------------------------------------

    def _template(self, record: dict[str, Any]) -> Template:
        record["eventTime"] = ""
        record["eventID"] = ""
        if "requestID" in record:  # sign-in events have none
            record["requestID"] = _S3 if record["eventSource"] == "s3.amazonaws.com" else ""
        return record

    def _add(self, pools: Pools, weight: float, emit: Callable[[], object]) -> None:
        """Run ``emit`` (which adds records to the scratch timeline) and pool its records with ``weight`` each."""
        self._scratch.items.clear()
        emit()
        for _, _, _, region, record in self._scratch.items:
            templates, weights = pools[region]
            templates.append(self._template(record))
            weights.append(weight)

    def _calls(
        self,
        pools: Pools,
        t: int,
        actor: Actor,
        mix: Mix,
        weight: float,
        *,
        denied: frozenset[str] = frozenset(),
        ua: Callable[[str], str] | None = None,
    ) -> None:
        """One template per call name and region; ``weight`` is shared out by the mix's weights."""
        names, cum = mix
        shares = [b - a for a, b in zip((0.0, *cum[:-1]), cum, strict=True)]
        for name, share in zip(names, shares, strict=True):
            share /= cum[-1]
            api = APIS[name]
            regions = ["us-east-1"] if api.global_region else self.regions
            for region in regions:
                user_agent = ua(name) if ua is not None else ""
                self._add(
                    pools,
                    weight * share / len(regions) * (1 if api.global_region else 3 * self._share(region)),
                    functools.partial(
                        self.ct.call, t, actor, name, region, denied=name in denied, user_agent=user_agent
                    ),
                )

    def _share(self, region: str) -> float:
        return self.region_share[self.regions.index(region)]

    def _day_pools(self, day0: int) -> tuple[Pools, Pools]:
        """The people's and the machines' templates of one day, per region."""
        c = self.c
        ct = self.ct
        rng = self.rng
        people: Pools = {r: ([], []) for r in self.regions}
        machines: Pools = {r: ([], []) for r in self.regions}
        t = day0 + 10 * HOUR
        office = c.offices["hangzhou"]
        for p in c.people:
            if not p.has_iam_user or p.joins_on_day:
                continue
            ip = office[rng.randrange(3)]
            self._person(people, p, t, ip)
        # Machines: the exporter, CI, backups, and AWS services acting for the company.
        exporter = c.servers["cw-exporter"]
        instance = c.aws_assets[c.aws_home].instances[1]
        session = ct.role_session("cw-exporter", instance, t, exporter.ip, "", ec2=True)
        self._calls(
            machines,
            t,
            session,
            _EXPORTER,
            6.0,
            ua=lambda n: Clients.AWS_GO_EXPORTER.format(api=Clients.api_name(APIS[n].source)),
        )
        runner = c.servers["gitlab-runner"]
        ci = ct.role_session("ci-runner", c.aws_assets[c.aws_home].instances[0], t, runner.ip, "", ec2=True)
        self._calls(
            machines,
            t,
            ci,
            _CI,
            1.0,
            ua=lambda n: Clients.AWS_CLI_SERVER.format(command=Clients.aws_command(APIS[n].source, n)),
        )
        backup = c.servers["backup01-s3"]
        assert backup.key is not None
        bk = ct.iam_user_key("backup-s3", self.ids.aws_unique_id("AIDA"), backup.key.key_id, backup.ip, "")
        self._calls(
            machines,
            t,
            bk,
            _BACKUP,
            0.1,
            ua=lambda n: Clients.AWS_CLI_SERVER.format(command=Clients.aws_command("s3", n)),
        )
        asg = ct.role_session(
            "AWSServiceRoleForAutoScaling",
            "AutoScaling",
            t,
            "autoscaling.amazonaws.com",
            "autoscaling.amazonaws.com",
            invoked_by="autoscaling.amazonaws.com",
            path="aws-service-role/autoscaling.amazonaws.com/",
        )
        self._calls(machines, t, asg, _SCALING, 0.1)
        for role, inst in (("ci-runner", ci), ("cw-exporter", session)):
            session_name = inst.identity["principalId"].split(":")[1]
            for region in self.regions:
                self._add(
                    machines,
                    0.4 * self._share(region),
                    functools.partial(ct.deliver_instance_role, t, role, session_name, inst, region),
                )
        return people, machines

    def _person(self, pools: Pools, p: Person, t: int, ip: str) -> None:
        ct = self.ct
        denied = AWS_DENIED.get(p.role, frozenset())
        # Console: the sign-in (rare, sometimes failed first) and the session's calls.
        self._add(pools, 0.005, lambda: ct.console_login(t, p, ip, p.browser))
        self._add(pools, 0.0002, lambda: ct.console_login(t, p, ip, p.browser, success=False))
        _, console = ct.console_login(t, p, ip, p.browser)
        self._scratch.items.clear()
        console_mix = {Role.OPS: AWS_OPS, Role.SECURITY: AWS_SECURITY, Role.DATA: _ATHENA}.get(p.role, AWS_DEV_CONSOLE)
        self._calls(pools, t, console, console_mix, 0.8, denied=denied)
        if p.iam_key is None:
            return
        key = ct.person_key(p, ip, "")
        platform = p.workstation[0]

        def cli(name: str) -> str:
            return Clients.AWS_CLI.format(platform=platform, command=Clients.aws_command(APIS[name].source, name))

        if p.role is Role.DEV:
            self._calls(pools, t, key, AWS_DEV_CLI, 1.0, denied=denied, ua=cli)
        elif p.role is Role.DATA:
            self._calls(pools, t, ct.person_key(p, ip, Clients.AWS_BOTO3), _ATHENA, 1.5)
        elif p.role is Role.OPS:
            role = ct.role_session("OpsAdmin", p.name, t, ip, Clients.AWS_BOTO3, mfa=p.mfa_aws)
            self._calls(pools, t, key, _ASSUME, 0.05, ua=cli)
            self._calls(pools, t, role, AWS_OPS, 2.0)
            tf = ct.role_session("OpsAdmin", p.name, t, ip, "", mfa=p.mfa_aws)
            self._calls(
                pools,
                t,
                tf,
                weighted(dict.fromkeys(AWS_TERRAFORM, 1.0)),
                1.5,
                ua=lambda n: Clients.AWS_TERRAFORM.format(api=Clients.api_name(APIS[n].source)),
            )

    # --- writing ---------------------------------------------------------------------------------------

    def write(self, writer: DeliveryWriter, events: int, progress: Callable[[int], None] | None = None) -> None:
        rng = self.rng
        ids = self.ids
        account = self.c.aws_account_id
        seconds = range(WINDOW_SECS)
        done = 0
        day_pools: dict[int, tuple[Pools, Pools]] = {}
        cumulative: dict[int, list[float]] = {}  # id(weights) -> cumulative weights
        for window, r, n_people, n_machines in self._allocate(events):
            n = n_people + n_machines
            if n == 0:
                continue
            day0 = window - (window + SHANGHAI) % DAY
            pools = day_pools.get(day0)
            if pools is None:
                day_pools.clear()
                cumulative.clear()
                pools = day_pools[day0] = self._day_pools(day0)
            region = self.regions[r]
            chosen: list[Template] = []
            for pool, k in ((pools[0][region], n_people), (pools[1][region], n_machines)):
                if k:
                    templates, weights = pool
                    cum = cumulative.get(id(weights))
                    if cum is None:
                        cum = cumulative[id(weights)] = list(itertools.accumulate(weights))
                    chosen += rng.choices(templates, cum_weights=cum, k=k)
            rng.shuffle(chosen)
            offsets = sorted(rng.choices(seconds, k=n))
            prefixes = [
                time.strftime("%Y-%m-%dT%H:%M:", time.gmtime(window + 60 * m)) for m in range(WINDOW_SECS // 60)
            ]
            uuids = ids.uuid4_batch(2 * n)
            records = []
            for i, (off, tpl) in enumerate(zip(offsets, chosen, strict=True)):
                rec = tpl.copy()
                rec["eventTime"] = f"{prefixes[off // 60]}{off % 60:02d}Z"
                rid = tpl.get("requestID")
                if rid is not None:
                    rec["requestID"] = ids.s3_request_id() if rid == _S3 else uuids[2 * i + 1]
                rec["eventID"] = uuids[2 * i]
                records.append(rec)
            writer.cloudtrail(account, region, writer.delivery_time(window), records)
            done += n
            if progress is not None:
                progress(done)
