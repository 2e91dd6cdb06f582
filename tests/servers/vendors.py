"""A local HTTP server (127.0.0.1) that plays the robot APIs of DingTalk, WeCom, Feishu/Lark and Slack and a signed
generic webhook, checking each request the way the vendor documents it and answering with the vendor's replies.

The signature checks are written here from the vendors' documentation, independently of ``cloudsoc.outputs``
(nothing is imported from it), so a test passes only if the product signs exactly as documented:

- DingTalk (custom robot, 加签): ``sign = urlencode(base64(HMAC-SHA256(key=secret, msg=f"{ms}\\n{secret}")))``,
  ``timestamp`` (ms) and ``sign`` in the query; bad → ``{"errcode": 310000, "errmsg": "sign not match ..."}``.
- Feishu (custom bot, 签名校验): ``sign = base64(HMAC-SHA256(key=f"{secs}\\n{secret}", msg=b""))``, ``timestamp``
  (s, string) and ``sign`` in the JSON body; bad → ``{"code": 19021, "msg": "sign match fail ..."}``.
- WeCom group robot: no signature; ``key`` in the query; markdown content ≤ 4096 bytes, text ≤ 2048.
- Slack incoming webhook: no signature; the secret path; Block Kit limits.
- Generic webhook (cloudsoc's own scheme): ``X-Cloudsoc-Signature: sha256=<hex HMAC-SHA256(secret, ts + "." +
  body)>`` with ``X-Cloudsoc-Timestamp``; bad → HTTP 401.

Both DingTalk and Feishu refuse timestamps more than an hour away from their clock; so does this server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

ONE_HOUR_MS = 3_600_000


@dataclass
class Received:
    """One request that passed every check."""

    vendor: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class VendorServer:
    """Start with :meth:`start`, stop with :meth:`stop`; URLs from the ``*_url`` properties."""

    dingtalk_token: str = "dt-token-0123456789abcdef"
    dingtalk_secret: str | None = "SECdingtalk-secret-0123456789"
    wecom_key: str = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
    feishu_hook: str = "feishu-hook-0123456789abcdef"
    feishu_secret: str | None = "feishu-secret-0123456789"
    slack_path: str = "/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"
    webhook_secret: str | None = "webhook-secret-0123456789"
    received: list[Received] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    # Every request (accepted, rejected or scripted): (vendor, time.monotonic()).
    hits: list[tuple[str, float]] = field(default_factory=list)
    # vendor → scripted replies (status, body) given before any check, one per request.
    fail_next: dict[str, list[tuple[int, bytes]]] = field(default_factory=dict)
    delay_secs: float = 0.0
    port: int = 0
    _httpd: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def start(self) -> VendorServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                status, reply, ctype = server.handle(self.path, dict(self.headers.items()), body)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(reply)))
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(reply)

            do_PUT = do_POST

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    @property
    def base(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def dingtalk_url(self) -> str:
        return f"{self.base}/robot/send?access_token={self.dingtalk_token}"

    @property
    def wecom_url(self) -> str:
        return f"{self.base}/cgi-bin/webhook/send?key={self.wecom_key}"

    @property
    def feishu_url(self) -> str:
        return f"{self.base}/open-apis/bot/v2/hook/{self.feishu_hook}"

    @property
    def slack_url(self) -> str:
        return f"{self.base}{self.slack_path}"

    @property
    def webhook_url(self) -> str:
        return f"{self.base}/hook"

    def wait_for(self, count: int, timeout_secs: float = 5.0) -> list[Received]:
        """Block until ``count`` requests were accepted (or the timeout passes); returns them."""
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.received) >= count, timeout=timeout_secs)
            return list(self.received)

    # -- dispatch -------------------------------------------------------------------------------------------------

    def handle(self, raw_path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes, str]:
        if self.delay_secs:
            time.sleep(self.delay_secs)
        parts = urlsplit(raw_path)
        if parts.path == "/robot/send":
            vendor, check = "dingtalk", self._dingtalk
        elif parts.path == "/cgi-bin/webhook/send":
            vendor, check = "wecom", self._wecom
        elif parts.path.startswith("/open-apis/bot/v2/hook/"):
            vendor, check = "feishu", self._feishu
        elif parts.path.startswith("/services/"):
            vendor, check = "slack", self._slack
        elif parts.path == "/hook":
            vendor, check = "webhook", self._webhook
        else:
            return 404, b"not found", "text/plain"
        with self._lock:
            self.hits.append((vendor, time.monotonic()))
            scripted = self.fail_next.get(vendor)
            if scripted:
                status, reply = scripted.pop(0)
                return status, reply, "application/json" if reply.startswith(b"{") else "text/plain"
        status, reply, problem = check(parts.path, parts.query, headers, body)
        if problem is None:
            entry = Received(vendor, parts.path, parse_qs(parts.query), headers, body, time.monotonic())
            with self.arrived:
                self.received.append(entry)
                self.arrived.notify_all()
        else:
            with self._lock:
                self.rejected.append((vendor, problem))
        if isinstance(reply, (dict, list)):
            return status, json.dumps(reply, ensure_ascii=False).encode(), "application/json"
        return status, reply, "text/plain"

    # -- vendors: (status, reply, problem or None) -----------------------------------------------------------------

    def _dingtalk(self, path: str, query: str, headers: dict[str, str], body: bytes) -> tuple[int, Any, str | None]:
        raw = dict(pair.split("=", 1) for pair in query.split("&") if "=" in pair)
        params = parse_qs(query)
        if params.get("access_token") != [self.dingtalk_token]:
            return 200, {"errcode": 300001, "errmsg": "token is not exist"}, "token"
        if self.dingtalk_secret is not None:
            timestamp = params.get("timestamp", [""])[0]
            if not timestamp.isdigit() or abs(int(time.time() * 1000) - int(timestamp)) > ONE_HOUR_MS:
                return 200, {"errcode": 310000, "errmsg": "invalid timestamp"}, "timestamp"
            string_to_sign = f"{timestamp}\n{self.dingtalk_secret}"
            digest = hmac.new(self.dingtalk_secret.encode(), string_to_sign.encode(), hashlib.sha256).digest()
            expected = base64.b64encode(digest).decode()
            # The documented form: the base64 signature URL-encoded once in the query.
            if raw.get("sign") != quote(expected, safe=""):
                return (
                    200,
                    {"errcode": 310000, "errmsg": "sign not match, more: [https://ding-doc.dingtalk.com]"},
                    "sign",
                )
        message = json.loads(body)
        kind = message.get("msgtype")
        ok = (kind == "markdown" and message["markdown"].get("title") and message["markdown"].get("text")) or (
            kind == "text" and message["text"].get("content")
        )
        if not ok:
            return 200, {"errcode": 40035, "errmsg": "缺少参数 json"}, "body"
        return 200, {"errcode": 0, "errmsg": "ok"}, None

    def _wecom(self, path: str, query: str, headers: dict[str, str], body: bytes) -> tuple[int, Any, str | None]:
        if parse_qs(query).get("key") != [self.wecom_key]:
            return 200, {"errcode": 93000, "errmsg": "invalid webhook url, hint: [...]"}, "key"
        message = json.loads(body)
        kind = message.get("msgtype")
        if kind == "markdown":
            if len(message["markdown"]["content"].encode()) > 4096:
                return 200, {"errcode": 40058, "errmsg": "markdown.content exceed max length 4096"}, "length"
        elif kind == "text":
            if len(message["text"]["content"].encode()) > 2048:
                return 200, {"errcode": 40058, "errmsg": "text.content exceed max length 2048"}, "length"
        else:
            return 200, {"errcode": 40008, "errmsg": "invalid message type"}, "msgtype"
        return 200, {"errcode": 0, "errmsg": "ok"}, None

    def _feishu(self, path: str, query: str, headers: dict[str, str], body: bytes) -> tuple[int, Any, str | None]:
        if path.rsplit("/", 1)[1] != self.feishu_hook:
            return (
                200,
                {"code": 19001, "msg": "param invalid: incoming webhook access token invalid", "data": {}},
                "hook",
            )
        if len(body) > 20 * 1024:
            return 200, {"code": 9499, "msg": "Bad Request", "data": {}}, "size"
        message = json.loads(body)
        if self.feishu_secret is not None:
            timestamp = str(message.get("timestamp", ""))
            string_to_sign = f"{timestamp}\n{self.feishu_secret}"
            digest = hmac.new(string_to_sign.encode(), b"", hashlib.sha256).digest()
            expected = base64.b64encode(digest).decode()
            fresh = timestamp.isdigit() and abs(time.time() - int(timestamp)) <= 3600
            if not fresh or message.get("sign") != expected:
                reply = {"code": 19021, "msg": "sign match fail or timestamp is not within one hour from current time"}
                return 200, {**reply, "data": {}}, "sign"
        kind = message.get("msg_type")
        ok = (
            (kind == "interactive" and message["card"]["header"]["title"]["content"])
            or (kind == "post" and message["content"]["post"])
            or (kind == "text" and message["content"]["text"])
        )
        if not ok:
            return 200, {"code": 9499, "msg": "Bad Request", "data": {}}, "body"
        return 200, {"StatusCode": 0, "StatusMessage": "success", "code": 0, "data": {}, "msg": "success"}, None

    def _slack(self, path: str, query: str, headers: dict[str, str], body: bytes) -> tuple[int, Any, str | None]:
        if path != self.slack_path:
            return 403, b"invalid_token", "token"
        message = json.loads(body)
        blocks = message.get("blocks", [])
        if not message.get("text") and not blocks:
            return 400, b"invalid_payload", "payload"
        if len(blocks) > 50:
            return 400, b"invalid_blocks", "blocks"
        for block in blocks:
            text = block.get("text", {})
            limit = 150 if block["type"] == "header" else 3000
            if block["type"] == "header" and text.get("type") != "plain_text":
                return 400, b"invalid_blocks", "header type"
            if not text.get("text") or len(text["text"]) > limit:
                return 400, b"invalid_blocks", "block text"
        return 200, b"ok", None

    def _webhook(self, path: str, query: str, headers: dict[str, str], body: bytes) -> tuple[int, Any, str | None]:
        lower = {k.lower(): v for k, v in headers.items()}
        if self.webhook_secret is not None:
            timestamp = lower.get("x-cloudsoc-timestamp", "")
            mac = hmac.new(self.webhook_secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
            fresh = timestamp.isdigit() and abs(time.time() - int(timestamp)) <= 300
            if not fresh or not hmac.compare_digest(lower.get("x-cloudsoc-signature", ""), f"sha256={mac.hexdigest()}"):
                return 401, {"error": "bad signature"}, "signature"
        try:
            json.loads(body)
        except ValueError:
            return 400, {"error": "body is not JSON"}, "json"
        return 200, {"ok": True}, None
