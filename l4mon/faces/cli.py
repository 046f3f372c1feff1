"""l4mon: remote monitoring of Level 4 shuttles' links, alerts, replays and reports.

Commands: demo (hub and a simulated fleet, no broker), serve (the hub on an MQTT broker),
simulate (publish a simulated fleet), replay (a drive log or scenario through the pipeline),
import (drive-test exports into a drive log), report (a reliability report), linkmap (a map
of link quality learned from drive logs), token (access tokens for a hub's journal), acl (the
broker's ACL from the site register). l4mon COMMAND --help for each.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import os
import signal
import sys
import tempfile
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvloop

from l4mon.config import ConfigError, HubConfig, load_config, parse_listen, with_overrides
from l4mon.mosquitto_acl import acl_text
from l4mon.store.journal import JournalError
from l4mon.store.journal_location import carries_password, parse_location, redact
from telemetry.register import load_register

if TYPE_CHECKING:
    from l4mon.hub import Hub
    from l4mon.store.journal import Journal

log = logging.getLogger("l4mon")


def _require_free(host: str, port: int, flag: str) -> None:
    """Refuse, before anything is printed or started, a listen address already in use."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise ConfigError(f"{host}:{port} is not free ({error.strerror}; another l4mon "
                              f"running?): choose another address with {flag} HOST:PORT, "
                              f"e.g. {flag} {host}:{port + 1}") from None


def _run(main: Coroutine[Any, Any, int]) -> int:
    return uvloop.run(main)


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


async def _stop_after(stop: asyncio.Event, seconds: float | None) -> None:
    if seconds is not None:
        await asyncio.sleep(seconds)
        stop.set()


async def _demo(args: argparse.Namespace) -> int:
    from l4mon.assembly import build_hub, build_runtime
    from l4mon.clock import LiveClock
    from l4mon.config import config_from_dict
    from l4mon.faces.api.app import create_app
    from l4mon.ingest.generated import FeedSource
    from l4mon.process import LiveProcess
    from scenarios.demo_controls import SimControls, SimPublisher
    from scenarios.sim import SimFleet
    from telemetry.site import DEMO_SITE_PATH, load_site

    clock = LiveClock()
    site = load_site(DEMO_SITE_PATH)
    fleet = SimFleet(site=site, vehicles=args.vehicles, rate_hz=args.rate, seed=args.seed,
                     start=clock.now())
    host, port = parse_listen(args.http)
    _require_free(host, port, "--http")
    with tempfile.TemporaryDirectory(prefix="l4mon-demo-") as state:
        # The demo's journal lives only as long as the demo: every run starts clean.
        config = config_from_dict({"alerts": {"journal": f"{state}/journal.sqlite"},
                                   "http": {"listen": args.http},
                                   "linkmap": {"path": args.linkmap or ""}})
        hub = build_hub(config, site=site)
        source = FeedSource(generate=fleet.advance, clock=clock)
        runtime = build_runtime(config, clock=clock, hub=hub, demo=SimControls(fleet),
                                buffer=source.buffer, publisher=SimPublisher(fleet))
        token, _ = runtime.tokens.issue("demo-operator", "operator")
        stop = asyncio.Event()
        _stop_on_signals(stop)
        timer = asyncio.create_task(_stop_after(stop, args.duration))
        print(f"l4mon demo: {args.vehicles} simulated vehicles on site '{site.name}'", flush=True)
        print(f"  console   http://{host}:{port}/#token={token}", flush=True)
        print("            (logs you in as demo-operator; go on duty, then inject a fault)",
              flush=True)
        print(f"  API       curl -H 'Authorization: Bearer {token}' "
              f"http://{host}:{port}/api/vehicles", flush=True)
        print("  Ctrl-C to stop.", flush=True)
        try:
            async with LiveProcess(runtime, source, app=create_app(runtime), http=(host, port),
                                   journal=_journal(hub)) as live:
                await live.wait(stop)
        finally:
            timer.cancel()
    return 0


def _journal(hub: Hub) -> Journal | None:
    """The hub's journal, which the live process closes last."""
    return hub.store


