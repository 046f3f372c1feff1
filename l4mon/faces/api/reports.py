"""``GET /api/reports``: the reliability report of drive logs or replay results on this hub.

Inputs are named by path, but only below the report roots — the hub's recording directory
(``serve --record DIR``) and the directories in ``L4MON_REPORT_ROOTS`` (``os.pathsep``
separated) — so a token holder cannot make the hub read arbitrary files. Building a report
reads files and runs replays: whole CPU-seconds that must never be the live hub's. So it runs
in a separate worker process (its own interpreter, not a thread sharing the hub's), one at a
time, at a lower scheduling priority, with a CPU-time limit (``L4MON_REPORT_CPU_S``, default
300 s) and a wall-clock limit of twice that; past either the worker is stopped and the caller
told to build the report offline with ``l4mon report``.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import Response

from l4mon.faces.api.deps import ErrorBody
from l4mon.faces.report import ReportError, ReportOptions, build_report, render, zip_tables
from l4mon.faces.report.periods import parse_time
from l4mon.runtime import Runtime
from telemetry.site import DEMO_SITE_PATH, Site, load_site

ROOTS_ENV = "L4MON_REPORT_ROOTS"
CPU_ENV = "L4MON_REPORT_CPU_S"
DEFAULT_CPU_S = 300
_REFUSALS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text} for code, text in (
        (400, "an input outside the report roots, a bad period or site, or an input the "
              "report cannot be made from (named in the detail)"),
        (401, "no or unknown token"), (404, "no such input, or no report roots on this hub"),
        (429, "too many failed token checks from this address; see Retry-After"),
        (503, "the report went past its CPU or time limit (build it offline)"))}


def report_roots(runtime: Runtime) -> list[Path]:
    roots = [Path(p) for p in os.environ.get(ROOTS_ENV, "").split(os.pathsep) if p.strip()]
    if runtime.recorder is not None:
        roots.append(runtime.recorder.path)
    return [r.resolve() for r in roots]


def _inside(path: str, roots: list[Path]) -> Path:
    """The input resolved below a root (relative names are tried against each root)."""
    given = Path(path)
    candidates = [given] if given.is_absolute() else [r / given for r in roots]
    for candidate in candidates:
        resolved = candidate.resolve()
        if any(resolved == r or resolved.is_relative_to(r) for r in roots):
            if resolved.exists():
                return resolved
            raise HTTPException(status_code=404, detail=f"no report input {path!r}")
    raise HTTPException(status_code=400, detail=f"{path!r} is not below a report root")


class ReportLimit(RuntimeError):
    """The worker went past its CPU or wall-clock limit and was stopped."""


def _cpu_limit_s() -> int:
    try:
        return max(1, int(os.environ.get(CPU_ENV, DEFAULT_CPU_S)))
    except ValueError:
        return DEFAULT_CPU_S


def _limit_worker(cpu_s: int, pid: Synchronized[int]) -> None:
    """In the worker, before it does anything: its pid for the hub (which ends it if a wait
    is stopped, without reaching into the pool's private table of processes), lower
    priority, and a hard CPU-time limit (the kernel stops it with SIGXCPU/SIGKILL past it)."""
    import resource

    pid.value = os.getpid()
    os.nice(10)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 5))


def _make(paths: list[Path], options: ReportOptions, format: str) -> tuple[str, bytes]:
    """In the worker: the report as (media type, body)."""
    built = build_report(paths, options)
    html = render(built)
    if format == "html":
        return "text/html; charset=utf-8", html.encode("utf-8")
    return "application/zip", zip_tables(built, html)


async def run_in_worker(paths: list[Path], options: ReportOptions,
                        format: str) -> tuple[str, bytes]:
    """Build the report in a fresh worker process under the limits; ``ReportError`` and
    ``ReportLimit`` come back as exceptions."""
    cpu_s = _cpu_limit_s()
    context = multiprocessing.get_context("spawn")
    worker = context.Value("i", 0)
    pool = ProcessPoolExecutor(max_workers=1, mp_context=context,
                               initializer=_limit_worker, initargs=(cpu_s, worker))
    try:
        future = asyncio.get_running_loop().run_in_executor(pool, _make, paths, options, format)
        try:
            return await asyncio.wait_for(future, timeout=2 * cpu_s)
        except (BrokenProcessPool, TimeoutError):
            raise ReportLimit(f"the report went past its limit ({cpu_s} s of CPU, {2 * cpu_s} s "
                              "in all) and was stopped; build it offline with `l4mon report`, "
                              f"or raise {CPU_ENV}") from None
    finally:
        if worker.value:  # a stopped wait leaves the worker running: end it
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.value, signal.SIGKILL)
        pool.shutdown(wait=False, cancel_futures=True)


def routes(runtime: Runtime, viewer: Any) -> APIRouter:
    router = APIRouter(prefix="/api")
    one_at_a_time = asyncio.Lock()

    def site_for(name: str | None) -> Site | None:
        if name is None:
            return runtime.site
        if runtime.site is not None and name == runtime.site.name:
            return runtime.site
        demo = load_site(DEMO_SITE_PATH)
        if name in ("demo", demo.name):
            return demo
        known = sorted({demo.name, *([runtime.site.name] if runtime.site else [])})
        raise HTTPException(status_code=400,
                            detail=f"unknown site {name!r}: this hub knows {', '.join(known)}")

    @router.get("/reports", dependencies=[Depends(viewer)], response_model=None,
                responses={**_REFUSALS, 200: {"content": {"text/html": {}, "application/zip": {}},
                                              "description": "the page, or a zip of tables"}})
    async def report(
        input: Annotated[list[str], Query(min_length=1, max_length=100)],
        site: Annotated[str | None, Query(max_length=64)] = None,
        start: Annotated[str | None, Query(alias="from", max_length=40)] = None,
        end: Annotated[str | None, Query(alias="to", max_length=40)] = None,
        format: Literal["html", "zip"] = "html",
        replay: Literal["auto", "never"] = "auto",
        title: Annotated[str, Query(min_length=1, max_length=120)] = "Link reliability report",
        linkmap: bool = True,
    ) -> Response:
        """The report as one HTML page, or (``format=zip``) its tables as CSV and Parquet;
        with the hub's own link map section when it has one (``linkmap=false``: without)."""
        roots = report_roots(runtime)
        if not roots:
            raise HTTPException(status_code=404, detail="this hub has no report inputs: run "
                                f"serve --record DIR or set {ROOTS_ENV}")
        paths = [_inside(p, roots) for p in input]
        try:
            options = ReportOptions(config=runtime.hub.config, site=site_for(site),
                                    start=parse_time(start, "from"), end=parse_time(end, "to"),
                                    replay=replay, title=title,
                                    linkmap=(runtime.hub.config.linkmap.path or None)
                                    if linkmap else None)
        except ReportError as error:
            raise HTTPException(status_code=400, detail=str(error)) from None
        async with one_at_a_time:
            try:
                media, body = await run_in_worker(list(paths), options, format)
            except ReportError as error:
                raise HTTPException(status_code=400, detail=str(error)) from None
            except ReportLimit as error:
                raise HTTPException(status_code=503, detail=str(error)) from None
        if format == "html":
            return Response(body, media_type=media)
        return Response(body, media_type=media, headers={
            "Content-Disposition": 'attachment; filename="l4mon-report.zip"'})

    return router
