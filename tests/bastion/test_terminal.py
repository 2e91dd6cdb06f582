"""Command extraction from real shells on a pseudo-terminal, and from a real recording in shared/data.

Each shell gets a clean rc with a known prompt and its history in tmp; the shell's own history file is the
independent record of what it ran, compared with what the extractor read off the screen."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cloudsoc.bastion.asciicast import CastReader
from cloudsoc.bastion.replay import render
from cloudsoc.bastion.terminal import Command, CommandExtractor
from tests.conftest import SHARED_DATA
from tests.servers.pty_shell import PtyShell

CASTS = SHARED_DATA / "bastion" / "asciicast"
UP, LEFT, RIGHT, BACKSPACE, CTRL_C, CTRL_R, ESC = "\x1b[A", "\x1b[D", "\x1b[C", "\x7f", "\x03", "\x12", "\x1b"


def replay_extract(path: Path) -> list[Command]:
    reader = CastReader(path)
    extractor = CommandExtractor(reader.width, reader.height)
    commands: list[Command] = []
    last = 0.0
    for event in reader:
        last = event.time
        if event.code == "o":
            commands += extractor.output(event.time, event.data.encode())
        elif event.code == "i":
            commands += extractor.input(event.time, event.data.encode())
        elif event.code == "r":
            w, h = event.data.split("x")
            extractor.resize(int(w), int(h))
    return commands + extractor.close(last)


def test_fish_recording_gives_the_command_run_not_the_suggestion_nor_vim_keys() -> None:
    # asciinema-cli/PROVENANCE.md: fish greys out `vim tests/vim.cast`, the user runs `vim`, types `:q` in vim.
    commands = replay_extract(CASTS / "asciinema-cli/demo.cast")
    assert [c.text for c in commands] == ["vim"]
    assert commands[0].prompt == "~/c/a/asciinema (develop ↩☡=) " and not commands[0].interrupted
    assert commands[0].time == pytest.approx(2.751713)


def bash(home: Path, record: Path | None = None, width: int = 80, chunk_secs: float = 10.0) -> PtyShell:
    (home / "src").mkdir(exist_ok=True)
    (home / "rc").write_text(
        f"PS1='alice@web-01:\\w$ '\nHISTFILE={home}/history\nHISTSIZE=1000\nPROMPT_COMMAND='history -a'\nset +H\n"
    )
    shell = PtyShell(
        ["bash", "--noprofile", "--rcfile", str(home / "rc"), "-i"],
        home,
        record=record,
        width=width,
        chunk_secs=chunk_secs,
    )
    shell.wait_for(b"$ ")
    shell.pump()
    return shell


def history(home: Path) -> list[str]:
    raw = (home / "history").read_bytes()
    # zsh "metafies" its history file: 0x83 then the byte xor 0x20 stands for a byte >= 0x83
    out, i = bytearray(), 0
    while i < len(raw):
        if raw[i] == 0x83 and i + 1 < len(raw):
            out.append(raw[i + 1] ^ 0x20)
            i += 2
        else:
            out.append(raw[i])
            i += 1
    return out.decode().splitlines()


def test_bash_session_commands_replay_and_seek(tmp_path: Path) -> None:
    path = tmp_path / "rec" / "s.cast.gz"
    home = tmp_path / "home"
    home.mkdir()
    shell = bash(home, record=path, chunk_secs=0.5)
    long_arg = "x" * 100  # the line wraps past 80 columns
    try:
        shell.type("echo one\r")
        shell.type("ech\thi\r")  # tab completes `echo ` (the only command starting so)
        shell.type(UP + "\r")  # history recall
        shell.type("echo half" + CTRL_C)  # interrupted, never run
        shell.type("echo abdx" + BACKSPACE + LEFT + "c\r")  # edits: echo abcd
        shell.type(CTRL_R + "one\r")  # reverse search recalls `echo one`
        mid_screen, mid_t = shell.extractor.screen.rows(), shell.now()
        shell.type("cd src\r")
        shell.type("vim -u NONE -N notes.txt\r", settle=0.5)
        shell.type("ihello" + ESC + ":wq\r", settle=0.5)  # keys inside vim: no commands
        shell.type(f"echo {long_arg}\r")
        shell.type("echo 你好世界\r")
        shell.type("echo 'a b'   |   tr a-z A-Z\r")
    finally:
        shell.close()
    texts = [c.text for c in shell.commands]
    assert texts == [
        "echo one",
        "echo hi",
        "echo hi",
        "echo half",
        "echo abcd",
        "echo one",
        "cd src",
        "vim -u NONE -N notes.txt",
        f"echo {long_arg}",
        "echo 你好世界",
        "echo 'a b'   |   tr a-z A-Z",
    ]
    assert [c.interrupted for c in shell.commands] == [False] * 3 + [True] + [False] * 7
    # what bash itself recorded as run: every command but the interrupted one, character for character
    assert history(home) == [c.text for c in shell.commands if not c.interrupted]
    assert (home / "src" / "notes.txt").read_text() == "hello\n"
    assert [c.cwd for c in shell.commands] == ["~"] * 7 + ["~/src"] * 4
    assert shell.commands[-1].prompt == "alice@web-01:~/src$ "
    times = [c.time for c in shell.commands]
    assert times == sorted(times)
    # the recording replays to the same screen, whole and from a keyframe in the middle
    final = shell.extractor.screen.rows()
    assert render(path) == final
    assert "ECHO 'A B'" not in "".join(final) and "A B" in final
    assert render(path, until=mid_t) == mid_screen
    assert len(CastReader(path).index()) > 3


def test_pending_is_the_line_being_typed(tmp_path: Path) -> None:
    shell = bash(tmp_path)
    try:
        shell.type("echo pend" + LEFT + LEFT + "X")
        assert shell.extractor.pending() == "echo peXnd"
        shell.type("\x15")  # Ctrl-U erases back from the cursor only
        assert shell.extractor.pending() == "nd"
        shell.type("\x05\x15")  # Ctrl-E, Ctrl-U: all of it
        assert shell.extractor.pending() == ""
        shell.type("less -X /etc/hostname\r", settle=0.4)
        shell.type("q", settle=0.3)
        shell.type("less /etc/passwd\r", settle=0.4)
        shell.pump_until(lambda: shell.extractor.pending() is None, limit=5)
        assert shell.extractor.pending() is None  # a full-screen program holds the terminal
        shell.type("/root\r", settle=0.3)
        shell.type("q", settle=0.3)
        shell.pump_until(lambda: shell.extractor.pending() == "", limit=5)
        assert shell.extractor.pending() == ""
        shell.type("true\r")
    finally:
        shell.close()
    assert [c.text for c in shell.commands] == ["less -X /etc/hostname", "less /etc/passwd", "true"]


def test_narrow_terminal_edit_across_wrapped_rows_and_resize(tmp_path: Path) -> None:
    shell = bash(tmp_path, width=30)
    line = "echo " + " ".join(f"w{i}" for i in range(20))  # ~3 rows at 30 columns
    try:
        shell.type(line + LEFT * 40 + "Z" + "\r")
        shell.resize(50, 24)
        shell.type("echo after-resize\r")
    finally:
        shell.close()
    edited = line[: len(line) - 40] + "Z" + line[len(line) - 40 :]
    assert [c.text for c in shell.commands] == [edited, "echo after-resize"]
    assert history(tmp_path) == [edited, "echo after-resize"]


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed (Debian package zsh)")
def test_zsh_session_matches_its_history(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / ".zshrc").write_text(
        "PROMPT='alice@web-01 %~ %% '\n"
        f"HISTFILE={tmp_path}/history\nSAVEHIST=1000\nHISTSIZE=1000\nsetopt INC_APPEND_HISTORY\n"
        "autoload -Uz compinit; compinit -u\n"
    )
    shell = PtyShell(["zsh", "-i"], tmp_path, env={"ZDOTDIR": str(tmp_path)})
    try:
        shell.wait_for(b"% ")
        shell.pump()
        edit = "echo abdx" + BACKSPACE + LEFT + "c\r"
        for keys in ["echo one\r", "ech\t hi\r", UP + "\r", "echo half" + CTRL_C, edit, "cd src\r", "echo 你好世界\r"]:
            shell.type(keys, settle=0.3)
    finally:
        shell.close()
    ran = [c.text for c in shell.commands if not c.interrupted]
    assert ran == history(tmp_path)
    assert ran[0] == "echo one" and ran[3:] == ["echo abcd", "cd src", "echo 你好世界"]
    assert [c.text for c in shell.commands if c.interrupted] == ["echo half"]
    assert shell.commands[-1].cwd == "~/src"


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed (Debian package fish)")
def test_fish_autosuggestion_only_when_accepted(tmp_path: Path) -> None:
    config = tmp_path / ".config" / "fish"
    config.mkdir(parents=True)
    (config / "config.fish").write_text(
        "function fish_prompt; echo -n 'alice@web-01 '(prompt_pwd)'> '; end\nset -g fish_greeting\n"
    )
    env = {"XDG_CONFIG_HOME": str(tmp_path / ".config"), "XDG_DATA_HOME": str(tmp_path / "data")}
    # A first start in an empty data directory sets fish generating completions from every man page in the
    # background (python3, ~15 s of CPU): it raced the typing, and once left fish deaf to SIGHUP at close.
    (tmp_path / "data" / "fish" / "generated_completions").mkdir(parents=True)
    shell = PtyShell(["fish", "-i"], tmp_path, env=env)
    try:
        shell.wait_for(b"> ")
        shell.pump(quiet=0.3)
        shell.type("echo one-two\r", settle=0.3)
        shell.type("echo o", settle=0.3)
        assert shell.extractor.pending() == "echo o"  # `ne-two` is greyed out, not typed
        shell.type("\r", settle=0.3)
        shell.type("echo on", settle=0.3)
        shell.type(RIGHT + "\r", settle=0.3)  # accepts the suggestion
        shell.type("ech\t", settle=1.0)  # fish computes completions slowly on a busy machine
        shell.type("zz\r", settle=0.3)
        shell.type("echo half" + CTRL_C, settle=0.3)
    finally:
        shell.close()
    ran = [line.removeprefix("- cmd: ") for line in (tmp_path / "data/fish/fish_history").read_text().splitlines()]
    # fish's own history keeps one entry per distinct command (the latest): compared as sets
    assert {c.text for c in shell.commands if not c.interrupted} == {x for x in ran if not x.startswith("  when:")}
    assert [(c.text, c.interrupted) for c in shell.commands] == [
        ("echo one-two", False),
        ("echo o", False),
        ("echo one-two", False),
        ("echo zz", False),
        ("echo half", True),
    ]


def test_osc7_cwd_and_a_secret_read_is_masked_and_not_a_command(tmp_path: Path) -> None:
    (tmp_path / "rc").write_text(
        'PS1=\'$ \'\nset +H\nPROMPT_COMMAND=\'printf "\\033]7;file://%s%s\\007" "$HOSTNAME" "$PWD"\'\n'
    )
    path = tmp_path / "s.cast.gz"
    shell = PtyShell(["bash", "--noprofile", "--rcfile", str(tmp_path / "rc"), "-i"], tmp_path, record=path)
    try:
        shell.wait_for(b"$ ")
        shell.pump()
        shell.type("cd /usr/share\r")
        shell.type("read -s -p 'Password: ' pw\r")
        shell.type("hunter2\r")
        shell.type('echo "${#pw}"\r')
    finally:
        shell.close()
    assert [(c.text, c.cwd) for c in shell.commands] == [
        ("cd /usr/share", str(tmp_path)),
        ("read -s -p 'Password: ' pw", "/usr/share"),
        ('echo "${#pw}"', "/usr/share"),
    ]
    events = list(CastReader(path))
    typed = "".join(e.data for e in events if e.code == "i")
    assert "hunter2" not in typed and "*******\r" in typed
    assert "7" in shell.extractor.screen.rows()  # bash did get the 7-character password


def test_lines_pasted_in_one_chunk_are_each_a_command(tmp_path: Path) -> None:
    shell = bash(tmp_path)
    try:
        shell.send("echo p1\recho p2\rfor i in 1 2; do echo $i; done\r")  # one write: a paste
        shell.pump(quiet=0.4)
        shell.type("echo after\r")
    finally:
        shell.close()
    assert [c.text for c in shell.commands] == ["echo p1", "echo p2", "for i in 1 2; do echo $i; done", "echo after"]
    assert history(tmp_path) == [c.text for c in shell.commands]
