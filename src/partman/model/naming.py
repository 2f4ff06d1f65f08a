"""Partition names: `<parent>_<tenant-slug>_p<period>`, at most 63 bytes, never colliding.

A name is for people reading `\\d+`; partman never reads bounds or tenants back from it. It must
still be unique: two tenants whose ids slug alike ("Acme" and "acme", "a b" and "a-b") or whose
names are cut at PostgreSQL's 63-byte identifier limit get a short hash of the full id, so they
never collide, and a name never claims more than the catalog says.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import uuid

from .columns import TenantValue

MAX_IDENTIFIER_BYTES = 63
_HASH_HEX = 8
_SAFE = re.compile(r"[^a-z0-9]+")
# What a hashed slug ends in: `_<hash>`, or the bare hash of an id that has no slug at all. A
# lossless slug must never look like that, or the id "ce47dfba" would name the same partition
# as the id "日本" (whose slug is just its hash).
_HASH_TAIL = re.compile(r"(?:^|_)[0-9a-f]{8}$")


def short_hash(*parts: str) -> str:
    digest = hashlib.blake2b("\x00".join(parts).encode(), digest_size=_HASH_HEX // 2)
    return digest.hexdigest()


def tenant_slug(tenant: TenantValue) -> str:
    """A lowercase ASCII slug; ends in `_<hash>` whenever the slug alone would lose information."""
    if isinstance(tenant, uuid.UUID):
        return tenant.hex  # lossless: a uuid's hex digits are the uuid
    if isinstance(tenant, int):
        # lossless: the digits, with `m` for minus (keeps -5 and 5 apart without a hash); a
        # parent's tenants are all of one type, so an int's slug never meets a string's
        return str(tenant) if tenant >= 0 else f"m{-tenant}"
    text = str(tenant)
    slug = _SAFE.sub("_", text.lower()).strip("_")
    lossless = slug == text and not _HASH_TAIL.search(slug)
    if lossless:
        return slug
    return f"{slug}_{short_hash(text)}" if slug else short_hash(text)


def period_label(lower: dt.datetime | dt.date, *, sub_day: bool) -> str:
    """`p20240131` for day and longer periods, `p20240131_0600` for hours (local wall time)."""
    # The date is formatted by hand: strftime's %Y does not zero-pad years before 1000 on glibc
    # ("p9990101" for 0999-01-01).
    label = f"p{lower.year:04d}{lower.month:02d}{lower.day:02d}"
    if sub_day and isinstance(lower, dt.datetime):
        label += f"_{lower.hour:02d}{lower.minute:02d}"
        if lower.second or lower.microsecond:
            label += f"{lower.second:02d}"
    return label


def partition_name(parent: str, tenant: TenantValue | None, label: str) -> str:
    """The partition's name, cut to 63 bytes with a hash of what was cut away."""
    head = parent if tenant is None else f"{parent}_{tenant_slug(tenant)}"
    name = f"{head}_{label}"
    if len(name.encode()) <= MAX_IDENTIFIER_BYTES:
        return name
    tag = short_hash(parent, "" if tenant is None else str(tenant))
    budget = MAX_IDENTIFIER_BYTES - len(label.encode()) - len(tag) - 2  # bytes, not characters
    if budget < 0:  # a label too long to keep whole: cut it too, its hash keeps names apart
        tag = short_hash(parent, "" if tenant is None else str(tenant), label)
        return f"{tag}_{_cut(label, MAX_IDENTIFIER_BYTES - len(tag) - 1)}"
    return f"{_cut(head, budget)}_{tag}_{label}"


def _cut(text: str, budget: int) -> str:
    """The longest prefix of text that fits in `budget` UTF-8 bytes, never splitting a character."""
    data = text.encode()[:budget]
    return data.decode(errors="ignore").rstrip("_")
