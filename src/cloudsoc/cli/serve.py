"""``cloudsoc serve``: the web console and HTTP API (uvicorn, 127.0.0.1:8080 by default)."""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path
from typing import Annotated

import typer

from cloudsoc.api.accounts import CONSOLE_FILE, ConsoleStore
from cloudsoc.cli.state import err, fail, home_for
from cloudsoc.config.models import Config
from cloudsoc.errors import CloudsocError

log = logging.getLogger("cloudsoc.console")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def prepare(home: Path, cfg: Config, host: str) -> None:
    """Before the console first listens: the first admin (its password shown once, here, on the terminal of
    whoever started it: never in a log or a file), and a warning when it would listen beyond loopback
    without TLS."""
    home.mkdir(parents=True, exist_ok=True)
    store = ConsoleStore(home / CONSOLE_FILE)
    try:
        password = store.ensure_admin()
    finally:
        store.close()
    if password is not None:
        err.print(
            f"[bold]First start: created console user [green]admin[/] with password[/] {password}\n"
            "  It is shown only this once. Change it with `cloudsoc users passwd admin`.",
            highlight=False,
        )
    if not _loopback(host) and not cfg.console.trusted_proxy:
        log.warning(
            "console: listening on %s without TLS: browsers keep the Secure session cookie only over https "
            "(or on localhost); put a TLS reverse proxy in front and set console.trusted_proxy",
            host,
        )


def serve(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Config file (console: section, home).")] = None,
    host: Annotated[str | None, typer.Option(help="Listen address (default: console.host, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (default: console.port, 8080).", min=1, max=65535)] = None,
) -> None:
    """Serve the web console and HTTP API. The first start creates user `admin` and prints its password once."""
    import uvicorn

    from cloudsoc.api.app import create_app

    try:
        home, cfg = home_for(config)
        cfg = cfg or Config()
        logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(message)s")
        prepare(home.path, cfg, host or cfg.console.host)
        app = create_app(home.path, cfg)
    except CloudsocError as exc:
        raise fail(exc) from None
    listen_host = host or cfg.console.host
    listen_port = port or cfg.console.port
    uvicorn.run(
        app,
        host=listen_host,
        port=listen_port,
        proxy_headers=cfg.console.trusted_proxy,
        forwarded_allow_ips="*" if cfg.console.trusted_proxy else None,
        server_header=False,
        log_level="info",
    )
