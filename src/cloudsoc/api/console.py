"""What every router and page shares: the account store, config, throttle, templates and the audit call.

``create_app`` puts one :class:`Console` on ``app.state.console``; a route gets it with
``console: Console = Depends(get_console)``.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
from fastapi import Request, Response
from fastapi.responses import HTMLResponse

from cloudsoc.api.accounts import ConsoleStore, Session, User
from cloudsoc.api.permissions import Permission
from cloudsoc.api.static import StaticAssets
from cloudsoc.api.throttle import LoginThrottle
from cloudsoc.config.models import ConsoleConfig
from cloudsoc.errors import ConfigError, ConsoleError, NotAuthenticated, PermissionDenied
from cloudsoc.web.i18n import LANGUAGES, Catalog

if TYPE_CHECKING:
    from cloudsoc.api.auth import Principal

SESSION_COOKIE: Final = "cloudsoc_session"
LOGIN_CSRF_COOKIE: Final = "cloudsoc_login_csrf"
LANG_COOKIE: Final = "cloudsoc_lang"
TEMPLATES: Final = Path(__file__).resolve().parent.parent / "web" / "templates"


@dataclass(frozen=True, slots=True)
class NavItem:
    """A link in the page header, shown to users holding ``permission`` (None: every signed-in user)."""

    path: str
    label_key: str
    permission: Permission | None = None


class Console:
    """The console's shared state and helpers (one per app)."""

    def __init__(
        self,
        store: ConsoleStore,
        config: ConsoleConfig,
        *,
        catalog: Catalog | None = None,
        assets: StaticAssets | None = None,
    ) -> None:
        self.store = store
        self.assets = assets or StaticAssets()
        self.config = config
        self.catalog = catalog or Catalog()
        self.throttle = LoginThrottle(
            ip_max_failures=config.ip_max_failures,
            name_max_failures=config.login_max_failures,
            window=timedelta(minutes=config.lockout_minutes),
        )
        self.timezone = self._zone(config.timezone)
        # Pages add their link here when they register (see docs/specs/console.md).
        # The overview is the estate's: the auditor (no read) does not see its link.
        self.nav: list[NavItem] = [NavItem("/", "nav.overview", Permission.READ)]
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES),
            autoescape=True,  # every template, whatever its name: values from events and users are hostile
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.filters["localtime"] = self.local_time

    @staticmethod
    def _zone(name: str | None) -> ZoneInfo | None:
        if name is None:
            return None
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"console.timezone: unknown time zone {name!r} (use an IANA name)") from None

    @property
    def zone_name(self) -> str:
        if self.timezone is not None:
            return self.timezone.key
        return datetime.now().astimezone().tzname() or "local"

    def local_time(self, iso: str | None) -> str:
        """An ISO time as the console shows it: in its time zone, with the zone's abbreviation."""
        if not iso:
            return "-"
        try:
            t = datetime.fromisoformat(iso)
        except ValueError:
            return iso
        return t.astimezone(self.timezone).strftime("%Y-%m-%d %H:%M:%S %Z")

    # -- requests ----------------------------------------------------------------------------------------------

    def client_ip(self, request: Request) -> str:
        if self.config.trusted_proxy:
            forwarded = request.headers.get("x-forwarded-for", "")
            # The last hop is the one our own proxy added; earlier ones are whatever the client claimed.
            last = forwarded.rsplit(",", 1)[-1].strip()
            if last:
                return last
        return request.client.host if request.client else ""

    def audit(
        self,
        request: Request,
        principal: Principal | str,
        action: str,
        target: str = "",
        *,
        outcome: str = "success",
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Record one console action (``user.create``, ``alert.ack`` …) with who, from where and the outcome."""
        user = principal if isinstance(principal, str) else principal.user
        self.store.audit(user, action, target, ip=self.client_ip(request), outcome=outcome, detail=dict(detail or {}))

    # -- log-in ------------------------------------------------------------------------------------------------

    def login(self, request: Request, name: str, password: str) -> tuple[str, Session]:
        """Check a name and password, with throttling and lock-out; returns a new session (token, session).

        Every refusal is a :class:`NotAuthenticated` or a 429 whose message is the same whether the name exists."""
        now = self.store.clock()
        ip = self.client_ip(request)
        minutes = round(self.config.lockout_minutes)
        locked = ConsoleError(f"too many failed log-ins: try again in {minutes} minutes", status=429)
        if self.throttle.ip_blocked(ip, now):
            self.audit(request, name[:64], "login", outcome="throttled")
            raise ConsoleError("too many failed log-ins from your address: try again later", status=429)
        user = self.store.get_user(name)
        if (user is not None and user.locked(now)) or (user is None and self.throttle.name_locked(name, now)):
            self.audit(request, name[:64], "login", outcome="locked")
            raise locked
        checked = self.store.check_password(name, password)
        if checked is None or checked.disabled:
            reason = "disabled" if checked is not None else "bad_password" if user is not None else "unknown_user"
            self.throttle.failed(ip, None if user is not None else name, now)
            after: User | None = None
            if user is not None and checked is None:
                after = self.store.record_failure(
                    name, max_failures=self.config.login_max_failures, lockout=self.lockout
                )
            self.audit(request, name[:64], "login", outcome="failure", detail={"reason": reason})
            if after is not None and after.locked(now):
                self.audit(request, name, "user.lock", name, detail={"failures": after.failures})
                raise locked
            if user is None and self.throttle.name_locked(name, now):
                raise locked  # as a real account would answer at this point
            raise NotAuthenticated("invalid user name or password")
        self.store.record_login(name)
        token, session = self.store.create_session(
            name, ip=ip, user_agent=request.headers.get("user-agent", ""), lifetime=self.lifetime
        )
        self.audit(request, name, "login")
        return token, session

    @property
    def lifetime(self) -> timedelta:
        return timedelta(hours=self.config.session_hours)

    @property
    def idle(self) -> timedelta:
        return timedelta(minutes=self.config.idle_minutes)

    @property
    def lockout(self) -> timedelta:
        return timedelta(minutes=self.config.lockout_minutes)

    def set_session_cookie(self, response: Response, token: str) -> None:
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=int(self.lifetime.total_seconds()),
            path="/",
            secure=True,
            httponly=True,
            samesite="strict",
        )

    @staticmethod
    def clear_session_cookie(response: Response) -> None:
        response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict")

    # -- pages -------------------------------------------------------------------------------------------------

    def language(self, request: Request) -> str:
        return self.catalog.language(request.cookies.get(LANG_COOKIE), self.config.language)

    def render(
        self,
        request: Request,
        template: str,
        context: Mapping[str, Any] | None = None,
        *,
        principal: Principal | None = None,
        csrf_token: str | None = None,
        status: int = 200,
    ) -> HTMLResponse:
        """A page from ``web/templates``, with ``t()``, the user, the nav they may see and the CSRF token."""
        lang = self.language(request)
        nav = [
            item
            for item in self.nav
            if principal is not None and (item.permission is None or item.permission in principal.permissions)
        ]
        html = self.templates.get_template(template).render(
            {
                "t": self.catalog.translator(lang),
                "lang": lang,
                "languages": LANGUAGES,
                "principal": principal,
                "nav": nav,
                "path": request.url.path,
                # Where the language switch comes back to: the same page with its query (filters, a search).
                "here": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
                "csrf_token": csrf_token or (principal.csrf_token if principal is not None else None) or "",
                "zone": self.zone_name,
                **(context or {}),
            }
        )
        return HTMLResponse(html, status_code=status)

    @staticmethod
    def new_csrf_token() -> str:
        return secrets.token_urlsafe(32)


def get_console(request: Request) -> Console:
    """FastAPI dependency: the app's :class:`Console`."""
    console = getattr(request.app.state, "console", None)
    if not isinstance(console, Console):
        raise PermissionDenied("console not initialised")
    return console
