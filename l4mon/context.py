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
    return {"hub_config": data, "rules": rules_path.read_text(encoding="utf-8"),
            "site_plan": None if site is None else msgspec.to_builtins(site)}


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
