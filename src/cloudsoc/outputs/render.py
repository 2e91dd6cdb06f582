"""Alert → title and body text, through sandboxed Jinja2 templates (the built-in ones or the user's own).

Values inside an alert come from the events, i.e. from whoever made the API call: a user name can hold
``<!channel>``, ``<@all>``, a markdown link or image. Templates pass every such value through the ``v`` filter, which
escapes it for the message's markup *flavour* (``markdown`` for DingTalk/WeCom/Feishu, ``slack`` mrkdwn,
``text``, ``html``), puts it on one line and cuts it to a sane length. Titles are rendered ``plain`` and each
output escapes them for where they go.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

import jinja2
import msgspec
import orjson
from jinja2.sandbox import ImmutableSandboxedEnvironment

from cloudsoc.detect.alert import Alert, Severity
from cloudsoc.errors import ConfigError
from cloudsoc.event import lookup

FLAVOURS: Final = ("markdown", "slack", "text", "html")

SEVERITY_LABELS: Final = {
    "en": {s.value: s.value.upper() for s in Severity},
    "zh": {"informational": "提示", "low": "低危", "medium": "中危", "high": "高危", "critical": "严重"},
}
SEVERITY_ICONS: Final = {"informational": "⚪", "low": "🔵", "medium": "🟡", "high": "🟠", "critical": "🔴"}

LABELS: Final = {
    "en": {
        "severity": "Severity",
        "rule": "Rule",
        "group": "Group",
        "count": "Count",
        "first": "First event",
        "last": "Last event",
        "user": "User",
        "source_ip": "Source IP",
        "access_key": "AccessKey",
        "account": "Account",
        "region": "Region",
        "action": "Action",
        "tags": "Tags",
        "matched": "Matched",
        "events": "Events",
        "more": "more",
        "description": "Why it matters",
        "response": "What to do",
        "details": "Details",
        "alert_id": "Alert id",
    },
    "zh": {
        "severity": "级别",
        "rule": "规则",
        "group": "分组",
        "count": "次数",
        "first": "首次事件",
        "last": "最近事件",
        "user": "用户",
        "source_ip": "来源 IP",
        "access_key": "AccessKey",
        "account": "账号",
        "region": "地域",
        "action": "操作",
        "tags": "标签",
        "matched": "命中字段",
        "events": "事件 ID",
        "more": "条更多",
        "description": "风险说明",
        "response": "处置建议",
        "details": "详情",
        "alert_id": "告警 ID",
    },
}

# Alert fields with a Chinese twin (``<field>_zh``) that messages in Chinese show instead.
_LOCALISED: Final = ("rule_name", "description", "response")

# Facts about the first event worth a line in every message: (label key, ECS path).
_WHO: Final = (
    ("user", "user.name"),
    ("source_ip", "source.ip"),
    ("access_key", "cloudsoc.access_key_id"),
    ("account", "cloud.account.id"),
    ("region", "cloud.region"),
    ("action", "event.action"),
)

TITLES: Final = {
    "en": "[{{ severity | upper }}] {{ rule_name | v }}{% if group_key %} · {{ group_key | v }}{% endif %}"
    "{% if count > 1 %} ×{{ count }}{% endif %}",
    "zh": "【{{ severity_label }}】{{ rule_name | v }}{% if group_key %} · {{ group_key | v }}{% endif %}"
    "{% if count > 1 %} ×{{ count }}{% endif %}",
}

# Blank lines between paragraphs: DingTalk's markdown joins single-newline lines into one.
_MARKDOWN: Final = """\
{% for label, value in facts %}
**{{ label }}:** {{ value | v }}

{% endfor %}
{% if matched %}
**{{ L.matched }}:**

{% for m in matched[:20] %}
- {{ m.field | v }} = {{ m.value | v }}
{% endfor %}

{% endif %}
{% if event_ids %}
**{{ L.events }}:** {{ event_ids[:10] | map('v') | join(', ') }}{{ more(event_ids, 10) }}

{% endif %}
{% if text %}
**{{ L.details }}:** {{ text | v(1000) }}

{% endif %}
{% if description %}
**{{ L.description }}:** {{ description | v(2000) }}

{% endif %}
{% if response %}
**{{ L.response }}:** {{ response | v(2000) }}

{% endif %}
{{ L.alert_id }}: {{ id | v }}
"""

_SLACK: Final = """\
{% for label, value in facts %}
*{{ label }}:* {{ value | v }}
{% endfor %}
{% if matched %}
*{{ L.matched }}:*
{% for m in matched[:20] %}
• `{{ m.field | v }}` = {{ m.value | v }}
{% endfor %}
{% endif %}
{% if event_ids %}
*{{ L.events }}:* {{ event_ids[:10] | map('v') | join(', ') }}{{ more(event_ids, 10) }}

