"""The legacy SCP protocol monitor: files (path, size, direction) from the proxied streams, refusals as failures."""

from __future__ import annotations

from typing import Any

from cloudsoc.bastion.scplog import ScpMonitor


def feed(mon: ScpMonitor, steps: list[tuple[str, bytes]]) -> list[dict[str, Any]]:
    """Play a conversation a byte at a time, so every record and status crosses a read boundary."""
    out: list[dict[str, Any]] = []
    for side, data in steps:
        feed_side = mon.client if side == "client" else mon.server
        for i in range(len(data)):
            out += feed_side(data[i : i + 1])
    return out


def acked(source: str, records: list[bytes]) -> list[tuple[str, bytes]]:
    """The sink says it is ready, then answers each of the source's records (a file's data with its NUL) with ok."""
    sink = "server" if source == "client" else "client"
    steps = [(sink, b"\0")]
    for record in records:
        steps += [(source, record), (sink, b"\0")]
    return steps


def test_only_the_host_side_of_scp_is_watched() -> None:
    assert ScpMonitor.for_command("ls -t /tmp") is None
    assert ScpMonitor.for_command("scp -t") is None
    assert ScpMonitor.for_command("scp -t -f /x") is None
    assert ScpMonitor.for_command("scp 'unbalanced") is None
    up = ScpMonitor.for_command("/usr/bin/scp -t /srv/app.tar")
    assert up is not None and (up.direction, up.path, up.into_directory) == ("upload", "/srv/app.tar", False)
    many = ScpMonitor.for_command("scp -r -d -t -- /srv")
    assert many is not None and (many.path, many.into_directory) == ("/srv", True)
    renamed = ScpMonitor.for_command("scp -r -t /srv/new")
    assert renamed is not None and not renamed.into_directory
    down = ScpMonitor.for_command("scp -f '/var/log/my app.log'")
    assert down is not None and (down.direction, down.path) == ("download", "/var/log/my app.log")


def test_an_upload_is_reported_once_the_host_took_its_data() -> None:
    mon = ScpMonitor.for_command("scp -t /srv/app.tar")
    assert mon is not None
    data = bytes(range(256)) * 40  # binary, with newlines and NULs inside
    ops = feed(
        mon,
        [
            ("server", b"\0"),
            ("client", b"C0644 10240 app.tar\n"),
            ("server", b"\0"),
            ("client", data + b"\0"),
        ],
    )
    assert ops == []  # not before the host answered the data
    ops = feed(mon, [("server", b"\0")])
    assert ops == [{"op": "upload", "path": "/srv/app.tar", "name": "app.tar", "bytes": 10240, "ok": True}]


def test_a_refused_file_is_a_failure_and_the_next_one_is_still_read() -> None:
    mon = ScpMonitor.for_command("scp -d -t /srv")
    assert mon is not None
    ops = feed(
        mon,
        [
            ("server", b"\0"),
            ("client", b"C0644 5 secret.key\n"),
            ("server", b"\x01scp: /srv/secret.key: Permission denied\n"),
            ("client", b"C0600 3 ok.txt\n"),
            ("server", b"\0"),
            ("client", b"abc\0"),
            ("server", b"\0"),
        ],
    )
    assert ops == [
        {
            "op": "upload",
            "path": "/srv/secret.key",
            "name": "secret.key",
            "bytes": 5,
            "ok": False,
            "error": "scp: /srv/secret.key: Permission denied",
        },
        {"op": "upload", "path": "/srv/ok.txt", "name": "ok.txt", "bytes": 3, "ok": True},
    ]


def test_a_recursive_download_names_every_file_under_its_directory() -> None:
    mon = ScpMonitor.for_command("scp -r -p -f /etc/nginx")
    assert mon is not None
    records = [b"T1700000000 0 1700000000 0\n", b"D0755 0 nginx\n", b"C0644 4 nginx.conf\n", b"abcd\0"]
    records += [b"D0755 0 sites\n", b"C0644 2 default\n", b"xy\0", b"E\n", b"E\n"]
    ops = feed(mon, acked("server", records))
    assert [(o["path"], o["bytes"], o["ok"]) for o in ops] == [
        ("/etc/nginx/nginx.conf", 4, True),
        ("/etc/nginx/sites/default", 2, True),
    ]


def test_a_missing_file_and_a_stream_that_is_not_scp() -> None:
    mon = ScpMonitor.for_command("scp -f /nope")
    assert mon is not None
    ops = feed(mon, [("client", b"\0"), ("server", b"\x01scp: /nope: No such file or directory\n")])
    assert ops == [{"op": "download", "path": "/nope", "ok": False, "error": "scp: /nope: No such file or directory"}]
    odd = ScpMonitor.for_command("scp -f /x")
    assert odd is not None
    assert feed(odd, [("client", b"\0"), ("server", b"HELLO\n")]) == [] and odd.broken
    assert odd.server(b"C0644 1 x\n") == []  # once lost, it stays quiet


def test_a_recursive_upload_to_a_new_name_creates_the_directory_under_that_name() -> None:
    mon = ScpMonitor.for_command("scp -r -t /srv/site")
    assert mon is not None
    ops = feed(mon, acked("client", [b"D0755 0 build\n", b"C0644 1 index.html\n", b"<\0", b"E\n"]))
    assert [(o["path"], o["name"]) for o in ops] == [("/srv/site/index.html", "index.html")]
