"""asciicast reading (every real cast in shared/data, broken ones included) and our gzip-member recordings."""

from __future__ import annotations

import base64
import gzip
import os
import pty
import shutil
from pathlib import Path

import orjson
import pyte
import pytest

from cloudsoc.bastion.asciicast import CastReader, CastWriter, index_path
from cloudsoc.bastion.replay import render
from cloudsoc.bastion.screen import TermScreen
from cloudsoc.errors import BastionError
from tests.conftest import SHARED_DATA

CASTS = SHARED_DATA / "bastion" / "asciicast"

# path: (version, events, skipped) — counted by hand from the files; the broken ones are broken on purpose
# (asciinema-server/PROVENANCE.md): one bad line each, skipped and counted, never a crash.
EXPECTED = {
    "asciinema-cli/demo.cast": (2, 39, 0),
    "asciinema-cli/demo.json": (1, 25, 0),
    "asciinema-cli/full-v1.json": (1, 3, 0),
    "asciinema-cli/full-v2.cast": (2, 5, 0),
    "asciinema-cli/full-v3.cast": (3, 5, 0),
    "asciinema-cli/minimal-v1.json": (1, 1, 0),
    "asciinema-cli/minimal-v2.cast": (2, 1, 0),
    "asciinema-cli/minimal-v3.cast": (3, 1, 0),
    "asciinema-cli/nulls-v1.json": (1, 1, 0),
    "asciinema-cli/nulls-v2.cast": (2, 1, 0),
    "asciinema-player/bold-inverse-indexed.cast": (3, 2, 0),
    "asciinema-player/cursor.cast": (3, 2, 0),
    "asciinema-player/input.cast": (2, 4, 0),
    "asciinema-player/keystroke-reel.cast": (2, 8, 0),
    "asciinema-player/long.cast": (2, 4, 0),
    "asciinema-player/loop.cast": (2, 3, 0),
    "asciinema-player/markers-input.cast": (2, 9, 0),
    "asciinema-player/markers.cast": (2, 6, 0),
    "asciinema-player/powerline-basic-symbols.cast": (3, 3, 0),
    "asciinema-player/powerline-extra-symbols.cast": (3, 3, 0),
    "asciinema-player/powerline-rounded-symbols.cast": (3, 3, 0),
    "asciinema-player/raster-symbol-groups.cast": (3, 2, 0),
    "asciinema-player/repeated-input.cast": (2, 4, 0),
    "asciinema-player/resizing.cast": (3, 6, 0),
    "asciinema-player/rgb.cast": (3, 4, 0),
    "asciinema-player/simple.cast": (2, 11, 0),
    "asciinema-player/special-group-input.cast": (2, 5, 0),
    "asciinema-player/text-group-input.cast": (2, 15, 0),
    "asciinema-player/text-layer.cast": (3, 2, 0),
    "asciinema-player/theme-256.cast": (3, 2, 0),
    "asciinema-player/theme.cast": (3, 66, 0),
    "asciinema-server/v1/full.json": (1, 3, 0),
    "asciinema-server/v1/invalid-data.json": (1, 2, 1),
    "asciinema-server/v1/invalid-time-1.json": (1, 2, 1),
    "asciinema-server/v1/invalid-time-2.json": (1, 2, 1),
    "asciinema-server/v1/minimal.json": (1, 3, 0),
    "asciinema-server/v1/screenshot.json": (1, 3, 0),
    "asciinema-server/v1/single-event.json": (1, 1, 0),
    "asciinema-server/v1/wrong-event-length.json": (1, 2, 1),
    "asciinema-server/v2/blank-lines.cast": (2, 3, 0),
    "asciinema-server/v2/broken.cast": (2, 2, 1),
    "asciinema-server/v2/empty-theme.cast": (2, 1, 0),
    "asciinema-server/v2/full.cast": (2, 5, 0),
    "asciinema-server/v2/int-time.cast": (2, 2, 0),
    "asciinema-server/v2/invalid-code.cast": (2, 1, 1),
    "asciinema-server/v2/invalid-data.cast": (2, 1, 1),
    "asciinema-server/v2/invalid-resize.cast": (2, 2, 1),
    "asciinema-server/v2/invalid-theme.cast": (2, 3, 0),
    "asciinema-server/v2/invalid-time-1.cast": (2, 1, 1),
    "asciinema-server/v2/invalid-time-2.cast": (2, 1, 1),
    "asciinema-server/v2/minimal.cast": (2, 3, 0),
    "asciinema-server/v2/no-events.cast": (2, 0, 0),
    "asciinema-server/v2/single-event.cast": (2, 1, 0),
    "asciinema-server/v2/wrong-event-length.cast": (2, 1, 1),
    "asciinema-server/v2/zero-time.cast": (2, 1, 0),
    "asciinema-server/v3/blank-lines-and-comments.cast": (3, 4, 0),
    "asciinema-server/v3/broken.cast": (3, 2, 1),
    "asciinema-server/v3/empty-theme.cast": (3, 1, 0),
    "asciinema-server/v3/full.cast": (3, 5, 0),
    "asciinema-server/v3/int-time.cast": (3, 2, 0),
    "asciinema-server/v3/invalid-code.cast": (3, 1, 1),
    "asciinema-server/v3/invalid-data.cast": (3, 1, 1),
    "asciinema-server/v3/invalid-resize.cast": (3, 2, 1),
    "asciinema-server/v3/invalid-time-1.cast": (3, 1, 1),
    "asciinema-server/v3/invalid-time-2.cast": (3, 1, 1),
    "asciinema-server/v3/minimal.cast": (3, 3, 0),
    "asciinema-server/v3/no-events.cast": (3, 0, 0),
    "asciinema-server/v3/single-event.cast": (3, 1, 0),
    "asciinema-server/v3/wrong-event-length.cast": (3, 1, 1),
    "asciinema-server/welcome.cast": (2, 786, 0),
    "asciinema-server/welcome.json": (1, 785, 0),
}
# Not casts we can play: no terminal size (v1/invalid.json), an unknown version, a screen-frames dump.
REFUSED = ["asciinema-server/v1/invalid.json", "asciinema-server/v5/asciicast.json", "asciinema-server/stdout.json"]


