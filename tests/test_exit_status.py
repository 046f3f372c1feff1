"""One exit status for the data tools (import, replay, report, linkmap), so CI can gate on them:
0 pass or nothing graded, 1 a verdict or an expectation failed, 2 bad input (files, URLs,
options). Run as a user runs them: ``python -m l4mon`` in a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from testing.broker import free_port
from tests.report_logs import synthetic

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "library" / "both-links-down-snow.toml"


def l4mon(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "l4mon", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 12 min: over the report's 10 min of drive time a vehicle needs to be graded
    return synthetic(tmp_path_factory.mktemp("exit") / "day", seed=5, light="daylight",
                     vehicles=2, hours=0.2)


def _config(tmp_path: Path, rtt_p95_ms: float) -> Path:
    path = tmp_path / f"hub-{rtt_p95_ms:g}.toml"
    path.write_text(f"[links.degraded]\nrtt_p95_ms = {rtt_p95_ms}\n"
                    f"[links.degraded_clear]\nrtt_p95_ms = {rtt_p95_ms / 2}\n")
    return path


@pytest.mark.parametrize(("rtt_p95_ms", "verdict", "code"), [
    (0.001, "FAIL", 1),  # no radio link has a p95 RTT of a microsecond
    (1e6, "PASS", 0),
])
def test_report_exits_with_its_verdict(log: Path, tmp_path: Path, rtt_p95_ms: float,
                                       verdict: str, code: int) -> None:
    out = tmp_path / "report.html"
    done = l4mon("report", log, "--out", out, "--replay", "never",
                 "--config", _config(tmp_path, rtt_p95_ms))
    assert f"report: {verdict} " in done.stdout, done.stdout + done.stderr
    assert done.returncode == code, done.stdout + done.stderr
    assert out.read_text().startswith("<!DOCTYPE html>")  # written whatever the verdict


@pytest.mark.parametrize(("args", "says"), [
    (["replay", SCENARIO, "--site", "/no/such/site.toml"], "No such file"),
    (["replay", SCENARIO, "--out", "/proc/1/no-such-folder/results.json"], "--out"),
    (["replay", SCENARIO, "--speed", "10", "--publish", "mqtt://127.0.0.1:PORT"],
     "Connection refused"),
    (["replay", SCENARIO, "--speed", "3"], "--speed"),
    (["import", "cicv5g", "/no/such/run.txt", "--out", "OUT"], "not found"),
    (["report", "/no/such/log", "--out", "OUT/r.html"], "no such file"),
    (["linkmap", "show", "/no/such/map"], "no such map"),
    (["linkmap", "build", "/no/such/log", "--out", "OUT/map"], "/no/such/log"),
])
def test_bad_input_exits_2_and_says_why(args: list[str | Path], says: str,
                                        tmp_path: Path) -> None:
    port = str(free_port())  # nothing listens there
    args = [str(a).replace("OUT", str(tmp_path)).replace("PORT", port) for a in args]
    done = l4mon(*args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert says in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_a_failed_expectation_exits_1(tmp_path: Path) -> None:
    """A scenario that expects no takeover of the very vehicle it takes both links from: the
    replay runs, the expectation fails, and the status says so (1, not 2)."""
    broken = tmp_path / "contradiction.toml"
    broken.write_text(SCENARIO.read_text() + '\n[[expect]]\nid = "contradiction"\n'
                      'type = "no_alert"\nseverity = "takeover"\nvehicle = "shuttle-02"\n')
    done = l4mon("replay", broken)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAILED contradiction" in done.stdout
    assert l4mon("replay", SCENARIO).returncode == 0  # the scenario as shipped holds
