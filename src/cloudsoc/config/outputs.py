"""Typed configuration of alert outputs (``outputs.<name>`` in the config file), one model per output ``type``.

Secrets (robot URLs carry access tokens, signing secrets, SMTP passwords, header values) are ``SecretStr``, so a
printed or logged config shows ``**********``; write them as ``${ENV_NAME}`` in the file.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from cloudsoc.detect.alert import Severity

Language = Literal["en", "zh"]


def _http_url(value: SecretStr) -> SecretStr:
    # The message names the problem, never the URL: robot URLs carry their access token.
    parts = urlsplit(value.get_secret_value())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    return value


# A URL that may carry a token: validated as http(s) and never printed.
SecretUrl = Annotated[SecretStr, AfterValidator(_http_url)]


class _Output(BaseModel):
    """Options every output has: which alerts it takes, how they look, how hard to try."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_severity: Severity = Field(
        Severity.INFORMATIONAL,
        description="Only alerts of this severity or higher (informational, low, medium, high, critical).",
    )
    rules: list[str] = Field(
        default_factory=lambda: ["*"],
        description="Glob patterns of rule ids this output takes (default: all). An alert whose rule names this "
        "output in its own `outputs` is taken too; `[]` means only such alerts.",
    )
    title_template: str | None = Field(
        None, description="Jinja2 template of the title / subject (sandboxed). Unset: the built-in one."
    )
    template: str | None = Field(
        None, description="Jinja2 template of the message body (sandboxed). Unset: the built-in one."
    )
    language: Language = Field("en", description="Language of the built-in templates: `en` or `zh`.")
    timezone: str = Field(
        "UTC", description="IANA time zone in which times are shown, e.g. `Asia/Shanghai` (the offset is shown too)."
    )
    max_attempts: int = Field(
        10,
        ge=1,
        le=100,
        description="Delivery attempts before the alert is given up for this output (kept as failed). With the "
        "default back-off, 10 attempts span about 30 minutes.",
    )
    backoff_secs: float = Field(
        5.0, gt=0, description="Wait before the first retry; doubled after each failure (with ±20% jitter)."
    )
    max_backoff_secs: float = Field(600.0, gt=0, description="Upper bound of the wait between two attempts.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Asia/Shanghai)") from None
        return value


class _HttpOutput(_Output):
    timeout_secs: float = Field(10.0, gt=0, description="Timeout of one HTTP request (connect, send and read).")
    verify_tls: bool = Field(True, description="Verify the server's TLS certificate. Turn off only for tests.")


class WebhookOutputConfig(_HttpOutput):
    """Generic JSON webhook: the alert as JSON (or a template's output), optionally HMAC-signed."""

    type: Literal["webhook"] = Field(description="`webhook`: HTTP request with the alert as JSON.")
    url: SecretUrl = Field(description="Where to send (kept secret: URLs often carry tokens).")
    method: Literal["POST", "PUT", "PATCH"] = Field("POST", description="HTTP method.")
    headers: dict[str, SecretStr] = Field(
        default_factory=dict, description="Extra request headers (values kept secret, e.g. `Authorization`)."
    )
    body_template: str | None = Field(
        None,
        description="Jinja2 template of the request body; unset sends the alert as JSON. With a JSON content "
        "type the result must be valid JSON (use the `tojson` filter for values).",
    )
    secret: SecretStr | None = Field(
        None,
        description="HMAC key: adds `X-Cloudsoc-Timestamp` (unix seconds) and `X-Cloudsoc-Signature: sha256=<hex "
        "HMAC-SHA256(secret, timestamp + '.' + body)>`.",
    )


class DingtalkOutputConfig(_HttpOutput):
    """DingTalk group robot (钉钉自定义机器人)."""

    type: Literal["dingtalk"] = Field(description="`dingtalk`: DingTalk custom robot.")
    url: SecretUrl = Field(description="Robot webhook URL with its `access_token`.")
    secret: SecretStr | None = Field(
        None, description="The robot's signing secret (加签, `SEC...`); adds `timestamp` and `sign` to the URL."
    )
    msgtype: Literal["markdown", "text"] = Field("markdown", description="Message type.")
    at_mobiles: list[str] = Field(default_factory=list, description="Mobile numbers to @-mention.")
    at_all: bool = Field(False, description="@-mention everyone in the group.")