async def _serve(config: HubConfig, record: str | None = None) -> int:
    from l4mon.assembly import build_hub, build_leadership, build_runtime, ensure_admin_token
    from l4mon.clock import LiveClock
    from l4mon.faces.api.app import create_app
    from l4mon.ingest.mqtt import MqttSource
    from l4mon.process import LiveProcess

    host, port = parse_listen(config.http.listen)
    _require_free(host, port, "--http")
    clock = LiveClock()
    hub = build_hub(config)
    ha = build_leadership(config, hub, clock=clock)  # a hub pair on a PostgreSQL journal
    source = MqttSource(settings=config.mqtt, quarantine=hub.quarantine, clock=clock,
                        max_payload_bytes=config.ingest.max_payload_bytes)
    recorder = None
    if record:
        from l4mon.context import recorded
        from l4mon.recorder import Recorder
        from telemetry.drivelog import Conditions, Manifest

        lm = config.linkmap  # the condition the hub looks ahead under is the drive's
        recorder = Recorder(record, manifest=Manifest(
            site=hub.site.name if hub.site is not None else "", source={"kind": "recorder"},
            conditions=Conditions(weather=lm.weather,
                                  light="unknown" if lm.light == "auto" else lm.light),
            **recorded(config, hub.site)))
        log.info("recording everything ingested to %s", record)
    commands = None
    if config.mqtt.command_connection:
        from l4mon.commands.connection import command_source

        commands = command_source(config.mqtt, quarantine=hub.quarantine, clock=clock,
                                  max_payload_bytes=config.ingest.max_payload_bytes)
    publisher = (commands or source).publisher
    publisher.timeout_s = config.commands.publish_timeout_s
    runtime = build_runtime(config, clock=clock, hub=hub, buffer=source.buffer,
                            mqtt=source.status, recorder=recorder, ha=ha,
                            publisher=publisher)
    token = ensure_admin_token(runtime)
    if token is not None:
        print("No tokens were configured, so an admin token was created. It is shown only "
              f"this once (the journal keeps just its hash):\n  {token}", flush=True)
    else:
        shown = hub.store.location
        print(f"{len(runtime.tokens)} access token(s) known (config and journal "
              f"{shown}); tokens are kept only as hashes, so to log in with a "
              "new one: l4mon token create --role operator --name NAME --journal "
              f"{shown} (this hub takes it within a second)", flush=True)
    stop = asyncio.Event()
    _stop_on_signals(stop)
    log.info("l4mon serve: broker %s (%s), HTTP http://%s:%d/, journal %s", config.mqtt.url,
             config.mqtt.client, host, port,
             hub.store.location)
    async with LiveProcess(runtime, source, app=create_app(runtime), http=(host, port),
                           journal=_journal(hub), commands=commands) as live:
        await live.wait(stop)
    return 0


async def _simulate(args: argparse.Namespace) -> int:
    from l4mon.clock import LiveClock
    from scenarios.publish import publish_fleet
    from scenarios.sim import SimFleet
    from telemetry.site import DEMO_SITE_PATH, load_site

    clock = LiveClock()
    site = load_site(args.site or DEMO_SITE_PATH)
    fleet = SimFleet(site=site, vehicles=args.vehicles, rate_hz=args.rate, seed=args.seed,
                     start=clock.now())
    stop = asyncio.Event()
    _stop_on_signals(stop)
    only = None if args.only is None else [v.strip() for v in args.only.split(",") if v.strip()]
    try:
        sent = await publish_fleet(fleet, url=args.broker, clock=clock,
                                   duration_s=args.duration, stop=stop,
                                   per_vehicle=args.per_vehicle or only is not None, only=only)
    except ValueError as error:
        print(f"l4mon simulate: {error}", file=sys.stderr)
        return 2
    print(f"published {sent} messages from {args.vehicles} vehicles", flush=True)
    return 0


def _raw_trace_hint(target: Path) -> None:
    """A drive-test file given to replay: say to import it first, and how."""
    if not target.is_file() or target.suffix.lower() == ".toml":
        return
    try:
        head = target.open(encoding="utf-8", errors="replace").readline()
    except OSError:
        return
    fmt = "cicv5g" if "pub_time(ms)" in head else \
        "gnettrack" if "Timestamp" in head and "NetworkMode" in head else None
    what = f"a {fmt} drive-test trace" if fmt else "not a scenario (.toml) or a drive log"
    how = f"l4mon import {fmt} {target} --out LOG" if fmt else \
        f"l4mon import gnettrack|cicv5g|mapped {target} --out LOG"
    raise ConfigError(f"{target} is {what}: import it into a drive log first ({how}), then "
                      "l4mon replay LOG")


