"""Store-and-forward: decoded batches kept on disk while PostgreSQL is down, replayed on recovery.

Each batch is one file, written to a temporary name, flushed to disk and renamed, so a crash leaves either
a whole file or none. Files are JSON (orjson), replayed oldest first, and deleted only after their
transaction has committed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import orjson

from core.model import Finding, Severity, SubjectRef
from ingest.decoders import Decoded, Reason, Reject, StatusChange

_LOGGER = logging.getLogger(__name__)


def _finding_to_json(f: Finding) -> dict:
    return {"rule": f.rule, "detector": f.detector, "subject": [f.subject.site, f.subject.area, f.subject.device,
            f.subject.point], "severity": int(f.severity), "ts": f.ts, "score": f.score, "value": f.value,
            "message": f.message, "caused_by": f.caused_by, "details": f.details}


def _finding_from_json(d: dict) -> Finding:
    return Finding(rule=d["rule"], detector=d["detector"], subject=SubjectRef(*d["subject"]),
                   severity=Severity(d["severity"]), ts=datetime.fromisoformat(d["ts"]), score=d["score"],
                   value=d["value"], message=d["message"], caused_by=d["caused_by"], details=d["details"])


def _encode(decoded: Decoded, findings: list[Finding]) -> bytes:
    return orjson.dumps({
        "findings": [_finding_to_json(f) for f in findings],
        "rows": decoded.rows,
        "rejects": [[r.topic, r.payload.hex(), r.payload_size, r.received_at, r.reason.value, r.detail,
                     r.site, r.device] for r in decoded.rejects],
        "statuses": [[s.device_id, s.status, s.at] for s in decoded.statuses],
    })


def _decode(data: bytes) -> tuple[Decoded, list[Finding]]:
    body = orjson.loads(data)
    parse = datetime.fromisoformat
    findings = [_finding_from_json(f) for f in body.get("findings", [])]
    return Decoded(
        rows=[(parse(t), pid, value, quality) for t, pid, value, quality in body["rows"]],
        rejects=[Reject(topic, bytes.fromhex(payload), size, parse(at), Reason(reason), detail, site, device)
                 for topic, payload, size, at, reason, detail, site, device in body["rejects"]],
        statuses=[StatusChange(device_id, status, parse(at)) for device_id, status, at in body["statuses"]],
    ), findings


class Spool:
    """A directory of pending batches."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        existing = sorted(self.directory.glob("*.batch"))
        self._next = int(existing[-1].stem) + 1 if existing else 1

    def append(self, decoded: Decoded, findings: list[Finding] | None = None) -> Path:
        """Persist a batch (and the findings it caused) durably (fsync) and return its file."""
        path = self.directory / f"{self._next:012d}.batch"
        self._next += 1
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            fh.write(_encode(decoded, findings or []))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return path

    def pending(self) -> list[Path]:
        return sorted(self.directory.glob("*.batch"))

    def __len__(self) -> int:
        return len(self.pending())

    def replay(self) -> Iterator[tuple[Path, Decoded, list[Finding]]]:
        """Yield pending batches oldest first; the caller deletes each with ``done`` after committing it."""
        for path in self.pending():
            decoded, findings = _decode(path.read_bytes())
            yield path, decoded, findings

    @staticmethod
    def done(path: Path) -> None:
        path.unlink(missing_ok=True)

    def quarantine(self, path: Path) -> Path:
        """Move a batch the database refuses out of the replay queue (kept for a person to inspect)."""
        failed = self.directory / "failed"
        failed.mkdir(exist_ok=True)
        target = failed / path.name
        os.replace(path, target)
        return target
