"""The notifier's adapters: chat bots, e-mail and webhooks through apprise; the outcome of one send.

apprise builds each provider's request (payload shape, DingTalk's signature) and sends it. Two things are
added here, each for a reason found by reading apprise 2.2.0's plugins (``apprise/plugins/``):

* **The provider's answer.** DingTalk, WeCom and Feishu answer HTTP 200 with an error code in the JSON body
  (DingTalk ``errcode`` 130101 "send too fast", 310000 bad signature, 300001 bad token; WeCom ``errcode`` 45009
  rate limit, 93000 invalid webhook URL; Feishu ``code`` 9499 / 11232 rate limit). apprise checks only the HTTP
  status, so it reports success for a message the provider refused. Our plugins (below) make the provider's
  request themselves and keep its answer on the plugin instance (``answer``), and ``classify`` reads the
  provider's code from it: nothing of ``requests`` or apprise is replaced for the process.
* **Our plugins**, in apprise's plugin shape and registered through apprise's plugin manager (``N_MGR.add``, which
  lets a subclass take over a built-in's scheme): ``_DingTalk``, ``_WeComBot``, ``_Feishu``, ``_Lark`` and
  ``_Json`` subclass apprise's plugins (its URL parsing and options) and only send; ``_WeComApp`` is WeCom
  application messages (企业微信应用消息, to named people), which have no apprise plugin in 2.2
  (``wecomapp://CORPID:SECRET@AGENTID/USERID``): it gets an access token (``/cgi-bin/gettoken``, cached until its
  ``expires_in``) and posts to ``/cgi-bin/message/send``.
* **DingTalk's signature.** apprise URL-quotes the base64 signature and then passes it in ``params``, which
  ``requests`` encodes again, so the server, which decodes once, sees ``%2B``/``%3D`` and answers 310000 "sign
  not match" (the double-encoding mistake other DingTalk clients made, e.g. wowiwj/ding-notice#11).
  ``_DingTalk`` passes the plain base64 value and lets ``requests`` encode it once.

``endpoints`` (setting ``EHS_ALERTS_NOTIFY_ENDPOINTS``) replaces the scheme and host of the providers' fixed
API URLs, for a private relay or the local stand-ins of the tests and the benchmark; the request itself is
still built and sent by apprise.

Channel URLs carry secrets: they are unsealed only here, for one send, and never logged (errors are scrubbed
with ``alerts.seal.scrub``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from json import dumps
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import apprise
import orjson
import requests
from apprise.apprise import N_MGR
from apprise.attachment.memory import AttachMemory
from apprise.common import NotifyFormat, NotifyType
from apprise.exception import AppriseException
from apprise.plugins.base import NotifyBase
from apprise.plugins.custom_json import JSONPayloadField, NotifyJSON
from apprise.plugins.dingtalk import NotifyDingTalk
from apprise.plugins.feishu import NotifyFeishu
from apprise.plugins.lark import NotifyLark
from apprise.plugins.wecombot import NotifyWeComBot

from alerts.seal import scrub

_LOGGER = logging.getLogger(__name__)

#: Provider codes (in the JSON body of an HTTP 200 answer) that mean "too many messages: wait".
RATE_LIMIT_CODES = {"dingtalk": {130101}, "wecom": {45009}, "wecom_app": {45009, 45033}, "feishu": {9499, 11232}}
#: Codes that mean the channel itself is wrong (token, signature, URL): retrying will not help until fixed.
BAD_CHANNEL_CODES = {
    "dingtalk": {300001, 310000},
    "wecom": {93000},
    "wecom_app": {40001, 40013, 40056, 60020},
    "feishu": {19001, 19021, 19024},
}
#: URL schemes per channel kind (what an admin may configure).
SCHEMES = {
    "wecom": ("wecombot",),
    "wecom_app": ("wecomapp",),
    "dingtalk": ("dingtalk",),
    "feishu": ("feishu", "lark"),
    "email": ("mailto", "mailtos"),
    "sms": ("json", "jsons"),
    "webhook": ("json", "jsons"),
    "log": ("log",),
}


@dataclass(frozen=True, slots=True)
class SendResult:
    result: str  # ok | error | rate_limited | gone
    error: str | None = None
    retry_after_s: float | None = None
    bad_channel: bool = False

    @property
    def ok(self) -> bool:
        return self.result == "ok"


class _KeepsAnswer:
    """Our plugins' request: made with the plugin's own options, its answer kept on the instance (``answer``)."""

    answer: requests.Response | None = None

    def _call(self, method: str, url: str, *, ok: Sequence[int] = (200,), **kwargs: Any) -> bool:
        plugin: Any = self
        plugin.throttle()  # apprise's pacing (we set it to 0: our token buckets pace the sends)
        try:
            self.answer = requests.request(
                method,
                url,
                verify=plugin.verify_certificate,
                timeout=plugin.request_timeout,
                allow_redirects=plugin.redirects,
                **kwargs,
            )
        except requests.RequestException as exc:
            plugin.logger.warning("%s: no answer (%s)", plugin.service_name, type(exc).__name__)
            return False
        return self.answer.status_code in ok


def _json_headers(plugin: Any, content_type: str = "application/json") -> dict[str, str]:
    return {"User-Agent": plugin.app_id, "Content-Type": content_type}


class _DingTalk(_KeepsAnswer, NotifyDingTalk):
    """apprise's DingTalk robot, with the signature encoded once (see the module docstring)."""

    def send(
        self,
        body: str,
        title: str = "",
        notify_type: NotifyType = NotifyType.INFO,
        body_format: NotifyFormat | None = None,
        **kwargs: Any,
    ) -> bool:
        payload: dict[str, Any] = {"msgtype": "text", "at": {"atMobiles": self.targets, "isAtAll": False}}
        if body_format == NotifyFormat.MARKDOWN:  # as apprise: the title repeated as a heading
            title = " ".join(title.split()).lstrip("#- ")
            payload["markdown"] = {"title": title or self.app_desc, "text": f"# {title}\n{body}" if title else body}
            payload["msgtype"] = "markdown"
        else:
            payload["text"] = {"content": f"{title}\r\n{body}" if title else body}
        params = None
        if self.secret:
            timestamp = str(round(time.time() * 1000))
            digest = hmac.new(self.secret.encode(), f"{timestamp}\n{self.secret}".encode(), hashlib.sha256).digest()
            params = {"timestamp": timestamp, "sign": base64.b64encode(digest).decode()}
        return self._call(
            "POST",
            self.notify_url.format(token=self.token),
            data=dumps(payload),
            params=params,
            headers=_json_headers(self),
        )


