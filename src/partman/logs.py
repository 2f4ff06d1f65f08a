"""Structured logs: one event per operation, its fields as LogRecord attributes.

A JSON formatter (or a test) finds `record.event` and the other fields on each record; the
message stays readable for a plain text handler.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable
from typing import Any

_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def log_event(
    logger: logging.Logger, severity: int, event: str, message: str, /, **fields: Any
) -> None:
    """A field named `message` is the message itself (a notice's `to_dict()` has one): it is
    not repeated, so a JSON line has one `message`. Other names a LogRecord uses for itself
    get a trailing underscore."""
    extra = {"event": event}
    for key, value in fields.items():
        if key == "message":
            continue
        extra[f"{key}_" if key in _RESERVED else key] = value
    logger.log(severity, message, extra=extra)


class Redact(logging.Filter):
    """A handler's filter that writes `***` for each secret (a token, the DSN's password)
    wherever a record would show it: its message, its fields, its traceback. partman writes
    none of them; this keeps it so for every library logging through the same handler."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: tuple[str, ...] = ()
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Mask these too (the longest first, so one containing another goes whole)."""
        found = set(self.secrets) | {s for s in secrets if s}
        self.secrets = tuple(sorted(found, key=len, reverse=True))

    @classmethod
    def on(cls, handler: logging.Handler) -> Redact:
        """The handler's Redact filter, added on first use."""
        for existing in handler.filters:
            if isinstance(existing, cls):
                return existing
        made = cls()
        handler.addFilter(made)
        return made

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        clean = self.scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        for key, value in list(record.__dict__.items()):
            if key not in _RESERVED and isinstance(value, str):
                setattr(record, key, self.scrub(value))
        if record.exc_info and record.exc_info[1] is not None:
            text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            record.exc_text = self.scrub(text)
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        return True