{% endif %}
{% if text %}
*{{ L.details }}:* {{ text | v(1000) }}
{% endif %}
{% if description %}
*{{ L.description }}:* {{ description | v(2000) }}
{% endif %}
{% if response %}
*{{ L.response }}:* {{ response | v(2000) }}
{% endif %}
{{ L.alert_id }}: `{{ id | v }}`
"""

_TEXT: Final = """\
{% for label, value in facts %}
{{ label }}: {{ value | v }}
{% endfor %}
{% if matched %}
{{ L.matched }}:
{% for m in matched[:50] %}
  - {{ m.field | v }} = {{ m.value | v }}
{% endfor %}
{% endif %}
{% if event_ids %}
{{ L.events }}: {{ event_ids[:20] | map('v') | join(', ') }}{{ more(event_ids, 20) }}

{% endif %}
{% if text %}
{{ L.details }}: {{ text | v(2000) }}
{% endif %}
{% if description %}

{{ L.description }}:
{{ description | v(4000) }}
{% endif %}
{% if response %}

{{ L.response }}:
{{ response | v(4000) }}
{% endif %}

{{ L.alert_id }}: {{ id | v }}
"""

_HTML: Final = """\
<html><body style="font-family: sans-serif">
<h3 style="color: {{ colour }}">{{ title }}</h3>
<table cellpadding="4" style="border-collapse: collapse">
{% for label, value in facts %}
<tr><th align="left">{{ label }}</th><td>{{ value | v }}</td></tr>
{% endfor %}
</table>
{% if matched %}
<p><b>{{ L.matched }}</b></p>
<ul>
{% for m in matched[:50] %}
<li><code>{{ m.field | v }}</code> = {{ m.value | v }}</li>
{% endfor %}
</ul>
{% endif %}
{% if event_ids %}
<p><b>{{ L.events }}:</b> {{ event_ids[:20] | map('v') | join(', ') }}{{ more(event_ids, 20) }}</p>
{% endif %}
{% if text %}<p><b>{{ L.details }}:</b> {{ text | v(2000) }}</p>{% endif %}
{% if description %}<p><b>{{ L.description }}:</b> {{ description | v(4000) }}</p>{% endif %}
{% if response %}<p><b>{{ L.response }}:</b> {{ response | v(4000) }}</p>{% endif %}
<p style="color: #888">{{ L.alert_id }}: {{ id | v }}</p>
</body></html>
"""

BODIES: Final = {"markdown": _MARKDOWN, "slack": _SLACK, "text": _TEXT, "html": _HTML}
COLOURS: Final = {
    "informational": "#808080",
    "low": "#1e6fd9",
    "medium": "#d9a400",
    "high": "#e8590c",
    "critical": "#c92a2a",
}

# Untrusted values cut to this many characters unless a template asks for more (``v(2000)``).
_VALUE_CHARS: Final = 256


def escape(value: object, flavour: str, limit: int = _VALUE_CHARS) -> str:
    """``value`` as one line of text safe inside ``flavour`` markup, at most ``limit`` characters."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, (dict, list, tuple)):
        text = orjson.dumps(value, default=str).decode()
    elif value is None:
        text = ""
    else:
        text = str(value)
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: max(limit - 1, 0)] + "…"
    if flavour == "slack":
        # Slack's required escapes; they also stop <!channel>/<@U…> mentions and <url|text> links.
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if flavour == "markdown":
        # "](" would make [text](url) a deceptive link, or ![](url) an image that reports who viewed the alert.
        text = text.replace("](", "] (")
    if flavour in ("markdown", "plain"):
        # Angle brackets start mentions (<@all>, <at user_id="all">) and HTML (<font>): use full-width ones.
        return text.replace("<", "＜").replace(">", "＞")
    return text


def local_time(value: str, zone: ZoneInfo) -> str:
    """An ISO time shown in ``zone`` with its offset, e.g. ``2024-05-01 08:00:00 UTC+08:00 (Asia/Shanghai)``."""
    if not value:
        return ""
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    local = when.astimezone(zone)
    offset = local.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    stamp = local.strftime("%Y-%m-%d %H:%M:%S")
    if minutes == 0 and zone.key in ("UTC", "Etc/UTC", "Etc/Zulu", "Zulu", "Universal"):
        return f"{stamp} UTC"
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return f"{stamp} UTC{sign}{hours:02d}:{mins:02d} ({zone.key})"


def clip_bytes(text: str, max_bytes: int, marker: str = "\n…") -> str:
    """``text`` cut (on a character boundary) so its UTF-8 form fits in ``max_bytes``, ending in ``marker``."""
    raw = text.encode()
    if len(raw) <= max_bytes:
        return text
    room = max_bytes - len(marker.encode())
    return raw[: max(room, 0)].decode("utf-8", errors="ignore") + marker


