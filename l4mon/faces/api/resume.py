"""``/ws?last_seq=N``: where a reconnecting console resumes, checked before the upgrade."""

from __future__ import annotations

from fastapi import HTTPException

#: Journal sequence numbers are SQLite/PostgreSQL 64-bit integers: at most 19 digits, and
#: not every 19-digit number fits (a larger one would fail in the database, a 500).
MAX_SEQ_DIGITS = 19
MAX_SEQ = 2**63 - 1


def parse_last_seq(raw: str | None) -> int | None:
    """None when absent or empty; else ASCII decimal digits within ``MAX_SEQ_DIGITS``, or 400.
    ``str.isdigit`` is not enough: it is true for "²", which ``int`` then refuses (a 500)."""
    if not raw:
        return None
    if len(raw) > MAX_SEQ_DIGITS or not (raw.isascii() and raw.isdigit()) \
            or int(raw) > MAX_SEQ:
        raise HTTPException(status_code=400, detail="last_seq must be a whole number from 0 "
                                                    "to 2**63-1")
    return int(raw)
