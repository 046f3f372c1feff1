"""What a campaign replays: its inputs expanded into entries, each with where its results go.

Every input is checked before any replay starts, so a typo in the 300th path fails at once,
not after hours of work on the 299 before it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from telemetry.drivelog import MANIFEST


class CampaignError(ValueError):
    """Inputs a campaign cannot run; names the input and what is wrong with it."""


@dataclass(frozen=True)
class Entry:
    """One replay of the campaign. ``path`` is spelled as a serial ``l4mon replay PATH`` is
    given it (the results record it), ``name`` is its folder under the campaign's output."""

    path: str
    name: str


def _one(given: str) -> list[Entry]:
    path = Path(given)
    if path.is_file():
        if path.suffix.lower() != ".toml":
            raise CampaignError(f"{given}: not a scenario (.toml) or a drive log; import a "
                                "drive-test file first (l4mon import)")
        return [Entry(path=given, name=path.stem)]
    if (path / MANIFEST).is_file():
        return [Entry(path=given, name=path.resolve().name)]
    if path.is_dir():
        found = sorted(p.parent.name for p in path.glob(f"*/{MANIFEST}"))
        if not found:
            raise CampaignError(f"{given}: neither a drive log nor a folder of drive logs "
                                f"(no {MANIFEST} in it or its subfolders)")
        folder = path.resolve().name
        return [Entry(path=str(path / child), name=f"{folder}/{child}") for child in found]
    raise CampaignError(f"{given}: no such file or directory")


def expand(inputs: list[str]) -> list[Entry]:
    """Drive logs, scenario files and folders of drive logs (each log of a folder in name
    order), in the order given; two entries that would write the same folder are refused."""
    if not inputs:
        raise CampaignError("no inputs: give drive logs, folders of them or scenario files")
    entries = [entry for given in inputs for entry in _one(given)]
    paths = Counter(str(Path(e.path).resolve()) for e in entries)
    twice = sorted(p for p, n in paths.items() if n > 1)
    if twice:
        raise CampaignError(f"given twice: {', '.join(twice)}")
    names = Counter(e.name for e in entries)
    clashes = sorted(n for n, count in names.items() if count > 1)
    if clashes:
        raise CampaignError(f"inputs with the same name would write the same results folder: "
                            f"{', '.join(clashes)}; give their parent folders instead (each "
                            "log is then named FOLDER/LOG)")
    return entries
