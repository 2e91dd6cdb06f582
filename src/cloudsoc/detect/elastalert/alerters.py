"""ElastAlert alerters (``alert:``) mapped onto cloudsoc output configs.

Each supported alerter becomes a plain dict of output config named ``<rule id>/<alerter>`` (``.2``, ``.3`` … for
a second URL or a second entry of the same alerter), shaped for :mod:`cloudsoc.config.outputs`, with
``rules: []`` so that it takes only the alerts of the rule that names it. ``post``/``post2`` payloads become a
Jinja2 ``body_template`` over the alert (field paths read ``alert.events[0]``, the first matching event).
Alerters cloudsoc has no output for are reported as warnings; the rule still runs and its alerts still reach
the configured outputs.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import jinja2
import jinja2.meta
import yaml

from cloudsoc.detect.elastalert.fields import base_name

SUPPORTED: Final = ("post", "post2", "email", "dingtalk", "command", "debug")
_DEFAULT_TIMEOUT_SECS: Final = 10.0
_MATCH = "_m"

Warn = Callable[[str], None]


class AlerterError(ValueError):
    """An alerter entry that cannot be mapped (a required option is missing or malformed)."""


def _literal(value: Any) -> str:
    """A Python/YAML value as a Jinja2 literal expression."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        # JSON has no infinities or NaN (YAML's .inf): they are sent as null.
        return repr(value) if math.isfinite(value) else "none"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_literal(str(k))}: {_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def _path(field: str) -> str:
    """The Jinja2 expression of a field of the first event; null when it is missing."""
    parts = base_name(field).split(".")
    return _MATCH + "".join(f"[{_literal(p)}]" for p in parts) + " | default(none)"


_PRELUDE: Final = f"{{%- set {_MATCH} = alert.events[0] if alert.events else {{}} -%}}\n"


def _object(entries: list[tuple[str, str]], all_values: bool) -> str:
    """``{{ <object> | tojson }}``: the first event's fields (``all_values``) overlaid with ``entries``, pairs of
    (key expression, value expression)."""
    literal = "{" + ", ".join(f"{key}: ({expr})" for key, expr in entries) + "}"
    if all_values:
        return f"{{{{ dict({_MATCH}, **{literal}) | tojson }}}}"
    return f"{{{{ {literal} | tojson }}}}"


def post_body(payload: Mapping[str, Any], static: Mapping[str, Any], all_values: bool) -> str:
    """``http_post_payload`` (key → field), ``http_post_static_payload`` and ``http_post_all_values``."""
    entries = [(_literal(str(k)), _literal(v)) for k, v in static.items()]
    entries += [(_literal(str(k)), _path(str(v))) for k, v in payload.items()]
    return _PRELUDE + _object(entries, all_values)


def _variables(source: str) -> set[str]:
    try:
        return set(jinja2.meta.find_undeclared_variables(jinja2.Environment().parse(source)))
    except jinja2.TemplateSyntaxError as exc:
        raise AlerterError(f"invalid Jinja2 template {source!r}: line {exc.lineno}: {exc.message}") from None


def post2_body(payload: Any, raw_fields: Mapping[str, Any], all_values: bool, root: str, warn: Warn) -> str:
    """``http_post2_payload`` (a Jinja2 template per value, rendered with the event's fields as variables)."""
    templated: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, str):
            if "{{" in node or "{%" in node:
                templated.append(node)
        elif isinstance(node, Mapping):
            for key, value in node.items():
                walk(str(key))
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(payload)
    names: set[str] = set()
    for source in templated:
        names |= _variables(source)
    names -= {"alert", _MATCH}
    lines = [_PRELUDE.rstrip("\n")]
    for name in sorted(names):
        value = f"{_MATCH}[{_literal(name)}]" if name != root else _MATCH
        lines.append(f"{{%- set {name} = {value} -%}}")
    if isinstance(payload, str):
        # A whole-body template: rendered as written (ElastAlert JSON-escapes string values first; we cannot).
        if all_values or raw_fields:
            warn("http_post2_payload is a template string: http_post2_all_values/raw_fields are not merged into it")
        return "\n".join(lines) + "\n" + payload
    captured: dict[str, str] = {}

    def expression(node: Any) -> str:
        if isinstance(node, str) and ("{{" in node or "{%" in node):
            name = f"_p{len(captured)}"
            captured[name] = node
            return name
        if isinstance(node, Mapping):
            return "{" + ", ".join(f"{expression(str(k))}: {expression(v)}" for k, v in node.items()) + "}"
        if isinstance(node, list):
            return "[" + ", ".join(expression(v) for v in node) + "]"
        return _literal(node)

    if payload is not None and not isinstance(payload, Mapping):
        raise AlerterError("http_post2_payload must be a mapping or a template string")
    # Keys may be templates too: they are rendered like values.
    entries = [(expression(str(k)), expression(v)) for k, v in (payload or {}).items()]
    entries += [(_literal(str(k)), _path(str(v))) for k, v in raw_fields.items()]
    for name, source in captured.items():
        lines.append(f"{{%- set {name} -%}}{source}{{%- endset -%}}")
    return "\n".join(lines) + "\n" + _object(entries, all_values)