def _writable(path: Path, option: str) -> None:
    """Refuse an output that cannot be written before the work, not after it (exit 2); a
    missing folder is made, as ``report`` does."""
    folder = path.parent
    if path.is_dir():
        raise ConfigError(f"{option} {path} is a folder: give the file to write")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"{option} {path}: cannot make its folder ({error.strerror})") from None
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ConfigError(f"{option} {path}: not writable")


def _replay(args: argparse.Namespace) -> int:
    """Exit 0 when every expectation holds (or there are none), 1 when one fails."""
    from scenarios.campaign import expand

    if len(args.inputs) > 1 or args.cluster is not None or _is_log_folder(args.inputs[0]):
        for given in args.inputs:
            _raw_trace_hint(Path(given))
        return _campaign(args, expand(args.inputs))
    return _replay_one(args, Path(args.inputs[0]))


def _is_log_folder(given: str) -> bool:
    from telemetry.drivelog import MANIFEST

    path = Path(given)
    return path.is_dir() and not (path / MANIFEST).is_file()


def _campaign(args: argparse.Namespace, entries: list[Any]) -> int:
    """Many inputs: each replayed as ``l4mon replay INPUT`` alone would, in parallel, with
    its results in ``--out/NAME/results.json`` and a summary in ``--out/campaign.json``."""
    import time

    from l4mon.faces import progress
    from scenarios.campaign import Replayed, ReplaySettings, engine_for, run_campaign

    if args.speed != "max" or args.publish:
        raise ConfigError("several inputs replay at --speed max, without --publish: pace or "
                          "publish one log at a time")
    out = Path(args.out) if args.out else None
    if out is not None and out.is_file():
        raise ConfigError(f"--out {out} is a file: with several inputs it names the folder "
                          "their results go in")
    if out is not None:
        _writable(out / "campaign.json", "--out")
    settings = ReplaySettings(config=args.config, site=args.site, linkmap=args.linkmap)
    began = time.perf_counter()  # for the line printed, never for a result
    engine = engine_for(workers=args.workers, cluster=args.cluster, tasks=len(entries))
    try:
        slots = engine.slots()
        print(f"campaign: {len(entries)} inputs on {engine.name} ({slots} at once)",
              file=sys.stderr, flush=True)
        with progress.bar("campaign", len(entries)) as update:
            count = [0]

            def tell(replayed: Replayed) -> None:
                count[0] += 1
                update(count[0])
                for line in replayed.lines:
                    print(line, flush=True)
                if replayed.error is not None:
                    print(f"{replayed.entry.path}: REFUSED - {replayed.error}", flush=True)

            campaign = run_campaign(entries, settings, engine, out=out,
                                    done=tell)
    finally:
        engine.close()
    totals = campaign.document["totals"]
    print(f"campaign: {campaign.document['verdict'].upper()} - {totals['replayed']}/"
          f"{totals['inputs']} replayed, {totals['messages']} messages, "
          f"{totals['vehicle_hours']:.1f} vehicle-hours, {totals['alerts']} alerts in "
          f"{time.perf_counter() - began:.1f} s"
          + (f"; results in {out}" if out is not None else ""), flush=True)
    if campaign.refused:
        return 2  # bad input, as the serial command answers it
    return 1 if campaign.failed else 0


