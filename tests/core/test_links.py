"""Signed link tokens: one key and audience per purpose, forgeries 404, expired 410 (core.links)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.notifications import links as alarm_links
from core.links import LinkError
from reports import links as report_links

NOW = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)  # in the past: PyJWT refuses a future `iat`
SECRET = "a-test-secret-with-enough-entropy-0123456789"


def test_a_token_for_one_purpose_is_not_read_as_another() -> None:
    alarm = alarm_links.make(SECRET, alarm_id=7, user_id=3, now=NOW, ttl=timedelta(minutes=30))
    report = report_links.make(SECRET, report_id=7, to="ops", now=NOW)
    assert alarm_links.read(SECRET, alarm, now=NOW).alarm_id == 7
    assert report_links.read(SECRET, report, now=NOW).report_id == 7
    for read, token in ((report_links.read, alarm), (alarm_links.read, report)):
        with pytest.raises(LinkError) as err:
            read(SECRET, token, now=NOW)
        assert err.value.status == 404


def test_forged_and_expired() -> None:
    token = alarm_links.make(SECRET, alarm_id=1, user_id=None, now=NOW, ttl=timedelta(minutes=30))
    with pytest.raises(LinkError) as forged:
        alarm_links.read(SECRET + "x", token, now=NOW)
    assert forged.value.status == 404
    assert alarm_links.read(SECRET, token, now=NOW + timedelta(minutes=29)).user_id is None
    with pytest.raises(LinkError) as expired:
        alarm_links.read(SECRET, token, now=NOW + timedelta(minutes=30))
    assert expired.value.status == 410
