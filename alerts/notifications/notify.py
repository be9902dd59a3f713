"""The notifier's adapters: chat bots, e-mail and webhooks through apprise; the outcome of one send.

apprise builds each provider's request (payload shape, DingTalk's signature) and sends it. Two things are
added here, each for a reason found by reading apprise 2.2.0's plugins (``apprise/plugins/``):

* **The provider's answer.** DingTalk, WeCom and Feishu answer HTTP 200 with an error code in the JSON body
  (DingTalk ``errcode`` 130101 "send too fast", 310000 bad signature, 300001 bad token; WeCom ``errcode`` 45009
  rate limit, 93000 invalid webhook URL; Feishu ``code`` 9499 / 11232 rate limit). apprise checks only the HTTP
  status, so it reports success for a message the provider refused. ``_ResponseTap`` keeps, per thread, the
  last response of the ``requests`` call apprise made, and ``classify`` reads the provider's code from it.
* **WeCom application messages** (企业微信应用消息, to named people) have no apprise plugin in 2.2:
  ``_WeComApp`` is one, in apprise's own plugin shape (``wecomapp://CORPID:SECRET@AGENTID/USERID``): it gets an
  access token (``/cgi-bin/gettoken``, cached until its ``expires_in``) and posts to ``/cgi-bin/message/send``.
* **DingTalk's signature.** apprise URL-quotes the base64 signature and then passes it in ``params``, which
  ``requests`` encodes again, so the server, which decodes once, sees ``%2B``/``%3D`` and answers 310000 "sign
  not match" (the double-encoding mistake other DingTalk clients made, e.g. wowiwj/ding-notice#11).
  ``_SignedDingTalk`` returns the plain base64 value and lets ``requests`` encode it once.

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
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import apprise
import orjson
import requests
from apprise.attachment.memory import AttachMemory
from apprise.plugins.base import NotifyBase
from apprise.plugins.dingtalk import NotifyDingTalk

from alerts.seal import scrub

_LOGGER = logging.getLogger(__name__)

#: Provider codes (in the JSON body of an HTTP 200 answer) that mean "too many messages: wait".
RATE_LIMIT_CODES = {"dingtalk": {130101}, "wecom": {45009}, "wecom_app": {45009, 45033}, "feishu": {9499, 11232}}
#: Codes that mean the channel itself is wrong (token, signature, URL): retrying will not help until fixed.
BAD_CHANNEL_CODES = {"dingtalk": {300001, 310000}, "wecom": {93000}, "wecom_app": {40001, 40013, 40056, 60020},
                     "feishu": {19001, 19021, 19024}}
#: URL schemes per channel kind (what an admin may configure).
SCHEMES = {"wecom": ("wecombot",), "wecom_app": ("wecomapp",), "dingtalk": ("dingtalk",), "feishu": ("feishu", "lark"),
           "email": ("mailto", "mailtos"), "sms": ("json", "jsons"), "webhook": ("json", "jsons"), "log": ("log",)}


@dataclass(frozen=True, slots=True)
class SendResult:
    result: str                     # ok | error | rate_limited | gone
    error: str | None = None
    retry_after_s: float | None = None
    bad_channel: bool = False

    @property
    def ok(self) -> bool:
        return self.result == "ok"


class _ResponseTap:
    """Remember, per thread, the last HTTP response of ``requests`` while a send is being made."""

    _local = threading.local()
    _installed = False
    _lock = threading.Lock()

    @classmethod
    def install(cls) -> None:
        with cls._lock:
            if cls._installed:
                return
            original = requests.Session.send

            def send(session: requests.Session, request: Any, **kwargs: Any) -> requests.Response:
                response = original(session, request, **kwargs)
                if getattr(cls._local, "active", False):
                    cls._local.response = response
                return response

            requests.Session.send = send  # type: ignore[method-assign]
            cls._installed = True

    @classmethod
    def start(cls) -> None:
        cls._local.active, cls._local.response = True, None

    @classmethod
    def stop(cls) -> requests.Response | None:
        cls._local.active = False
        response, cls._local.response = getattr(cls._local, "response", None), None
        return response


class _SignedDingTalk(NotifyDingTalk):
    """apprise's DingTalk plugin with the signature encoded once (see the module docstring)."""

    def get_signature(self) -> tuple[str, str]:
        timestamp = str(round(time.time() * 1000))
        digest = hmac.new(self.secret.encode(), f"{timestamp}\n{self.secret}".encode(), hashlib.sha256).digest()
        return timestamp, base64.b64encode(digest).decode()