@jinja2.pass_context
def _v_filter(context: jinja2.runtime.Context, value: object, limit: int = _VALUE_CHARS) -> str:
    return escape(value, str(context.get("flavour", "text")), limit)


class Renderer:
    """Compiles one output's templates at start-up (a syntax error is a config error) and renders alerts."""

    def __init__(self, config: Any, flavour: str, *, where: str = "outputs") -> None:
        if flavour not in FLAVOURS:
            raise ValueError(f"unknown template flavour {flavour!r}")
        self.flavour = flavour
        self.language: str = getattr(config, "language", "en")
        self.zone = ZoneInfo(getattr(config, "timezone", "UTC"))
        self.where = where
        self._env = self._environment(autoescape=False)
        self._html_env = self._environment(autoescape=True)
        self._title = self.compile(getattr(config, "title_template", None) or TITLES[self.language], "title_template")
        self._body = self.compile(getattr(config, "template", None) or BODIES[flavour], "template")
        self._html: jinja2.Template | None = None
        if getattr(config, "html", False):
            html_source = getattr(config, "html_template", None)
            self._html = self.compile(html_source or _HTML, "html_template", html=True)

    @staticmethod
    def _environment(*, autoescape: bool) -> ImmutableSandboxedEnvironment:
        env = ImmutableSandboxedEnvironment(
            undefined=jinja2.ChainableUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            autoescape=autoescape,
        )
        env.filters["v"] = _v_filter
        return env

    def compile(self, source: str, option: str, *, html: bool = False) -> jinja2.Template:
        """A template of this output's environment; a syntax error names the option and line."""
        try:
            return (self._html_env if html else self._env).from_string(source)
        except jinja2.TemplateSyntaxError as exc:
            raise ConfigError(f"{self.where}.{option}: line {exc.lineno}: {exc.message}") from None

    def context(self, alert: Alert) -> dict[str, Any]:
        """What templates see: every alert field at top level and under ``alert``, plus ready-made pieces."""
        data: dict[str, Any] = msgspec.to_builtins(alert)
        # A Chinese message names and explains the rule in Chinese where the rule has the texts (the built-in
        # pack does); ``alert`` keeps both languages for templates that want them.
        chosen = {field: (self.language == "zh" and data.get(f"{field}_zh")) or data[field] for field in _LOCALISED}
        labels = LABELS[self.language]
        first_event: dict[str, Any] = alert.events[0] if alert.events else {}
        who = {key: lookup(first_event, path.split(".")) for key, path in _WHO}
        severity = alert.severity.value
        severity_label = SEVERITY_LABELS[self.language][severity]
        first = local_time(alert.first_time, self.zone)
        last = local_time(alert.last_time, self.zone)
        facts: list[tuple[str, object]] = [
            (labels["severity"], f"{SEVERITY_ICONS[severity]} {severity_label}"),
            (labels["rule"], f"{chosen['rule_name']} ({alert.rule_id})"),
        ]
        if alert.group_key:
            facts.append((labels["group"], alert.group_key))
        facts.append((labels["count"], alert.count))
        if first:
            facts.append((labels["first"], first))
        if last and last != first:
            facts.append((labels["last"], last))
        facts.extend((labels[key], who[key]) for key, _ in _WHO if who[key] not in (None, ""))
        if alert.tags:
            facts.append((labels["tags"], ", ".join(alert.tags)))
        return {
            **data,
            **chosen,
            "alert": data,
            "more": self._more,
            "severity_label": severity_label,
            "severity_icon": SEVERITY_ICONS[severity],
            "colour": COLOURS[severity],
            "first_time_local": first,
            "last_time_local": last,
            "created_local": local_time(alert.created, self.zone),
            "timezone": self.zone.key,
            "event": first_event,
            "who": who,
            "facts": facts,
            "L": labels,
            "language": self.language,
            "flavour": self.flavour,
        }

    def _more(self, items: list[Any], shown: int) -> str:
        hidden = len(items) - shown
        return f" (+{hidden} {LABELS[self.language]['more']})" if hidden > 0 else ""

    def title(self, context: dict[str, Any]) -> str:
        """The title on one line, unescaped (``plain``): the output escapes it for where it goes."""
        text = self.render(self._title, {**context, "flavour": "plain"})
        return " ".join(text.split())

    def body(self, context: dict[str, Any]) -> str:
        return self.render(self._body, context).strip() + "\n"

    def html(self, context: dict[str, Any], title: str) -> str | None:
        """The HTML body (e-mail with ``html: true``), or None."""
        if self._html is None:
            return None
        return self.render(self._html, {**context, "flavour": "html", "title": title})

    @staticmethod
    def render(template: jinja2.Template, context: dict[str, Any]) -> str:
        """Raises jinja2.TemplateError (incl. sandbox violations) or TypeError/ValueError on a bad template."""
        return template.render(context)
