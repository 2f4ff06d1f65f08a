"""Exact partition bounds, parsed from `pg_get_expr(relpartbound, oid)`.

The catalog is the truth about bounds; a partition's name never is. The text is produced by the
server's ruleutils under the session settings the snapshot query fixes (TimeZone UTC, DateStyle
ISO, standard_conforming_strings on), so each literal is the type's canonical output and can be
read back without loss.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import uuid
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

from .columns import ColumnKind


class Special(enum.Enum):
    """Bound values that are not finite values of the column's type."""

    MINVALUE = "MINVALUE"
    MAXVALUE = "MAXVALUE"
    UNREADABLE = "UNREADABLE"  # e.g. a BC date or 'infinity': finite for PG, not for us

    def __repr__(self) -> str:
        return self.value


BoundValue = str | int | Decimal | uuid.UUID | dt.datetime | dt.date | Special


class BoundSyntaxError(ValueError):
    """The bound text is not of a shape this parser knows; the partition is treated as foreign."""


class RangeBound(NamedTuple):
    """FROM (lower...) TO (upper...), one value per key column; or the DEFAULT partition.

    A named tuple, not a dataclass: a catalog pass makes one per partition (tens of thousands),
    and a tuple is built several times faster and is smaller.
    """

    lower: tuple[BoundValue, ...]
    upper: tuple[BoundValue, ...]
    is_default: bool = False


DEFAULT_BOUND = RangeBound((), (), is_default=True)


def parse_range_bound(text: str, kinds: Sequence[ColumnKind]) -> RangeBound:
    """Read a RANGE partition's bound expression into typed values of the key columns."""
    lists = _fast_lists(text)
    if lists is None:  # not the shape ruleutils prints: the careful path says what is wrong
        text = text.strip()
        if text == "DEFAULT":
            return DEFAULT_BOUND
        lists = _careful_lists(text)
    lower_tokens, upper_tokens = lists
    if len(lower_tokens) != len(kinds) or len(upper_tokens) != len(kinds):
        raise BoundSyntaxError(f"bound has {len(lower_tokens)} values, key has {len(kinds)}")
    return RangeBound(
        tuple(_convert(tok, kind) for tok, kind in zip(lower_tokens, kinds, strict=True)),
        tuple(_convert(tok, kind) for tok, kind in zip(upper_tokens, kinds, strict=True)),
    )


def parse_list_bound(text: str, kinds: Sequence[ColumnKind]) -> RangeBound:
    """A LIST partition's bound, `FOR VALUES IN (...)`, as a RangeBound whose lower and upper
    are both the values listed (one value: one tenant), or the DEFAULT partition."""
    text = text.strip()
    if text == "DEFAULT":
        return DEFAULT_BOUND
    prefix = "FOR VALUES IN "
    if not text.startswith(prefix) or len(kinds) != 1:
        raise BoundSyntaxError(f"not a list bound: {text!r}")
    tokens, pos = _parse_list(text, len(prefix))
    if pos != len(text):
        raise BoundSyntaxError(f"unexpected text after bound: {text[pos:]!r}")
    values = tuple(_convert(tok, kinds[0]) for tok in tokens)
    return RangeBound(values, values)


_Token = tuple[str, bool]  # (text, was quoted)
_BARE = re.compile(r"[A-Za-z0-9_.+-]+")

# The fast path: exactly what `_careful_lists` accepts, as one regular expression (each value
# a quoted literal with '' for a quote, or a bare word), for the shape ruleutils prints.
_TOKEN = r"'[^']*(?:''[^']*)*'|[A-Za-z0-9_.+-]+"  # unrolled: no backtracking, 4x faster
_LIST = rf"\(((?:{_TOKEN})(?:, (?:{_TOKEN}))*)\)"
_RANGE = re.compile(rf"FOR VALUES FROM {_LIST} TO {_LIST}")
_TOKENS = re.compile(rf"({_TOKEN})(?:, |\Z)")