def _strings(value: Any, option: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    raise AlerterError(f"{option} must be a string or a list of strings")


def _mapping(value: Any, option: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise AlerterError(f"{option} must be a mapping")
    return {str(k): v for k, v in value.items()}


def _headers(value: Any, option: str, warn: Warn) -> dict[str, str]:
    headers = {k: str(v) for k, v in _mapping(value, option).items()}
    templated = [k for k, v in headers.items() if "{{" in v or "{%" in v]
    if templated:
        warn(f"{option}: header templates are not supported, sent as written: {', '.join(templated)}")
    return headers


class AlerterMapper:
    """Turns a rule's ``alert`` list into named output configs (and warnings about what cannot be mapped)."""

    def __init__(
        self,
        rule_id: str,
        options: Mapping[str, Any],
        rule_dir: Path | None,
        warn: Warn,
        *,
        title_expr: str | None = None,
        text_expr: str | None = None,
    ) -> None:
        self.rule_id = rule_id
        self.options = options
        self.rule_dir = rule_dir
        self.warn = warn
        # Jinja2 expressions over the alert for the title and the message body of chat and e-mail outputs (set
        # when the rule has its own alert_subject / alert_text).
        self.title_expr = title_expr
        self.text_expr = text_expr
        self.outputs: dict[str, dict[str, Any]] = {}
        self._used: dict[str, int] = {}

    def map(self, alert: Any) -> dict[str, dict[str, Any]]:
        entries = alert if isinstance(alert, list) else [alert]
        for entry in entries:
            if isinstance(entry, str):
                name, overrides = entry, {}
            elif isinstance(entry, Mapping) and len(entry) == 1:
                name, raw = next(iter(entry.items()))
                overrides = _mapping(raw, f"alert.{name}")
            else:
                raise AlerterError("alert entries must be alerter names or {name: {options}}")
            config = {**self.options, **overrides}
            config = _resolve_references(config, config)
            handler = getattr(self, f"_{name}", None) if name in SUPPORTED else None
            if handler is None:
                self.warn(
                    f"alerter {name!r} is not supported (supported: {', '.join(SUPPORTED)}); "
                    "the rule's alerts go to the configured outputs only"
                )
                continue
            handler(config)
        return self.outputs

    def _add(self, alerter: str, config: dict[str, Any]) -> None:
        count = self._used.get(alerter, 0) + 1
        self._used[alerter] = count
        name = f"{self.rule_id}/{alerter}" if count == 1 else f"{self.rule_id}/{alerter}.{count}"
        config.setdefault("rules", [])
        if self.title_expr is not None and config["type"] != "webhook":
            config["title_template"] = f"{{{{ {self.title_expr} }}}}"
        self.outputs[name] = config

    def _ignored(self, config: Mapping[str, Any], options: tuple[str, ...], alerter: str) -> None:
        present = [o for o in options if config.get(o) not in (None, False, "", [], {})]
        if present:
            self.warn(f"{alerter}: option(s) not supported, ignored: {', '.join(present)}")

    def _timeout(self, value: Any, option: str) -> float:
        if value is None:
            return _DEFAULT_TIMEOUT_SECS
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise AlerterError(f"{option} must be a positive number of seconds")
        return float(value)

    def _debug(self, config: Mapping[str, Any]) -> None:
        # ElastAlert's debug alerter only logs; alerts are stored and listed here anyway.
        return

    def _post(self, config: Mapping[str, Any]) -> None:
        if "http_post_url" not in config:
            raise AlerterError("post needs http_post_url")
        urls = _strings(config["http_post_url"], "http_post_url")
        payload = _mapping(config.get("http_post_payload"), "http_post_payload")
        static = _mapping(config.get("http_post_static_payload"), "http_post_static_payload")
        all_values = bool(config.get("http_post_all_values", not payload))
        self._webhooks("post", config, urls, post_body(payload, static, all_values))

    def _post2(self, config: Mapping[str, Any]) -> None:
        if "http_post2_url" not in config:
            raise AlerterError("post2 needs http_post2_url")
        urls = _strings(config["http_post2_url"], "http_post2_url")
        payload = config.get("http_post2_payload") or {}
        raw_fields = _mapping(config.get("http_post2_raw_fields"), "http_post2_raw_fields")
        all_values = bool(config.get("http_post2_all_values", not payload))
        root = str(config.get("jinja_root_name", "_data"))
        self._webhooks("post2", config, urls, post2_body(payload, raw_fields, all_values, root, self.warn))

    def _webhooks(self, alerter: str, config: Mapping[str, Any], urls: list[str], body: str) -> None:
        """A webhook output per URL: ``post`` and ``post2`` differ in their body and share the HTTP options
        (``http_<alerter>_headers``, ``_timeout``, ``_ignore_ssl_errors``)."""
        prefix = f"http_{alerter}"
        headers = _headers(config.get(f"{prefix}_headers"), f"{prefix}_headers", self.warn)
        self._ignored(config, (f"{prefix}_proxy", f"{prefix}_ca_certs"), alerter)
        for url in urls:
            self._add(
                alerter,
                {
                    "type": "webhook",
                    "url": url,
                    "method": "POST",
                    "headers": headers,
                    "body_template": body,
                    "timeout_secs": self._timeout(config.get(f"{prefix}_timeout"), f"{prefix}_timeout"),
                    "verify_tls": not bool(config.get(f"{prefix}_ignore_ssl_errors", False)),
                },
            )

    def _email(self, config: Mapping[str, Any]) -> None:
        if "email" not in config:
            raise AlerterError("email needs email (the recipients)")
        domain = config.get("email_add_domain")

        def addresses(value: Any, option: str) -> list[str]:
            out = _strings(value, option)
            if domain:
                suffix = str(domain) if str(domain).startswith("@") else "@" + str(domain)
                out = [a if "@" in a else a + suffix for a in out]
            return out

        ssl = bool(config.get("smtp_ssl", False))
        port = config.get("smtp_port") or (465 if ssl else 25)
        if isinstance(port, bool) or not isinstance(port, int):
            raise AlerterError("smtp_port must be a port number")
        out: dict[str, Any] = {
            "type": "email",
            "smtp_host": str(config.get("smtp_host", "localhost")),
            "smtp_port": port,
            "implicit_tls": ssl,
            "starttls": False,
            "from_addr": str(config.get("from_addr", "elastalert@localhost")),
            "to": addresses(config["email"], "email"),
        }
        if config.get("cc"):
            out["cc"] = addresses(config["cc"], "cc")
        if config.get("smtp_auth_file"):
            user, password = self._account(str(config["smtp_auth_file"]))
            out["username"], out["password"] = user, password
            # Credentials never travel in clear: STARTTLS unless the connection is TLS from the start.
            out["starttls"] = not ssl
        if config.get("email_format") == "html":
            out["html"] = True
        if self.text_expr is not None:
            out["template"] = f"{{{{ {self.text_expr} }}}}"
        self._ignored(
            config,
            ("bcc", "email_reply_to", "email_from_field", "smtp_key_file", "smtp_cert_file", "email_image_keys"),
            "email",
        )
        self._add("email", out)

    def _account(self, option: str) -> tuple[str, str]:
        """user and password from ``smtp_auth_file`` (YAML, relative to the rule file). Never logged."""
        path = Path(option)
        if not path.is_absolute() and self.rule_dir is not None:
            path = self.rule_dir / path
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise AlerterError(f"smtp_auth_file {str(path)!r}: cannot read it ({type(exc).__name__})") from None
        except yaml.YAMLError:
            raise AlerterError(f"smtp_auth_file {str(path)!r}: not valid YAML") from None
        if not isinstance(data, Mapping) or "user" not in data or "password" not in data:
            raise AlerterError(f"smtp_auth_file {str(path)!r}: must have `user` and `password`")
        return str(data["user"]), str(data["password"])

    def _dingtalk(self, config: Mapping[str, Any]) -> None:
        token = config.get("dingtalk_access_token")
        if not token:
            raise AlerterError("dingtalk needs dingtalk_access_token")
        secret = config.get("dingtalk_sign")
        if config.get("dingtalk_security_type") == "sign" and not secret:
            raise AlerterError("dingtalk_security_type sign needs dingtalk_sign (the robot's secret)")
        msgtype = str(config.get("dingtalk_msgtype", "text"))
        if msgtype not in ("text", "markdown"):
            self.warn(f"dingtalk: msgtype {msgtype!r} is not supported, sent as markdown")
            msgtype = "markdown"
        out: dict[str, Any] = {
            "type": "dingtalk",
            "url": f"https://oapi.dingtalk.com/robot/send?access_token={quote(str(token), safe='')}",
            "secret": str(secret) if secret else None,
            "msgtype": msgtype,
        }
        if self.text_expr is not None:
            # Angle brackets would start @-mentions and HTML in DingTalk messages.
            out["template"] = f'{{{{ {self.text_expr} | replace("<", "＜") | replace(">", "＞") }}}}'
        self._ignored(
            config,
            ("dingtalk_proxy", "dingtalk_proxy_login", "dingtalk_single_url", "dingtalk_btns"),
            "dingtalk",
        )
        self._add("dingtalk", out)

    def _command(self, config: Mapping[str, Any]) -> None:
        command = config.get("command")
        if isinstance(command, str) and command:
            argv = ["/bin/sh", "-c", command]
        elif isinstance(command, list) and command:
            argv = [str(a) for a in command]
        else:
            raise AlerterError("command needs command (a list of arguments, or a shell string)")
        if any("%(" in a or re.search(r"\{[^{}]*\}", a) for a in argv):
            self.warn("command: placeholders like %(field)s in arguments are not filled in; the alert JSON is on stdin")
        if config.get("pipe_alert_text"):
            self.warn("command: pipe_alert_text is not supported; the alert JSON is on stdin")
        self._add("command", {"type": "script", "argv": argv, "timeout_secs": 30.0})


def _resolve_references(node: Any, options: Mapping[str, Any]) -> Any:
    """ElastAlert's ``$option$`` values: a string naming another top-level option of the rule."""
    if isinstance(node, Mapping):
        return {k: _resolve_references(v, options) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve_references(v, options) for v in node]
    if isinstance(node, str) and len(node) > 2 and node[0] == node[-1] == "$" and node[1:-1] in options:
        return options[node[1:-1]]
    return node
