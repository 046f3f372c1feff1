"""The two modems every simulated shuttle carries; per-link lists follow the order of ``LINKS``."""

from __future__ import annotations

from typing import Final, Literal

LinkName = Literal["l5g", "lte"]
LINKS: Final[tuple[LinkName, ...]] = ("l5g", "lte")
