"""Atomic reloads (issue 11, item 5): the detector engine and the alarm configuration of one plant revision take
over together, between two batches, and no reload is lost. Reloads run on two threads against a real database
while a third thread evaluates and acts on batches; every finding names the revision of the rule that raised it
and of the response plan that acted on it, and the two must always agree."""

from __future__ import annotations

import copy
import re
import threading
import uuid
from datetime import UTC, datetime

import orjson
import psycopg
import pytest

from core.registry import load_index
from ingest.__main__ import SafetyStages
from ingest.decoders import Decoder, RawMessage
from ingest.pipeline import Batch
from tests.alerts.helpers import SAFETY, apply

pytestmark = [pytest.mark.db]

REVISIONS = 8


def _safety(k: int) -> dict:
    """The test plant's safety sections, with revision tag ``r{k}`` in the H2 rule and the plan level it starts."""
    safety = copy.deepcopy(SAFETY)
    rule = next(r for r in safety["rules"] if r["id"] == "gas.h2")
    rule["name"] = f"氢气 r{k}"
    level = next(lv for lv in safety["response_plans"][0]["levels"] if lv["level"] == 2)
    level["name"] = f"二级 r{k}"
    return safety


def _tag(text: str) -> int:
    return int(re.search(r" r(\d+)$", text)[1])


def test_concurrent_reloads_never_mix_revisions_and_the_last_wins(
    database_url: str, broker_url: str, site: str
) -> None:
    with psycopg.connect(database_url) as conn:
        apply(conn, site, _safety(0))
        index = load_index(conn)
    safety = SafetyStages(
        database_url=database_url, mqtt_url=broker_url, secret="s", client_id=f"reload-{uuid.uuid4().hex[:6]}"
    )
    safety.stage.interlock = None  # nothing is published: only the decisions are looked at
    safety.on_index(index)
    decoder = Decoder(index)
    topic = f"ehs/v1/{site}/gas-01/telemetry"
    stop = threading.Event()
    seen: list[tuple[int, int]] = []  # (revision of the rule, revision of the plan) per finding
    errors: list[BaseException] = []

    def batches() -> None:
        i = 0
        while not stop.is_set() or i < 4:
            value = 900.0 if i % 2 == 0 else 0.5  # raise, clear, raise...: a finding in every batch
            raw = RawMessage(topic, orjson.dumps({"h2_ppm": value}), 1, False, datetime.now(UTC))
            batch = Batch(uuid.uuid4().hex, [raw], decoder.decode_batch([raw]))
            safety.evaluate(batch)
            safety.act(batch)
            for f in batch.findings:
                if f.rule == "gas.h2" and f.details.get("plan"):
                    seen.append((_tag(f.details["name"]), _tag(f.details["plan"][0]["name"])))
            i += 1

    def reloads(conn: psycopg.Connection) -> None:
        try:
            while not stop.is_set():
                safety.on_index(load_index(conn))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    worker = threading.Thread(target=batches)
    worker.start()
    # autocommit, like ingest's housekeeping connection (an idle transaction would hold up the changes)
    with (
        psycopg.connect(database_url, autocommit=True) as c1,
        psycopg.connect(database_url, autocommit=True) as c2,
        psycopg.connect(database_url, autocommit=True) as admin,
    ):
        reloaders = [threading.Thread(target=reloads, args=(c,)) for c in (c1, c2)]
        for t in reloaders:
            t.start()
        for k in range(1, REVISIONS + 1):
            with admin.transaction():  # one revision, one commit (as `ehs config apply` does)
                apply(admin, site, _safety(k))
        last = load_index(admin).revision
        stop.set()
        for t in reloaders:
            t.join(60)
        worker.join(60)
        safety.on_index(load_index(admin))  # the watcher's last look, after the last change
    assert not errors, errors
    assert seen and all(rule == plan for rule, plan in seen), [p for p in seen if p[0] != p[1]]
    assert len({rule for rule, _ in seen}) > 1  # revisions did change under the running batches

    # the last revision wins: the next batch runs on it, engine and configuration alike
    raw = RawMessage(topic, orjson.dumps({"h2_ppm": 0.5}), 1, False, datetime.now(UTC))
    safety.evaluate(Batch("clear", [raw], decoder.decode_batch([raw])))
    raw = RawMessage(topic, orjson.dumps({"h2_ppm": 900.0}), 1, False, datetime.now(UTC))
    batch = Batch("final", [raw], decoder.decode_batch([raw]))
    safety.evaluate(batch)
    safety.act(batch)
    final = [f for f in batch.findings if f.rule == "gas.h2" and f.details.get("plan")]
    assert safety.current is not None and safety.current.revision == last and safety._next is None
    assert final and _tag(final[0].details["name"]) == _tag(final[0].details["plan"][0]["name"]) == REVISIONS
