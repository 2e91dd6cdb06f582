"""Commands held for review (the built-in ``history-clear`` group's action is ``review``), through the bastion to
Debian's sshd: the line waits for a reviewer, who decides from another connection to ``bastion.db`` (as
`cloudsoc bastion reviews` and the console do); approved it runs, rejected, cancelled or expired it never does, and
keys typed while it waits never reach the host."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time

import orjson
import pytest

from cloudsoc.bastion.reviews import ReviewQueue
from cloudsoc.errors import BastionError
from tests.bastion.conftest import Bastion, MakeBastion
from tests.bastion.test_through_bastion import Terminal, finish, shell

HELD = re.compile(rb"request ([0-9a-f]{8}):")


async def held(term: Terminal) -> str:
    """The id of the request the last typed line made (read from what the bastion printed since)."""
    deadline = time.monotonic() + 8
    while (found := HELD.search(term.received, term.mark)) is None or b"waiting up to" not in term.received[
        found.end() :
    ]:
        assert time.monotonic() < deadline, term.received[term.mark :]
        await term.settle(0.1)
    return found.group(1).decode()


async def cli(b: Bastion, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cloudsoc", "--home", str(b.home), "bastion", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    return out.decode()


def reviews(b: Bastion) -> list[tuple[str, str, str]]:
    """(outcome, review status, command) of the journalled command events that went through a review."""
    return [
        (d["event"]["outcome"], d["cloudsoc"]["bastion"]["review"]["status"], d["process"]["command_line"])
        for d in b.journal()
        if d["event"]["action"] in ("bastion-command", "bastion-exec") and "review" in d["cloudsoc"]["bastion"]
    ]


async def test_an_approved_command_runs_a_rejected_one_never_does(make_bastion: MakeBastion) -> None:
    b = await make_bastion()
    queue = ReviewQueue(b.home)  # the reviewer's own connection, as another process has
    conn, term = await shell(b)
    try:
        term.type("history -c; echo ran-$((6*7))\r")
        review_id = await held(term)
        (pending,) = queue.list(pending=True)
        assert (pending["id"], pending["command"], pending["user"], pending["target"]) == (
            review_id,
            "history -c; echo ran-$((6*7))",
            "alice",
            "web-01",
        )
        assert (pending["rule"], pending["command_group"], pending["status"]) == (
            "builtin-high-risk",
            "history-clear",
            "pending",
        )
        term.type("echo sneaked-$((2+2))\r")  # typed while waiting: dropped, not queued behind the held line
        await term.settle(0.8)
        assert b"ran-42" not in term.received
        with pytest.raises(BastionError, match="own command"):
            queue.decide(review_id, approve=True, by="alice")
        assert queue.decide(review_id, approve=True, by="bob", note="planned")["status"] == "approved"
        with pytest.raises(BastionError, match="already approved"):
            queue.decide(review_id, approve=False, by="carol")
        await term.until("ran-42")
        assert f"request {review_id} approved by bob".encode() in term.received
        await term.prompt()

        term.type("history -c; echo ran-$((7*7))\r")
        second = await held(term)
        # This time the reviewer uses the CLI, in a process of its own.
        listed = await cli(b, "reviews", "list", "--pending", "--json")
        assert [orjson.loads(line)["id"] for line in listed.splitlines()] == [second]
        said = await cli(b, "reviews", "reject", second, "--by", "bob", "--note", "not in a change window")
        assert f"request {second} rejected" in said and "will not run" in said
        await term.until("rejected by bob: not run")
        await term.prompt()
        term.type("echo after-$((5+5))\r")
        await term.until("after-10")
        await term.prompt()
        await finish(b, conn, term)
    finally:
        conn.close()
        queue.close()
    assert b"ran-49" not in term.received and b"sneaked-4" not in term.received
    assert reviews(b) == [
        ("unknown", "pending", "history -c; echo ran-$((6*7))"),
        ("success", "approved", "history -c; echo ran-$((6*7))"),
        ("unknown", "pending", "history -c; echo ran-$((7*7))"),
        ("failure", "rejected", "history -c; echo ran-$((7*7))"),
    ]
    decided = [d for d in b.journal() if d.get("cloudsoc", {}).get("bastion", {}).get("review", {}).get("by")]
    assert [
        (d["event"]["outcome"], d["cloudsoc"]["bastion"]["review"]["by"], d["cloudsoc"]["bastion"]["verdict"])
        for d in decided
    ] == [("success", "bob", "review"), ("failure", "bob", "review")]
    # Each links to the moment in the recording where the line was held.
    assert all(d["url"]["full"].startswith(f"/bastion/sessions/{d['session']['id']}?t=") for d in decided)


async def test_ctrl_c_cancels_and_nobody_deciding_in_time_expires(make_bastion: MakeBastion) -> None:
    b = await make_bastion(review_timeout_minutes=0.02)  # 1.2 s
    queue = ReviewQueue(b.home)
    conn, term = await shell(b)
    try:
        term.type("history -c; echo ran-$((8*8))\r")
        cancelled = await held(term)
        term.type("\x03")
        await term.until(f"request {cancelled} cancelled: not run")
        await term.prompt()
        started = time.monotonic()
        term.type("history -c; echo ran-$((9*9))\r")
        expired = await held(term)
        await term.until(f"request {expired} expired: not run", timeout=10)
        assert time.monotonic() - started >= 1.0
        await term.prompt()
        with pytest.raises(BastionError, match="already expired"):
            queue.decide(expired, approve=True, by="bob")
        await finish(b, conn, term)
    finally:
        conn.close()
    assert queue.get(cancelled)["status"] == "cancelled"  # type: ignore[index]
    assert queue.list(pending=True) == []
    queue.close()
    assert b"ran-64" not in term.received and b"ran-81" not in term.received
    assert [s for _o, s, _c in reviews(b)] == ["pending", "cancelled", "pending", "expired"]


async def test_an_exec_waits_for_its_review_before_it_starts(make_bastion: MakeBastion) -> None:
    b = await make_bastion()
    queue = ReviewQueue(b.home)
    conn = await b.connect("alice+web-01")
    try:
        proc = await conn.create_process("history -c; echo exec-$((3*3))", encoding=None)
        err = b""
        while not HELD.search(err):
            err += await asyncio.wait_for(proc.stderr.read(4096), 8)
        review_id = HELD.search(err).group(1).decode()  # type: ignore[union-attr]
        await asyncio.sleep(0.5)
        assert queue.get(review_id)["kind"] == "exec"  # type: ignore[index]
        queue.decide(review_id, approve=True, by="bob")
        out = await asyncio.wait_for(proc.stdout.read(), 10)
        await proc.wait_closed()
        assert out.strip() == b"exec-9"

        refused = await conn.create_process("history -c; echo exec-$((4*4))", encoding=None)
        err = b""
        while not HELD.search(err):
            err += await asyncio.wait_for(refused.stderr.read(4096), 8)
        queue.decide(HELD.search(err).group(1).decode(), approve=False, by="bob")  # type: ignore[union-attr]
        rest = await asyncio.wait_for(refused.stderr.read(), 10)
        await refused.wait_closed()
        assert b"command not run" in rest and refused.exit_status == 1
        assert await refused.stdout.read() == b""
    finally:
        conn.close()
        queue.close()
    assert [(o, s) for o, s, _c in reviews(b)] == [
        ("unknown", "pending"),
        ("success", "approved"),
        ("unknown", "pending"),
        ("failure", "rejected"),
    ]
