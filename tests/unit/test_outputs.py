"""Alert outputs against real local servers that check each vendor's documented signature scheme, real SMTP
(STARTTLS, implicit TLS, AUTH) and real programs; config models and templates (Chinese, time zones, escaping)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr, TypeAdapter, ValidationError

from cloudsoc.config.outputs import (
    DingtalkOutputConfig,
    EmailOutputConfig,
    OutputConfig,
    ScriptOutputConfig,
    WebhookOutputConfig,
)
from cloudsoc.detect.alert import Alert, Matched
from cloudsoc.errors import ConfigError
from cloudsoc.outputs.base import DeliveryError, Output, redact_url
from cloudsoc.outputs.dingtalk import Dingtalk
from cloudsoc.outputs.email import Email
from cloudsoc.outputs.feishu import Feishu
from cloudsoc.outputs.render import clip_bytes, escape, local_time
from cloudsoc.outputs.script import Script
from cloudsoc.outputs.slack import Slack
from cloudsoc.outputs.webhook import Webhook
from cloudsoc.outputs.wecom import Wecom
from tests.servers import alerts
from tests.servers.smtp import SmtpServer, self_signed_cert
from tests.servers.vendors import VendorServer

ADAPTER: TypeAdapter[Any] = TypeAdapter(OutputConfig)

pytestmark = pytest.mark.skipif(not alerts.CLOUDAUDIT.is_dir(), reason="../shared/data not found")


def config(**options: Any) -> Any:
    return ADAPTER.validate_python(options)


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_cert(tmp_path_factory.mktemp("tls"))


def no_secret_in(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text, f"secret {secret[:6]}… leaked into: {text}"


# -- config ----------------------------------------------------------------------------------------------------------


def test_the_converter_shapes_validate() -> None:
    webhook = config(
        type="webhook",
        url="https://soc.example.com/hook?token=abc",
        method="POST",
        headers={"Authorization": "Bearer xyz"},
        body_template=None,
    )
    email = config(
        type="email",
        smtp_host="smtp.example.com",
        smtp_port=587,
        starttls=True,
        username="u",
        password="p",
        from_addr="soc@example.com",
        to=["a@example.com"],
    )
    ding = config(
        type="dingtalk", url="https://oapi.dingtalk.com/robot/send?access_token=t", secret=None, msgtype="text"
    )
    script = config(type="script", argv=["/bin/true"], timeout_secs=30)
    assert (
        isinstance(webhook, WebhookOutputConfig) and webhook.headers["Authorization"].get_secret_value() == "Bearer xyz"
    )
    assert isinstance(email, EmailOutputConfig) and email.smtp_port == 587 and email.starttls
    assert isinstance(ding, DingtalkOutputConfig) and ding.msgtype == "text" and ding.secret is None
    assert isinstance(script, ScriptOutputConfig) and script.timeout_secs == 30
    # Defaults shared by every output.
    assert webhook.rules == ["*"] and webhook.min_severity == "informational" and webhook.max_attempts == 10


def test_secrets_never_print() -> None:
    cfg = config(type="dingtalk", url="https://oapi.dingtalk.com/robot/send?access_token=tok123", secret="SECabc")
    shown = f"{cfg!r} {cfg} {cfg.model_dump()}"
    assert "tok123" not in shown and "SECabc" not in shown
    assert isinstance(cfg.url, SecretStr) and cfg.url.get_secret_value().endswith("tok123")


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"type": "slack", "url": "https://hooks.slack.com/x", "channel": "#soc"}, "extra_forbidden"),
        ({"type": "wecom", "url": "ftp://qyapi.weixin.qq.com/x?key=k"}, "http:// or https://"),
        ({"type": "feishu", "url": "https://open.feishu.cn/h", "timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"type": "webhook", "url": "https://x.example", "min_severity": "urgent"}, "enum"),
        ({"type": "script", "argv": []}, "too_short"),
        ({"type": "pager", "url": "https://x.example"}, "union_tag_invalid"),
        (
            {"type": "email", "smtp_host": "h", "from_addr": "a@b", "to": ["c@d"], "starttls": False,
             "username": "u", "password": "p"},
            "clear",
        ),
        ({"type": "email", "smtp_host": "h", "from_addr": "a@b", "to": ["c@d"], "implicit_tls": True}, "exclude"),
    ],
)  # fmt: skip
def test_invalid_configs_are_refused(options: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError) as exc:
        config(**options)
    errors = exc.value.errors(include_input=False)
    assert any(problem in e["type"] or problem in e["msg"] for e in errors), errors
    # What the loader shows (it drops inputs) never holds the URL or its token.
    assert "qyapi" not in json.dumps(errors, default=str)


# -- templates --------------------------------------------------------------------------------------------------------


def test_times_show_their_zone() -> None:
    from zoneinfo import ZoneInfo

    assert local_time("2018-07-19T16:47:23+00:00", ZoneInfo("UTC")) == "2018-07-19 16:47:23 UTC"
    assert (
        local_time("2018-07-19T16:47:23Z", ZoneInfo("Asia/Shanghai")) == "2018-07-20 00:47:23 UTC+08:00 (Asia/Shanghai)"
    )
    assert local_time("2018-07-19T16:47:23+00:00", ZoneInfo("America/New_York")).endswith(
        "UTC-04:00 (America/New_York)"
    )
    assert local_time("not a time", ZoneInfo("UTC")) == "not a time"


def test_chinese_default_template_in_shanghai_time() -> None:
    alert = alerts.aliyun_admin_granted()
    output = Dingtalk("ops", config(type="dingtalk", url="https://oapi.dingtalk.com/robot/send?access_token=t",
                                    language="zh", timezone="Asia/Shanghai"))  # fmt: skip
    message = output.message(alert)
    title, text = message["markdown"]["title"], message["markdown"]["text"]
    assert title == "【高危】授予了管理员权限"
    for expected in (
        "**级别:** 🟠 高危",
        "**规则:** 授予了管理员权限 (admin_privilege_granted.aliyun)",
        "**首次事件:** 2018-07-20 00:47:23 UTC+08:00 (Asia/Shanghai)",  # the event was 16:47:23 UTC
        "**用户:** root",
        "**来源 IP:** 65.205.72.122",
        "**命中字段:**",
        "- event.action = AttachPolicyToUser",
        "**事件 ID:** 3AD717A2-DC29-4C03-9F0E-2E9C8271D477",
        "**风险说明:** RAM 用户被授予 AdministratorAccess",
        "**处置建议:** 确认授权是否经过审批",
        f"告警 ID: {alert.id}",
    ):
        assert expected in text, expected


def test_chinese_messages_explain_builtin_rules_in_chinese() -> None:
    alert = alerts.builtin_admin_granted()
    assert alert.rule_name_zh and alert.description_zh and alert.response_zh
    url = "https://oapi.dingtalk.com/robot/send?access_token=t"
    zh = Dingtalk("ops", config(type="dingtalk", url=url, language="zh")).message(alert)["markdown"]
    assert zh["title"] == f"【高危】{alert.rule_name_zh} · {alert.group_key}"
    assert f"**规则:** {alert.rule_name_zh} (admin_privilege_granted.aliyun)" in zh["text"]
    assert f"**风险说明:** {alert.description_zh}" in zh["text"]
    assert f"**处置建议:** {alert.response_zh}" in zh["text"]
    assert alert.description not in zh["text"] and alert.response not in zh["text"]
    en = Dingtalk("ops", config(type="dingtalk", url=url)).message(alert)["markdown"]
    assert en["title"] == f"[HIGH] {alert.rule_name} · {alert.group_key}"
    assert "**Why it matters:** A user, group or role" in en["text"]
    assert alert.description_zh not in en["text"]


def test_english_default_shows_group_count_and_more_events() -> None:
    alert = alerts.discovery_burst()
    output = Slack("s", config(type="slack", url="https://hooks.slack.com/services/T/B/X"))
    message = output.message(alert)
    assert message["text"] == "[MEDIUM] Discovery burst from one access key · ASIA5FLZVX4OI4ZDQJOL ×30"
    body = message["blocks"][1]["text"]["text"]
    assert "*Group:* ASIA5FLZVX4OI4ZDQJOL" in body and "*Count:* 30" in body
    assert "*First event:* 2020-09-14 00:44:20 UTC" in body and "*Last event:* 2020-09-14 00:45:36 UTC" in body
    assert "(+20 more)" in body and "*Details:* 30 Describe calls" in body


def test_untrusted_values_cannot_mention_or_link() -> None:
    alert = alerts.root_login()
    alert.matched = [Matched("user.name", '<!channel> <@all> <at user_id="all"></at>\nline2')]
    slack = Slack("s", config(type="slack", url="https://hooks.slack.com/services/T/B/X")).message(alert)
    body = slack["blocks"][1]["text"]["text"]
    assert "&lt;!channel&gt; &lt;@all&gt;" in body and "<!channel>" not in body
    wecom = Wecom("w", config(type="wecom", url="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k")).message(
        alert
    )
    content = wecom["markdown"]["content"]
    assert "＜@all＞" in content and "<@all>" not in content and '<at user_id="all">' not in content
    assert "line2" in content and "\nline2" not in content  # a value cannot start a markdown line of its own
    alert.matched = [Matched("user.name", "[click me](http://evil.example) ![](http://evil.example/pixel.png)")]
    ding = Dingtalk("d", config(type="dingtalk", url="https://oapi.dingtalk.com/robot/send?access_token=t"))
    text = ding.message(alert)["markdown"]["text"]
    assert "[click me] (http://evil.example) ![] (http://evil.example/pixel.png)" in text and "](" not in text
    assert escape("a" * 300, "text") == "a" * 255 + "…"


def test_user_templates_and_their_errors() -> None:
    alert = alerts.root_login()
    custom = config(
        type="feishu",
        url="https://open.feishu.cn/open-apis/bot/v2/hook/x",
        msgtype="text",
        title_template="{{ rule_id }}/{{ severity }}",
        template="{{ who.source_ip }} {{ event.aws.cloudtrail.eventName }} {{ event.no.such.field }}"
        "|{{ first_time_local }}",
    )
    message = Feishu("f", custom).message(alert)
    assert (
        message["content"]["text"]
        == "root_account_used.aws/critical\n111.111.111.111 ConsoleLogin |2019-01-01 00:00:00 UTC\n"
    )
    with pytest.raises(ConfigError, match=r"outputs\.bad\.template: line 1: "):
        Slack("bad", config(type="slack", url="https://hooks.slack.com/services/T/B/X", template="{% for %}"))
    sandboxed = Slack("sb", config(type="slack", url="https://hooks.slack.com/services/T/B/X",
                                   template="{{ ''.__class__.__mro__[1].__subclasses__() }}"))  # fmt: skip
    with pytest.raises(DeliveryError, match="template error: SecurityError") as exc:
        sandboxed.message(alert)
    assert exc.value.retryable is False


def test_clip_bytes_keeps_utf8_whole() -> None:
    text = "告警" * 3000
    clipped = clip_bytes(text, 4096)
    assert len(clipped.encode()) <= 4096 and clipped.endswith("\n…")
    clipped.encode().decode("utf-8")  # no broken character
    assert clip_bytes("short", 10) == "short"


def test_redact_url_keeps_only_scheme_and_host() -> None:
    assert redact_url("https://oapi.dingtalk.com/robot/send?access_token=abc") == "https://oapi.dingtalk.com/…"
    assert redact_url("https://hooks.slack.com/services/T/B/secret") == "https://hooks.slack.com/…"
    assert redact_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080"
    assert redact_url("http://[::1]:9/x") == "http://[::1]:9/…"


def test_output_classes_follow_the_naming_rule() -> None:
    for type_name in ("webhook", "dingtalk", "wecom", "feishu", "slack", "email", "script"):
        cls = Output.class_for(type_name)
        assert cls.name == type_name and cls.__module__ == f"cloudsoc.outputs.{type_name}"


# -- HTTP outputs against the vendor server ---------------------------------------------------------------------------


async def test_webhook_signed_json(vendor: VendorServer, client: httpx.AsyncClient) -> None:
    alert = alerts.root_login()
    cfg = config(type="webhook", url=vendor.webhook_url, secret=vendor.webhook_secret, headers={"X-Team": "soc"})
    await Webhook("hook", cfg, client=client).send(alert)
    (got,) = vendor.received
    assert got.headers["X-Team"] == "soc" and got.headers["X-Cloudsoc-Alert-Id"] == alert.id
    assert got.headers["X-Cloudsoc-Signature"].startswith("sha256=")
    assert got.json["id"] == alert.id and got.json["severity"] == "critical"
    assert got.json["events"][0]["aws"]["cloudtrail"]["eventName"] == "ConsoleLogin"


async def test_webhook_bad_signature_is_refused_without_leaking(
    vendor: VendorServer, client: httpx.AsyncClient
) -> None:
    cfg = config(type="webhook", url=f"{vendor.webhook_url}?token=qs-token-123456", secret="wrong-secret-0000")
    with pytest.raises(DeliveryError) as exc:
        await Webhook("hook", cfg, client=client).send(alerts.root_login())
    assert vendor.rejected == [("webhook", "signature")] and not vendor.received
    message = str(exc.value)
    assert "HTTP 401" in message and "bad signature" in message and exc.value.retryable is False
    no_secret_in(message, "qs-token-123456", "wrong-secret-0000", "/hook")


async def test_webhook_body_template(vendor: VendorServer, client: httpx.AsyncClient) -> None:
    template = '{"msg_type": "text", "content": {"text": {{ title | tojson }}}, "ids": {{ event_ids | tojson }}}'
    cfg = config(type="webhook", url=vendor.webhook_url, secret=vendor.webhook_secret, body_template=template)
    alert = alerts.discovery_burst()
    await Webhook("hook", cfg, client=client).send(alert)
    assert vendor.received[0].json == {
        "msg_type": "text",
        "content": {"text": "[MEDIUM] Discovery burst from one access key · ASIA5FLZVX4OI4ZDQJOL ×30"},
        "ids": alert.event_ids,
    }
    broken = config(type="webhook", url=vendor.webhook_url, body_template="{{ title }}")
    with pytest.raises(DeliveryError, match="did not produce JSON") as exc:
        await Webhook("hook", broken, client=client).send(alert)
    assert exc.value.retryable is False and len(vendor.hits) == 1


@pytest.mark.parametrize("msgtype", ["markdown", "text"])
async def test_dingtalk_signed(vendor: VendorServer, client: httpx.AsyncClient, msgtype: str) -> None:
    cfg = config(type="dingtalk", url=vendor.dingtalk_url, secret=vendor.dingtalk_secret, msgtype=msgtype,
                 at_mobiles=["13800000000"])  # fmt: skip
    await Dingtalk("ding", cfg, client=client).send(alerts.root_login())
    (got,) = vendor.received
    assert set(got.query) == {"access_token", "timestamp", "sign"}
    message = got.json
    assert message["msgtype"] == msgtype and message["at"] == {"atMobiles": ["13800000000"], "isAtAll": False}
    text = message["markdown"]["text"] if msgtype == "markdown" else message["text"]["content"]
    assert "[CRITICAL] Root account used" in text and text.rstrip().endswith("@13800000000")


async def test_dingtalk_wrong_secret_gets_the_vendor_error(vendor: VendorServer, client: httpx.AsyncClient) -> None:
    cfg = config(type="dingtalk", url=vendor.dingtalk_url, secret="SECwrong-wrong-wrong")
    with pytest.raises(DeliveryError) as exc:
        await Dingtalk("ding", cfg, client=client).send(alerts.root_login())
    assert vendor.rejected == [("dingtalk", "sign")]
    assert "errcode 310000: sign not match" in str(exc.value) and exc.value.retryable is False
    no_secret_in(str(exc.value), vendor.dingtalk_token, "SECwrong-wrong-wrong")
    vendor.fail_next["dingtalk"] = [(200, b'{"errcode":130101,"errmsg":"send too fast, exceed 20 times per minute"}')]
    good = config(type="dingtalk", url=vendor.dingtalk_url, secret=vendor.dingtalk_secret)
    with pytest.raises(DeliveryError, match="130101") as exc:
        await Dingtalk("ding", good, client=client).send(alerts.root_login())
    assert exc.value.retryable is True


async def test_wecom_markdown_is_cut_to_4096_bytes(vendor: VendorServer, client: httpx.AsyncClient) -> None:
    alert = alerts.aliyun_admin_granted()
    alert.response = "确认授权是否经过审批。" * 400  # far beyond the robot's limit
    alert.matched = [Matched(f"field.{i}", "值" * 200) for i in range(40)]
    cfg = config(type="wecom", url=vendor.wecom_url, language="zh")
    await Wecom("wx", cfg, client=client).send(alert)
    content = vendor.received[0].json["markdown"]["content"]
    assert (
        content.startswith("### 【高危】授予了管理员权限") and len(content.encode()) <= 4096 and content.endswith("…")
    )
    bad = config(type="wecom", url=vendor.wecom_url.replace(vendor.wecom_key, "not-the-key-123456"))
    with pytest.raises(DeliveryError, match="errcode 93000") as exc:
        await Wecom("wx", bad, client=client).send(alert)
    no_secret_in(str(exc.value), "not-the-key-123456")


@pytest.mark.parametrize("msgtype", ["interactive", "post", "text"])
async def test_feishu_signed(vendor: VendorServer, client: httpx.AsyncClient, msgtype: str) -> None:
    cfg = config(type="feishu", url=vendor.feishu_url, secret=vendor.feishu_secret, msgtype=msgtype, language="zh")
    await Feishu("fs", cfg, client=client).send(alerts.root_login())
    message = vendor.received[0].json
    assert message["msg_type"] == msgtype and message["timestamp"].isdigit()
    if msgtype == "interactive":
        assert message["card"]["header"] == {
            "template": "red",
            "title": {"tag": "plain_text", "content": "【严重】Root account used"},
        }
        assert "**级别:** 🔴 严重" in message["card"]["elements"][0]["text"]["content"]
    elif msgtype == "post":
        post = message["content"]["post"]["zh_cn"]
        assert post["title"] == "【严重】Root account used" and post["content"][0][0]["text"] == "级别: 🔴 严重"


async def test_feishu_wrong_secret_gets_19021(vendor: VendorServer, client: httpx.AsyncClient) -> None:
    cfg = config(type="feishu", url=vendor.feishu_url, secret="wrong-feishu-secret")
    with pytest.raises(DeliveryError, match="code 19021: sign match fail") as exc:
        await Feishu("fs", cfg, client=client).send(alerts.root_login())
    assert exc.value.retryable is False and vendor.rejected == [("feishu", "sign")]
    no_secret_in(str(exc.value), vendor.feishu_hook, "wrong-feishu-secret")


async def test_slack_blocks_and_errors(vendor: VendorServer, client: httpx.AsyncClient) -> None:
    alert = alerts.discovery_burst()
    alert.matched = [Matched(f"field.{i}", "x" * 250) for i in range(20)]  # ~5 kB: more than one section block
    await Slack("sl", config(type="slack", url=vendor.slack_url), client=client).send(alert)
    blocks = vendor.received[0].json["blocks"]
    assert blocks[0]["type"] == "header" and len(blocks) >= 3
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks[1:])
    wrong = config(type="slack", url=f"{vendor.base}/services/T0/B0/guessed-token-abc")
    with pytest.raises(DeliveryError, match="HTTP 403: invalid_token") as exc:
        await Slack("sl", wrong, client=client).send(alert)
    assert exc.value.retryable is False
    no_secret_in(str(exc.value), "guessed-token-abc", "/services/")
    vendor.fail_next["slack"] = [(429, b"rate_limited")]
    with pytest.raises(DeliveryError, match="HTTP 429") as exc:
        await Slack("sl", config(type="slack", url=vendor.slack_url), client=client).send(alert)
    assert exc.value.retryable is True and exc.value.retry_after_secs == 0.0


async def test_unreachable_server_is_retryable(client: httpx.AsyncClient) -> None:
    from tests.servers.smtp import free_port

    url = f"http://127.0.0.1:{free_port()}/robot/send?access_token=tok-unreachable"
    with pytest.raises(DeliveryError, match="ConnectError") as exc:
        await Dingtalk("ding", config(type="dingtalk", url=url), client=client).send(alerts.root_login())
    assert exc.value.retryable is True
    no_secret_in(str(exc.value), "tok-unreachable")


# -- e-mail -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("implicit_tls", [False, True])
# aiosmtpd warns that its AUTH does not wait for STARTTLS; with implicit TLS there is nothing to wait for.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_email_over_tls_with_auth(cert: tuple[Path, Path], implicit_tls: bool) -> None:
    server = SmtpServer(*cert, implicit_tls=implicit_tls).start()
    try:
        cfg = config(type="email", smtp_host="127.0.0.1", smtp_port=server.port, starttls=not implicit_tls,
                     implicit_tls=implicit_tls, username=server.username, password=server.password,
                     from_addr="cloudsoc <soc@example.com>", to=["oncall@example.com"], cc=["lead@example.com"],
                     verify_tls=False, html=True, language="zh", timezone="Asia/Shanghai")  # fmt: skip
        alert = alerts.aliyun_admin_granted()
        await Email("mail", cfg).send(alert)
        (got,) = server.messages
    finally:
        server.stop()
    assert got.tls and got.authenticated and sorted(got.rcpt_tos) == ["lead@example.com", "oncall@example.com"]
    msg = got.message
    assert msg["Subject"] == "【高危】授予了管理员权限" and msg["X-Cloudsoc-Alert-Id"] == alert.id
    plain_part, html_part = msg.get_body(preferencelist=("plain",)), msg.get_body(preferencelist=("html",))
    assert plain_part is not None and html_part is not None
    plain, html = plain_part.get_content(), html_part.get_content()
    assert "首次事件: 2018-07-20 00:47:23 UTC+08:00 (Asia/Shanghai)" in plain and "处置建议:" in plain
    assert '<th align="left">来源 IP</th><td>65.205.72.122</td>' in html


async def test_email_failures(cert: tuple[Path, Path]) -> None:
    server = SmtpServer(*cert).start()
    try:
        base = dict(type="email", smtp_host="127.0.0.1", smtp_port=server.port, from_addr="soc@example.com",
                    to=["oncall@example.com"], username=server.username, timeout_secs=5)  # fmt: skip
        with pytest.raises(DeliveryError, match="authentication failed \\(535\\)") as exc:
            await Email("mail", config(**base, password="wrong-password-987", verify_tls=False)).send(
                alerts.root_login()
            )
        assert exc.value.retryable is False and server.rejected_logins == 1
        no_secret_in(str(exc.value), "wrong-password-987")
        # The self-signed certificate is not trusted unless verification is turned off.
        with pytest.raises(DeliveryError, match="TLS certificate not trusted") as exc:
            await Email("mail", config(**base, password=server.password)).send(alerts.root_login())
        assert exc.value.retryable is False and not server.messages
    finally:
        server.stop()


# -- script -----------------------------------------------------------------------------------------------------------


async def test_script_gets_the_alert_and_a_clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DINGTALK_SECRET", "process-secret-never-passed")
    out = tmp_path / "out.json"
    program = (
        "import json, os, sys; alert = json.load(sys.stdin); "
        f"json.dump({{'alert': alert, 'env': dict(os.environ)}}, open({str(out)!r}, 'w'))"
    )
    cfg = config(type="script", argv=[sys.executable, "-c", program], env={"TICKET_TOKEN": "tkt-0123456789"})
    alert = alerts.discovery_burst()
    await Script("run", cfg).send(alert)
    got = json.loads(out.read_text())
    assert got["alert"]["id"] == alert.id and got["alert"]["count"] == 30 and len(got["alert"]["events"]) == 20
    env = got["env"]
    assert env["TICKET_TOKEN"] == "tkt-0123456789" and env["CLOUDSOC_RULE_ID"] == "discovery_burst.aws"
    assert env["CLOUDSOC_SEVERITY"] == "medium" and env["CLOUDSOC_OUTPUT"] == "run"
    assert "DINGTALK_SECRET" not in env


async def test_script_failure_quotes_stderr_without_secrets() -> None:
    program = (
        "import os, sys; sys.stdin.read(); "
        "print('ticket API said no; token', os.environ['T'], file=sys.stderr); sys.exit(3)"
    )
    cfg = config(type="script", argv=[sys.executable, "-c", program], env={"T": "tkt-0123456789"})
    with pytest.raises(DeliveryError) as exc:
        await Script("run", cfg).send(alerts.root_login())
    message = str(exc.value)
    assert "exited with status 3; stderr: ticket API said no; token ***" in message and exc.value.retryable
    no_secret_in(message, "tkt-0123456789")


async def test_script_timeout_kills_it_and_its_children(tmp_path: Path) -> None:
    import time

    marker = tmp_path / "child-survived"
    child = tmp_path / "child.sh"
    child.write_text(f"#!/bin/sh\nsleep 1.5\ntouch {marker}\n")
    script = tmp_path / "notify.sh"
    # A real shell script that starts a child (same process group) and hangs.
    script.write_text(f"#!/bin/sh\ncat >/dev/null\n/bin/sh {child} &\necho working >&2\nsleep 60\n")
    script.chmod(0o755)
    cfg = config(type="script", argv=[str(script)], timeout_secs=0.5)
    started = time.monotonic()
    with pytest.raises(DeliveryError, match=r"'notify.sh' still running after 0.5 s \(killed\); stderr: working"):
        await Script("run", cfg).send(alerts.root_login())
    assert time.monotonic() - started < 3
    time.sleep(1.5)
    assert not marker.exists()


async def test_script_that_cannot_start() -> None:
    cfg = config(type="script", argv=["/nonexistent/notify-tool"])
    with pytest.raises(DeliveryError, match="cannot run 'notify-tool'") as exc:
        await Script("run", cfg).send(alerts.root_login())
    assert exc.value.retryable is False


def test_alert_fields_reach_templates() -> None:
    alert: Alert = alerts.root_login()
    output = Webhook("hook", config(type="webhook", url="https://x.example/h", template="{{ alert.rule_kind }}"))
    context, _, body = output.texts(alert)
    assert body == "rule\n" and context["rule_id"] == "root_account_used.aws" and context["alert"]["count"] == 1
