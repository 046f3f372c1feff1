"""Who is asking: bearer tokens, kept only as SHA-256 hashes, each with a name and a role.

Roles are ordered: ``viewer`` reads, ``operator`` also acknowledges, resolves and goes on duty,
``admin`` may do everything. A token is random (``secrets.token_urlsafe``, 192 bits), so a plain
SHA-256 is enough to keep it useless if the config or journal leaks; no salt or slow hash is
needed as it would be for a password a person chose.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Final, Literal, NamedTuple

import msgspec

Role = Literal["viewer", "operator", "admin"]
ROLE_RANK: Final[dict[str, int]] = {"viewer": 0, "operator": 1, "admin": 2}


class Principal(NamedTuple):
    name: str
    role: str

    def can(self, role: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


class TokenEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One ``[[auth.tokens]]`` entry of the hub config."""

    name: str
    role: Role
    sha256: str

    def __post_init__(self) -> None:
        if len(self.sha256) != 64 or any(c not in "0123456789abcdef" for c in self.sha256):
            raise ValueError(f"auth token {self.name!r}: sha256 must be 64 lowercase hex digits")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(24)


class TokenStore:
    """Verifies presented tokens against the stored hashes."""

    def __init__(self, entries: list[tuple[str, str, str]] | None = None) -> None:
        self._by_hash: dict[str, Principal] = {}
        for name, role, digest in entries or []:
            self._add(name, role, digest)

    def _add(self, name: str, role: str, digest: str) -> None:
        if role not in ROLE_RANK:
            raise ValueError(f"unknown role {role!r} for {name!r}")
        self._by_hash[digest] = Principal(name, role)

    def issue(self, name: str, role: Role) -> tuple[str, str]:
        """A new token for ``name``: returns (token, its hash). The token is not kept."""
        token = new_token()
        digest = hash_token(token)
        self._add(name, role, digest)
        return token, digest

    def verify(self, token: str | None) -> Principal | None:
        if not token:
            return None
        digest = hash_token(token)
        for known, principal in self._by_hash.items():
            if hmac.compare_digest(known, digest):
                return principal
        return None

    def __len__(self) -> int:
        return len(self._by_hash)
