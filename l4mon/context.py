"""What a hub ran with, kept in a recording so that its replay decides exactly as it did.

``l4mon serve --record`` writes the hub's config (minus what only the live process needs and
what may be secret: MQTT, HTTP, auth, the journal's location), the alert rules' TOML text and
the site plan into the drive log's manifest; ``l4mon replay LOG`` builds the same hub from them,
unless ``--config`` / ``--site`` override. A log without them (older recordings, imports)
replays on the defaults, as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from l4mon.alerts.rules import DEFAULT_RULES_PATH, Rule, parse_rules
from l4mon.config import HubConfig, config_from_dict
from telemetry.drivelog import Manifest
from telemetry.linkmap.model import LinkMapError
from telemetry.linkmap.outlook import fingerprint
from telemetry.linkmap.store import read_manifest as read_linkmap_manifest
from telemetry.site import Site, parse_site

#: Config sections a replay neither needs nor may see (credentials, listen addresses, paths).
LIVE_ONLY = ("mqtt", "http", "auth")


@dataclass(frozen=True)
class Context:
    config: HubConfig
    rules: list[Rule] | None  # None: the config's own rules file (or the default set)
    site: Site | None


def recorded(config: HubConfig, site: Site | None) -> dict[str, Any]:
    """The manifest fields that let a replay build this hub again."""
    data = msgspec.to_builtins(config)
    for section in LIVE_ONLY:
        data.pop(section, None)
    rules_path = Path(config.alerts.rules) if config.alerts.rules else DEFAULT_RULES_PATH
    data["alerts"] = {k: v for k, v in data["alerts"].items() if k not in ("journal", "rules")}
    data.get("site", {}).pop("path", None)
    data.get("linkmap", {}).pop("path", None)  # a path of this machine: kept apart, below
    return {"hub_config": data, "rules": rules_path.read_text(encoding="utf-8"),
            "site_plan": None if site is None else msgspec.to_builtins(site),
            "linkmap": recorded_linkmap(config.linkmap.path) if config.linkmap.path else None}


def recorded_linkmap(path: str) -> dict[str, Any]:
    """Which map a hub looked ahead on: enough for a replay to find it again and to know
    whether the map it is given is that one."""
    manifest = read_linkmap_manifest(path)
    return {"path": str(Path(path).resolve()), "fingerprint": fingerprint(path),
            "rows": manifest.rows, "drives": manifest.drives}


def with_linkmap(config: HubConfig, path: str | None, weather: str = "unknown",
                 light: str = "unknown") -> HubConfig:
    """``config`` looking ahead on the map at ``path`` (none: no look-ahead) under the
    drive's own condition where it is known (a log's tags say what the weather was)."""
    data = msgspec.to_builtins(config)
    section = data.setdefault("linkmap", {})
    section["path"] = path or ""
    if path and weather != "unknown":
        section["weather"] = weather
    if path and light != "unknown":
        section["light"] = light
    return config_from_dict(data)


def linkmap_for_replay(manifest: Manifest, given: str | None) -> tuple[str | None, str]:
    """The map a replay of this log looks ahead on, and what to say about it: the one
    given, else the recorded one when it is still where it was and unchanged."""
    recorded_map = manifest.linkmap or {}
    if given is not None:
        if recorded_map and recorded_map.get("fingerprint") != fingerprint(given):
            return given, (f"given ({given}); not the map the recording hub used "
                           f"({recorded_map.get('path')}): its warnings may differ")
        return given, f"given ({given})"
    if not recorded_map:
        return None, "none"
    path = str(recorded_map.get("path", ""))
    try:
        same = fingerprint(path) == recorded_map.get("fingerprint")
    except LinkMapError:
        same = False
    if same:
        return path, f"recorded ({path})"
    return None, (f"recorded with {path or 'a map'}, which is gone or has changed: "
                  "weak_link_ahead is not replayed; give --linkmap MAP")


def replay_context(manifest: Manifest, *, config: HubConfig | None = None,
                   site: Site | None = None) -> Context:
    """The hub a replay of this log should run: what it recorded, with ``config`` and
    ``site`` (given by the validator) taking precedence."""
    if config is None:
        config = config_from_dict(manifest.hub_config) if manifest.hub_config else HubConfig()
        rules = parse_rules(manifest.rules, source="the recording's rules") \
            if manifest.rules else None
    else:
        rules = None
    if site is None and manifest.site_plan is not None:
        site = parse_site(manifest.site_plan, source="the recording's site plan")
    return Context(config=config, rules=rules, site=site)
