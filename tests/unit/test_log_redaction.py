"""Secrets kept out of what partman writes: a DSN libpq cannot read is refused without its
values, and a log handler with `Redact` masks the tokens and the password wherever a record
would show them (message, fields, traceback)."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from partman import settings
from partman.db.dsn import check_dsn, secrets_of
from partman.errors import ConfigError
from partman.logs import Redact

PASSWORD = "pw-s3cret/9"


@pytest.mark.parametrize(
    "dsn",
    [
        f"postgresql://app:{PASSWORD} x@db/app",  # a space libpq quotes back
        f"host=db {PASSWORD}",  # a value without its key
        f"host=db password='{PASSWORD}",  # an unterminated quote
    ],
)
def test_an_unreadable_dsn_is_refused_without_its_values(dsn: str) -> None:
    with pytest.raises(ConfigError) as refused:
        check_dsn(dsn)
    assert PASSWORD not in str(refused.value) and "x@db" not in str(refused.value)
    assert str(refused.value).startswith("the database connection string cannot be read: ")
    assert refused.value.__cause__ is None and refused.value.__suppress_context__


def test_the_password_is_a_secret_as_given_and_percent_encoded() -> None:
    assert secrets_of(f"host=db password={PASSWORD}") == (PASSWORD, "pw-s3cret%2F9")
    assert secrets_of("postgresql://app:pw-s3cret%2F9@db/app") == (PASSWORD, "pw-s3cret%2F9")
    assert secrets_of("host=db user=app") == ()


def test_a_redacting_handler_masks_messages_fields_and_tracebacks() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(message)s %(where)s"))
    Redact.on(handler).add(["tok-1", PASSWORD])
    assert Redact.on(handler) is Redact.on(handler)  # one filter, however often asked
    logger = logging.getLogger("partman.test_redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise RuntimeError(f"connecting with {PASSWORD}")
        except RuntimeError:
            logger.exception("token %s refused", "tok-1", extra={"where": f"dsn {PASSWORD}"})
    finally:
        logger.removeHandler(handler)
    text = out.getvalue()
    assert "tok-1" not in text and PASSWORD not in text, text
    assert "token *** refused dsn ***" in text
    assert "RuntimeError: connecting with ***" in text


def test_a_token_of_the_wrong_type_is_refused_without_repeating_it(tmp_path: Path) -> None:
    path = tmp_path / "partman.toml"
    path.write_text('[service]\ntoken = 982451653\nread_token = ["tok-in-a-list"]\n')
    found = settings.read(path)
    shown = "\n".join(str(p) for p in found.problems)
    assert "982451653" not in shown and "tok-in-a-list" not in shown, shown
    assert "service.token: expected a string, got an integer (not shown: it is a secret)" in shown
    assert "service.read_token: expected a string, got an array" in shown
