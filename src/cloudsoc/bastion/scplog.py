"""What a legacy SCP transfer did (``scp -O``, or an old client), read from the proxied exec streams.

The old protocol runs ``scp -t PATH`` (files to the host) or ``scp -f PATH`` (files from it) on the host and talks
over stdin/stdout. The side that sends files (the source) writes a line per record — ``C<mode> <size> <name>`` a
file whose ``size`` bytes and a NUL status follow, ``D<mode> 0 <name>`` a directory entered, ``E`` one left,
``T…`` times — and the side that receives (the sink) answers each with one status: NUL for ok, or ``\\x01``/``\\x02``
and a message line for an error. A file is reported once the sink answered its data, like the SFTP monitor reports
an operation once the server answered. Pure: bytes in, operations out (the same shape as ``SftpMonitor``'s).
"""

from __future__ import annotations

import posixpath
import shlex
from typing import Any, Literal

Direction = Literal["upload", "download"]
_MAX_LINE = 8192  # a record line longer than this is not SCP: stop watching (the bytes still flow)
_SKIP = ("record", None)  # a D, E or T record: its status reports nothing


class ScpMonitor:
    """Feed it the client's and the server's bytes of one ``scp -t``/``scp -f`` exec; it returns finished files."""

    def __init__(self, direction: Direction, path: str, *, into_directory: bool) -> None:
        self.direction = direction
        self.path = path
        # A target named as a directory (-d, a trailing slash): files land inside it, else they take its name.
        self.into_directory = into_directory
        self.broken = False
        self._line = bytearray()
        self._remaining = -1  # bytes of file data still to come from the source; -1: reading a record line
        self._dirs: list[str] = []
        # What the sink's next statuses answer, oldest first: its first status says it is ready.
        self._waiting: list[tuple[str, dict[str, Any] | None]] = [("ready", None)]
        self._status = bytearray()  # the sink's error status being read (code byte, message, newline)

    @classmethod
    def for_command(cls, command: str) -> ScpMonitor | None:
        """A monitor for an exec command line that is the host side of a legacy SCP transfer; None otherwise."""
        try:
            argv = shlex.split(command)
        except ValueError:
            return None
        if not argv or posixpath.basename(argv[0]) != "scp":
            return None
        args = argv[1:]
        ended = args.index("--") if "--" in args else len(args)  # newer clients end the options with --
        flags = {a for a in args[:ended] if a.startswith("-")}
        paths = [a for a in args[:ended] if not a.startswith("-")] + args[ended + 1 :]
        if ("-t" in flags) == ("-f" in flags) or len(paths) != 1:
            return None
        path = paths[0]
        if "-t" in flags:
            into = "-d" in flags or path.endswith("/")
            return cls("upload", path, into_directory=into)
        return cls("download", path, into_directory=False)

    def client(self, data: bytes) -> list[dict[str, Any]]:
        return self._source(data) if self.direction == "upload" else self._sink(data)

    def server(self, data: bytes) -> list[dict[str, Any]]:
        return self._sink(data) if self.direction == "upload" else self._source(data)

    # -- the source's records ------------------------------------------------------------------------------

    def _source(self, data: bytes) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        pos = 0
        while pos < len(data) and not self.broken:
            if self._remaining > 0:
                step = min(self._remaining, len(data) - pos)
                self._remaining -= step
                pos += step
                continue
            if self._remaining == 0:  # the NUL after a file's data: the sink answers it
                self._remaining = -1
                pos += 1
                continue
            end = data.find(b"\n", pos)
            if end < 0:
                self._line += data[pos:]
                if len(self._line) > _MAX_LINE:
                    self.broken = True
                return out
            self._line += data[pos:end]
            pos = end + 1
            line = bytes(self._line)
            self._line.clear()
            out += self._record(line)
        return out

    def _record(self, line: bytes) -> list[dict[str, Any]]:
        kind, rest = line[:1], line[1:].decode("utf-8", "replace")
        if kind == b"C":
            parts = rest.split(" ", 2)
            if len(parts) != 3 or not parts[1].isdigit():
                self.broken = True
                return []
            size = int(parts[1])
            # ``name`` too: for ``scp -t DIR`` without -d the path is the directory (the host alone knows it is one).
            op = {"op": self.direction, "path": self._file_path(parts[2]), "name": parts[2], "bytes": size, "ok": True}
            self._waiting += [("header", op), ("data", op)]
            self._remaining = size
        elif kind == b"D":
            parts = rest.split(" ", 2)
            self._dirs.append(parts[2] if len(parts) == 3 else "")
            self._waiting.append(_SKIP)
        elif kind == b"E":
            if self._dirs:
                self._dirs.pop()
            self._waiting.append(_SKIP)
        elif kind == b"T":
            self._waiting.append(_SKIP)
        elif kind in (b"\x01", b"\x02"):
            # The source could not send something (no such file, permission denied): it says so in-line.
            return [{"op": self.direction, "path": self.path, "ok": False, "error": rest.strip()}]
        else:
            self.broken = True
        return []

    def _file_path(self, name: str) -> str:
        if self.direction == "download":
            # The source names files by basename; a recursive copy starts with the directory PATH itself.
            if not self._dirs:
                return self.path
            return posixpath.join(posixpath.dirname(self.path.rstrip("/")), *self._dirs, name)
        # Files and directories land inside PATH when it is a directory on the host, else they take its name.
        # Only the host knows which: -d or a trailing slash says so, otherwise PATH is read as the new name
        # (``scp -r dir host:new``); the record's own name stays in ``name``.
        if self.into_directory:
            return posixpath.join(self.path, *self._dirs, name)
        if self._dirs:
            return posixpath.join(self.path, *self._dirs[1:], name)
        return self.path

    # -- the sink's statuses -------------------------------------------------------------------------------

    def _sink(self, data: bytes) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for byte in data:
            if self.broken:
                break
            if self._status:
                if byte == 10:
                    out += self._answered(ok=False, message=self._status[1:].decode("utf-8", "replace"))
                    self._status.clear()
                elif len(self._status) < _MAX_LINE:
                    self._status.append(byte)
                continue
            if byte == 0:
                out += self._answered(ok=True, message="")
            elif byte in (1, 2):
                self._status.append(byte)
            else:
                self.broken = True  # not a status: no longer following the protocol
        return out

    def _answered(self, *, ok: bool, message: str) -> list[dict[str, Any]]:
        if not self._waiting:
            return []
        stage, op = self._waiting.pop(0)
        if op is None:
            return []
        if not ok:
            if stage == "header":  # refused before any data: neither the data nor its status will come
                self._waiting = [w for w in self._waiting if w[1] is not op]
                self._remaining = -1
            return [{**op, "ok": False, "error": message.strip()}]
        return [op] if stage == "data" else []
