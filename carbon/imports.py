"""Import files of green certificates (绿证) as the registry exports them, reduced to the fields carbon needs:
one CSV row per block of consecutive serials. Every error names the line and the field."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from carbon.factors import FactorFileError, _rows

COLUMNS = (
    "scheme",
    "serial_prefix",
    "serial_first",
    "serial_last",
    "vintage_year",
    "period_start",
    "period_end",
    "reference",
)
_SCHEME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
_PREFIX = re.compile(r"^[A-Za-z0-9_-]{0,32}$")
MAX_BLOCK = 10**9  # serials in one row: a registry block, not a typo of a few extra digits


@dataclass(frozen=True, slots=True)
class CertificateRow:
    line: int
    scheme: str
    serial_prefix: str
    serial_first: int
    serial_last: int
    vintage_year: int
    period_start: date
    period_end: date
    reference: str


def _int(raw: str, where: str, problems: list[str], lo: int, hi: int) -> int | None:
    raw = raw.strip()
    if not raw.isdigit() or len(raw) > 18:
        problems.append(f"{where}: not a whole number of at most 18 digits: {raw!r}")
        return None
    value = int(raw)
    if not lo <= value <= hi:
        problems.append(f"{where}: {value} must lie between {lo} and {hi}")
        return None
    return value


def _date(raw: str, where: str, problems: list[str]) -> date | None:
    try:
        value = date.fromisoformat(raw.strip())
    except ValueError:
        problems.append(f"{where}: not a date (YYYY-MM-DD): {raw!r}")
        return None
    if not 2000 <= value.year <= 2100:
        problems.append(f"{where}: {value} must lie between 2000 and 2100")
        return None
    return value


def parse_certificates(text: str) -> list[CertificateRow]:
    """Parse a certificate CSV; ``FactorFileError`` lists every problem (``certificates.csv:LINE: FIELD: ...``)."""
    problems: list[str] = []
    out = []
    name = "certificates.csv"
    for line, r in _rows(name, text, COLUMNS, problems):
        w = f"{name}:{line}"
        scheme = r["scheme"].strip()
        if not _SCHEME.match(scheme):
            problems.append(f"{w}: scheme: {scheme!r} is not a scheme code (GEC, I-REC ...)")
        prefix = r["serial_prefix"].strip()
        if not _PREFIX.match(prefix):
            problems.append(f"{w}: serial_prefix: {prefix!r} has characters other than letters, digits, - and _")
        first = _int(r["serial_first"], f"{w}: serial_first", problems, 0, 10**18 - 1)
        last = _int(r["serial_last"], f"{w}: serial_last", problems, 0, 10**18 - 1)
        if first is not None and last is not None:
            if last < first:
                problems.append(f"{w}: serial_last: {last} is below serial_first {first}")
            elif last - first + 1 > MAX_BLOCK:
                problems.append(f"{w}: serial_last: a block of more than {MAX_BLOCK} certificates")
        vintage = _int(r["vintage_year"], f"{w}: vintage_year", problems, 2000, 2100)
        ps = _date(r["period_start"], f"{w}: period_start", problems)
        pe = _date(r["period_end"], f"{w}: period_end", problems)
        if ps and pe and pe <= ps:
            problems.append(f"{w}: period_end: {pe} is not after period_start {ps}")
        reference = r["reference"].strip()
        if not reference or len(reference) > 200:
            problems.append(f"{w}: reference: must have 1 to 200 characters")
        if not problems or not any(p.startswith(w + ":") for p in problems):
            out.append(CertificateRow(line, scheme, prefix, first, last, vintage, ps, pe, reference))
    if problems:
        raise FactorFileError(problems)
    return out
