"""Virtual-meter formulas: sums and differences of other meters of the same site, e.g. ``e-main - e-coating``.

Grammar: ``term (('+' | '-') term)*`` where a term is an optional factor and a meter code (``0.5*e-a``).
Codes may contain '-', so operators must stand between spaces. Pure; the plant validation (core.plant) and
the energy ledgers use it.
"""

from __future__ import annotations

import re

_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_NUMBER = re.compile(r"^[0-9]+(\.[0-9]+)?$")


class FormulaError(ValueError):
    pass


def parse(text: str) -> list[tuple[float, str]]:
    """``[(coefficient, meter code), ...]`` of a formula; FormulaError saying what is wrong."""
    tokens = text.split()
    if not tokens:
        raise FormulaError("the formula is empty")
    terms: list[tuple[float, str]] = []
    sign = 1.0
    expect_term = True
    for token in tokens:
        if expect_term:
            if token in ("+", "-") and not terms and sign == 1.0:
                sign = -1.0 if token == "-" else 1.0
                continue
            factor, _, code = token.rpartition("*")
            if factor and not _NUMBER.match(factor):
                raise FormulaError(f"{token!r}: a factor must be a plain number, e.g. 0.5*meter-code")
            if not _CODE.match(code):
                raise FormulaError(f"{token!r} is not a meter code (put spaces around + and -)")
            terms.append((sign * (float(factor) if factor else 1.0), code))
            expect_term = False
        else:
            if token not in ("+", "-"):
                raise FormulaError(f"expected + or - before {token!r} (put spaces around + and -)")
            sign = -1.0 if token == "-" else 1.0
            expect_term = True
    if expect_term:
        raise FormulaError("the formula ends with an operator")
    return terms
