"""One task of a campaign: ``l4mon replay PATH`` of one input, in whichever process runs it.

It calls what the serial command calls, with the same arguments, so its results are the
serial run's bytes; it returns those bytes for the client to write, with the digest the
campaign's summary is made of. An input that cannot be replayed is returned with its reason
rather than raised, so one bad log among a thousand stops nothing but itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scenarios.campaign.inputs import Entry
from scenarios.campaign.summary import digest, outcome_lines


@dataclass(frozen=True)
class ReplaySettings:
    """``l4mon replay``'s options that change results; loaded in each worker from their
    paths, as the serial command loads them."""

    config: str | None = None
    site: str | None = None
    linkmap: str | None = None


@dataclass(frozen=True)
class Replayed:
    """What came of one entry: its results' bytes and digest, or why it could not run."""

    entry: Entry
    data: bytes | None
    digest: dict[str, Any] | None
    lines: tuple[str, ...]
    error: str | None = None


def replay_entry(task: tuple[Entry, ReplaySettings]) -> Replayed:
    """Replay one entry as ``l4mon replay PATH [--config] [--site] [--linkmap]`` does."""
    from l4mon.config import load_config
    from scenarios.scenario import encode_results, prepare, run_prepared
    from telemetry.site import DEMO_SITE_PATH, load_site

    entry, settings = task
    try:
        config = load_config(settings.config) if settings.config else None
        site = None if settings.site is None else load_site(
            DEMO_SITE_PATH if settings.site == "demo" else settings.site)
        doc = run_prepared(prepare(Path(entry.path), config=config, site=site,
                                   linkmap=settings.linkmap))
    except (ValueError, OSError) as error:  # what the serial command answers with exit 2
        return Replayed(entry=entry, data=None, digest=None, lines=(), error=str(error))
    return Replayed(entry=entry, data=encode_results(doc), digest=digest(entry, doc),
                    lines=tuple(outcome_lines(doc, entry.path)))
