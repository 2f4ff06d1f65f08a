"""Structured logs: one event per operation, its fields as LogRecord attributes.

A JSON formatter (or a test) finds `record.event` and the other fields on each record; the
message stays readable for a plain text handler.
"""

from __future__ import annotations

import logging
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
