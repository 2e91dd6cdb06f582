"""``create_app(home, config)``: the console's FastAPI app (pages, ``/api/v1``, ``/static``).

Routers are plain FastAPI ``APIRouter`` objects listed in :data:`ROUTERS`; each protects its routes with
``require(Permission.X)`` (:mod:`cloudsoc.api.auth`). docs/specs/console.md tells how to add one.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Final

from argon2 import PasswordHasher
from fastapi import APIRouter, FastAPI

from cloudsoc import __version__
from cloudsoc.api import (
    failures,
    pages,
    pages_admin,
    pages_alerts,
    pages_bastion,
    pages_graph,
    pages_health,
    pages_intel,
    pages_overview,
    pages_rules,
    pages_search,
)
from cloudsoc.api.accounts import CONSOLE_FILE, ConsoleStore
from cloudsoc.api.console import Console, NavItem
from cloudsoc.api.estate import Estate
from cloudsoc.api.middleware import SecurityMiddleware
from cloudsoc.api.permissions import Permission
from cloudsoc.api.routers import (
    alerts,
    audit,
    bastion,
    events,
    graph,
    health,
    ingest,
    intel,
    overview,
    rules,
    session,
    tokens,
    users,
)
from cloudsoc.api.static import StaticAssets
from cloudsoc.config.models import Config
from cloudsoc.home import Home

log = logging.getLogger("cloudsoc.console")

# The API routers, in the order they appear in the OpenAPI document.
ROUTERS: Final[tuple[APIRouter, ...]] = (
    session.router,
    users.router,
    tokens.router,
    audit.router,
    overview.router,
    events.router,
    graph.router,
    alerts.router,
    intel.router,
    rules.router,
    ingest.router,
    health.router,
    bastion.router,
)


def create_app(
    home: Path,
    config: Config | None = None,
    *,
    hasher: PasswordHasher | None = None,
    assets: StaticAssets | None = None,
) -> FastAPI:
    """The console app over the home directory ``home`` (its ``console.db`` holds users, sessions, tokens, audit).

    ``hasher``: argon2 parameters (tests pass cheap ones; the default is argon2-cffi's). ``assets``: where static
    files and the npm libraries are (default: the package's ``web/static`` and ``web/node_modules``)."""
    config = config or Config()
    app = FastAPI(
        title="cloudsoc console API",
        version=__version__,
        description="The HTTP API of the cloudsoc console. Authenticate with the session cookie (plus the "
        "X-CSRF-Token header on changes) or `Authorization: Bearer <API token>`.",
        docs_url=None,  # our own /api/docs page: FastAPI's loads Swagger UI from a CDN with an inline script
        redoc_url=None,
        openapi_url="/api/openapi.json",
        debug=False,
    )
    store = ConsoleStore(home / CONSOLE_FILE, hasher=hasher)
    static = assets or StaticAssets()
    console = Console(store, config.console, assets=static)
    app.state.console = console
    app.state.estate = Estate(Home(home, config))
    failures.install(app)
    app.add_middleware(SecurityMiddleware)
    missing = static.missing_vendor()
    if missing:
        log.warning(
            "console: front-end libraries missing (%s): charts, graphs and /api/docs will not render; "
            "install them with `make setup` or `npm ci --prefix src/cloudsoc/web --no-audit --no-fund`",
            ", ".join(missing),
        )
    app.include_router(static.router())
    app.include_router(pages.router)
    for module in (pages_overview, pages_search, pages_graph, pages_alerts, pages_rules, pages_intel, pages_health):
        app.include_router(module.router)
    for path, key in (
        ("/search", "nav.search"),
        ("/graph", "nav.graph"),
        ("/alerts", "nav.alerts"),
        ("/rules", "nav.rules"),
        ("/intel", "nav.intel"),
        ("/health", "nav.health"),
    ):
        console.nav.append(NavItem(path, key, Permission.READ))
    app.include_router(pages_bastion.router)
    console.nav.extend(pages_bastion.NAV)
    app.include_router(pages_admin.router)
    console.nav.extend(pages_admin.NAV)
    for router in ROUTERS:
        app.include_router(router)
    return app