def test_every_shared_cast_is_listed() -> None:
    found = {str(p.relative_to(CASTS)) for p in CASTS.rglob("*") if p.suffix in (".cast", ".json")}
    assert found == set(EXPECTED) | set(REFUSED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_reads_shared_casts_and_counts_broken_lines(name: str) -> None:
    reader = CastReader(CASTS / name)
    events = list(reader)
    assert (reader.version, len(events), reader.skipped) == EXPECTED[name]
    assert all(e.time >= 0 for e in events)


@pytest.mark.parametrize("name", REFUSED)
def test_refuses_unplayable_files_with_a_bastion_error(name: str) -> None:
    with pytest.raises(BastionError):
        CastReader(CASTS / name)


def test_v3_relative_times_become_absolute() -> None:
    events = list(CastReader(CASTS / "asciinema-server/v3/minimal.cast"))
    assert [round(e.time, 6) for e in events] == [1.234567, 5.654321, 8.456789]
    v1 = list(CastReader(CASTS / "asciinema-cli/full-v1.json"))
    assert [round(e.time, 6) for e in v1] == [0.000001, 10.000001, 10.500001]
    assert "".join(e.data for e in v1) == "żółć\r\n"


def test_v1_and_v2_of_the_same_session_render_the_same_screen() -> None:
    screen = render(CASTS / "asciinema-server/welcome.cast")
    assert render(CASTS / "asciinema-server/welcome.json") == screen
    assert any(row.strip() for row in screen)


def _write_session(path: Path, chunk_secs: float = 1.0) -> CastWriter:
    writer = CastWriter(path, width=40, height=6, timestamp=1_700_000_000, title="t", chunk_secs=chunk_secs)
    for i in range(12):
        writer.output(i * 0.5, f"line {i} \x1b[31mred\x1b[0m\r\n".encode())
        writer.input(i * 0.5 + 0.1, b"k")
    return writer


def test_writer_makes_independent_gzip_members_and_an_index(tmp_path: Path) -> None:
    path = tmp_path / "s.cast.gz"
    summary = _write_session(path).close()
    assert summary.events == 24 and summary.duration == pytest.approx(5.6) and summary.bytes == path.stat().st_size
    idx = [orjson.loads(line) for line in index_path(path).read_bytes().splitlines()]
    assert index_path(path) == tmp_path / "s.idx"
    assert [e["t"] for e in idx] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    raw = path.read_bytes()
    for entry in idx:  # every member decompresses on its own, from its offset
        assert raw[entry["offset"] : entry["offset"] + 2] == b"\x1f\x8b"
        assert gzip.decompress(raw[entry["offset"] :]).count(b"\n") > 0
    lines = gzip.decompress(raw).splitlines()
    assert orjson.loads(lines[0]) == {"version": 2, "width": 40, "height": 6, "timestamp": 1_700_000_000, "title": "t"}
    assert len(lines) == 25


def test_asciinema_cat_accepts_what_we_write(tmp_path: Path) -> None:
    if shutil.which("asciinema") is None:
        pytest.skip("asciinema (Debian package) is not installed")
    path = tmp_path / "s.cast.gz"
    _write_session(path).close()
    plain = tmp_path / "s.cast"
    plain.write_bytes(gzip.decompress(path.read_bytes()))
    # asciinema cat opens /dev/tty, so it runs on a pseudo-terminal of its own
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.execvp("asciinema", ["asciinema", "cat", str(plain)])
    out = bytearray()
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, bytes(out)
    assert out.count(b"line ") == 12 and b"\x1b[31mred" in out


def test_utf8_split_across_chunks_is_decoded_whole(tmp_path: Path) -> None:
    path = tmp_path / "u.cast.gz"
    writer = CastWriter(path, width=20, height=2, timestamp=0)
    data = "你好 żółć".encode()
    for i in range(len(data)):  # one byte at a time: every multi-byte character is cut
        writer.output(i * 0.01, data[i : i + 1])
    writer.close()
    events = list(CastReader(path))
    assert "".join(e.data for e in events) == "你好 żółć"
    assert "\ufffd" not in "".join(e.data for e in events)


def test_input_is_masked_while_echo_is_off(tmp_path: Path) -> None:
    path = tmp_path / "m.cast.gz"
    writer = CastWriter(path, width=40, height=4, timestamp=0)
    writer.output(0.0, b"[sudo] password for alice: ")
    writer.input(0.1, b"hunter2\r")  # guessed from the prompt
    writer.output(0.2, b"\r\n$ ")
    writer.input(0.3, b"ls\r")
    writer.set_echo(False)  # told by the session
    writer.input(0.4, b"s3cret")
    writer.set_echo(None)
    writer.marker(0.5, "rejected: rm -rf /")
    writer.resize(0.6, 50, 5)
    writer.close()
    got = [(e.code, e.data) for e in CastReader(path)]
    assert ("i", "*******\r") in got and ("i", "ls\r") in got and ("i", "******") in got
    assert ("m", "rejected: rm -rf /") in got and ("r", "50x5") in got
    assert b"hunter2" not in gzip.decompress(path.read_bytes())


def test_a_crash_loses_at_most_the_open_member(tmp_path: Path) -> None:
    path = tmp_path / "c.cast.gz"
    _write_session(path).close()
    idx = [orjson.loads(line) for line in index_path(path).read_bytes().splitlines()]
    cut = tmp_path / "cut.cast.gz"
    shutil.copy(index_path(path), index_path(cut))
    # the bastion died 10 bytes into member 3 (a gzip header is 10 bytes: nothing of it is readable yet)
    cut.write_bytes(path.read_bytes()[: idx[3]["offset"] + 10])
    reader = CastReader(cut)
    events = list(reader)
    assert len(events) == 12 and reader.skipped == 0  # members 0-2: t < 3.0
    assert events[-1].time == pytest.approx(2.6)
    # cut in the middle of a member's deflate data: its whole lines survive, the torn one is counted
    cut.write_bytes(path.read_bytes()[: idx[4]["offset"] - 30])
    reader = CastReader(cut)
    events = list(reader)
    assert 12 <= len(events) < 16 and reader.skipped <= 1


def test_seek_starts_from_the_keyframe_and_renders_the_same_screen(tmp_path: Path) -> None:
    path = tmp_path / "k.cast.gz"
    writer = CastWriter(path, width=30, height=5, timestamp=0, chunk_secs=1.0)
    t = 0.0
    for i in range(40):
        t = i * 0.25
        writer.output(t, f"\x1b[1;3{i % 8}mrow {i}\x1b[0m\r\n".encode())
        if i == 20:
            writer.output(t, b"\x1b[?1049hFULL SCREEN\x1b[3;5Hvim")
        if i == 30:
            writer.output(t, b"\x1b[?1049l")
        if i == 25:
            writer.resize(t, 35, 6)
    writer.close()
    reader = CastReader(path)
    for until in (0.3, 2.6, 5.1, 6.0, 7.7, 9.9):
        screen = TermScreen(reader.width, reader.height)
        stream = pyte.Stream(screen)
        for event in CastReader(path):
            if event.time > until:
                break
            if event.code == "o":
                stream.feed(event.data)
            elif event.code == "r":
                w, h = event.data.split("x")
                screen.resize(lines=int(h), columns=int(w))
        assert render(path, until=until) == screen.rows(), until
        first = next(iter(reader.seek(until)))
        if until >= 1.0:
            assert first.time > 0  # started from a keyframe, not from the first byte


def test_unknown_bytes_do_not_crash_the_reader(tmp_path: Path) -> None:
    bad = tmp_path / "bad.cast"
    bad.write_bytes(b'{"version": 2, "width": 80, "height": 24}\n\xff\xfe[1, "o", "x"]\n[2, "o", "y"]\n')
    reader = CastReader(bad)
    assert [e.data for e in reader] == ["y"] and reader.skipped == 1


def test_floods_of_noise_and_of_text_round_trip_as_plain_gzip(tmp_path: Path) -> None:
    """`cat` of base64 noise (LZ barely shrinks it) and of a listing (it shrinks many times over): the same text
    back, a file `gunzip` reads as a v2 cast, noise coded near its entropy and text much smaller."""
    noise = base64.b64encode(os.urandom(600_000)).decode()  # ~800 KB of text LZ cannot shrink
    text = "\r\n".join(noise[i : i + 76] for i in range(0, len(noise), 76))
    path = tmp_path / "flood.cast.gz"
    writer = CastWriter(path, width=80, height=24, timestamp=1)
    writer.output(0.1, b"alice@web-01:~$ ")
    writer.output(0.5, text.encode())
    writer.output(0.6, b"\r\nalice@web-01:~$ ")
    writer.close()
    events = list(CastReader(path))
    assert "".join(e.data for e in events if e.code == "o") == "alice@web-01:~$ " + text + "\r\nalice@web-01:~$ "
    lines = gzip.decompress(path.read_bytes()).splitlines()
    assert orjson.loads(lines[0])["version"] == 2 and [orjson.loads(line)[2] for line in lines[1:]][1] == text
    # base64 carries 6 bits a character: coded near that, not stored (the JSON escapes add a little)
    assert path.stat().st_size < 0.8 * len(text)
    plain = tmp_path / "plain.cast.gz"
    w = CastWriter(plain, width=80, height=24, timestamp=1)
    w.output(0.5, ("drwxr-xr-x 2 root root 4096 Nov 27 05:17 apt\r\n" * 20_000).encode())
    w.close()
    assert len(index_path(plain).read_bytes().splitlines()) == 1
    assert plain.stat().st_size < 20_000
