"""Campaigns (scenarios/campaign): many inputs in parallel give the serial run's bytes, on local
worker processes and on a real Dask cluster, for ``l4mon replay`` and ``l4mon report``."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from l4mon.faces.report import ReportOptions, build_report, render, write_csv
from scenarios.campaign import (
    CampaignError,
    DaskEngine,
    Engine,
    LocalEngine,
    SerialEngine,
    engine_for,
    expand,
    ordered,
)
from scenarios.campaign.engines import parallel_map
from tests.parts import import_part, needs
from tests.report_logs import simulated

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "library" / "both-links-down-daylight.toml"
#: Seconds any one command of these tests may take on a loaded 2-core machine.
COMMAND_TIMEOUT_S = 180.0


def _l4mon(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "l4mon", *args], check=False,
                          capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of three one-minute fleet logs, in three conditions."""
    folder = tmp_path_factory.mktemp("campaign") / "month"
    for n, condition in enumerate(["daylight", "snow", "night"]):
        simulated(folder / f"day-{n + 1:02d}", condition, seconds=60.0, seed=n + 1)
    return folder


@pytest.fixture(scope="module")
def serial(logs: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Each input replayed alone by today's command: ``l4mon replay INPUT --out FILE``."""
    out = tmp_path_factory.mktemp("serial")
    made: dict[str, bytes] = {}
    for name, given in [*((f"month/{p.name}", p) for p in sorted(logs.iterdir())),
                        (SCENARIO.stem, SCENARIO)]:
        target = out / name.replace("/", "_")
        done = _l4mon("replay", str(given), "--out", str(target))
        assert done.returncode == 0, done.stderr
        made[f"{name}/results.json"] = target.read_bytes()
    return made


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """A real Dask cluster on loopback: a scheduler and two single-threaded worker
    processes, as ``dask scheduler`` and ``dask worker --nthreads 1`` make one."""
    distributed = import_part("distributed")
    began = time.monotonic()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as running:
        assert time.monotonic() - began < 60, "the local cluster took over a minute to start"
        yield running


def test_campaign_on_local_workers_writes_the_serial_runs_bytes(
        logs: Path, serial: dict[str, bytes], tmp_path: Path) -> None:
    """``--workers 2``: every results.json is the serial command's, bit for bit, and the
    summary is the one ``--workers 1`` writes."""
    one, two = tmp_path / "one", tmp_path / "two"
    done = _l4mon("replay", str(logs), str(SCENARIO), "--workers", "2", "--out", str(two))
    assert done.returncode == 0, done.stderr
    assert "on local (2 at once)" in done.stderr
    assert _l4mon("replay", str(logs), str(SCENARIO), "--workers", "1", "--out",
                  str(one)).returncode == 0
    parallel, alone = _files(two), _files(one)
    assert {k: v for k, v in parallel.items() if k != "campaign.json"} == serial
    assert parallel == alone
    summary = json.loads(parallel["campaign.json"])
    assert [i["name"] for i in summary["inputs"]] == [
        "month/day-01", "month/day-02", "month/day-03", SCENARIO.stem]
    per_input = [json.loads(serial[f"{i['name']}/results.json"]) for i in summary["inputs"]]
    assert summary["totals"]["messages"] == sum(d["span"]["messages"] for d in per_input)
    assert summary["verdict"] == "pass"  # the scenario's expectations hold; logs have none


@needs("distributed")
def test_campaign_on_a_dask_cluster_writes_the_serial_runs_bytes(
        logs: Path, serial: dict[str, bytes], cluster: Any, tmp_path: Path) -> None:
    """``--cluster ADDRESS``: the tasks run on the cluster's workers and the bytes are the
    serial run's."""
    before = _tasks_done(cluster, "replay_entry")
    done = _l4mon("replay", str(logs), str(SCENARIO), "--cluster", cluster.scheduler_address,
                  "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert "on dask (2 at once)" in done.stderr
    made = _files(tmp_path / "out")
    assert {k: v for k, v in made.items() if k != "campaign.json"} == serial
    assert _tasks_done(cluster, "replay_entry") - before == 4


def _tasks_done(cluster: Any, prefix: str) -> int:
    """Tasks of ``prefix`` that finished on the cluster's workers: each reaches the state
    ``memory`` (its result held) once, whatever it becomes after."""
    found = cluster.scheduler.task_prefixes.get(prefix)
    return 0 if found is None else found.state_counts["memory"]


def test_a_log_that_cannot_be_replayed_stops_only_itself(logs: Path, tmp_path: Path) -> None:
    """A broken log among good ones: the others are written, it is listed with its reason in
    the summary, and the exit is 2 (bad input), as the serial command's would be."""
    folder = tmp_path / "mixed"
    shutil.copytree(logs, folder)
    for part in (folder / "day-02").rglob("*.parquet"):
        part.write_bytes(b"not parquet")
    done = _l4mon("replay", str(folder), "--workers", "2", "--out", str(tmp_path / "out"))
    assert done.returncode == 2, done.stdout + done.stderr
    summary = json.loads((tmp_path / "out" / "campaign.json").read_bytes())
    assert [i["name"] for i in summary["inputs"]] == ["mixed/day-01", "mixed/day-03"]
    assert [r["path"] for r in summary["refused"]] == [str(folder / "day-02")]
    assert summary["refused"][0]["reason"]
    assert f"{folder / 'day-02'}: REFUSED" in done.stdout
    assert (tmp_path / "out" / "mixed" / "day-03" / "results.json").is_file()


def test_campaign_refuses_inputs_before_any_replay(logs: Path, tmp_path: Path) -> None:
    """A missing path, a raw trace, two logs that would write one folder: refused at once."""
    with pytest.raises(CampaignError, match="no such file"):
        expand([str(logs), str(tmp_path / "nothing")])
    raw = tmp_path / "trace.txt"
    raw.write_text("pub_time(ms),x\n")
    with pytest.raises(CampaignError, match="import"):
        expand([str(raw)])
    twin = tmp_path / "elsewhere" / "day-01"
    shutil.copytree(logs / "day-01", twin)
    with pytest.raises(CampaignError, match="same name"):
        expand([str(logs / "day-01"), str(twin)])
    with pytest.raises(CampaignError, match="given twice"):
        expand([str(logs), str(logs / "day-02")])
    done = _l4mon("replay", str(logs), str(tmp_path / "nothing"), "--out", str(tmp_path / "o"))
    assert done.returncode == 2 and "no such file" in done.stderr
    assert not (tmp_path / "o").exists()
    with pytest.raises(CampaignError, match="give one of them"):
        engine_for(workers=2, cluster="tcp://127.0.0.1:8786", tasks=3)
    with pytest.raises(CampaignError, match="at least 1"):
        engine_for(workers=0, cluster=None, tasks=3)


def _slow_square(n: int) -> int:
    """Earlier items take longer, so workers finish them last."""
    time.sleep(0.05 * (6 - n) if n < 6 else 0.0)
    return n * n


class _Counting:
    """A real engine, counting what is in flight at once."""

    def __init__(self, engine: Engine) -> None:
        self.engine, self.name, self.running, self.most = engine, engine.name, 0, 0

    def slots(self) -> int:
        return self.engine.slots()

    def submit(self, fn: Any, item: Any) -> Any:
        self.running += 1
        self.most = max(self.most, self.running)
        return self.engine.submit(fn, item)

    def first_done(self, handles: set[Any]) -> set[Any]:
        done = self.engine.first_done(handles)
        self.running -= len(done)
        return done

    def result(self, handle: Any) -> Any:
        return self.engine.result(handle)

    def close(self) -> None:
        self.engine.close()


def test_results_come_back_in_the_inputs_order_with_a_bounded_window() -> None:
    """Whatever finishes first, ``ordered`` gives map's order, with at most 2 x slots tasks
    in flight."""
    items = list(range(12))
    engine = _Counting(LocalEngine(2))
    try:
        assert list(ordered(engine, _slow_square, items)) == [n * n for n in items]
    finally:
        engine.close()
    assert engine.most <= 4
    assert list(ordered(SerialEngine(), _slow_square, items)) == [n * n for n in items]


@needs("distributed")
def test_an_unreachable_cluster_is_said_plainly() -> None:
    """No scheduler at the address: a CampaignError naming it, within the timeout given."""
    from testing.broker import free_port

    address = f"tcp://127.0.0.1:{free_port()}"
    began = time.monotonic()
    with pytest.raises(CampaignError, match="cannot reach the Dask scheduler"):
        DaskEngine(address, timeout_s=2.0)
    assert time.monotonic() - began < 30


def _report_bytes(paths: list[str], folder: Path, **kwargs: Any) -> tuple[bytes, dict]:
    """The report's page (its generation time set aside: the one figure that is the wall
    clock's) and its CSV tables."""
    report = build_report(paths, ReportOptions(replay="always"), **kwargs)
    page = render(dataclasses.replace(report, generated_at=0.0)).encode()
    written = write_csv(report, folder)
    return page, {p.name: p.read_bytes() for p in written}


def test_report_on_local_workers_is_the_serial_report(logs: Path, tmp_path: Path) -> None:
    """Each log scanned and replayed by its own worker process, merged in order: the same
    page and tables as one process."""
    paths = [str(logs)]
    alone = _report_bytes(paths, tmp_path / "alone")
    parallel = _report_bytes(paths, tmp_path / "parallel",
                             map_logs=parallel_map(workers=2, cluster=None))
    assert parallel == alone
    assert b"replayed by the report" in alone[1]["inputs.csv"]


@needs("distributed")
def test_report_on_a_dask_cluster_is_the_serial_report(logs: Path, cluster: Any,
                                                       tmp_path: Path) -> None:
    paths = [str(logs)]
    before = _tasks_done(cluster, "log_part")
    alone = _report_bytes(paths, tmp_path / "alone")
    on_cluster = _report_bytes(paths, tmp_path / "cluster", map_logs=parallel_map(
        workers=None, cluster=cluster.scheduler_address))
    assert on_cluster == alone
    assert _tasks_done(cluster, "log_part") - before == 3


def test_report_command_takes_workers(logs: Path, tmp_path: Path) -> None:
    """``l4mon report --workers 2`` writes the tables ``--workers 1`` writes."""
    for n in ("1", "2"):
        done = _l4mon("report", str(logs), "--workers", n, "--replay", "always", "--out",
                      str(tmp_path / n / "r.html"), "--csv", str(tmp_path / n / "csv"))
        assert done.returncode in (0, 1), done.stderr  # 1: a verdict, not a failure to run
    assert _files(tmp_path / "1" / "csv") == _files(tmp_path / "2" / "csv")
