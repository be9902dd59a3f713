"""Logging set-up and redaction of secrets (URLs with passwords or tokens never reach a log)."""

from __future__ import annotations

import logging
import re

_SECRET_IN_URL = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]+)@", re.I)


#: Bearer secrets of the API: JSON Web Tokens, API keys (ehs_<prefix>_<secret>: the prefix stays, it names the
#: key) and refresh tokens.
_TOKENS = re.compile(r"\beyJ[\w-]+\.[\w-]+\.[\w-]+|\b(ehs_[a-z0-9]{8}_)[\w-]+|\behsr_[\w-]+")
#: Signed notification links carry their credential in the path (``/api/v1/links/<token>``, alerts.notifications.links).
_LINK_PATH = re.compile(r"(/links/)[^/?#\s\"']+")


def redact(text: str) -> str:
    """Replace passwords in URLs (``scheme://user:secret@host``), tokens and API keys with ``***``."""
    text = _SECRET_IN_URL.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    text = _LINK_PATH.sub(r"\1***", text)
    return _TOKENS.sub(lambda m: f"{m[1] or ''}***", text)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if record.args:
            record.args = (
                tuple(redact(a) if isinstance(a, str) else a for a in record.args)
                if isinstance(record.args, tuple)
                else record.args
            )
        return True


def redact_server_logs() -> None:
    """Redact uvicorn's own loggers too: its access log prints every request path (link tokens are in paths) and
    goes to uvicorn's handlers, not ours. A filter on the logger survives uvicorn's logging configuration."""
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())


def setup_logging(level: str = "INFO") -> None:
    """Configure the root logger once, with redaction."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("pgserver", "transitions", "amqtt", "yoyo"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
