"""Who is asking: bearer tokens, kept only as SHA-256 hashes, each with a name and a role.

Roles are ordered: ``viewer`` reads, ``operator`` also acknowledges, resolves and goes on duty,
``admin`` may do everything. A token is random (``secrets.token_urlsafe``, 192 bits), so a plain
SHA-256 is enough to keep it useless if the config or journal leaks; no salt or slow hash is
needed as it would be for a password a person chose.

Tokens come from two places. The config's (and those a demo issues in memory) are fixed for
the life of the process. The journal's can be issued, revoked and given an expiry by
``l4mon token`` while the hub runs, so the store follows the journal's *token generation* (a
value in ``meta`` that every change of the tokens table replaces, in the same transaction):

- a request bearing a journal token re-reads the generation first (one indexed read), so the
  request after ``l4mon token revoke`` is refused, not the one after some delay;
- an unknown token re-reads it at most once per ``UNKNOWN_RECHECK_S``, so a token issued a
  moment ago works within a second while a stranger's flood of made-up tokens costs the
  journal at most one read a second.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import math
import secrets
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Literal, NamedTuple, Protocol

import msgspec

log = logging.getLogger("l4mon")

Role = Literal["viewer", "operator", "admin"]
ROLE_RANK: Final[dict[str, int]] = {"viewer": 0, "operator": 1, "admin": 2}
#: The ``meta`` key whose value changes with every change of the journal's tokens table.
TOKENS_GENERATION: Final = "tokens_generation"
#: Longest presented token that is hashed at all: ours are 32 characters; a longer one is
#: refused without spending a hash on it (a header can be 16 KiB long).
MAX_TOKEN_CHARS: Final = 256
#: How often, at most, an unknown token makes the store look for tokens issued meanwhile.
UNKNOWN_RECHECK_S: Final = 1.0


class Principal(NamedTuple):
    name: str
    role: str
    #: Epoch seconds after which the token is refused; None: never.
    expires_at: float | None = None
    #: The token's hash: what a session is tied to (a name can be revoked and issued again).
    digest: str = ""

    def can(self, role: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]

    def valid_at(self, now: float) -> bool:
        return self.expires_at is None or now < self.expires_at


class TokenEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One ``[[auth.tokens]]`` entry of the hub config."""

    name: str
    role: Role
    sha256: str

    def __post_init__(self) -> None:
        if len(self.sha256) != 64 or any(c not in "0123456789abcdef" for c in self.sha256):
            raise ValueError(f"auth token {self.name!r}: sha256 must be 64 lowercase hex digits")


class TokenJournal(Protocol):
    """What the store needs of the journal: its token rows and their generation."""

    location: str

    def tokens(self) -> list[dict[str, Any]]: ...
    def meta(self, key: str) -> str | None: ...


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(24)


def _principals(rows: Iterable[Mapping[str, Any]]) -> dict[str, Principal]:
    out: dict[str, Principal] = {}
    for row in rows:
        if row.get("revoked_at") is not None:
            continue
        if row["role"] not in ROLE_RANK:
            raise ValueError(f"unknown role {row['role']!r} for {row['name']!r}")
        out[row["sha256"]] = Principal(row["name"], row["role"], row.get("expires_at"),
                                       row["sha256"])
    return out


def _match(table: Mapping[str, Principal], digest: str) -> Principal | None:
    """Compared with every entry in constant time each, so the answer's timing says nothing
    about which hash (if any) was close."""
    found = None
    for known, principal in table.items():
        if hmac.compare_digest(known, digest):
            found = principal
    return found


class TokenStore:
    """Verifies presented tokens against the stored hashes, following the journal's changes."""

    def __init__(self, entries: Iterable[tuple[str, str, str]] | None = None, *,
                 journal: TokenJournal | None = None) -> None:
        self._fixed: dict[str, Principal] = _principals(
            {"name": name, "role": role, "sha256": digest} for name, role, digest in entries or [])
        self._journal = journal
        self._journaled: dict[str, Principal] = {}
        self._generation: str | None = None
        self._checked_at = -math.inf
        self._failing = False
        #: Called after the journal's tokens changed (sessions on a revoked token close).
        self.on_change: list[Callable[[], None]] = []
        if journal is not None:
            self._journaled = _principals(journal.tokens())
            self._generation = journal.meta(TOKENS_GENERATION)

    def issue(self, name: str, role: Role) -> tuple[str, str]:
        """A new token for ``name``, valid while this process runs: returns (token, its
        hash). The token is not kept."""
        if role not in ROLE_RANK:
            raise ValueError(f"unknown role {role!r} for {name!r}")
        token = new_token()
        digest = hash_token(token)
        self._fixed[digest] = Principal(name, role, None, digest)
        return token, digest

    def verify(self, token: str | None, now: float) -> Principal | None:
        """The token's principal, or None: unknown, revoked, or expired at ``now``."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            return None
        digest = hash_token(token)
        principal = _match(self._fixed, digest)
        if principal is None and self._journal is not None:
            known = _match(self._journaled, digest) is not None
            if known or now - self._checked_at >= UNKNOWN_RECHECK_S:
                self.refresh(now)
            principal = _match(self._journaled, digest)
        return principal if principal is not None and principal.valid_at(now) else None

    def holds(self, principal: Principal, now: float) -> bool:
        """Whether ``principal``'s token is still good at ``now`` (as of the last refresh)."""
        current = self._fixed.get(principal.digest) or self._journaled.get(principal.digest)
        return current is not None and current.valid_at(now)

    def refresh(self, now: float) -> bool:
        """Re-read the journal's tokens if their generation changed; True if they did. A
        journal that does not answer keeps the tokens as last read (logged): it cannot have
        recorded a revocation either."""
        journal = self._journal
        if journal is None:
            return False
        self._checked_at = now
        try:
            generation = journal.meta(TOKENS_GENERATION)
            if generation == self._generation:
                self._failing = False
                return False
            journaled = _principals(journal.tokens())
        except Exception as error:  # any journal failure: keep what we have
            if not self._failing:  # said once per outage, not once per request
                log.warning("tokens: cannot re-read the journal %s (%s); keeping the tokens "
                            "as last read", journal.location, error)
            self._failing = True
            return False
        self._journaled, self._generation, self._failing = journaled, generation, False
        for listener in self.on_change:
            listener()
        return True

    def __len__(self) -> int:
        return len(self._fixed) + len(self._journaled)


_UNITS: Final = {"s": 1.0, "m": 60.0, "h": 3_600.0, "d": 86_400.0, "w": 604_800.0}


def parse_expiry(text: str, now: float) -> float:
    """``--expires``: a duration from ``now`` (``90m``, ``12h``, ``30d``, ``2w``) or a time
    (ISO 8601, UTC unless it says: ``2026-12-31``, ``2026-12-31T18:00+01:00``) as epoch
    seconds; ValueError for anything else, or a time not after ``now``."""
    text = text.strip()
    number, unit = text[:-1], text[-1:].lower()
    if unit in _UNITS and number.replace(".", "", 1).isdigit() and number.isascii():
        seconds = float(number) * _UNITS[unit]
        if seconds <= 0:
            raise ValueError(f"--expires {text!r}: a duration must be more than 0")
        return now + seconds
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--expires {text!r}: give a duration (90m, 12h, 30d, 2w) or a date "
                         "or time (2026-12-31, 2026-12-31T18:00+01:00)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    at = when.timestamp()
    if at <= now:
        raise ValueError(f"--expires {text!r} is not in the future")
    return at
