"""Local stand-ins for the chat-bot APIs (DingTalk robot, WeCom group bot, Feishu bot) and a JSON webhook, for the
tests and `ehs bench notify` (faithful local servers, like the simulated devices: no source checkout needed).

They check what the real services check and answer the way they answer (HTTP 200 with an error code in the
body): payload shape, DingTalk's ``timestamp`` + ``sign`` (HMAC-SHA256 of ``timestamp\\nsecret``, base64, URL
encoded once, timestamp within 5 minutes), the token, and the per-robot rate limits (DingTalk 20/min ->
errcode 130101, WeCom 20/min -> 45009, Feishu 100/min and 5/s -> code 11232). Bad tokens: DingTalk 300001,
bad signature 310000, WeCom 93000, Feishu 19001.

``hold_on`` makes the server keep one request open (recorded on arrival, answered when released): the
"provider received it, the sender never heard back" case of the kill test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections import defaultdict, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

LIMITS = {"dingtalk": [(20, 60.0)], "wecom": [(20, 60.0)], "feishu": [(100, 60.0), (5, 1.0)]}


class Providers:
    def __init__(
        self,
        *,
        dingtalk: dict[str, str | None] | None = None,
        wecom: set[str] | None = None,
        feishu: set[str] | None = None,
        wecom_app: dict[str, str] | None = None,
        enforce_limits: bool = True,
    ) -> None:
        self.dingtalk = dingtalk or {}  # token -> signing secret (None: no signing)
        self.wecom = wecom or set()
        self.feishu = feishu or set()
        self.wecom_app = wecom_app or {}  # corpid -> corpsecret (WeCom application messages)
        self.app_tokens: dict[str, str] = {}  # access_token -> corpid
        self.token_requests = 0
        self.enforce_limits = enforce_limits
        self.received: list[dict[str, Any]] = []  # accepted messages
        self.refused: list[dict[str, Any]] = []  # answered with an error code
        self.hold_on: int | None = None  # hold the request that is this accepted message (1 = the first)
        self.holding = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._times: dict[str, deque[float]] = defaultdict(deque)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Providers:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def messages(self, provider: str) -> list[dict[str, Any]]:
        with self._lock:
            return [m for m in self.received if m["provider"] == provider]

    # --- the services' rules ---------------------------------------------------------------------------------

    def _limited(self, provider: str, token: str) -> bool:
        if not self.enforce_limits:
            return False
        now, times = time.monotonic(), self._times[f"{provider}:{token}"]
        longest = max(window for _, window in LIMITS[provider])
        while times and now - times[0] > longest:
            times.popleft()
        for count, window in LIMITS[provider]:
            if sum(1 for t in times if now - t <= window) >= count:
                return True
        times.append(now)
        return False

    def answer(self, path: str, query: dict[str, list[str]], body: Any) -> tuple[str, str, dict[str, Any]]:
        """(provider, token, JSON answer) for one request, by the rules of the service it imitates."""
        q = {k: v[0] for k, v in query.items()}
        if path.startswith("/robot/send"):
            token = q.get("access_token", "")
            if token not in self.dingtalk:
                return "dingtalk", token, {"errcode": 300001, "errmsg": "token is not exist"}
            secret = self.dingtalk[token]
            if secret is not None:
                ts, sign = q.get("timestamp", ""), q.get("sign", "")
                if not ts.isdigit() or abs(time.time() * 1000 - int(ts)) > 5 * 60 * 1000:
                    return "dingtalk", token, {"errcode": 310000, "errmsg": "invalid timestamp"}
                want = base64.b64encode(
                    hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()
                ).decode()
                if not hmac.compare_digest(want, sign):
                    return "dingtalk", token, {"errcode": 310000, "errmsg": "sign not match"}
            if not (
                isinstance(body, dict)
                and body.get("msgtype") in ("text", "markdown")
                and (body.get("text", {}).get("content") or body.get("markdown", {}).get("text"))
            ):
                return "dingtalk", token, {"errcode": 40035, "errmsg": "缺少参数 json"}
            if self._limited("dingtalk", token):
                return "dingtalk", token, {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}
            return "dingtalk", token, {"errcode": 0, "errmsg": "ok"}
        if path.startswith("/cgi-bin/gettoken"):
            corpid, secret = q.get("corpid", ""), q.get("corpsecret", "")
            self.token_requests += 1
            if corpid not in self.wecom_app:
                return "wecom_app", corpid, {"errcode": 40013, "errmsg": "invalid corpid"}
            if self.wecom_app[corpid] != secret:
                return "wecom_app", corpid, {"errcode": 40001, "errmsg": "invalid credential"}
            token = f"tok{len(self.app_tokens)}{corpid}"
            self.app_tokens[token] = corpid
            return "wecom_app", corpid, {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200}
        if path.startswith("/cgi-bin/message/send"):
            token = q.get("access_token", "")
            if token not in self.app_tokens:
                return "wecom_app", token, {"errcode": 40014, "errmsg": "invalid access_token"}
            if not (
                isinstance(body, dict)
                and body.get("msgtype") == "text"
                and body.get("touser")
                and isinstance(body.get("agentid"), int)
                and body["text"].get("content")
            ):
                return "wecom_app", token, {"errcode": 40008, "errmsg": "invalid message type"}
            return "wecom_app", token, {"errcode": 0, "errmsg": "ok", "invaliduser": ""}
        if path.startswith("/cgi-bin/webhook/send"):
            token = q.get("key", "")
            if token not in self.wecom:
                return "wecom", token, {"errcode": 93000, "errmsg": "invalid webhook url"}
            if not (isinstance(body, dict) and body.get("msgtype") == "text" and body["text"].get("content")):
                return "wecom", token, {"errcode": 40008, "errmsg": "invalid message type"}
            if self._limited("wecom", token):
                return "wecom", token, {"errcode": 45009, "errmsg": "api freq out of limit"}
            return "wecom", token, {"errcode": 0, "errmsg": "ok"}
        if path.startswith("/open-apis/bot/v2/hook/"):
            token = path.rstrip("/").rsplit("/", 1)[-1]
            if token not in self.feishu:
                return "feishu", token, {"code": 19001, "msg": "param invalid: incoming webhook access token invalid"}
            if not (isinstance(body, dict) and body.get("msg_type") == "text" and body["content"].get("text")):
                return "feishu", token, {"code": 9499, "msg": "Bad Request"}
            if self._limited("feishu", token):
                return "feishu", token, {"code": 11232, "msg": "frequency limited psm"}
            return "feishu", token, {"code": 0, "msg": "success", "data": {}}
        return "webhook", path, {"ok": True}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                self.do_POST()

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                parts = urlsplit(self.path)
                provider, token, answer = outer.answer(parts.path, parse_qs(parts.query), body)
                record = {
                    "provider": provider,
                    "token": token,
                    "body": body,
                    "headers": dict(self.headers),
                    "answer": answer,
                    "at": time.time(),
                }
                ok = answer.get("errcode", answer.get("code", 0)) == 0
                with outer._lock:
                    (outer.received if ok else outer.refused).append(record)
                    hold = ok and outer.hold_on == len(outer.received)
                if hold:
                    outer.holding.set()
                    outer.release.wait(60)
                data = json.dumps(answer).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the sender is gone (killed)

        return Handler


def text_of(message: dict[str, Any]) -> str:
    """The text a person sees in a recorded chat-bot message."""
    body = message["body"] or {}
    if message["provider"] == "dingtalk":
        return body.get("text", {}).get("content") or body.get("markdown", {}).get("text", "")
    if message["provider"] in ("wecom", "wecom_app"):
        return body["text"]["content"]
    if message["provider"] == "feishu":
        return body["content"]["text"]
    return f"{body.get('title', '')}\n{body.get('message', '')}"
