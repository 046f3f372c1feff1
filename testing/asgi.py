"""One HTTP request to a hub's app in-process (no socket), as the API tests make them.

The app is built from the runtime for each call, so a test sees its runtime as it is then.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from l4mon.faces.api.app import create_app
from l4mon.runtime import Runtime


def request(runtime: Runtime, method: str, path: str, *, token: str | None = None,
            params: Any = None, json: Any = None, timeout: float = 5.0) -> httpx.Response:
    """``method path`` with ``token`` as a bearer token (none: no header)."""
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(runtime))
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with httpx.AsyncClient(transport=transport, base_url="http://hub",
                                     headers=headers, timeout=timeout) as client:
            return await client.request(method, path, params=params, json=json)
    return asyncio.run(call())
