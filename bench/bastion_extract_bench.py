"""Command extraction accuracy and speed: real commands typed into a real bash on a pseudo-terminal.

Corpus (seeded sample): NL2Bash one-liners (benign admin commands) and Atomic Red Team Linux tests (sh/bash
executors, `#{placeholders}` filled from their input_arguments defaults, one command per line). Kept: lines that
`bash -n` parses, with no tab (it would complete), no here-document (a second line) and no control characters.

Nothing typed runs. The shell is a real interactive bash (real readline: echo, wrapping, redraws), started with
`shopt -s extdebug; set -T; trap false DEBUG`: with extdebug, a DEBUG trap that fails makes bash skip the command
it was about to run, before any expansion or redirection, and `set -T` passes the trap into subshells, command
substitutions and pipelines. As a second fence it runs as `nobody` (setpriv) in an empty directory with
PATH=/nonexistent. Before measuring, canary commands (a plain one, a pipeline, a subshell, a command
substitution, a loop, a redirection) are typed and the run stops if any of their files appear.

Each command is written to the pty (as a fast typist would: the whole line, then Enter once the echo is quiet;
for a fifth of them again with one character left out and inserted after Left arrows, Enter from mid-line),
every byte both ways is fed to a CastWriter and a CommandExtractor, and the extracted command is compared with
the typed one (both stripped of surrounding blanks): exact-match accuracy per source, and the mismatches.
Throughput: the recorded output+input chunks are replayed through a fresh CommandExtractor (3 runs, best and
spread), for the typed session and for bulk output (a 1 MB file `cat` to the terminal by a normal bash).

Run: ``PYTHONPATH=src .venv/bin/python bench/bastion_extract_bench.py [--n 500]``; writes
bench/out/bastion_extract.json.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from cloudsoc.bastion.terminal import CommandExtractor

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.servers.pty_shell import PtyShell

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "bastion"
OUT = Path(__file__).resolve().parent / "out" / "bastion_extract.json"
PROMPT = "bench@web-01:\\w$ "
RC = f"""PS1='{PROMPT}'
set +o history
set +H
shopt -s extdebug
set -T
ulimit -t 20
trap false DEBUG
"""


def parses(line: str) -> bool:
    return subprocess.run(["bash", "-n"], input=line.encode(), capture_output=True, timeout=10).returncode == 0


def usable(line: str) -> bool:
    return bool(line.strip()) and not re.search(r"[\x00-\x1f\x7f]", line) and "<<" not in line.replace("<<<", "")


def nl2bash(rng: random.Random, n: int) -> list[str]:
    lines = [x for x in (DATA / "nl2bash" / "all.cm").read_text(errors="replace").splitlines() if usable(x)]
    rng.shuffle(lines)
    out: list[str] = []
    for line in lines:
        if len(out) == n:
            break
        if not line.rstrip().endswith("\\") and parses(line):
            out.append(line)
    return out


def atomic(rng: random.Random, n: int) -> list[str]:
    lines: list[str] = []
    for raw in (DATA / "atomic-red-team-linux" / "linux_atomic_commands.jsonl").read_bytes().splitlines():
        test = orjson.loads(raw)
        if test["executor"] not in ("sh", "bash"):
            continue
        command = test["command"]
        for name, arg in (test.get("input_arguments") or {}).items():
            default = arg.get("default") if isinstance(arg, dict) else arg
            command = command.replace("#{" + name + "}", str(default))
        for line in command.splitlines():
            if usable(line) and not line.lstrip().startswith("#") and not line.rstrip().endswith("\\"):
                lines.append(line)
    rng.shuffle(lines)
    return [x for x in lines if parses(x)][:n]


def harmless_bash(home: Path) -> PtyShell:
    (home / "rc").write_text(RC)
    os.chmod(home, 0o777)
    os.chmod(home / "rc", 0o644)
    argv = ["/bin/bash", "--noprofile", "--rcfile", str(home / "rc"), "-i"]
    if os.geteuid() == 0:
        argv = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv]
    shell = PtyShell(argv, home, env={"PATH": "/nonexistent", "HOME": str(home)}, width=80, height=24)
    shell.wait_for(b"$ ")
    shell.pump(quiet=0.1)
    return shell


class Tap:
    """Keeps every chunk with its direction, to replay the same session through the extractor for timing."""

    def __init__(self, shell: PtyShell) -> None:
        self.chunks: list[tuple[str, float, bytes]] = []
        feed, send = shell.feed_output, shell.send

        def tapped_feed(data: bytes) -> None:
            self.chunks.append(("o", shell.now(), data))
            feed(data)

        def tapped_send(keys: str | bytes) -> None:
            data = keys.encode() if isinstance(keys, str) else keys
            self.chunks.append(("i", shell.now(), data))
            send(data)

        shell.feed_output = tapped_feed  # type: ignore[method-assign]
        shell.send = tapped_send  # type: ignore[method-assign]


def run_one(shell: PtyShell, line: str, edit_at: int | None = None) -> str | None:
    """Type a line and Enter. With edit_at, the character there is left out, then put back after moving the
    cursor to it with Left arrows (readline redraws the rest, across wrapped rows), then Enter from mid-line."""
    before = len(shell.commands)
    if edit_at is None:
        shell.send(line)
    else:
        shell.send(line[:edit_at] + line[edit_at + 1 :])
        shell.pump(quiet=0.03, limit=5)
        shell.send("\x1b[D" * (len(line) - edit_at - 1))
        shell.pump(quiet=0.03, limit=5)
        shell.send(line[edit_at])
    shell.pump(quiet=0.03, limit=5)
    shell.send("\r")
    if not shell.wait_for(b"$ ", limit=3).endswith(b"$ "):
        # A skipped `while` condition counts as true, so a loop in a subshell (`... | while read`) spins with
        # nothing run inside: interrupt it (the command was already read at its line feed).
        shell.send(b"\x03")
        shell.wait_for(b"$ ", limit=5)
    shell.pump(quiet=0.02, limit=2)
    got = shell.commands[before:]
    return got[0].text if got else None


def canaries(shell: PtyShell, home: Path) -> list[str]:
    probes = {
        "plain": "touch c_plain",
        "pipe": "touch c_pipe | cat",
        "subshell": "(touch c_sub)",
        "cmdsubst": "echo $(touch c_subst)",
        "loop": "for i in 1; do touch c_loop; done",
        "redirect": "echo x > c_redirect",
        "absolute": "/usr/bin/touch c_abs",
    }
    for line in probes.values():
        run_one(shell, line)
    time.sleep(0.2)
    return sorted(p.name for p in home.iterdir() if p.name.startswith("c_"))


def throughput(chunks: list[tuple[str, float, bytes]], runs: int = 3) -> dict[str, float]:
    out_bytes = sum(len(d) for code, _, d in chunks if code == "o")
    repeat = max(1, int(1_500_000 / max(out_bytes, 1)))  # at least ~1.5 MB through the extractor per run
    rates = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(repeat):
            extractor = CommandExtractor(80, 24)
            for code, t, data in chunks:
                if code == "o":
                    extractor.output(t, data)
                else:
                    extractor.input(t, data)
        rates.append(out_bytes * repeat / (time.perf_counter() - start) / 1e6)
    return {
        "mb_per_s_best": round(max(rates), 2),
        "spread": round(max(rates) - min(rates), 2),
        "output_bytes": out_bytes,
        "passes_per_run": repeat,
    }


def bulk_chunks(tmp: Path) -> list[tuple[str, float, bytes]]:
    (tmp / "rc").write_text("PS1='$ '\n")
    big = tmp / "big.txt"
    text = (DATA / "nl2bash" / "all.cm").read_bytes()
    big.write_bytes((text * (1_000_000 // len(text) + 1))[:1_000_000])
    shell = PtyShell(["bash", "--noprofile", "--rcfile", str(tmp / "rc"), "-i"], tmp)
    tap = Tap(shell)
    shell.wait_for(b"$ ")
    shell.pump()
    shell.send(f"cat {big}; echo done-cat\r")
    shell.wait_for(b"done-cat\r\n$ ", limit=60)
    shell.close()
    return tap.chunks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="NL2Bash commands (Atomic Red Team: n/2, edited: n/5)")
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    plain = nl2bash(rng, args.n)
    corpus: list[tuple[str, str, int | None]] = [("nl2bash", c, None) for c in plain]
    corpus += [("atomic", c, None) for c in atomic(rng, args.n // 2)]
    # a fifth again, typed with a mid-line edit (Left arrows and an insert), Enter pressed from mid-line
    corpus += [("nl2bash-edited", c, rng.randrange(len(c))) for c in plain[: args.n // 5] if len(c) > 1]

    with tempfile.TemporaryDirectory() as tmpdir:
        os.chmod(tmpdir, 0o755)  # nobody's shell must be able to reach its home
        home = Path(tmpdir) / "home"
        home.mkdir()
        shell = harmless_bash(home)
        leaked = canaries(shell, home)
        if leaked:
            shell.close()
            sys.exit(f"refusing to run: canary commands ran despite the DEBUG trap: {leaked}")
        shell.commands.clear()
        tap = Tap(shell)
        results: dict[str, dict[str, int]] = {}
        mismatches: list[dict[str, str | None]] = []
        start = time.perf_counter()
        for source, line, edit_at in corpus:
            got = run_one(shell, line, edit_at)
            stats = results.setdefault(source, {"typed": 0, "exact": 0, "missing": 0})
            stats["typed"] += 1
            if got == line.strip():
                stats["exact"] += 1
            else:
                stats["missing"] += got is None
                mismatches.append({"source": source, "typed": line.strip(), "extracted": got})
        typing_secs = time.perf_counter() - start
        shell.close()
        session = throughput(tap.chunks)
        bulk = throughput(bulk_chunks(Path(tmpdir)))

    for stats in results.values():
        stats["accuracy_pct"] = round(100 * stats["exact"] / max(stats["typed"], 1), 2)  # type: ignore[assignment]
    total_typed = sum(s["typed"] for s in results.values())
    total_exact = sum(s["exact"] for s in results.values())
    report = {
        "corpus": {k: v for k, v in results.items()},
        "total": {
            "typed": total_typed,
            "exact": total_exact,
            "accuracy_pct": round(100 * total_exact / total_typed, 2),
        },
        "canaries_leaked": leaked,
        "typing_secs": round(typing_secs, 1),
        "throughput_session": session,
        "throughput_bulk_cat": bulk,
        "mismatches": mismatches[:50],
        "settings": {
            "n": args.n,
            "seed": args.seed,
            "shell": "bash "
            + subprocess.run(["bash", "-c", "echo $BASH_VERSION"], capture_output=True, text=True).stdout.strip(),
        },
    }
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    print(f"{'source':<16} {'typed':>6} {'exact':>6} {'accuracy':>9}")
    for source, stats in results.items():
        print(f"{source:<16} {stats['typed']:>6} {stats['exact']:>6} {stats['accuracy_pct']:>8}%")
    print(f"{'total':<16} {total_typed:>6} {total_exact:>6} {report['total']['accuracy_pct']:>8}%")  # type: ignore[index]
    print(
        f"extractor throughput: session mix {session['mb_per_s_best']} MB/s (spread {session['spread']}), "
        f"bulk cat {bulk['mb_per_s_best']} MB/s (spread {bulk['spread']})"
    )
    for m in mismatches[:10]:
        print(f"  typed    {m['typed']!r}\n  got      {m['extracted']!r}")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