class _WeComBot(_KeepsAnswer, NotifyWeComBot):
    """apprise's WeCom group bot, keeping the answer."""

    def send(self, body: str, title: str = "", notify_type: NotifyType = NotifyType.INFO, **kwargs: Any) -> bool:
        payload = {"msgtype": "text", "text": {"content": body}}
        return self._call(
            "POST",
            self.api_url,
            data=dumps(payload).encode("utf-8"),
            headers=_json_headers(self, "application/json; charset=utf-8"),
        )


class _Feishu(_KeepsAnswer, NotifyFeishu):
    """apprise's Feishu bot, keeping the answer."""

    def send(self, body: str, title: str = "", notify_type: NotifyType = NotifyType.INFO, **kwargs: Any) -> bool:
        payload = {"msg_type": "text", "content": {"text": body}}
        return self._call(
            "POST",
            self.notify_url.format(token=self.token),
            data=dumps(payload).encode("utf-8"),
            headers=_json_headers(self),
        )


class _Lark(_KeepsAnswer, NotifyLark):
    """apprise's Lark bot (Feishu outside China), keeping the answer."""

    def send(self, body: str, title: str = "", notify_type: NotifyType = NotifyType.INFO, **kwargs: Any) -> bool:
        payload = {"msg_type": "text", "content": {"text": f"{title}\n{body}" if title else body}}
        return self._call("POST", self.webhook_url, data=dumps(payload), headers=_json_headers(self))


class _Json(_KeepsAnswer, NotifyJSON):
    """apprise's JSON webhook (SMS gateways, webhooks), keeping the answer (a 429 says when to retry)."""

    def send(
        self, body: str, title: str = "", notify_type: NotifyType = NotifyType.INFO, attach: Any = None, **kwargs: Any
    ) -> bool:
        attachments = []
        for no, attachment in enumerate((attach or []) if self.attachment_support else [], start=1):
            try:
                if not attachment:
                    return False
                attachments.append(
                    {
                        "filename": attachment.name or f"file{no:03}.dat",
                        "base64": attachment.base64(),
                        "mimetype": attachment.mimetype,
                    }
                )
            except AppriseException:
                return False
        payload: dict[str, Any] = {
            JSONPayloadField.VERSION: self.json_version,
            JSONPayloadField.TITLE: title,
            JSONPayloadField.MESSAGE: body,
            JSONPayloadField.ATTACHMENTS: attachments,
            JSONPayloadField.MESSAGETYPE: notify_type.value,
        }
        for key, value in self.payload_extras.items():  # as apprise: ":key=" drops, ":key=new" renames, adds
            if key in payload:
                if value:
                    payload[value] = payload[key]
                del payload[key]
            else:
                payload[key] = value
        url = f"{'https' if self.secure else 'http'}://{self.host}"
        if isinstance(self.port, int):
            url += f":{self.port}"
        return self._call(
            self.method,
            url + self.fullpath,
            ok=range(200, 300),
            data=dumps(payload),
            params=self.params,
            headers={**_json_headers(self), **self.headers},
            auth=(self.user, self.password) if self.user else None,
        )


