"""Who may call what: the bearer-token check every ``/api`` route and ``/ws`` goes through."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Depends, HTTPException, Request
from pydantic import BaseModel
from starlette.requests import HTTPConnection

from l4mon.auth import Principal, TokenStore
from l4mon.faces.api.limits import FailureLimiter
from l4mon.runtime import Runtime

#: The response header in which a standby names the leader's URL.
LEADER_HEADER = "X-L4mon-Leader"


def bearer(header: str | None) -> str | None:
    if header and header[:7].lower() == "bearer ":
        return header[7:].strip()
    return None


#: Where the gate (l4mon/faces/api/gate.py) leaves the caller's principal in the ASGI scope.
PRINCIPAL = "l4mon.principal"


def client_address(connection: HTTPConnection) -> str:
    """The peer address the failure limit is kept for: the socket's, or the client a trusted
    proxy names (``[http] trusted_proxies``; uvicorn rewrites the scope for those only)."""
    return connection.client.host if connection.client is not None else "unknown"


def authenticate(tokens: TokenStore, limiter: FailureLimiter | None, token: str | None,
                 client: str, now: float) -> Principal:
    """The caller's principal, or HTTPException 401 (bad token) / 429 (a bad token from an
    address that failed too often lately).

    The token is checked first, always: a good token passes whatever its address did, so
    nobody (a scanner behind the same NAT, a spoofed proxy header) can lock an operator out.
    Only failures are limited; a blocked address is answered 429 without being counted again.
    Shared by the HTTP gate and the WebSocket handshake, so both are limited alike.
    """
    principal = tokens.verify(token, now)
    if principal is not None:
        return principal
    if limiter is not None:
        wait = limiter.retry_after(client)
        if wait is not None:
            raise HTTPException(status_code=429,
                                detail="too many failed token checks from this address",
                                headers={"Retry-After": str(wait)})
        limiter.failed(client)
    raise HTTPException(status_code=401, detail="a valid bearer token is required",
                        headers={"WWW-Authenticate": "Bearer"})


def caller(connection: HTTPConnection) -> Principal | None:
    """The principal the gate found for this request; None for an anonymous public one."""
    principal = connection.scope.get(PRINCIPAL)
    return principal if isinstance(principal, Principal) else None


def require(role: str) -> Callable[[Request], Coroutine[Any, Any, Principal]]:
    """A FastAPI dependency: the caller's principal (the gate checked the token before the
    body was read), or 401 if it found none / 403 if the role is not enough."""

    async def dependency(request: Request) -> Principal:
        principal = caller(request)
        if principal is None:  # a route the gate took for public: closed, not open
            raise HTTPException(status_code=401, detail="a valid bearer token is required",
                                headers={"WWW-Authenticate": "Bearer"})
        if not principal.can(role):
            raise HTTPException(status_code=403,
                                detail=f"{principal.role} may not do this; needs {role}")
        return principal

    return dependency


class ErrorBody(BaseModel):
    """What every refusal carries (FastAPI's own shape for ``HTTPException``)."""

    detail: str


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the refusals a route can give, so clients (and schemathesis)
    know them: 401/429 come with every token check, 403 with a role check, 400 with a body."""
    described = {400: "the body is not JSON text (e.g. not UTF-8)",
                 413: "the body is larger than [http] max_body_bytes",
                 401: "no or unknown token", 403: "the token's role is not enough",
                 404: "no such object", 409: "the object is in the wrong state",
                 429: "too many failed token checks from this address; see Retry-After",
                 503: "this hub runs no alert engine, or is not the leader of its hub pair "
                      "(the detail and the X-L4mon-Leader header name the leader)"}
    return {code: {"model": ErrorBody, "description": described[code]} for code in codes}


def not_leader(runtime: Runtime) -> HTTPException:
    """503 for an operator's action on a hub that does not decide alerts (the standby of a
    pair, or a fenced former leader), naming the leader to send it to."""
    view = runtime.ha_view()
    leader = view["leader"] if view["leader"] != view["self"] else None
    if view["role"] == "fenced" and not runtime.peers:
        # No pair: nobody else leads. The journal is away and this hub reconnects by itself.
        return HTTPException(status_code=503, headers={"Retry-After": "2"},
                             detail="this hub's alert journal connection is lost; it "
                                    "reconnects by itself and takes actions again then: "
                                    "retry shortly")
    why = "is the standby of a hub pair" if view["role"] == "standby" else \
        "lost its journal connection, and with it the lead of its hub pair (it reconnects " \
        "and rejoins by itself)"
    where = f"the leader, {leader}" if leader else "the leader (not known yet)"
    return HTTPException(status_code=503,
                         detail=f"this hub {why}: alerts are decided and acknowledged on "
                                f"{where}; send it there (a console moves by itself)",
                         headers={LEADER_HEADER: leader} if leader else None)


def leading(runtime: Runtime, operator: Callable[[Request], Coroutine[Any, Any, Principal]]
            ) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """``operator`` for the routes that change alerts or duty, and then 503 unless this hub
    decides (``not_leader``): the token is checked first (401/403 as anywhere), and nothing
    is written on a hub that does not lead."""

    async def dependency(who: Principal = Depends(operator)) -> Principal:
        if not runtime.leading:
            raise not_leader(runtime)
        return who

    return dependency
