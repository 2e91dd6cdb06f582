"""What an SFTP session did, read from the proxied SFTP byte streams (draft-ietf-secsh-filexfer-02, version 3).

The bastion proxies the sftp subsystem as bytes (the upstream's sftp-server does the work); this parser only
watches both directions and reports file operations once the server answered: a file closed (path, bytes read
and written), removed, renamed, a directory made or removed. Pure: bytes in, operations out."""

from __future__ import annotations

import struct
from typing import Any

_OPEN, _CLOSE, _READ, _WRITE = 3, 4, 5, 6
_REMOVE, _MKDIR, _RMDIR, _RENAME = 13, 14, 15, 18
_STATUS, _HANDLE, _DATA = 101, 102, 103
_NAMES = {_REMOVE: "remove", _MKDIR: "mkdir", _RMDIR: "rmdir", _RENAME: "rename"}
_MAX_PACKET = 1 << 20


def _string(buf: bytes, pos: int) -> tuple[bytes, int]:
    (n,) = struct.unpack_from(">I", buf, pos)
    return buf[pos + 4 : pos + 4 + n], pos + 4 + n


class SftpMonitor:
    """Feed it the client's and the server's bytes; it returns finished operations as dicts."""

    def __init__(self) -> None:
        self._buf = {True: bytearray(), False: bytearray()}
        self._pending: dict[int, dict[str, Any]] = {}
        self._handles: dict[bytes, dict[str, Any]] = {}
        self.broken = False

    def client(self, data: bytes) -> list[dict[str, Any]]:
        return self._feed(True, data)

    def server(self, data: bytes) -> list[dict[str, Any]]:
        return self._feed(False, data)

    def _feed(self, from_client: bool, data: bytes) -> list[dict[str, Any]]:
        if self.broken:
            return []
        buf = self._buf[from_client]
        buf += data
        out: list[dict[str, Any]] = []
        while len(buf) >= 5:
            (size,) = struct.unpack_from(">I", buf, 0)
            if size > _MAX_PACKET or size < 1:
                # Not SFTP as we know it: stop watching rather than guess (the bytes still flow).
                self.broken = True
                return out
            if len(buf) < 4 + size:
                break
            packet = bytes(buf[4 : 4 + size])
            del buf[: 4 + size]
            try:
                if from_client:
                    self._request(packet)
                elif (op := self._response(packet)) is not None:
                    out.append(op)
            except (struct.error, IndexError):
                continue
        return out

    def _request(self, p: bytes) -> None:
        kind = p[0]
        if kind < _OPEN:
            return
        (rid,) = struct.unpack_from(">I", p, 1)
        if kind == _OPEN:
            path, pos = _string(p, 5)
            (flags,) = struct.unpack_from(">I", p, pos)
            self._pending[rid] = {"op": "open", "path": path.decode("utf-8", "replace"), "flags": flags}
        elif kind == _CLOSE:
            handle, _ = _string(p, 5)
            self._pending[rid] = {"op": "close", "handle": handle}
        elif kind == _READ:
            handle, _ = _string(p, 5)
            self._pending[rid] = {"op": "read", "handle": handle}
        elif kind == _WRITE:
            handle, pos = _string(p, 5)
            data, _ = _string(p, pos + 8)
            if handle in self._handles:
                self._handles[handle]["written"] += len(data)
        elif kind in (_REMOVE, _MKDIR, _RMDIR):
            path, _ = _string(p, 5)
            self._pending[rid] = {"op": _NAMES[kind], "path": path.decode("utf-8", "replace")}
        elif kind == _RENAME:
            old, pos = _string(p, 5)
            new, _ = _string(p, pos)
            self._pending[rid] = {
                "op": "rename",
                "path": old.decode("utf-8", "replace"),
                "target": new.decode("utf-8", "replace"),
            }

    def _response(self, p: bytes) -> dict[str, Any] | None:
        kind = p[0]
        if kind not in (_STATUS, _HANDLE, _DATA):
            if kind > _STATUS:
                (rid,) = struct.unpack_from(">I", p, 1)
                self._pending.pop(rid, None)
            return None
        (rid,) = struct.unpack_from(">I", p, 1)
        req = self._pending.pop(rid, None)
        if req is None:
            return None
        if kind == _HANDLE and req["op"] == "open":
            handle, _ = _string(p, 5)
            self._handles[handle] = {"path": req["path"], "flags": req["flags"], "read": 0, "written": 0}
            return None
        if kind == _DATA and req["op"] == "read":
            data, _ = _string(p, 5)
            if req["handle"] in self._handles:
                self._handles[req["handle"]]["read"] += len(data)
            return None
        if kind != _STATUS:
            return None
        (code,) = struct.unpack_from(">I", p, 5)
        ok = code == 0
        if req["op"] == "open" and not ok:
            return {"op": "open", "path": req["path"], "ok": False}
        if req["op"] == "close":
            f = self._handles.pop(req["handle"], None)
            if f is None:
                return None  # a directory handle
            direction = "upload" if f["flags"] & 0x2 else "download"
            return {"op": direction, "path": f["path"], "bytes": f["written"] or f["read"], "ok": ok}
        if req["op"] in ("remove", "mkdir", "rmdir", "rename"):
            return {**req, "ok": ok}
        return None
