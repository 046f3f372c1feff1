"""The one rule for a missing real part (tests/parts.py), run as CI runs it: a pytest in a
subprocess with a part hidden fails under ``$CI`` with the one line, and skips with that same
line elsewhere."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.parts import PARTS, needs

ROOT = Path(__file__).resolve().parent.parent


def _pytest(test: str, env: dict[str, str], ci: bool) -> subprocess.CompletedProcess[str]:
    """``test`` run by a fresh pytest, with ``env`` on top of ours and ``CI`` set or not."""
    run_env = {k: v for k, v in os.environ.items() if k != "CI"} | env
    if ci:
        run_env["CI"] = "true"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rsfE", "-p", "no:cacheprovider",
                           test], cwd=ROOT, env=run_env, capture_output=True, text=True,
                          timeout=120, check=False)


def _lines_with(text: str, words: str) -> list[str]:
    return [line for line in text.splitlines() if words in line]


@pytest.mark.parametrize(("test", "hide", "line"), [
    pytest.param("tests/test_linkmap.py::test_a_map_of_real_repeated_drives",
                 {"L4MON_SHARED_DATA": "{empty}"},
                 "missing 2 files of ../shared/data/cicv5g/w2s_n8_v30_run0[12].txt",
                 id="shared-data"),
    pytest.param("tests/test_report_browser.py::test_report_renders_in_chromium",
                 {"L4MON_CHROMIUM": "{empty}/chromium"},
                 "missing Chromium at {empty}/chromium: ./scripts/test.sh installs it "
                 "(Debian package chromium)", id="chromium"),
])
def test_a_missing_part_fails_under_ci_and_skips_elsewhere(
        test: str, hide: dict[str, str], line: str, tmp_path: Path) -> None:
    empty = str(tmp_path)
    env = {k: v.format(empty=empty) for k, v in hide.items()}
    line = line.format(empty=empty)

    ci = _pytest(test, env, ci=True)
    assert ci.returncode == 1, ci.stdout + ci.stderr
    # in a test's body a failure, in its setup (the mark is checked there) an error
    assert "1 failed" in ci.stdout or "1 error" in ci.stdout, ci.stdout
    assert _lines_with(ci.stdout, line), ci.stdout
    assert "Traceback" not in ci.stdout  # the line alone, no traceback
    assert not _lines_with(ci.stdout, "SKIPPED"), ci.stdout

    local = _pytest(test, env, ci=False)
    assert local.returncode == 0, local.stdout + local.stderr
    assert "1 skipped" in local.stdout, local.stdout
    skipped = _lines_with(local.stdout, "SKIPPED")
    assert len(skipped) == 1 and line in skipped[0], local.stdout


def test_every_part_says_how_the_readme_command_gets_it() -> None:
    """Each part's line names the install route: the test script, which README's command runs."""
    readme = (ROOT / "README.md").read_text()
    assert "./scripts/test.sh" in readme
    for name, part in PARTS.items():
        assert "./scripts/test.sh" in part.how, name
    script = (ROOT / "scripts" / "test.sh").read_text()
    for how in {part.how for part in PARTS.values()}:
        if "Debian package" in how:
            package = how.rsplit("Debian package ", 1)[1].rstrip(")")
            assert f"need+=({package})" in script, f"scripts/test.sh does not install {package}"


def test_a_misspelt_part_fails_at_import() -> None:
    with pytest.raises(ValueError, match="no such part"):
        needs("chromeum")
