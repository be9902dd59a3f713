"""The alarm side of ingest's pipeline: ``act`` sends interlocks at once, ``record`` writes alarms in the batch.

``act`` runs on the stage thread, after the detectors and before any database work: it decides which response
plan levels a finding starts, signs and publishes their commands, and notes on the finding what it did (plan,
commands with their signed payloads), so that ``record`` stores exactly that, and a batch spooled while the
database is down keeps it too. Bypasses are read from memory, refreshed by the composition root.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timedelta

import psycopg

from alerts import plans, service
from alerts.config import AlertConfig
from alerts.decisions import CommandStatus, InterlockCommand
from alerts.interlock import InterlockPort
from core.clock import Clock, SystemClock
from core.commands import new_command
from core.model import Decision, Finding

_LOGGER = logging.getLogger(__name__)


class AlertStage:
    def __init__(
        self, *, config: AlertConfig | None = None, interlock: InterlockPort | None = None, clock: Clock | None = None
    ) -> None:
        self.config = config or AlertConfig()
        self.interlock = interlock
        self.clock = clock or SystemClock()
        self.bypasses: list[plans.Bypass] = []

    def act(self, findings: list[Finding]) -> list[Finding]:
        """Start plan levels and publish their commands now; return the findings annotated with what was done."""
        if not findings:
            return findings
        config, bypasses, now = self.config, self.bypasses, self.clock.now()
        ttl = timedelta(seconds=config.defaults.command_ttl_s)
        out = []
        for finding in findings:
            started = plans.activations(config, finding)
            commands = plans.commands(config, started, source_device=finding.subject.device, now=now, bypasses=bypasses)
            for command in commands:
                if command.status is CommandStatus.PENDING and self.interlock is not None:
                    self._send(command, now, ttl)
            decision = Decision(tuple(a.as_dict() for a in started), tuple(c.as_dict() for c in commands))
            out.append(dataclasses.replace(finding, details=finding.details.decided(decision)))
        return out

    def _send(self, command: InterlockCommand, now: datetime, ttl: timedelta) -> None:
        payload = new_command(
            action=command.action, params=command.params, issued_at=now, ttl=ttl, command_id=command.id
        )
        try:
            command.payload = self.interlock.send(command.site, command.device, payload)  # type: ignore[union-attr]
        except Exception:  # the worker sends it from the record instead: a broker hiccup must not lose it
            _LOGGER.exception(
                "publishing %s to %s/%s failed; the alerts worker will send it",
                command.action,
                command.site,
                command.device,
            )
            return
        command.status, command.issued_at = CommandStatus.ISSUED, now.isoformat()

    def record(
        self,
        conn: psycopg.Connection,
        findings: list[Finding],
        *,
        batch_id: str | None,
        now: datetime,
        config: AlertConfig | None = None,
    ) -> None:
        """Write the findings' alarm transitions inside the batch transaction (a savepoint of their own).

        ``config`` is the alarm configuration the findings were acted on with (default: the current one).
        If the alarm record refuses them (a bug, a constraint), the readings are still committed and the
        findings are kept in ``finding_dead_letter``: never lost, never silent.
        """
        if not findings:
            return
        try:
            with conn.transaction():
                service.apply_findings(
                    conn=conn, findings=findings, now=now, config=config or self.config, batch_id=batch_id
                )
        except psycopg.OperationalError:
            raise  # the database is down: ingest spools the whole batch
        except Exception as exc:
            _LOGGER.exception("alarm record refused %d finding(s) of batch %s", len(findings), batch_id)
            for finding in findings:
                service.keep_failed_finding(conn=conn, finding=finding, batch_id=batch_id, error=repr(exc)[:2000])
