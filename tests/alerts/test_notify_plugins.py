"""Our apprise plugins (alerts.notifications.notify): registered through apprise's plugin manager, each keeping the
provider's answer on its own instance, so that nothing of ``requests`` or apprise is replaced for the whole process."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import apprise
import requests
from apprise.plugins.dingtalk import NotifyDingTalk

from alerts.notifications import notify
from alerts.notifications.notify import AppriseNotifier
from tests.alerts.notify_support import DING_SECRET, DING_TOKEN, FEISHU_TOKEN, WECOM_KEY, stand_ins

URLS = {
    f"dingtalk://{DING_SECRET}@{DING_TOKEN}/": notify._DingTalk,
    f"wecombot://{WECOM_KEY}": notify._WeComBot,
    f"feishu://{FEISHU_TOKEN}": notify._Feishu,
    "lark://abc-123": notify._Lark,
    "json://127.0.0.1:9/sms": notify._Json,
    "jsons://example.com/hook": notify._Json,
    "wecomapp://corp:secret@1000002/zhang.wei": notify._WeComApp,
}


def test_our_plugins_answer_for_their_schemes() -> None:
    AppriseNotifier()
    for url, plugin in URLS.items():
        assert type(apprise.Apprise.instantiate(url, suppress_exceptions=False)) is plugin, url


def test_sends_read_the_providers_answer_without_patching_requests() -> None:
    with stand_ins(wecom_app={"corp": "right"}) as p:
        sender = AppriseNotifier(endpoints={k: p.base for k in ("dingtalk", "wecom", "feishu", "wecom_app")})
        ok = sender.send(kind="dingtalk", url=f"dingtalk://{DING_SECRET}@{DING_TOKEN}/", title="t", body="b")
        bad_sign = sender.send(
            kind="dingtalk", url=f"dingtalk://WRONG0123456789abcdef@{DING_TOKEN}/", title="t", body="b"
        )
        bad_key = sender.send(kind="wecom", url="wecombot://not-a-key", title="t", body="b")
        feishu = sender.send(kind="feishu", url=f"feishu://{FEISHU_TOKEN}", title="t", body="b")
        bad_corp = sender.send(kind="wecom_app", url="wecomapp://corp:wrong@1000002/", to="li.na", title="t", body="b")
        app = sender.send(kind="wecom_app", url="wecomapp://corp:right@1000002/", to="li.na", title="t", body="b")
    assert ok.ok and feishu.ok and app.ok
    assert (bad_sign.result, bad_sign.error, bad_sign.bad_channel) == ("error", "dingtalk 310000 sign not match", True)
    assert (bad_key.error, bad_key.bad_channel) == ("wecom 93000 invalid webhook url", True)
    assert (bad_corp.error, bad_corp.bad_channel) == ("wecom_app 40001 invalid credential", True)
    assert len(p.messages("dingtalk")) == len(p.messages("feishu")) == 1 and not p.messages("wecom")
    # nothing replaced for the process: requests' and apprise's own functions are in place
    assert (requests.Session.send.__module__, requests.Session.send.__qualname__) == (
        "requests.sessions",
        "Session.send",
    )
    assert NotifyDingTalk.get_signature.__module__ == NotifyDingTalk.send.__module__ == "apprise.plugins.dingtalk"


class _Busy(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(429)
        self.send_header("Retry-After", "7")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_a_busy_webhook_says_when_to_retry() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Busy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        result = AppriseNotifier().send(
            kind="webhook", url=f"json://127.0.0.1:{server.server_address[1]}/hook", title="t", body="b", key="ehs-1"
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert (result.result, result.retry_after_s) == ("rate_limited", 7.0)
