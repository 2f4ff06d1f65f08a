"""Who may do what: reads are open unless `ServiceOptions.read_requires_token`; everything that
changes something needs `Authorization: Bearer <token>` (401 without it, 403 with a wrong one,
403 when the service has no token at all)."""

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
    """The dependencies a route lists: `dependencies=[access.read]` or `[access.write]`."""

    read: Any
    write: Any


def access(options: ServiceOptions) -> Access:
    def check_token(credentials: HTTPAuthorizationCredentials | None, what: str) -> None:
        if options.token is None:
            raise HTTPException(
                403, f"{what} is disabled: the service has no token configured (read-only)"
            )
        if credentials is None:
            raise HTTPException(401, f"{what} needs the header Authorization: Bearer <token>")
        given = credentials.credentials.encode()
        if not secrets.compare_digest(given, options.token.encode()):
            raise HTTPException(403, "the bearer token is not this service's token")

    def can_write(credentials: Credentials) -> None:
        check_token(credentials, "changing things")

    def can_read(credentials: Credentials) -> None:
        if options.read_requires_token:
            check_token(credentials, "reading")

    return Access(read=Depends(can_read), write=Depends(can_write))
