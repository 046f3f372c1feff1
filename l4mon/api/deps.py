"""Who may call what: the bearer-token check every ``/api`` route and ``/ws`` goes through."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request

from l4mon.auth import Principal, TokenStore


def bearer(header: str | None) -> str | None:
    if header and header[:7].lower() == "bearer ":
        return header[7:].strip()
    return None


def require(tokens: TokenStore, role: str) -> Callable[[Request], Coroutine[Any, Any, Principal]]:
    """A FastAPI dependency: the caller's principal, or 401 (no/unknown token) / 403 (role)."""

    async def dependency(request: Request) -> Principal:
        principal = tokens.verify(bearer(request.headers.get("authorization")))
        if principal is None:
            raise HTTPException(status_code=401, detail="a valid bearer token is required",
                                headers={"WWW-Authenticate": "Bearer"})
        if not principal.can(role):
            raise HTTPException(status_code=403,
                                detail=f"{principal.role} may not do this; needs {role}")
        return principal

    return dependency