def _fast_lists(text: str) -> tuple[list[_Token], list[_Token]] | None:
    """The lower and upper values of a bound in the usual shape; None for anything else."""
    match = _RANGE.fullmatch(text)
    if match is None:
        return None
    return _tokens(match.group(1)), _tokens(match.group(2))


def _tokens(items: str) -> list[_Token]:
    """The values of a list `_RANGE` matched, without its parentheses."""
    return [
        (word[1:-1].replace("''", "'"), True) if word[0] == "'" else (word, False)
        for word in _TOKENS.findall(items)
    ]


def _careful_lists(text: str) -> tuple[list[_Token], list[_Token]]:
    """The lower and upper values of a bound, read a character at a time; BoundSyntaxError
    saying where, if it is not a range bound."""
    prefix = "FOR VALUES FROM "
    if not text.startswith(prefix):
        raise BoundSyntaxError(f"not a range bound: {text!r}")
    lower_tokens, pos = _parse_list(text, len(prefix))
    if not text.startswith(" TO ", pos):
        raise BoundSyntaxError(f"expected TO in {text!r}")
    upper_tokens, pos = _parse_list(text, pos + 4)
    if pos != len(text):
        raise BoundSyntaxError(f"unexpected text after bound: {text[pos:]!r}")
    return lower_tokens, upper_tokens


def _parse_list(text: str, pos: int) -> tuple[list[_Token], int]:
    if not text.startswith("(", pos):
        raise BoundSyntaxError(f"expected '(' at {pos} in {text!r}")
    pos += 1
    tokens: list[_Token] = []
    while True:
        if text.startswith("'", pos):
            pos += 1
            chunks: list[str] = []
            while True:
                end = text.find("'", pos)
                if end < 0:
                    raise BoundSyntaxError(f"unterminated literal in {text!r}")
                chunks.append(text[pos:end])
                if text.startswith("''", end):
                    chunks.append("'")
                    pos = end + 2
                    continue
                pos = end + 1
                break
            tokens.append(("".join(chunks), True))
        else:
            end = pos
            while end < len(text) and text[end] not in ",)":
                end += 1
            word = text[pos:end]
            if not _BARE.fullmatch(word):
                # ruleutils prints only MINVALUE/MAXVALUE and numbers (true/false) bare; anything
                # else, e.g. E'...' from a session without standard_conforming_strings, would be
                # read as the wrong value
                raise BoundSyntaxError(f"unexpected value {word!r} at {pos} in {text!r}")
            tokens.append((word, False))
            pos = end
        if text.startswith(", ", pos):
            pos += 2
        elif text.startswith(")", pos):
            return tokens, pos + 1
        else:
            raise BoundSyntaxError(f"expected ',' or ')' at {pos} in {text!r}")


def _convert(token: _Token, kind: ColumnKind) -> BoundValue:
    word, quoted = token
    if not quoted:
        if word == "MINVALUE":
            return Special.MINVALUE
        if word == "MAXVALUE":
            return Special.MAXVALUE
    try:
        if kind is ColumnKind.TEXT:
            return word
        if kind is ColumnKind.INTEGER:
            return int(word)
        if kind is ColumnKind.NUMERIC:
            number = Decimal(word)
            if not number.is_finite():
                return Special.UNREADABLE
            return int(number) if number == number.to_integral_value() else number
        if kind is ColumnKind.UUID:
            return uuid.UUID(word)
        if kind is ColumnKind.DATE:
            return dt.date.fromisoformat(word)
        if kind is ColumnKind.TIMESTAMP:
            value = dt.datetime.fromisoformat(word)
            return value if value.tzinfo is None else Special.UNREADABLE
        if kind is ColumnKind.TIMESTAMPTZ:
            value = dt.datetime.fromisoformat(word)
            if value.tzinfo is None:
                return Special.UNREADABLE
            return value.astimezone(dt.UTC)
    except (ValueError, OverflowError, InvalidOperation):
        # 'infinity', BC dates, years past 9999 (or pushed past them by a non-UTC offset)
        return Special.UNREADABLE
    return Special.UNREADABLE