def _replay_one(args: argparse.Namespace, target: Path) -> int:
    from l4mon.faces import progress
    from scenarios.campaign.summary import outcome_lines
    from scenarios.scenario import encode_results, prepare, run_prepared
    from telemetry.site import DEMO_SITE_PATH, load_site

    _raw_trace_hint(target)
    if args.out:
        _writable(Path(args.out), "--out")
    config = load_config(args.config) if args.config else None
    site = None if args.site is None else load_site(
        DEMO_SITE_PATH if args.site == "demo" else args.site)
    if args.speed != "max" or args.publish:
        from scenarios.pacing import replay_paced

        return _run(replay_paced(target, speed=args.speed, publish=args.publish, out=args.out,
                                 config=config, site=site, linkmap=args.linkmap))
    prepared = prepare(target, config=config, site=site, linkmap=args.linkmap)
    said = prepared.info.get("context", {}).get("linkmap", "none")
    if said != "none":
        print(f"link map: {said}", file=sys.stderr, flush=True)
    span = None if prepared.end is None else max(prepared.end - prepared.start, 1e-9)
    with progress.bar(f"replay {target.name}", span) as update:
        shown = [prepared.start]
        step = (span or 1.0) / 500  # a few hundred updates, not one per batch

        def tell(at: float) -> None:
            if at - shown[0] >= step:
                shown[0] = at
                update(at - prepared.start)

        doc = run_prepared(prepared, before_batch=tell)
    data = encode_results(doc)
    if args.out:
        Path(args.out).write_bytes(data)
    for line in outcome_lines(doc, str(target)):
        print(line, flush=True)
    return 1 if any(not e["passed"] for e in doc["expectations"]) else 0


def _import(args: argparse.Namespace) -> int:
    from l4mon.faces import progress
    from scenarios.importers import import_files
    from telemetry.drivelog import Conditions

    conditions = Conditions(weather=args.weather, light=args.light, road=args.road)
    with progress.bar(f"import {len(args.inputs)} file(s)", len(args.inputs)) as update:
        report = import_files(args.format, [Path(p) for p in args.inputs], Path(args.out),
                              site=args.site, conditions=conditions, timezone=args.tz,
                              mapping=args.mapping, vehicle=args.vehicle, links=args.links,
                              progress=update)
    print("\n".join(report.lines()), flush=True)
    return 0


def _report(args: argparse.Namespace) -> int:
    """Build the report once; the HTML, CSV, Parquet and PDF are renderings of it."""
    from l4mon.faces import progress
    from l4mon.faces.report import (
        ReportOptions,
        build_report,
        print_pdf,
        render,
        write_csv,
        write_parquet,
    )
    from l4mon.faces.report.periods import parse_time
    from scenarios.campaign.engines import parallel_map
    from telemetry.site import DEMO_SITE_PATH, load_site

    site = None if args.site is None else load_site(
        DEMO_SITE_PATH if args.site == "demo" else args.site)
    options = ReportOptions(config=load_config(args.config) if args.config else None, site=site,
                            start=parse_time(args.start, "--from"),
                            end=parse_time(args.end, "--to"), replay=args.replay,
                            replay_max_rows=args.replay_max_rows, title=args.title,
                            linkmap=args.linkmap)
    out = Path(args.out)
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder: give the HTML file to write, e.g. "
                          f"{out / 'report.html'}")
    # Each drive log's scan (and replay) on the campaign's engines; merged in the logs' order.
    logs_map = parallel_map(workers=args.workers, cluster=args.cluster)
    with progress.bar("report", None) as update:
        report = build_report(args.inputs, options, progress=update, map_logs=logs_map)
    out.parent.mkdir(parents=True, exist_ok=True)  # a missing folder is made, as for --csv
    out.write_text(render(report), encoding="utf-8")
    written = [str(out)]
    if args.csv:
        written += [str(p) for p in write_csv(report, args.csv)]
    if args.parquet:
        written += [str(p) for p in write_parquet(report, args.parquet)]
    if args.pdf:
        written.append(str(print_pdf(out, args.pdf, chromium=args.chromium)))
    print(f"report: {report.verdict.upper()} over {', '.join(report.conditions) or 'no data'}"
          f" - wrote {len(written)} files: {written[0]}"
          + (f" ... {written[-1]}" if len(written) > 1 else ""), flush=True)
    for line in report.verdict_detail:
        print(f"  {line}", flush=True)
    # the verdict is the command's answer, so that CI can gate on it (the files are written)
    return 1 if report.verdict == "fail" else 0


def _linkmap(args: argparse.Namespace) -> int:
    """``linkmap build`` replays logs into a map (or merges them into one); ``linkmap show``
    prints its worst cells."""
    from telemetry.linkmap import DEFAULT_CELL_M, read_map
    from telemetry.linkmap.summary import summary_lines

    # A LinkMapError (a missing or foreign path) is a ValueError: exit 2 with its message.
    if args.action == "show":
        print("\n".join(summary_lines(read_map(args.map), worst=args.worst)), flush=True)
        return 0
    return _linkmap_build(args, DEFAULT_CELL_M)


