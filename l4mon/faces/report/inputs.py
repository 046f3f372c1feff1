"""What a report is made from: drive logs (imported, generated or recorded) and replay results.

Every input is opened and checked before anything is computed, so a typo in the fourth path
fails in a second with its name rather than after an hour of aggregation. Each input carries
the condition it was driven in, the key every figure of the report is split by.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from telemetry.drivelog import MANIFEST, DriveLogError, Manifest, read_manifest

RESULTS_FORMAT = "l4mon-replay-results"
#: Weather that does not change a radio link enough to be its own condition.
_PLAIN_WEATHER = frozenset({"clear", "cloudy", "unknown"})


class ReportError(ValueError):
    """An input or option the report cannot be made from; names what is wrong."""


@dataclass(frozen=True)
class LogInput:
    path: Path
    manifest: Manifest
    condition: str
    files: tuple[Path, ...]
    rows: int


@dataclass(frozen=True)
class ResultsInput:
    path: Path
    doc: dict[str, Any]
    condition: str

    @property
    def log_path(self) -> Path | None:
        """The drive log this replay read, when it was one (so it need not be replayed again)."""
        info = self.doc.get("input", {})
        return Path(info["path"]).resolve() if info.get("kind") == "log" and info.get("path") \
            else None


def condition_label(conditions: dict[str, Any] | None) -> str:
    """``snow-night``, ``snow-daylight``, ``night``, ``daylight``...: weather that matters,
    then light, as the condition models in scenarios/conditions.py are named."""
    conditions = conditions or {}
    weather = str(conditions.get("weather") or "unknown")
    light = str(conditions.get("light") or "unknown")
    parts = [] if weather in _PLAIN_WEATHER else [weather]
    if light != "unknown":
        parts.append(light)
    if not parts and conditions.get("model"):  # a generator scenario without the tags
        return str(conditions["model"])
    return "-".join(parts) or "unknown"


def _log(path: Path) -> LogInput:
    try:
        manifest = read_manifest(path)
    except DriveLogError as error:
        raise ReportError(str(error)) from None
    files = tuple(sorted(path.rglob("*.parquet")))
    try:
        rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    except (OSError, ValueError) as error:
        raise ReportError(f"{path}: unreadable Parquet: {error}") from None
    import msgspec

    return LogInput(path=path, manifest=manifest, files=files, rows=rows,
                    condition=condition_label(msgspec.to_builtins(manifest.conditions)))


def _results(path: Path) -> ResultsInput:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ReportError(f"{path}: not a readable results file: {error}") from None
    if not isinstance(doc, dict) or doc.get("format") != RESULTS_FORMAT:
        raise ReportError(f"{path}: not an l4mon replay results file (format "
                          f"{RESULTS_FORMAT!r} expected)")
    if int(doc.get("version", 0)) > 1:
        raise ReportError(f"{path}: results version {doc.get('version')} is newer than 1")
    return ResultsInput(path=path, doc=doc,
                        condition=condition_label(doc.get("input", {}).get("conditions")))


def resolve(paths: list[str | Path]) -> tuple[list[LogInput], list[ResultsInput]]:
    """Each path: a drive log directory, a replay ``results.json``, or a directory whose
    immediate subdirectories are drive logs (a folder of recordings)."""
    if not paths:
        raise ReportError("no inputs: give drive logs, recording directories or results.json")
    logs: list[LogInput] = []
    results: list[ResultsInput] = []
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            results.append(_results(path))
        elif (path / MANIFEST).is_file():
            logs.append(_log(path))
        elif path.is_dir():
            found = sorted(p.parent for p in path.glob(f"*/{MANIFEST}"))
            if not found:
                raise ReportError(f"{path}: neither a drive log nor a folder of drive logs "
                                  f"(no {MANIFEST} in it or its subfolders)")
            logs += [_log(p) for p in found]
        else:
            raise ReportError(f"{path}: no such file or directory")
    seen: set[Path] = set()
    for log in logs:
        key = log.path.resolve()
        if key in seen:
            raise ReportError(f"{log.path}: given twice")
        seen.add(key)
    return logs, results
