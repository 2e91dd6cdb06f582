"""The one small base class of alert outputs, and the error a failed delivery raises.

An output's ``name`` equals its module name and its config ``type:``; ``key`` is the name it was given under
``outputs:`` in the config. :meth:`Output.send` delivers one alert or raises :class:`DeliveryError`, whose message
never holds a secret: robot URLs carry their access token in the path or query, so only scheme and host are ever
shown, and every configured secret value is scrubbed from what a server or a library says back.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

import httpx
import jinja2
from pydantic import BaseModel, SecretStr

from cloudsoc.detect.alert import Alert
from cloudsoc.errors import CloudsocError
from cloudsoc.outputs.render import Renderer

# What a server says back is quoted in errors only this far: enough for its error code and message.
_REPLY_CHARS = 300


class OutputError(CloudsocError):
    """An alert output failed."""


class DeliveryError(OutputError):
    """One delivery attempt failed. ``retryable`` is False when trying again cannot help (bad token, rejected
    signature, template error); ``retry_after_secs`` is the server's own request to wait (HTTP 429)."""

    def __init__(self, message: str, *, retryable: bool = True, retry_after_secs: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after_secs = retry_after_secs


def redact_url(url: str | httpx.URL) -> str:
    """Scheme, host and port only: paths (Slack, Feishu) and queries (DingTalk, WeCom) carry tokens."""
    parts = urlsplit(str(url))
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    rest = "/…" if parts.path not in ("", "/") or parts.query else ""
    return f"{parts.scheme}://{host}{port}{rest}"


def _redact_httpx_record(record: logging.LogRecord) -> bool:
    # httpx logs every request with its full URL at INFO; with a robot URL that is the access token.
    if isinstance(record.args, tuple):
        record.args = tuple(redact_url(a) if isinstance(a, httpx.URL) else a for a in record.args)
    return True


if _redact_httpx_record not in logging.getLogger("httpx").filters:
    logging.getLogger("httpx").addFilter(_redact_httpx_record)


def _secret_values(value: object, out: set[str]) -> None:
    if isinstance(value, SecretStr):
        text = value.get_secret_value()
        out.add(text)
        # A token may surface on its own (a server echoing `key=...`): scrub URL parts that look like one.
        parts = urlsplit(text)
        if parts.scheme in ("http", "https"):
            out.update(v for _, v in parse_qsl(parts.query))
            out.update(seg for seg in parts.path.split("/") if len(seg) >= 8)
    elif isinstance(value, Mapping):
        for item in value.values():
            _secret_values(item, out)
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            _secret_values(getattr(value, name), out)


class Output:
    """Base of all outputs. Subclasses set ``name`` (= module name = config type) and implement :meth:`send`."""

    name: ClassVar[str] = ""
    # The template flavour of the built-in templates (see :class:`Renderer`).
    flavour: ClassVar[str] = "text"

    def __init__(self, key: str, config: Any, *, client: httpx.AsyncClient | None = None) -> None:
        self.key = key
        self.config = config
        self.renderer = Renderer(config, self.flavour_of(config), where=f"outputs.{key}")
        self._client = client
        self._own_client: httpx.AsyncClient | None = None
        found: set[str] = set()
        _secret_values(config, found)
        # Longest first, so a URL is scrubbed whole before its token would be.
        self._secrets = sorted((s for s in found if len(s) >= 4), key=len, reverse=True)

    @classmethod
    def flavour_of(cls, config: Any) -> str:
        """The markup flavour of this output's built-in templates for ``config`` (e.g. ``text`` for msgtype text)."""
        return cls.flavour

    @staticmethod
    def class_for(type_name: str) -> type[Output]:
        """The output class of a config ``type`` (built-ins and third-party entry points, via the registry)."""
        from cloudsoc.errors import PluginError
        from cloudsoc.plugins import Registry

        try:
            found = Registry("outputs").load(type_name)
        except PluginError as exc:
            raise OutputError(str(exc)) from None
        if not (isinstance(found, type) and issubclass(found, Output)):
            raise OutputError(f"output plugin {type_name!r} is not an Output class")
        return found

    @classmethod
    def build(cls, configs: Mapping[str, Any], client: httpx.AsyncClient | None = None) -> dict[str, Output]:
        """Outputs from the ``outputs:`` section (templates compiled now, so a bad one fails at start-up)."""
        return {key: cls.class_for(config.type)(key, config, client=client) for key, config in configs.items()}

    async def send(self, alert: Alert) -> None:
        """Deliver one alert; raise :class:`DeliveryError` when it did not arrive."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release what the output opened itself (not the shared HTTP client)."""
        if self._own_client is not None:
            await self._own_client.aclose()
            self._own_client = None

    def texts(self, alert: Alert) -> tuple[dict[str, Any], str, str]:
        """(template context, title, body) of ``alert``; a template that fails to render is not retried."""
        context = self.renderer.context(alert)
        try:
            title = self.renderer.title(context)
            return context, title, self.renderer.body({**context, "title": title})
        except (jinja2.TemplateError, TypeError, ValueError, ArithmeticError) as exc:
            raise self.fail(f"template error: {type(exc).__name__}: {exc}", retryable=False) from None

    def scrub(self, text: str) -> str:
        """``text`` with every configured secret value replaced by ``***``."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def fail(self, message: str, *, retryable: bool = True, retry_after_secs: float | None = None) -> DeliveryError:
        """The error to raise, naming this output, with secrets scrubbed."""
        return DeliveryError(
            self.scrub(f"output {self.key!r} ({self.name}): {message}"),
            retryable=retryable,
            retry_after_secs=retry_after_secs,
        )

    def _http(self) -> httpx.AsyncClient:
        # httpx verifies TLS per client, not per request: an output that must not verify gets a client of its own.
        if getattr(self.config, "verify_tls", True) and self._client is not None:
            return self._client
        if self._own_client is None:
            self._own_client = httpx.AsyncClient(verify=getattr(self.config, "verify_tls", True))
        return self._own_client

    async def request(
        self,
        url: str,
        *,
        content: bytes,
        method: str = "POST",
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """One HTTP request; a transport error or a non-2xx status becomes a :class:`DeliveryError` (retryable for
        timeouts, 408, 425, 429 and 5xx)."""
        where = redact_url(url)
        timeout = float(getattr(self.config, "timeout_secs", 10.0))
        # httpx's own params= replaces the URL's query, and with it a robot's access_token: merge instead.
        target = httpx.URL(url).copy_merge_params(dict(params)) if params else httpx.URL(url)
        try:
            response = await self._http().request(
                method, target, content=content, headers=dict(headers or {}), timeout=timeout
            )
        except httpx.TimeoutException:
            raise self.fail(f"{where}: no reply within {timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise self.fail(f"{where}: {type(exc).__name__}: {exc}") from None
        if 200 <= response.status_code < 300:
            return response
        status = response.status_code
        retryable = status in (408, 425, 429) or status >= 500
        raise self.fail(
            f"{where}: HTTP {status}: {self.reply_text(response)}",
            retryable=retryable,
            retry_after_secs=_retry_after(response.headers.get("retry-after")),
        )

    @staticmethod
    def reply_text(response: httpx.Response) -> str:
        """The start of a reply body, on one line, for an error message."""
        text = " ".join(response.text.split())
        return text[:_REPLY_CHARS] + ("…" if len(text) > _REPLY_CHARS else "") if text else "(empty reply)"

    def vendor_reply(self, response: httpx.Response, code_key: str, message_key: str) -> tuple[int, str]:
        """The (code, message) of a robot API's JSON reply (DingTalk/WeCom ``errcode``, Feishu ``code``)."""
        try:
            reply = response.json()
        except ValueError:
            raise self.fail(f"reply is not JSON: {self.reply_text(response)}") from None
        if not isinstance(reply, dict):
            raise self.fail(f"unexpected reply: {self.reply_text(response)}")
        code = reply.get(code_key, reply.get("StatusCode"))
        message = str(reply.get(message_key, reply.get("StatusMessage", "")))[:_REPLY_CHARS]
        if not isinstance(code, int):
            raise self.fail(f"reply has no {code_key}: {self.reply_text(response)}")
        return code, message


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
