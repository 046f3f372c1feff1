"""``GET /api/reports``: the reliability report of drive logs or replay results on this hub.

Inputs are named by path, but only below the report roots — the hub's recording directory
(``serve --record DIR``) and the directories in ``L4MON_REPORT_ROOTS`` (``os.pathsep``
separated) — so a token holder cannot make the hub read arbitrary files. Building a report
reads files and runs replays, so it runs in a worker thread, one at a time, and never on the
hub's event loop, where it would hold up ingest.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import HTMLResponse, Response

from l4mon.api.deps import ErrorBody
from l4mon.report import ReportError, ReportOptions, build_report, render, zip_tables
from l4mon.report.periods import parse_time
from l4mon.runtime import Runtime
from l4mon.site import DEMO_SITE_PATH, Site, load_site

ROOTS_ENV = "L4MON_REPORT_ROOTS"
_REFUSALS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text} for code, text in (
        (400, "an input outside the report roots, a bad period or site, or an input the "
              "report cannot be made from (named in the detail)"),
        (401, "no or unknown token"), (404, "no such input, or no report roots on this hub"),
        (429, "too many failed token checks from this address; see Retry-After"))}


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
    ) -> Response:
        """The report as one HTML page, or (``format=zip``) its tables as CSV and Parquet."""
        roots = report_roots(runtime)
        if not roots:
            raise HTTPException(status_code=404, detail="this hub has no report inputs: run "
                                f"serve --record DIR or set {ROOTS_ENV}")
        paths = [_inside(p, roots) for p in input]
        try:
            options = ReportOptions(config=runtime.hub.config, site=site_for(site),
                                    start=parse_time(start, "from"), end=parse_time(end, "to"),
                                    replay=replay, title=title)
        except ReportError as error:
            raise HTTPException(status_code=400, detail=str(error)) from None
        async with one_at_a_time:
            try:
                built = await asyncio.to_thread(build_report, list(paths), options)
            except ReportError as error:
                raise HTTPException(status_code=400, detail=str(error)) from None
            html = await asyncio.to_thread(render, built)
            if format == "html":
                return HTMLResponse(html)
            data = await asyncio.to_thread(zip_tables, built, html)
        return Response(data, media_type="application/zip", headers={
            "Content-Disposition": 'attachment; filename="l4mon-report.zip"'})

    return router
