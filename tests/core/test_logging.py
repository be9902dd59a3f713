"""Secrets never reach a log: URL passwords, access tokens, API keys and refresh tokens are redacted."""

from __future__ import annotations

import logging

from core.logging import RedactingFilter, redact


def test_secrets_are_redacted() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl-_x"
    text = f"db postgresql://ehs:hunter2@db:5432/ehs token {jwt} key ehs_ab12cd34_Zm9vYmFy-_baz refresh ehsr_c2VjcmV0"
    assert redact(text) == ("db postgresql://ehs:***@db:5432/ehs token *** key ehs_ab12cd34_*** refresh ***")


def test_the_filter_redacts_arguments() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "refused %s", ("ehsr_abcdef",), None)
    RedactingFilter().filter(record)
    assert record.getMessage() == "refused ***"
