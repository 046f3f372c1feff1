"""The JSON response class every route uses."""

from __future__ import annotations

from typing import Any

import msgspec
from fastapi.responses import JSONResponse


class JSON(JSONResponse):
    """msgspec encodes our plain dicts several times faster than the stdlib.

    A ``JSONResponse`` for FastAPI, so the spec documents JSON bodies (not strings).
    """

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return msgspec.json.encode(content)
