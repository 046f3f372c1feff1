"""The site register: who may speak on the wire, and as what.

One TOML file names the hubs and broker bridges, and per site its vehicles and RSUs. The broker
enforces it (``l4mon acl`` writes Mosquitto's ACL from it: each name may publish only its own
kind's topics on its own site) and the hub enforces it again (telemetry/fleet.py: an id the
register does not know, or of the other kind, is quarantined and never becomes a vehicle).
Two enforcers of one file, because either alone can be misconfigured: a broker running an old
ACL, a hub on a broker without one.

    hubs = ["l4mon-hub-a", "l4mon-hub-b"]
    bridges = ["l4mon-bridge"]

    [sites.depot]
    vehicles = ["shuttle-01", "shuttle-02"]
    rsus = ["rsu-araya"]

A name is one certificate's CN: it appears once in the whole file, under one role, since the
broker knows a client by that name alone.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Final, NamedTuple

import msgspec

from telemetry.topics import valid_name

VEHICLE: Final = "vehicle"
RSU: Final = "rsu"


class RegisterError(ValueError):
    """The register file is unreadable or says something invalid."""


class SiteRoster(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One site's vehicles and roadside units, by id."""

    vehicles: tuple[str, ...] = ()
    rsus: tuple[str, ...] = ()


class Known(NamedTuple):
    """What the register says of one id: its kind (``VEHICLE`` or ``RSU``) and its site."""

    kind: str
    site: str


class RegisterFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The register file as written, validated: every name valid, each in one role only."""

    hubs: tuple[str, ...] = ()
    bridges: tuple[str, ...] = ()
    sites: dict[str, SiteRoster] = {}

    def __post_init__(self) -> None:
        roles: dict[str, str] = {}

        def claim(name: str, role: str) -> None:
            if not valid_name(name):
                raise ValueError(f"{role} {name!a}: a name is 1 to 64 of A-Z a-z 0-9 "
                                 "_ . : -, at least one letter or digit")
            if name in roles:
                raise ValueError(f"{name!r} is both {roles[name]} and {role}: one certificate "
                                 "name, one role")
            roles[name] = role

        for name in self.hubs:
            claim(name, "hub")
            # Its command connection's certificate name (l4mon/commands/connection.py).
            claim(f"{name}-commands", f"command identity of hub {name}")
        for name in self.bridges:
            claim(name, "bridge")
        for site, roster in self.sites.items():
            if not valid_name(site):
                raise ValueError(f"site {site!a} is not a valid site name")
            for name in roster.vehicles:
                claim(name, f"vehicle of site {site}")
            for name in roster.rsus:
                claim(name, f"RSU of site {site}")


class Register:
    """The register as the hub asks it: ``known`` answers for one id in one dict lookup."""

    __slots__ = ("_known", "file")

    def __init__(self, file: RegisterFile) -> None:
        self.file = file
        known = {name: Known(VEHICLE, site) for site, roster in file.sites.items()
                 for name in roster.vehicles}
        known.update({name: Known(RSU, site) for site, roster in file.sites.items()
                      for name in roster.rsus})
        self._known = known

    def known(self, name: str) -> Known | None:
        """The kind and site of a vehicle or RSU id; None when the register does not name it."""
        return self._known.get(name)

    def vehicles(self) -> list[tuple[str, str]]:
        """Every (site, vehicle id), in file order."""
        return [(site, v) for site, roster in self.file.sites.items() for v in roster.vehicles]

    def rsus(self) -> list[tuple[str, str]]:
        """Every (site, RSU id), in file order."""
        return [(site, r) for site, roster in self.file.sites.items() for r in roster.rsus]


def parse_register(data: dict[str, object], *, source: str = "register") -> Register:
    try:
        return Register(msgspec.convert(data, RegisterFile))
    except (msgspec.ValidationError, ValueError) as error:
        raise RegisterError(f"{source}: {error}") from None


def load_register(path: str | Path) -> Register:
    """The register at ``path``; RegisterError naming what is wrong."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as error:
        raise RegisterError(f"cannot read register {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise RegisterError(f"{path}: not valid TOML: {error}") from None
    return parse_register(data, source=str(path))