def _linkmap_build(args: argparse.Namespace, default_cell_m: float) -> int:
    from l4mon.faces import progress
    from scenarios.linkmap_build import build_map
    from telemetry.linkmap import read_map, write_map
    from telemetry.linkmap.store import MANIFEST

    out = Path(args.out)
    exists = (out / MANIFEST).exists()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file: a map is a directory")
    if exists and not args.merge:
        raise ConfigError(f"{out} is a link map already: give --merge to add drives to it, "
                          "or another --out")
    if not exists and out.exists() and any(out.iterdir()):
        raise ConfigError(f"--out {out} is a non-empty directory that is not a link map")
    base = read_map(out) if exists else None
    if base is not None and args.cell_m is not None and args.cell_m != base.grid.cell_m:
        raise ConfigError(f"--cell-m {args.cell_m:g} differs from the map's "
                          f"{base.grid.cell_m:g} m cells: a merge keeps the map's grid")
    cell_m = args.cell_m if args.cell_m is not None else default_cell_m
    with progress.bar(f"linkmap {len(args.logs)} log(s)", len(args.logs)) as update:
        linkmap, report = build_map(args.logs, cell_m=cell_m, base=base, progress=update)
    manifest = write_map(out, linkmap)
    print("\n".join(report.lines()), flush=True)
    print(f"{'merged into' if base is not None else 'wrote'} {out}: {manifest.rows} rows, "
          f"{manifest.drives} drive(s), links {', '.join(manifest.links) or 'none'}, "
          f"conditions {', '.join(manifest.conditions) or 'none'}", flush=True)
    return 0


def _token(args: argparse.Namespace) -> int:
    """``token create`` (or ``issue``) prints a new token once (the journal keeps its hash),
    optionally with an expiry; ``token revoke`` ends one at once, on running hubs too;
    ``token list`` names the tokens and their state (never a hash or a token)."""
    from l4mon.auth import ROLE_RANK, hash_token, new_token, parse_expiry
    from l4mon.clock import LiveClock
    from l4mon.store.journal import open_journal

    now = LiveClock().now()
    config = load_config(args.config)
    in_config = {t.name: t.role for t in config.auth.tokens}
    journal = open_journal(_journal_location(args.journal) or config.alerts.journal,
                           password_file=config.alerts.journal_password_file)
    journal_path = journal.location  # a URL's password is never printed
    try:
        stored = {row["name"]: row for row in journal.tokens()}
        if args.action == "list":
            for name, role in sorted(in_config.items()):
                print(f"{name}\t{role}\t(config)", flush=True)
            for name, row in sorted(stored.items()):
                print(f"{name}\t{row['role']}\t(journal, {_token_state(row, now)})",
                      flush=True)
            if not in_config and not stored:
                print(f"no tokens yet ({journal_path}): l4mon token create --role operator "
                      "--name NAME", flush=True)
            return 0
        if args.action == "revoke":
            if args.name in in_config and args.name not in stored:
                raise ConfigError(f"{args.name!r} is a token of the config file: remove its "
                                  "[[auth.tokens]] entry and restart the hub")
            if not journal.revoke_token(args.name, now):
                known = ", ".join(n for n, r in sorted(stored.items())
                                  if r["revoked_at"] is None) or "none"
                raise ConfigError(f"no token in force named {args.name!r} in {journal_path} "
                                  f"(in force: {known})")
            print(f"revoked {args.name}: hubs on {journal_path} refuse it from their next "
                  "request, and close its console sessions", flush=True)
            return 0
        if args.role not in ROLE_RANK:
            raise ConfigError(f"--role must be one of {', '.join(ROLE_RANK)}")
        expires_at = parse_expiry(args.expires, now) if args.expires else None
        row = stored.get(args.name)
        if args.name in in_config or (row is not None and _in_force(row, now)):
            raise ConfigError(f"a token named {args.name!r} exists already: choose another "
                              "--name, or revoke it first")
        token = new_token()
        journal.add_token(args.name, args.role, hash_token(token), now, expires_at=expires_at)
    finally:
        journal.close()
    until = "" if expires_at is None else f", until {_utc(expires_at)}"
    print(f"token for {args.name} ({args.role}{until}), shown only this once (the journal "
          f"{journal_path} keeps its hash):\n  {token}\nRunning hubs on this journal accept "
          "it within a second; log in with http://HOST:PORT/#token=<token>", flush=True)
    return 0


