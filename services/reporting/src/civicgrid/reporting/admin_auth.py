"""Who may call ``/api/v1/admin/*``: a bearer token, or (with none configured) loopback only.

A rebuild costs a whole re-projection of the stream, so it is not for anyone who can reach the
port. With ``CIVICGRID_REPORTING_ADMIN_TOKEN`` set, every admin call needs
``Authorization: Bearer <token>`` (compared in constant time), loopback callers included: a
sidecar or a port-forward is loopback too. Without a token, only a caller on the loopback
interface is let in, so ``make run`` (everything on 127.0.0.1) works with no setup while a
service listening on a public address refuses admin calls until a token is configured.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

ADMIN_TOKEN_ENV = "CIVICGRID_REPORTING_ADMIN_TOKEN"

ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {
        "description": "No bearer token: send Authorization: Bearer <token> (the service's "
        f"{ADMIN_TOKEN_ENV})"
    },
    403: {
        "description": "The token is wrong; or the service has no token configured and the "
        "caller is not on the loopback interface"
    },
}

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="adminToken",
    description=f"The reporting service's {ADMIN_TOKEN_ENV}. Without one configured, admin "
    "calls are accepted from loopback only, with no token.",
)
_Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def admin_token(env: dict[str, str] | None = None) -> str | None:
    """The configured token; an empty or blank value counts as none."""
    value = (os.environ if env is None else env).get(ADMIN_TOKEN_ENV, "").strip()
    return value or None


def _loopback(request: Request) -> bool:
    host = request.client.host if request.client else None
    if host is None:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def require_admin(token: str | None) -> Callable[..., Awaitable[None]]:
    """A FastAPI dependency for admin routes (documents the bearer scheme in OpenAPI)."""
    expected = token.encode() if token else None

    async def check(request: Request, credentials: _Credentials = None) -> None:
        if expected is None:
            if _loopback(request):
                return
            raise HTTPException(
                403,
                f"admin calls are refused: the service has no {ADMIN_TOKEN_ENV} configured, and"
                " without one only loopback callers are allowed",
            )
        if credentials is None:
            raise HTTPException(
                401,
                "admin calls need Authorization: Bearer <token>",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not hmac.compare_digest(credentials.credentials.encode(), expected):
            raise HTTPException(403, "wrong admin token")

    return check
