"""Who may do what. Two scopes: the write token (`ServiceOptions.token`) reads and changes;
the read token (`read_token`) only reads. Reads are open unless `read_requires_token`
(`/metrics` also by `metrics_requires_token`); everything that changes something needs the
write token: 401 without a token, 403 with a wrong one, with the read token, or when the
service has no write token at all.

A token is only ever taken from `Authorization: Bearer`: no cookie, no basic auth, no query
parameter, so a page of another origin has no ambient credential to ride on (CSRF), and
no CORS header lets it read an answer. A given token is compared with every configured one,
each in constant time and without stopping at a match, so the timing tells neither the
token nor which scope matched."""

import hashlib
import secrets
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from ...model.service_options import ServiceOptions

# No `from __future__ import annotations`: FastAPI reads the dependencies' annotations.

_bearer = HTTPBearer(auto_error=False, description="the service's token")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


@dataclass(frozen=True)
class Access:
    """The dependencies a route lists: `dependencies=[access.read]`, `[access.write]`, or
    `[access.metrics]` for /metrics."""

    read: Any
    write: Any
    metrics: Any
    options: ServiceOptions | None = None
    """The options they were made from (the UI's mount reads where the service listens)."""


def _digest(token: str) -> bytes:
    """Tokens are compared as digests: equal lengths, so not even a token's length shows."""
    return hashlib.sha256(token.encode()).digest()


def scope_of(options: ServiceOptions, given: str) -> str | None:
    """ "write", "read" or None (no configured token matches), every token compared."""
    probe = _digest(given)
    write = read = False
    if options.token is not None:
        write = secrets.compare_digest(probe, _digest(options.token))
    if options.read_token is not None:
        read = secrets.compare_digest(probe, _digest(options.read_token))
    return "write" if write else "read" if read else None


def access(options: ServiceOptions) -> Access:
    def given_scope(credentials: HTTPAuthorizationCredentials | None, what: str) -> str:
        if credentials is None:
            raise HTTPException(401, f"{what} needs the header Authorization: Bearer <token>")
        scope = scope_of(options, credentials.credentials)
        if scope is None:
            raise HTTPException(403, "the bearer token is not this service's token")
        return scope

    def can_write(credentials: Credentials) -> None:
        if options.token is None:
            raise HTTPException(
                403, "changing things is disabled: the service has no token configured (read-only)"
            )
        if given_scope(credentials, "changing things") != "write":
            raise HTTPException(
                403,
                "the bearer token is the read-only token: changing things needs the write token",
            )

    def can_read(credentials: Credentials) -> None:
        if options.read_requires_token:
            given_scope(credentials, "reading")

    def can_scrape(credentials: Credentials) -> None:
        if options.read_requires_token or options.metrics_requires_token:
            given_scope(credentials, "reading the metrics")

    return Access(
        read=Depends(can_read),
        write=Depends(can_write),
        metrics=Depends(can_scrape),
        options=options,
    )
