"""``l4mon report`` and ``GET /api/reports``: outputs, bad input (exit 2 / 4xx), auth."""

from __future__ import annotations

import asyncio
import io
import zipfile
from pathlib import Path

import httpx
import pytest

from l4mon.auth import TokenStore, hash_token
from l4mon.clock import ManualClock
from l4mon.faces.api.app import create_app
from l4mon.faces.api.reports import ROOTS_ENV
from l4mon.faces.cli import main
from l4mon.hub import Hub
from l4mon.runtime import Runtime
from l4mon.store.journal import open_journal
from tests.report_logs import synthetic

TOKEN = "report-viewer-token"


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("reports")
    synthetic(root / "day", seed=3, light="daylight", vehicles=4, hours=0.02)
    synthetic(root / "night", seed=4, light="night", vehicles=4, hours=0.02)
    return root


def test_cli_writes_html_csv_parquet(logs: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.html"
    code = main(["report", str(logs), "--out", str(out), "--csv", str(tmp_path / "csv"),
                 "--parquet", str(tmp_path / "pq"), "--replay", "never", "--site", "demo"])
    said = capsys.readouterr().out
    assert code == (1 if "report: FAIL" in said else 0)  # the verdict is the exit status
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page
    assert "http://" not in page and "https://" not in page  # nothing fetched to read it
    assert (tmp_path / "csv" / "latency.csv").read_text().startswith("condition,link,")
    assert (tmp_path / "pq" / "budgets.parquet").stat().st_size > 0
    assert "daylight, night" in said


@pytest.mark.parametrize(("args", "message"), [
    (["/no/such/log"], "no such file or directory"),
    (["LOGS", "--from", "yesterday"], "--from"),
    (["LOGS", "--from", "2026-01-02", "--to", "2026-01-01"], "end must be after"),
    (["LOGS", "--pdf", "OUT.pdf", "--chromium", "/nonexistent/chromium"], "needs a local "
     "Chromium"),
])
def test_cli_bad_input_exits_2(logs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               args: list[str], message: str) -> None:
    args = [a.replace("LOGS", str(logs)).replace("OUT", str(tmp_path / "x")) for a in args]
    assert main(["report", *args, "--out", str(tmp_path / "r.html"), "--replay", "never"]) == 2
    assert message in capsys.readouterr().err


@pytest.fixture
def runtime(logs: Path, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    monkeypatch.setenv(ROOTS_ENV, str(logs))
    return Runtime(hub=Hub(store=open_journal(":memory:")), clock=ManualClock(1_700_000_000.0),
                   tokens=TokenStore([("v", "viewer", hash_token(TOKEN))]))


def _get(runtime: Runtime, params: dict[str, object] | list[tuple[str, str]], *,
         token: str | None = TOKEN) -> httpx.Response:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(runtime))
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with httpx.AsyncClient(transport=transport, base_url="http://hub",
                                     headers=headers, timeout=60) as client:
            return await client.get("/api/reports", params=params)  # type: ignore[arg-type]
    return asyncio.run(call())


def test_api_html_and_zip(runtime: Runtime) -> None:
    page = _get(runtime, [("input", "day"), ("input", "night"), ("replay", "never")])
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert "Budgets" in page.text and "night" in page.text
    zipped = _get(runtime, {"input": "day", "format": "zip", "replay": "never"})
    assert zipped.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(zipped.content)).namelist()
    assert {"csv/latency.csv", "parquet/latency.parquet", "report.html"} <= set(names)


@pytest.mark.parametrize(("params", "status"), [
    ({"input": "../../etc"}, 400),
    ({"input": "/etc"}, 400),
    ({"input": "no-such-log"}, 404),
    ({}, 422),
    ({"input": "day", "from": "soon"}, 400),
    ({"input": "day", "format": "pdf"}, 422),
    ({"input": "day", "replay": "always"}, 422),
    ({"input": "day", "site": "elsewhere"}, 400),
])
def test_api_rejects_bad_queries(runtime: Runtime, params: dict[str, str], status: int) -> None:
    response = _get(runtime, params)
    assert response.status_code == status, response.text
    assert "detail" in response.json()


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_api_needs_a_token(runtime: Runtime, token: str | None) -> None:
    assert _get(runtime, {"input": "day"}, token=token).status_code == 401


def test_api_without_roots_says_how_to_get_some(runtime: Runtime,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ROOTS_ENV)
    response = _get(runtime, {"input": "day"})
    assert response.status_code == 404
    assert ROOTS_ENV in response.json()["detail"]


def test_api_report_runs_in_a_limited_worker_process_not_on_the_hub(
        runtime: Runtime, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A report is built in another process: while it runs, the hub's own loop keeps
    answering; past its CPU limit the worker is stopped and the caller gets 503 with the way
    out, and the next report (within its limit) is built as usual."""
    import time

    async def during() -> tuple[httpx.Response, list[float]]:
        transport = httpx.ASGITransport(app=create_app(runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://hub", timeout=60,
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            report = asyncio.create_task(client.get("/api/reports", params={"input": "long"}))
            gaps = []
            while not report.done():  # the loop is free: a health check answers at once
                began = time.perf_counter()
                assert (await client.get("/healthz")).status_code == 200
                gaps.append(time.perf_counter() - began)
                await asyncio.sleep(0.05)
            return await report, gaps

    synthetic(tmp_path / "long", seed=5, light="daylight", vehicles=10, hours=0.1)
    monkeypatch.setenv(ROOTS_ENV, str(tmp_path))
    monkeypatch.setenv("L4MON_REPORT_CPU_S", "1")  # a replay of ~100k messages needs more
    limited, gaps = asyncio.run(during())
    assert limited.status_code == 503, limited.text
    assert "l4mon report" in limited.json()["detail"]
    assert gaps and max(gaps) < 0.5
    monkeypatch.delenv("L4MON_REPORT_CPU_S")
    page = _get(runtime, {"input": "long", "replay": "never"})
    assert page.status_code == 200 and "Budgets" in page.text
