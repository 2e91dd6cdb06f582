"""The console served beside other work (``cloudsoc run``, ``cloudsoc demo --serve``): uvicorn in a thread of its own.

The daemon's event loop stays the pipeline's: the console gets its own loop in its own thread, reads the stores
as ``cloudsoc serve`` does (the event store read-only, through its segment files), and stops when the daemon
stops. Uvicorn installs signal handlers only in the main thread, so SIGTERM/SIGINT stay the daemon's.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final

from cloudsoc.config.models import Config
from cloudsoc.errors import CloudsocError

if TYPE_CHECKING:
    from fastapi import FastAPI

_START_SECS: Final = 15.0


class ConsoleServer:
    """The console app on ``host:port`` in a background thread; :meth:`start` binds first, so a port in use is a
    clear error before anything else starts."""

    def __init__(
        self,
        home: Path,
        config: Config,
        *,
        host: str | None = None,
        port: int | None = None,
        app: FastAPI | None = None,
    ) -> None:
        """``port`` 0 takes a free one; ``app``: an app made already (tests), else the home's console."""
        self.home = home
        self.app = app
        self.config = config
        self.host = host or config.console.host
        self.port = config.console.port if port is None else port
        self._thread: threading.Thread | None = None
        self._server: object | None = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def start(self) -> str:
        """Bind, start serving, wait until it answers; returns the console's URL."""
        import uvicorn

        from cloudsoc.api.app import create_app

        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise CloudsocError(
                f"console: cannot listen on {self.host}:{self.port} ({exc.strerror}); set console.port, or start "
                "without the console (--no-console)"
            ) from None
        self.port = sock.getsockname()[1]
        cfg = self.config.console
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(self.home, self.config) if self.app is None else self.app,
                proxy_headers=cfg.trusted_proxy,
                forwarded_allow_ips="*" if cfg.trusted_proxy else None,
                server_header=False,
                log_level="warning",
            )
        )
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="cloudsoc-console", daemon=True)
        thread.start()
        deadline = time.monotonic() + _START_SECS
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        self._thread, self._server, self._socket = thread, server, sock
        if not server.started:
            self.stop()
            raise CloudsocError(f"console: did not start on {self.url} within {_START_SECS:.0f} s")
        return self.url

    def stop(self) -> bool:
        """Finish open requests (a few seconds at most) and close the socket; False if the server thread is still
        running after that (a request that does not end, e.g. a stream that outlived its client)."""
        server, thread = self._server, self._thread
        if server is not None:
            server.should_exit = True  # type: ignore[attr-defined]
        stopped = True
        if thread is not None:
            thread.join(10)
            stopped = not thread.is_alive()
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None
        return stopped
