"""A campaign run: every entry replayed by the engine, each result written as it comes back
(in the inputs' order), then the summary over all of them.

The client alone writes: workers on other machines never need the output folder, and a
result is on disk before the next is waited for, so a stopped campaign keeps what it did.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scenarios.campaign.engines import Engine, ordered
from scenarios.campaign.inputs import Entry
from scenarios.campaign.job import Replayed, ReplaySettings, replay_entry
from scenarios.campaign.summary import RESULTS_NAME, SUMMARY_NAME, campaign_document


@dataclass
class Campaign:
    """What the run did: the summary document and its bytes, and the inputs refused."""

    document: dict[str, Any]
    data: bytes
    refused: list[dict[str, str]] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.document["verdict"] == "fail"


def run_campaign(entries: list[Entry], settings: ReplaySettings, engine: Engine, *,
                 out: Path | None = None,
                 done: Callable[[Replayed], None] | None = None) -> Campaign:
    """Replay ``entries`` on ``engine``; with ``out``, write ``out/NAME/results.json`` for
    each and ``out/campaign.json``. ``done`` hears of each entry, in the inputs' order."""
    from scenarios.scenario import encode_results

    digests: list[dict[str, Any]] = []
    refused: list[dict[str, str]] = []
    tasks = [(entry, settings) for entry in entries]
    for replayed in ordered(engine, replay_entry, tasks):
        if replayed.error is not None:
            refused.append({"path": replayed.entry.path, "reason": replayed.error})
        else:
            assert replayed.digest is not None and replayed.data is not None
            digests.append(replayed.digest)
            if out is not None:
                target = out / replayed.entry.name / RESULTS_NAME
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(replayed.data)
        if done is not None:
            done(replayed)
    document = campaign_document(digests, refused)
    data = encode_results(document)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / SUMMARY_NAME).write_bytes(data)
    return Campaign(document=document, data=data, refused=refused)