class WecomOutputConfig(_HttpOutput):
    """WeCom group robot (企业微信群机器人)."""

    type: Literal["wecom"] = Field(description="`wecom`: WeCom group robot.")
    url: SecretUrl = Field(description="Robot webhook URL with its `key`.")
    msgtype: Literal["markdown", "text"] = Field(
        "markdown", description="Message type; content is cut to the robot's limit (4096 bytes markdown, 2048 text)."
    )
    mentioned_mobiles: list[str] = Field(
        default_factory=list, description="Mobile numbers to @-mention (`text` messages only; `@all` for everyone)."
    )


class FeishuOutputConfig(_HttpOutput):
    """Feishu / Lark custom bot (飞书自定义机器人)."""

    type: Literal["feishu"] = Field(description="`feishu`: Feishu or Lark custom bot.")
    url: SecretUrl = Field(description="Bot webhook URL (`.../open-apis/bot/v2/hook/<id>`).")
    secret: SecretStr | None = Field(
        None, description="The bot's signature secret (签名校验); adds `timestamp` and `sign` to the body."
    )
    msgtype: Literal["interactive", "post", "text"] = Field(
        "interactive", description="`interactive` card coloured by severity, rich-text `post`, or plain `text`."
    )


class SlackOutputConfig(_HttpOutput):
    """Slack incoming webhook."""

    type: Literal["slack"] = Field(description="`slack`: Slack incoming webhook.")
    url: SecretUrl = Field(description="Incoming webhook URL (`https://hooks.slack.com/services/...`).")


class EmailOutputConfig(_Output):
    """E-mail over SMTP, with STARTTLS or implicit TLS; the title is the subject."""

    type: Literal["email"] = Field(description="`email`: SMTP.")
    smtp_host: str = Field(description="SMTP server host name.")
    smtp_port: int = Field(587, gt=0, lt=65536, description="SMTP port (587 submission, 465 implicit TLS, 25).")
    starttls: bool = Field(True, description="Upgrade the connection with STARTTLS; fail if the server cannot.")
    implicit_tls: bool = Field(False, description="TLS from the first byte (SMTPS, usually port 465).")
    username: str | None = Field(None, description="SMTP AUTH user name (needs TLS).")
    password: SecretStr | None = Field(None, description="SMTP AUTH password.")
    from_addr: str = Field(description="Sender address (`From:`).")
    to: list[str] = Field(min_length=1, description="Recipient addresses.")
    cc: list[str] = Field(default_factory=list, description="Copy recipient addresses.")
    html: bool = Field(False, description="Add an HTML part beside the plain-text body.")
    html_template: str | None = Field(
        None, description="Jinja2 template of the HTML part (autoescaped). Unset: the built-in one."
    )
    timeout_secs: float = Field(30.0, gt=0, description="Timeout of each SMTP network operation.")
    verify_tls: bool = Field(True, description="Verify the server's TLS certificate. Turn off only for tests.")

    @model_validator(mode="after")
    def _tls_for_auth(self) -> Self:
        if self.starttls and self.implicit_tls:
            raise ValueError("starttls and implicit_tls exclude each other: pick one")
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        if self.username is not None and not (self.starttls or self.implicit_tls):
            raise ValueError("SMTP AUTH without TLS would send the password in clear: set starttls or implicit_tls")
        return self


class ScriptOutputConfig(_Output):
    """A program run per alert with the alert JSON on stdin."""

    type: Literal["script"] = Field(description="`script`: run a program.")
    argv: list[str] = Field(min_length=1, description="Program and arguments (no shell).")
    timeout_secs: float = Field(30.0, gt=0, description="Kill the program (and its children) after this long.")
    env: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Environment of the program besides PATH, HOME, LANG, LC_ALL and TZ. cloudsoc's own "
        "environment (which holds its secrets) is not passed on.",
    )


OutputConfig = Annotated[
    WebhookOutputConfig
    | DingtalkOutputConfig
    | WecomOutputConfig
    | FeishuOutputConfig
    | SlackOutputConfig
    | EmailOutputConfig
    | ScriptOutputConfig,
    Field(discriminator="type"),
]
