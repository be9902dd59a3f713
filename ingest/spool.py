"""Store-and-forward: decoded batches kept on disk while PostgreSQL is down, replayed on recovery.

Each batch is one file, written to a temporary name, flushed to disk and renamed, so a crash leaves either
a whole file or none. Files are replayed oldest first and deleted only after their transaction has committed.

Format (version 2): one header line ``EHS-SPOOL 2 <sha256 of the body>\\n``, then the body, a JSON object
(orjson) with ``version``, ``findings``, ``rows``, ``rejects`` and ``statuses``. Version 1 files (the bare JSON
object, written before the header existed) are still read. Anything else (damaged, truncated, a checksum that
does not match, an unknown version, a name that is not a batch number) cannot be replayed: it is moved to
``failed/`` with a ``.reason`` file beside it, logged as an error and reported to ``on_quarantine`` (ingest
raises a system alarm), and replay goes on with the rest. A spool can therefore never wedge ingest.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import orjson

from core.model import Finding, Reading, Severity, SubjectRef
from core.text import storable, storable_json, storable_or_none
from ingest.decoders import Decoded, Reason, Reject, StatusChange

_LOGGER = logging.getLogger(__name__)

VERSION = 2
_MAGIC = b"EHS-SPOOL "


class SpoolFileError(ValueError):
    """A spool file that cannot be replayed."""


def _finding_to_json(f: Finding) -> dict:
    return {
        "rule": f.rule,
        "detector": f.detector,
        "subject": [f.subject.site, f.subject.area, f.subject.device, f.subject.point],
        "severity": int(f.severity),
        "ts": f.ts,
        "score": f.score,
        "value": f.value,
        "message": f.message,
        "caused_by": f.caused_by,
        "details": f.details.as_dict(),
    }


def _finding_from_json(d: dict) -> Finding:
    return Finding(
        rule=d["rule"],
        detector=d["detector"],
        subject=SubjectRef(*d["subject"]),
        severity=Severity(d["severity"]),
        ts=datetime.fromisoformat(d["ts"]),
        score=d["score"],
        value=d["value"],
        message=d["message"],
        caused_by=d["caused_by"],
        details=d["details"],
    )


def _plain_tuple(value: object) -> tuple:
    """A reading (a named tuple, which orjson does not take) as the JSON array a plain tuple is."""
    if isinstance(value, tuple):
        return tuple(value)
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def encode(decoded: Decoded, findings: list[Finding]) -> bytes:
    """A batch as the bytes of a version 2 spool file."""
    body = orjson.dumps(
        {
            "version": VERSION,
            "findings": [storable_json(_finding_to_json(f), 100_000) for f in findings],
            "rows": decoded.rows,
            "rejects": [
                [
                    storable(r.topic, 100_000),
                    r.payload.hex(),
                    r.payload_size,
                    r.received_at,
                    r.reason.value,
                    storable(r.detail, 100_000),
                    storable_or_none(r.site, 1000),
                    storable_or_none(r.device, 1000),
                ]
                for r in decoded.rejects
            ],
            "statuses": [[s.device_id, s.status, s.at] for s in decoded.statuses],
        },
        default=_plain_tuple,
    )
    return _MAGIC + f"{VERSION} {hashlib.sha256(body).hexdigest()}\n".encode() + body


def _body(data: bytes) -> dict:
    if data.startswith(_MAGIC):
        header, sep, body = data.partition(b"\n")
        fields = header.split(b" ")
        if not sep or len(fields) != 3:
            raise SpoolFileError("damaged header")
        if fields[1] != str(VERSION).encode():
            raise SpoolFileError(f"spool format version {fields[1][:10].decode('ascii', 'replace')!r} is not {VERSION}")
        if hashlib.sha256(body).hexdigest().encode() != fields[2]:
            raise SpoolFileError("checksum does not match (damaged or truncated)")
        parsed = orjson.loads(body)
        if not isinstance(parsed, dict) or parsed.get("version") != VERSION:
            raise SpoolFileError("body does not carry the header's version")
        return parsed
    if data[:1] == b"{":
        parsed = orjson.loads(data)  # version 1: no header, no checksum
        if not isinstance(parsed, dict) or parsed.get("version", 1) != 1:
            raise SpoolFileError(
                f"unknown spool format version {str(parsed.get('version'))[:10]!r}"
                if isinstance(parsed, dict)
                else "not a spool batch"
            )
        return parsed
    raise SpoolFileError("not a spool file")


def decode(data: bytes) -> tuple[Decoded, list[Finding]]:
    """Read a spool file (version 2, or version 1); ``SpoolFileError`` if it cannot be replayed."""
    try:
        body = _body(data)
        parse = datetime.fromisoformat
        findings = [_finding_from_json(f) for f in body.get("findings", [])]
        rows: list[Reading] = []
        for t, pid, value, quality in body["rows"]:
            if not (
                isinstance(pid, int) and isinstance(quality, int) and (value is None or isinstance(value, int | float))
            ):
                raise SpoolFileError("a reading row of the wrong types")
            rows.append(Reading(parse(t), pid, None if value is None else float(value), quality))
        decoded = Decoded(
            rows=rows,
            rejects=[
                Reject(
                    str(topic), bytes.fromhex(payload), int(size), parse(at), Reason(reason), str(detail), site, device
                )
                for topic, payload, size, at, reason, detail, site, device in body["rejects"]
            ],
            statuses=[
                StatusChange(int(device_id), str(status), parse(at)) for device_id, status, at in body["statuses"]
            ],
        )
    except SpoolFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever a damaged file makes the reader raise
        raise SpoolFileError(f"{type(exc).__name__}: {str(exc)[:200]}") from exc
    return decoded, findings


def _number(path: Path) -> int | None:
    stem = path.stem
    return int(stem) if stem.isascii() and stem.isdigit() else None


class Spool:
    """A directory of pending batches."""

    def __init__(self, directory: Path, on_quarantine: Callable[[Path, str], None] | None = None) -> None:
        self.directory = directory
        self.on_quarantine = on_quarantine
        self.directory.mkdir(parents=True, exist_ok=True)
        numbers = [n for p in self.directory.glob("*.batch") if (n := _number(p)) is not None]
        self._next = max(numbers) + 1 if numbers else 1
        #: Files that could be neither replayed nor moved away (a read-only disk): skipped, not retried.
        self._stuck: set[Path] = set()

    def append(self, decoded: Decoded, findings: list[Finding] | None = None) -> Path:
        """Persist a batch (and the findings it caused) durably (fsync) and return its file.

        Raises ``OSError`` (disk full, ...) with nothing left behind: the caller keeps the messages
        unacknowledged and tries again.
        """
        path = self.directory / f"{self._next:012d}.batch"
        self._next += 1
        tmp = path.with_suffix(".tmp")
        try:
            with open(tmp, "wb") as fh:
                fh.write(encode(decoded, findings or []))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return path

    def pending(self) -> list[Path]:
        """Batch files waiting, oldest first (files with other names last: replay sets them aside)."""
        files = [p for p in self.directory.glob("*.batch") if p not in self._stuck]
        return sorted(files, key=lambda p: (_number(p) is None, _number(p) or 0, p.name))

    def __len__(self) -> int:
        return len(self.pending())

    def replay(self) -> Iterator[tuple[Path, Decoded, list[Finding]]]:
        """Yield pending batches oldest first; the caller deletes each with ``done`` after committing it.

        A file that cannot be read is quarantined (see the module's text) and replay goes on with the next.
        """
        for path in self.pending():
            if _number(path) is None:
                self.quarantine(path, "not a spool batch name (a batch file is named by its number)")
                continue
            try:
                decoded, findings = decode(path.read_bytes())
            except (SpoolFileError, OSError) as exc:
                self.quarantine(path, str(exc))
                continue
            yield path, decoded, findings

    @staticmethod
    def done(path: Path) -> None:
        path.unlink(missing_ok=True)

    def quarantine(self, path: Path, reason: str = "refused by the database") -> Path:
        """Move a batch that cannot be replayed out of the queue (kept in ``failed/`` for a person)."""
        failed = self.directory / "failed"
        target = failed / path.name
        try:
            failed.mkdir(exist_ok=True)
            n = 1
            while target.exists():
                target = failed / f"{path.stem}.{n}{path.suffix}"
                n += 1
            os.replace(path, target)
            target.with_name(target.name + ".reason").write_text(
                reason + "\n", encoding="utf-8", errors="backslashreplace"
            )
        except OSError as exc:
            self._stuck.add(path)
            _LOGGER.error("spool file %s cannot be replayed (%s) nor moved away (%s); skipped", path, reason, exc)
            target = path
        else:
            _LOGGER.error("spool file %s cannot be replayed (%s); moved to %s", path.name, reason, target)
        if self.on_quarantine is not None:
            try:
                self.on_quarantine(target, reason)
            except Exception:  # noqa: BLE001 - reporting must not stop the replay
                _LOGGER.exception("reporting quarantined spool file %s failed", target)
        return target
