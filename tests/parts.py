"""The real parts the suite tests against, and the one rule for a test whose part is missing.

A clean machine without, say, PostgreSQL must not pass CI having tested none of it. So with
``$CI`` set (any non-empty value) a missing part FAILS the test with one line saying what is
missing and how ``./scripts/test.sh`` (what CI runs) gets it; without ``$CI`` the test is
skipped with that same line, so a developer can still run the rest. Tests and fixtures ask
here and nowhere else:

* ``require_part("mosquitto", ...)`` in a fixture or a test;
* ``needs("chromium", ...)`` as a mark (``pytestmark`` or a decorator), checked before any
  fixture of the test starts (``pytest_runtest_setup`` below; tests/conftest.py exports it);
* ``import_part("playwright.sync_api")`` where a module needs the package at import;
* ``shared_data("cicv5g/*.txt")`` for the drive-test files of ``../shared/data``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pwd
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import pytest

from testing import broker, demo, postgres

ROOT = Path(__file__).resolve().parent.parent
#: The mark ``needs`` makes; registered by ``pytest_configure`` below (``--strict-markers``).
MARK = "needs"


@dataclass(frozen=True)
class Part:
    """``absent()`` names what is missing of the part (None when it is all there); ``how``
    says how the README's test command gets it."""

    absent: Callable[[], str | None]
    how: str


def _debian(package: str) -> str:
    return f"./scripts/test.sh installs it (Debian package {package})"


def _on_path(tool: str, what: str | None = None) -> Callable[[], str | None]:
    return lambda: None if shutil.which(tool) else (what or tool)


def _mosquitto() -> str | None:
    try:
        broker.find_mosquitto()
    except FileNotFoundError:
        return "the Mosquitto broker (mosquitto)"
    return None


def _postgresql() -> str | None:
    try:
        postgres.find_pg_bin()
    except FileNotFoundError:
        return "PostgreSQL's initdb and pg_ctl (on PATH or in /usr/lib/postgresql/*/bin)"
    if os.geteuid() == 0:  # PostgreSQL refuses root: it runs as the package's user
        try:
            pwd.getpwnam(postgres.SUPERUSER)
        except KeyError:
            return f"the '{postgres.SUPERUSER}' user to run PostgreSQL as (tests run as root)"
    return None


def _chromium() -> str | None:
    # read at each call, so that a test can point it elsewhere
    return None if os.access(demo.CHROMIUM, os.X_OK) else f"Chromium at {demo.CHROMIUM}"


def _playwright() -> str | None:
    return None if importlib.util.find_spec("playwright") else "the playwright Python package"


def _package(name: str) -> Callable[[], str | None]:
    return lambda: None if importlib.util.find_spec(name) else f"the {name} Python package"


PARTS: dict[str, Part] = {
    "mosquitto": Part(_mosquitto, _debian("mosquitto")),
    "mosquitto_pub": Part(_on_path("mosquitto_pub"), _debian("mosquitto-clients")),
    "postgresql": Part(_postgresql, _debian("postgresql")),
    "chromium": Part(_chromium, _debian("chromium")),
    "playwright": Part(_playwright, "./scripts/test.sh installs it into .venv (extra [test])"),
    "pyproj": Part(_package("pyproj"), "./scripts/test.sh installs it into .venv (extra [test])"),
    "promtool": Part(_on_path("promtool"), _debian("prometheus")),
    "openssl": Part(_on_path("openssl", "openssl (the TLS tests' certificates)"),
                    _debian("openssl")),
    # The cluster engine of campaigns (scenarios/campaign): its tests start a real cluster.
    "distributed": Part(_package("distributed"),
                        "./scripts/test.sh installs it into .venv (extra [test])"),
}


def in_ci() -> bool:
    """``$CI`` set to anything but the empty string, as CI services (and .ci/run's caller)
    set it."""
    return bool(os.environ.get("CI"))


def missing_part(name: str) -> str | None:
    """The one line for part ``name`` if it is missing, else None."""
    part = PARTS[name]  # a KeyError here is a typo in a test, not a missing part
    what = part.absent()
    return None if what is None else f"missing {what}: {part.how}"


def _absent(line: str) -> NoReturn:
    """The rule: fail under CI, skip elsewhere; the line alone, no traceback. Either works at
    a module's import too (a failure there is a collection error, which fails the run)."""
    if in_ci():
        pytest.fail(line, pytrace=False)
    pytest.skip(line, allow_module_level=True)


def require_part(*names: str) -> None:
    """Return if every part named is there; otherwise fail (CI) or skip with the first
    missing one's line."""
    for name in names:
        line = missing_part(name)
        if line is not None:
            _absent(line)


def needs(*names: str) -> pytest.MarkDecorator:
    """The mark for a test (or, as ``pytestmark``, a module) that needs these parts."""
    unknown = set(names) - PARTS.keys()
    if unknown:  # a typo fails at import, not when the test runs
        raise ValueError(f"no such part: {sorted(unknown)}; known: {sorted(PARTS)}")
    return getattr(pytest.mark, MARK)(*names)


def import_part(module: str) -> ModuleType:
    """``module`` imported, or fail (CI) or skip the importing module: for a test module
    that needs a package at import (``expect = import_part("playwright.sync_api").expect``).
    The part is the module's top-level package."""
    top = module.partition(".")[0]
    try:
        return importlib.import_module(module)
    except ImportError:
        _absent(f"missing the {top} Python package: {PARTS[top].how}")


def shared_data_dir() -> Path:
    """``../shared/data`` beside the project (``$L4MON_SHARED_DATA`` if set): drive-test data
    the project only reads (some of it GPL), never part of the repository."""
    env = os.environ.get("L4MON_SHARED_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


def shared_data(pattern: str, *, at_least: int = 1) -> list[Path]:
    """The files of the shared data matching ``pattern`` (e.g. ``"cicv5g/*.txt"``), sorted;
    fewer than ``at_least`` fails (CI) or skips the test."""
    folder = shared_data_dir()
    found = sorted(folder.glob(pattern)) if folder.is_dir() else []
    if len(found) < at_least:
        count = "" if at_least == 1 else f"{at_least} files of "
        _absent(f"missing {count}../shared/data/{pattern} (looked in {folder}): ../shared/data "
                "must be checked out beside the project")
    return found


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARK}(*parts): needs these real parts (tests/parts.py)")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test marked ``needs`` has its parts before any of its fixtures starts a process."""
    for mark in item.iter_markers(MARK):
        require_part(*mark.args)