class _WeComApp(NotifyBase):
    """WeCom application messages to named people (apprise plugin shape; see the module docstring)."""

    service_name = "WeCom application"
    secure_protocol = "wecomapp"
    notify_url = "https://qyapi.weixin.qq.com/cgi-bin/message/send"
    token_url = "https://qyapi.weixin.qq.com/cgi-bin/gettoken"
    _tokens: dict[tuple[str, str], tuple[str, float]] = {}
    _lock = threading.Lock()

    def __init__(self, corpid: str, corpsecret: str, agentid: str, targets: list[str] | None = None,
                 **kwargs: Any) -> None:
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
        r = requests.get(self.token_url, params={"corpid": self.corpid, "corpsecret": self.corpsecret},
                         timeout=self.request_timeout)
        body = r.json() if r.headers.get("Content-Type", "").startswith("application/json") else {}
        if r.status_code != 200 or body.get("errcode") or not body.get("access_token"):
            return None
        with self._lock:     # refresh a little early: a token used at its very end may be refused
            self._tokens[key] = (body["access_token"], time.monotonic() + float(body.get("expires_in", 7200)) - 300)
        return body["access_token"]

    def send(self, body: str, title: str = "", notify_type: Any = None, **kwargs: Any) -> bool:
        if not self.targets:
            return False
        token = self._access_token()
        if token is None:
            return False
        r = requests.post(self.notify_url, params={"access_token": token}, timeout=self.request_timeout,
                          data=orjson.dumps({"touser": "|".join(self.targets), "msgtype": "text",
                                             "agentid": int(self.agentid), "text": {"content": body}}),
                          headers={"Content-Type": "application/json"})
        return r.status_code == 200


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
        return SendResult("error", f"{kind} {code} {message}".strip(),
                          bad_channel=code in BAD_CHANNEL_CODES.get(kind, ()))
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
        _ResponseTap.install()
        # apprise (at DEBUG: "DingTalk URL: ...access_token=...") and urllib3 (at DEBUG: the request line with its
        # query) would write the providers' tokens to the log: never below INFO, whatever EHS_LOG_LEVEL says
        for name in ("apprise", "urllib3"):
            logger = logging.getLogger(name)
            logger.setLevel(max(logger.getEffectiveLevel(), logging.INFO))

    def _plugin(self, kind: str, url: str) -> Any:
        if url.startswith("dingtalk://"):
            plugin = _SignedDingTalk(**NotifyDingTalk.parse_url(url), asset=self.asset)
        elif url.startswith("wecomapp://"):
            plugin = _WeComApp(**_WeComApp.parse_url(url), asset=self.asset)
        else:
            plugin = apprise.Apprise.instantiate(url, asset=self.asset, suppress_exceptions=False)
        if plugin is None:
            raise ValueError("apprise does not understand this channel URL")
        plugin.request_rate_per_sec = 0          # our own per-channel token bucket paces the sends
        plugin.socket_read_timeout = plugin.socket_connect_timeout = self.timeout_s
        base = self.endpoints.get(kind)
        for attr in ("notify_url", "api_url", "webhook_url", "token_url"):   # the providers' fixed API URLs
            if base and isinstance(getattr(plugin, attr, None), str) and "://" in getattr(plugin, attr):
                setattr(plugin, attr, _redirect(getattr(plugin, attr), base))
        return plugin

    def send(self, *, kind: str, url: str, title: str, body: str, to: str | None = None,
             key: str | None = None, attach: Sequence[tuple[str, bytes, str]] = ()) -> SendResult:
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
        _ResponseTap.start()
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
        finally:
            response = _ResponseTap.stop()
        result = classify(kind, bool(ok), response)
        return SendResult(result.result, scrub(result.error, url), result.retry_after_s, result.bad_channel) \
            if result.error else result


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
