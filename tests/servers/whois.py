"""A whois server (RFC 3912: one line in, the answer out, close) on 127.0.0.1 that answers from the raw registry
answers in ../shared/data/intel/whois-samples, and "No match" for any other name, as Verisign does."""

from __future__ import annotations

import socketserver
import threading
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "data" / "intel" / "whois-samples"


class _Handler(socketserver.StreamRequestHandler):
    server: WhoisServer

    def handle(self) -> None:
        query = self.rfile.readline().decode().strip().lower()
        self.server.queries.append(query)
        path = SAMPLES / "whois" / query
        answer = path.read_bytes() if path.is_file() else f'No match for "{query.upper()}".\r\n'.encode()
        self.wfile.write(answer)


class WhoisServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.queries: list[str] = []
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def address(self) -> str:
        """``host:port``, as `intel.whois.server` takes it."""
        host, port = self.server_address[:2]
        return f"{host!s}:{port}"

    def start(self) -> WhoisServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