def _journal_location(given: str | None) -> str | None:
    """``--journal``, refused if its URL holds a password: every user of the host reads a
    command line (``ps``, /proc/PID/cmdline)."""
    if given is None:
        return None
    parse_location(given)  # a form the hub does not understand is refused as that, first
    if carries_password(given):
        raise ConfigError(f"--journal {redact(given)}: a password on the command line is "
                          "visible to every user of this host (ps); put the URL in the config "
                          "file ([alerts] journal), the password in [alerts] "
                          "journal_password_file, or use libpq's PGPASSFILE / PGPASSWORD")
    return given


def _in_force(row: dict[str, Any], now: float) -> bool:
    return row["revoked_at"] is None and (row["expires_at"] is None or row["expires_at"] > now)


def _token_state(row: dict[str, Any], now: float) -> str:
    if row["revoked_at"] is not None:
        return f"revoked {_utc(row['revoked_at'])}"
    if row["expires_at"] is not None and row["expires_at"] <= now:
        return f"expired {_utc(row['expires_at'])}"
    return "in force" if row["expires_at"] is None else \
        f"in force until {_utc(row['expires_at'])}"


def _utc(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="l4mon", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    acl = sub.add_parser("acl", help="Mosquitto's ACL file from the site register (stdout)")
    acl.add_argument("register", metavar="REGISTER", help="the site register (TOML)")

    demo = sub.add_parser("demo", help="hub + simulated fleet in one process, no broker")
    demo.add_argument("--http", default="127.0.0.1:8080", help="HOST:PORT to serve on")
    demo.add_argument("--vehicles", type=int, default=4)
    demo.add_argument("--rate", type=float, default=10.0, help="samples per second per stream")
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    demo.add_argument("--linkmap", default=None, metavar="MAP",
                      help="look ahead on this link map (l4mon linkmap build)")

    serve = sub.add_parser("serve", help="the hub against a real MQTT broker")
    serve.add_argument("--config", default=None, help="TOML config file (defaults without)")
    serve.add_argument("--broker", default=None, help="mqtt://HOST:PORT (overrides the file)")
    serve.add_argument("--http", default=None, help="HOST:PORT (overrides the file)")
    serve.add_argument("--mqtt-client", choices=["gmqtt", "aiomqtt"], default=None)
    serve.add_argument("--journal", default=None,
                       help="alert journal: an SQLite file or postgresql://USER@HOST/DB "
                            "(overrides the file)")
    serve.add_argument("--record", default=None, metavar="DIR",
                       help="record everything ingested as a drive log in DIR")

    sim = sub.add_parser("simulate", help="publish the simulated fleet to a real broker")
    sim.add_argument("--broker", required=True, help="mqtt://HOST:PORT")
    sim.add_argument("--vehicles", type=int, default=4)
    sim.add_argument("--rate", type=float, default=10.0, help="samples per second per stream")
    sim.add_argument("--duration", type=float, default=60.0, help="seconds to publish for")
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--site", default=None, help="site TOML (the demo site without)")
    sim.add_argument("--per-vehicle", action="store_true",
                     help="one MQTT connection per vehicle, each with its last will (service "
                          "offline), as real vehicles connect")
    sim.add_argument("--only", default=None, metavar="ID[,ID...]",
                     help="publish only these vehicles (and no RSU): one process per vehicle")

    rep = sub.add_parser("replay", help="replay a drive log or scenario through the pipeline")
    rep.add_argument("inputs", nargs="+", metavar="INPUT",
                     help="a drive log directory or a scenario .toml; several, or a folder of "
                          "drive logs, make a campaign replayed in parallel")
    rep.add_argument("--workers", type=int, default=None, metavar="N",
                     help="campaign: replays at once on this machine (default: its CPUs)")
    rep.add_argument("--cluster", default=None, metavar="ADDRESS",
                     help="campaign: run on this Dask cluster (tcp://SCHEDULER:8786) instead")
    rep.add_argument("--linkmap", default=None, metavar="MAP",
                     help="look ahead on this link map (default: the recording's, if found)")
    rep.add_argument("--speed", default="max", help="1, 10 (times real time) or max")
    rep.add_argument("--out", default=None,
                     help="write the results JSON here (a campaign: the folder for each "
                          "input's NAME/results.json and campaign.json)")
    rep.add_argument("--publish", default=None,
                     help="mqtt://HOST:PORT: publish the messages to a broker as well")
    rep.add_argument("--config", default=None,
                     help="hub config TOML (default: the one the log was recorded with)")
    rep.add_argument("--site", default=None,
                     help="site TOML or 'demo' (default: the one the log was recorded with)")

    imp = sub.add_parser("import", help="turn drive-test logs into an l4mon drive log",
                         epilog="mapped: any tool's text export through a TOML mapping of its "
                                "columns; the format, with worked examples (a long-format "
                                "export, a car with several modems), is docs/mapping.md")
    imp.add_argument("format", choices=["gnettrack", "cicv5g", "mapped"])
    imp.add_argument("--mapping", default=None, metavar="TOML",
                     help="mapped: the column mapping (a TOML file, or a shipped one's name: "
                          "gnettrack, cicv5g); how to write one: docs/mapping.md")
    imp.add_argument("inputs", nargs="+",
                     help="source files (one vehicle each, named after the file, unless "
                          "--vehicle says otherwise)")
    imp.add_argument("--out", required=True, help="drive log directory to write")
    imp.add_argument("--vehicle", default=None, metavar="NAME",
                     help="every file is this one vehicle: several runs of a route (each a "
                          "drive of its own) or one file per modem of a car (one drive on "
                          "several links, where their times overlap)")
    imp.add_argument("--link", action="append", default=None, metavar="NAME", dest="links",
                     help="the link a file is: once for every file, or once per file in the "
                          "files' order (default: the format's own name)")
    imp.add_argument("--tz", default=None, metavar="ZONE",
                     help="gnettrack: the phone's local time zone (default Europe/Dublin, "
                          "where the UCC drives were)")
    imp.add_argument("--site", default=None,
                     help="site name (default: the dataset's: tongji-cicv5g, gnettrack)")
    imp.add_argument("--weather", default="unknown",
                     choices=["clear", "cloudy", "rain", "snow", "fog", "unknown"])
    imp.add_argument("--light", default="unknown",
                     choices=["daylight", "dusk", "night", "unknown"])
    imp.add_argument("--road", default="unknown",
                     choices=["dry", "wet", "snow", "ice", "unknown"])
    rpt = sub.add_parser("report", help="a reliability report from drive logs / results")
    rpt.add_argument("inputs", nargs="+",
                     help="drive log directories, folders of them, or replay results.json")
    rpt.add_argument("--out", required=True, help="the HTML report to write")
    rpt.add_argument("--csv", default=None, metavar="DIR", help="also write the tables as CSV")
    rpt.add_argument("--parquet", default=None, metavar="DIR",
                     help="also write the tables as Parquet")
    rpt.add_argument("--pdf", default=None, metavar="FILE",
                     help="also print the page to PDF with a local headless Chromium")
    rpt.add_argument("--site", default=None,
                     help="site TOML or 'demo' (default: the demo site for its own logs)")
    rpt.add_argument("--config", default=None, help="hub config: thresholds, requirements")
    rpt.add_argument("--from", dest="start", default=None,
                     help="period start: epoch seconds or ISO 8601 (UTC unless it says)")
    rpt.add_argument("--to", dest="end", default=None, help="period end (exclusive)")
    rpt.add_argument("--replay", choices=["auto", "always", "never"], default="auto",
                     help="replay logs for link states, handovers, alerts (auto: small ones)")
    rpt.add_argument("--replay-max-rows", type=int, default=2_000_000,
                     help="auto replays logs up to this many messages")
    rpt.add_argument("--title", default="Link reliability report")
    rpt.add_argument("--linkmap", default=None, metavar="MAP",
                     help="add a section on this link map, conditions side by side")
    rpt.add_argument("--chromium", default=None, help="Chromium binary for --pdf")
    rpt.add_argument("--workers", type=int, default=None, metavar="N",
                     help="drive logs scanned (and replayed) at once on this machine "
                          "(default: its CPUs)")
    rpt.add_argument("--cluster", default=None, metavar="ADDRESS",
                     help="scan and replay the logs on this Dask cluster (tcp://SCHEDULER:8786)")

    lmap = sub.add_parser("linkmap", help="a map of link quality learned from drive logs")
    lsub = lmap.add_subparsers(dest="action", required=True)
    build = lsub.add_parser("build", help="replay drive logs into a map (Parquet)")
    build.add_argument("logs", nargs="+", metavar="LOG",
                       help="drive logs: recordings or imports (l4mon import)")
    build.add_argument("--out", required=True, metavar="MAP", help="the map directory")
    build.add_argument("--cell-m", type=float, default=None,
                       help="grid cell size in metres (default 25; a merge keeps the map's)")
    build.add_argument("--merge", action="store_true",
                       help="add the logs' drives to the map at --out (drives it already "
                            "holds are not counted again)")
    show = lsub.add_parser("show", help="the map's worst cells per link and condition")
    show.add_argument("map", metavar="MAP", help="the map directory")
    show.add_argument("--worst", type=int, default=5, help="cells listed per link (default 5)")

    tok = sub.add_parser("token", help="access tokens in a hub's journal: create (issue), "
                         "revoke, list")
    tok.add_argument("action", choices=["create", "issue", "revoke", "list"])
    tok.add_argument("token_name", nargs="?", default=None, metavar="NAME",
                     help="who the token is for (create, revoke); or --name")
    tok.add_argument("--role", default="operator", help="viewer, operator or admin")
    tok.add_argument("--name", default=None, help="who the token is for (create, revoke)")
    tok.add_argument("--expires", default=None, metavar="WHEN",
                     help="create: refused after this: a duration (90m, 12h, 30d, 2w) or a "
                          "date or time (2026-12-31, UTC unless it says)")
    tok.add_argument("--config", default=None, help="the hub's config (for its journal)")
    tok.add_argument("--journal", default=None,
                     help="the journal: an SQLite file or postgresql://USER@HOST/DB "
                          "(overrides the config)")
    return parser


#: Commands whose exit status is a verdict: 0 pass (or nothing graded), 1 a verdict or an
#: expectation failed, 2 bad input (files, URLs, options).
DATA_TOOLS = frozenset({"import", "replay", "report", "linkmap"})


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "acl":
            print(acl_text(load_register(args.register)), end="")
            return 0
        if args.command == "demo":
            if args.vehicles < 1 or args.rate <= 0:
                raise ConfigError("--vehicles must be >= 1 and --rate > 0")
            parse_listen(args.http)
            return _run(_demo(args))
        if args.command == "replay":
            if args.speed not in ("1", "10", "max"):
                raise ConfigError("--speed must be 1, 10 or max")
            return _replay(args)
        if args.command == "import":
            return _import(args)
        if args.command == "report":
            return _report(args)
        if args.command == "linkmap":
            return _linkmap(args)
        if args.command == "token":
            args.name = args.name or args.token_name
            if args.action != "list" and not args.name:
                raise ConfigError(f"token {args.action} needs a NAME (who the token is for)")
            return _token(args)
        if args.command == "serve":
            config = with_overrides(load_config(args.config), broker=args.broker, http=args.http,
                                    mqtt_client=args.mqtt_client,
                                    journal=_journal_location(args.journal))
            return _run(_serve(config, args.record))
        if args.vehicles < 1 or args.rate <= 0 or args.duration <= 0:
            raise ConfigError("--vehicles must be >= 1, --rate and --duration > 0")
        return _run(_simulate(args))
    except (ConfigError, ValueError) as error:
        print(f"l4mon: {error}", file=sys.stderr)
        return 2
    except JournalError as error:  # cannot open or write it: its message names it, redacted
        print(f"l4mon: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except OSError as error:
        print(f"l4mon: {error}", file=sys.stderr)
        # For the data tools a file that cannot be read or written, or a broker that cannot be
        # reached, is bad input (2), never a failed verdict (1) that CI would misread.
        return 2 if args.command in DATA_TOOLS else 1