class _WeComApp(_KeepsAnswer, NotifyBase):
    """WeCom application messages to named people (see the module docstring)."""

    service_name = "WeCom application"
    secure_protocol = "wecomapp"
    notify_url = "https://qyapi.weixin.qq.com/cgi-bin/message/send"
    token_url = "https://qyapi.weixin.qq.com/cgi-bin/gettoken"
    _tokens: dict[tuple[str, str], tuple[str, float]] = {}
    _lock = threading.Lock()

    def __init__(
        self, corpid: str, corpsecret: str, agentid: str, targets: list[str] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.corpid, self.corpsecret, self.agentid = corpid, corpsecret, agentid
        self.targets = list(targets or [])

    @staticmethod
    def parse_url(url: str) -> dict[str, Any]:
        results = NotifyBase.parse_url(url, verify_host=False)
        results["corpid"] = NotifyBase.unquote(results.get("user") or "")
        results["corpsecret"] = NotifyBase.unquote(results.get("password") or "")
        results["agentid"] = results.get("host") or ""
        results["targets"] = NotifyBase.split_path(results.get("fullpath"))
        return results

    def url(self, *args: Any, **kwargs: Any) -> str:
        return f"wecomapp://{self.corpid}:***@{self.agentid}/"

    def _access_token(self) -> str | None:
        key = (self.corpid, self.corpsecret)
        with self._lock:
            token, until = self._tokens.get(key, ("", 0.0))
        if token and time.monotonic() < until:
            return token
        if not self._call("GET", self.token_url, params={"corpid": self.corpid, "corpsecret": self.corpsecret}):
            return None
        r = self.answer
        body = r.json() if r is not None and r.headers.get("Content-Type", "").startswith("application/json") else {}
        if body.get("errcode") or not body.get("access_token"):
            return None  # the answer (e.g. 40013 invalid corpid) stays for classify
        with self._lock:  # refresh a little early: a token used at its very end may be refused
            self._tokens[key] = (body["access_token"], time.monotonic() + float(body.get("expires_in", 7200)) - 300)
        return body["access_token"]

    def send(self, body: str, title: str = "", notify_type: Any = None, **kwargs: Any) -> bool:
        if not self.targets:
            return False
        token = self._access_token()
        if token is None:
            return False
        return self._call(
            "POST",
            self.notify_url,
            params={"access_token": token},
            data=orjson.dumps(
                {
                    "touser": "|".join(self.targets),
                    "msgtype": "text",
                    "agentid": int(self.agentid),
                    "text": {"content": body},
                }
            ),
            headers={"Content-Type": "application/json"},
        )


#: Our plugins, registered with apprise's plugin manager (a subclass takes over its parent's schemes).
_PLUGINS = (_DingTalk, _WeComBot, _Feishu, _Lark, _Json, _WeComApp)
_registered = False
_register_lock = threading.Lock()


def register_plugins() -> None:
    """Register our plugins with apprise (once per process; ``AppriseNotifier`` calls it)."""
    global _registered
    with _register_lock:
        if not _registered:
            for plugin in _PLUGINS:
                if not N_MGR.add(plugin, force=True):
                    raise RuntimeError(f"apprise refused the plugin {plugin.__name__}")
            _registered = True


def _redirect(url: str, base: str | None) -> str:
    if not base:
        return url
    parts, to = urlsplit(url), urlsplit(base)
    return urlunsplit((to.scheme, to.netloc, parts.path, parts.query, parts.fragment))


def classify(kind: str, ok: bool, response: requests.Response | None) -> SendResult:
    """The outcome of one apprise send from apprise's verdict and the provider's answer."""
    if response is None:
        return SendResult("ok") if ok else SendResult("error", "no answer (connection failed or timed out)")
    if response.status_code == 429:
        return SendResult("rate_limited", "HTTP 429", retry_after_s=_retry_after(response))
    code, message = None, ""
    if kind in RATE_LIMIT_CODES:
        try:
            body = orjson.loads(response.content or b"{}")
        except orjson.JSONDecodeError:
            body = {}
        if isinstance(body, dict):
            code = body.get("errcode", body.get("code", body.get("StatusCode")))
            message = str(body.get("errmsg") or body.get("msg") or body.get("StatusMessage") or "")
    if code in RATE_LIMIT_CODES.get(kind, ()):
        return SendResult("rate_limited", f"{kind} {code} {message}".strip(), retry_after_s=60.0)
    if code not in (None, 0):
        return SendResult(
            "error", f"{kind} {code} {message}".strip(), bad_channel=code in BAD_CHANNEL_CODES.get(kind, ())
        )
    if not ok or response.status_code >= 300:
        return SendResult("error", f"HTTP {response.status_code}")
    return SendResult("ok")


def _retry_after(response: requests.Response) -> float | None:
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None


class AppriseNotifier:
    """Send one message over one channel URL; never raises for a provider's failure (returns a SendResult)."""

    def __init__(self, *, endpoints: Mapping[str, str] | None = None, timeout_s: float = 10.0) -> None:
        self.endpoints = dict(endpoints or {})
        self.timeout_s = timeout_s
        self.asset = apprise.AppriseAsset(storage_mode="memory")
        register_plugins()
        # apprise (at DEBUG: "DingTalk URL: ...access_token=...") and urllib3 (at DEBUG: the request line with its
        # query) would write the providers' tokens to the log: never below INFO, whatever EHS_LOG_LEVEL says
        for name in ("apprise", "urllib3"):
            logger = logging.getLogger(name)
            logger.setLevel(max(logger.getEffectiveLevel(), logging.INFO))

    def _plugin(self, kind: str, url: str) -> Any:
        plugin = apprise.Apprise.instantiate(url, asset=self.asset, suppress_exceptions=False)
        if plugin is None:
            raise ValueError("apprise does not understand this channel URL")
        plugin.request_rate_per_sec = 0  # our own per-channel token bucket paces the sends
        plugin.socket_read_timeout = plugin.socket_connect_timeout = self.timeout_s
        base = self.endpoints.get(kind)
        for attr in ("notify_url", "api_url", "webhook_url", "token_url"):  # the providers' fixed API URLs
            if base and isinstance(getattr(plugin, attr, None), str) and "://" in getattr(plugin, attr):
                setattr(plugin, attr, _redirect(getattr(plugin, attr), base))
        return plugin

    def send(
        self,
        *,
        kind: str,
        url: str,
        title: str,
        body: str,
        to: str | None = None,
        key: str | None = None,
        attach: Sequence[tuple[str, bytes, str]] = (),
    ) -> SendResult:
        """Send ``title`` and ``body``; ``to`` is the person's address (e-mail, phone) for person channels,
        ``key`` the delivery's idempotency key (an ``X-EHS-Delivery`` header on webhooks), ``attach`` files
        as (name, bytes, media type) for channels that carry them (e-mail)."""
        if kind == "log":
            _LOGGER.info("notification (log channel): %s | %s", title, body.replace("\n", " | "))
            return SendResult("ok")
        try:
            plugin = self._plugin(kind, personal_url(kind, url, to=to, key=key))
        except Exception as exc:  # noqa: BLE001 - apprise raises many types for a bad URL
            return SendResult("error", scrub(f"bad channel URL: {exc}", url), bad_channel=True)
        # chat bots show no separate title: put it on the first line (e-mail keeps it as the subject)
        text_title, text = (title, body) if kind in ("email", "sms", "webhook") else ("", f"{title}\n{body}")
        try:
            files = None
            if attach:
                files = apprise.AppriseAttachment()
                for name, content, media_type in attach:
                    files.add(AttachMemory(content=content, name=name, mimetype=media_type))
            ok = plugin.notify(body=text, title=text_title, **({"attach": files} if files else {}))
        except Exception as exc:  # noqa: BLE001 - a plugin bug must not stop the notifier
            ok = False
            _LOGGER.warning("%s channel raised %s", kind, type(exc).__name__)
        result = classify(kind, bool(ok), getattr(plugin, "answer", None))
        return (
            SendResult(result.result, scrub(result.error, url), result.retry_after_s, result.bad_channel)
            if result.error
            else result
        )


def personal_url(kind: str, url: str, *, to: str | None, key: str | None) -> str:
    """The channel URL for one delivery: the recipient's address and the idempotency key added."""
    extra: dict[str, str] = {}
    if kind == "wecom_app" and to:
        return url.rstrip("/") + "/" + quote(to, safe="")
    if kind == "email" and to:
        extra["to"] = to
    if kind in ("sms", "webhook"):
        if to:
            extra[":to"] = to
        if key:
            extra["+X-EHS-Delivery"] = key
            extra[":delivery"] = key
    if not extra:
        return url
    return url + ("&" if "?" in url else "?") + urlencode(extra)
