"""Where a journal lives, read from ``[alerts] journal`` / ``--journal``, and how to show it.

Two forms are understood: a file path (SQLite, the embedded default; ``:memory:`` for a journal
that lives as long as the process) and a ``postgresql://`` (or ``postgres://``) URL. Anything
else that looks like a URL is refused, naming the forms, rather than taken for a file path (it
used to become a folder named ``postgresql:`` with an SQLite file in it).

A URL may carry a password (``postgresql://hub:secret@db/l4mon``, or ``?password=secret``):
wherever a location is shown (log, console output, errors) it goes through ``redact``. On a
command line such a URL is refused (``ps`` shows every process's arguments to every user): the
password then comes from the config file, ``[alerts] journal_password_file``, or libpq's own
``PGPASSFILE`` / ``PGPASSWORD``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import unquote

POSTGRES_SCHEMES: Final = ("postgresql", "postgres")
FORMS: Final = ("a file path for SQLite (e.g. /var/lib/l4mon/journal.sqlite, or :memory:), or "
                "postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE for PostgreSQL")
_SCHEME: Final = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_QUERY_PASSWORD: Final = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class JournalLocation:
    kind: Literal["sqlite", "postgresql"]
    #: The file path, or the whole URL (with its password: never show it, show ``shown``).
    target: str

    @property
    def shown(self) -> str:
        return redact(self.target)


def parse_location(text: str) -> JournalLocation:
    """``text`` as a journal location; ValueError naming the supported forms otherwise."""
    if not text.strip():
        raise ValueError(f"the journal location is empty: give {FORMS}")
    match = _SCHEME.match(text)
    scheme = match.group(1).lower() if match else ""
    if scheme in POSTGRES_SCHEMES:
        if not text[match.end():].startswith("//"):  # type: ignore[union-attr]
            raise ValueError(f"journal {redact(text)!r} is not a PostgreSQL URL: give {FORMS}")
        return JournalLocation("postgresql", text)
    if scheme and text[match.end():].startswith("//"):  # type: ignore[union-attr]
        hint = " (for SQLite give the file's path itself)" if scheme == "sqlite" else ""
        raise ValueError(f"journal {redact(text)!r}: the hub does not understand "
                         f"{scheme}://{hint}; give {FORMS}")
    return JournalLocation("sqlite", text)


def redact(location: str) -> str:
    """``location`` fit to show: a URL's password replaced by ``***`` (``user:***@host``,
    ``password=***``); a file path unchanged."""
    parts = _url(location)
    if parts is None:
        return location
    scheme, address, query = parts
    userinfo, _, host = address.rpartition("@")
    if _password(address) is not None:
        address = f"{userinfo.partition(':')[0]}:***@{host}"
    query = _QUERY_PASSWORD.sub(r"\1***", f"?{query}")[1:]
    return f"{scheme}://{address}{'?' if query else ''}{query}"


def carries_password(location: str) -> bool:
    """Whether a URL holds a password (``user:PASSWORD@`` or ``password=``)."""
    parts = _url(location)
    if parts is None:
        return False
    _, address, query = parts
    return _password(address) is not None or bool(_QUERY_PASSWORD.search(f"?{query}"))


def scrub(message: str, location: str) -> str:
    """``message`` (a driver's error, which may quote its input) without ``location``'s
    password, raw or percent-decoded."""
    parts = _url(location)
    if parts is None:
        return message
    _, address, query = parts
    secrets = [m.group(0).partition("=")[2] for m in _QUERY_PASSWORD.finditer(f"?{query}")]
    secrets.append(_password(address) or "")
    for secret in sorted({s for raw in secrets for s in (raw, unquote(raw)) if s},
                         key=len, reverse=True):
        message = message.replace(secret, "***")
    return message


def _url(location: str) -> tuple[str, str, str] | None:
    """(scheme, address, query) of a URL (address: ``[user[:password]@]host[:port]/path``);
    None for a file path."""
    if not _SCHEME.match(location) or "://" not in location:
        return None
    scheme, _, rest = location.partition("://")
    address, _, query = rest.partition("?")
    return scheme, address, query


def _password(address: str) -> str | None:
    """The password in a URL's address (up to its last ``@``: libpq's parser stops at the
    first, so a raw ``@`` in a password is hidden whole either way), or None."""
    userinfo, at, _ = address.rpartition("@")
    return userinfo.partition(":")[2] if at and ":" in userinfo else None
