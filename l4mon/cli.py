"""The ``l4mon`` command: ``demo``, ``serve`` and ``simulate``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import tempfile
from collections.abc import Coroutine
from typing import Any

import uvloop

from l4mon.config import ConfigError, HubConfig, load_config, parse_listen, with_overrides

log = logging.getLogger("l4mon")


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
    from l4mon.api.app import create_app
    from l4mon.clock import LiveClock
    from l4mon.config import config_from_dict
    from l4mon.ingest.feed import FeedSource
    from l4mon.runtime import run
    from l4mon.service import build_runtime
    from l4mon.site import DEMO_SITE_PATH, load_site
    from scenarios.simfleet import SimFleet

    clock = LiveClock()
    site = load_site(DEMO_SITE_PATH)
    fleet = SimFleet(site=site, vehicles=args.vehicles, rate_hz=args.rate, seed=args.seed,
                     start=clock.now())
    host, port = parse_listen(args.http)
    with tempfile.TemporaryDirectory(prefix="l4mon-demo-") as state:
        # The demo's journal lives only as long as the demo: every run starts clean.
        config = config_from_dict({"alerts": {"journal": f"{state}/journal.sqlite"},
                                   "http": {"listen": args.http}})
        runtime = build_runtime(config, clock=clock, site=site, demo=fleet)
        token, _ = runtime.tokens.issue("demo-operator", "operator")
        source = FeedSource(generate=fleet.advance, clock=clock)
        runtime.buffer = source.buffer
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
            await run(runtime, source, http=(host, port), app=create_app(runtime), stop=stop)
        finally:
            timer.cancel()
            runtime.hub.alerts.journal.close()  # type: ignore[union-attr]
    return 0


async def _serve(config: HubConfig, record: str | None = None) -> int:
    from l4mon.api.app import create_app
    from l4mon.clock import LiveClock
    from l4mon.ingest.mqtt import MqttSource
    from l4mon.runtime import run
    from l4mon.service import build_runtime, ensure_admin_token

    runtime = build_runtime(config, clock=LiveClock())
    token = ensure_admin_token(runtime)
    if token is not None:
        print("No tokens were configured, so an admin token was created. It is shown only "
              f"this once (the journal keeps just its hash):\n  {token}", flush=True)
    source = MqttSource(settings=config.mqtt, quarantine=runtime.hub.quarantine,
                        clock=runtime.clock)
    runtime.buffer = source.buffer
    runtime.mqtt = source.status
    if record:
        from l4mon.context import recorded
        from l4mon.recorder import Recorder
        from telemetry.drivelog import Manifest

        site = runtime.site
        runtime.recorder = Recorder(record, manifest=Manifest(
            site=site.name if site is not None else "", source={"kind": "recorder"},
            **recorded(config, site)))
        log.info("recording everything ingested to %s", record)
    host, port = parse_listen(config.http.listen)
    stop = asyncio.Event()
    _stop_on_signals(stop)
    log.info("l4mon serve: broker %s (%s), HTTP http://%s:%d/, journal %s", config.mqtt.url,
             config.mqtt.client, host, port, config.alerts.journal)
    try:
        await run(runtime, source, http=(host, port), app=create_app(runtime), stop=stop)
    finally:
        if runtime.recorder is not None:
            await asyncio.to_thread(runtime.recorder.close)  # drains: nothing received is lost
        runtime.hub.alerts.journal.close()  # type: ignore[union-attr]
    return 0


async def _simulate(args: argparse.Namespace) -> int:
    from l4mon.clock import LiveClock
    from l4mon.site import DEMO_SITE_PATH, load_site
    from scenarios.publish import publish_fleet
    from scenarios.simfleet import SimFleet

    clock = LiveClock()
    site = load_site(args.site or DEMO_SITE_PATH)
    fleet = SimFleet(site=site, vehicles=args.vehicles, rate_hz=args.rate, seed=args.seed,
                     start=clock.now())
    stop = asyncio.Event()
    _stop_on_signals(stop)
    sent = await publish_fleet(fleet, url=args.broker, clock=clock, duration_s=args.duration,
                               stop=stop)
    print(f"published {sent} messages from {args.vehicles} vehicles", flush=True)
    return 0


def _replay(args: argparse.Namespace) -> int:
    """Exit 0 when every expectation holds (or there are none), 1 when one fails."""
    from pathlib import Path

    from l4mon.site import DEMO_SITE_PATH, load_site
    from scenarios.scenario import encode_results, run_log, run_scenario

    target = Path(args.input)
    config = load_config(args.config) if args.config else None
    site = None if args.site is None else load_site(
        DEMO_SITE_PATH if args.site == "demo" else args.site)
    if args.speed != "max" or args.publish:
        from scenarios.pacing import replay_paced

        return _run(replay_paced(target, speed=args.speed, publish=args.publish, out=args.out,
                                 config=config, site=site))
    doc = run_scenario(target, config=config, site=site) if target.is_file() \
        else run_log(target, config=config, site=site)
    data = encode_results(doc)
    if args.out:
        Path(args.out).write_bytes(data)
    failed = [e for e in doc["expectations"] if not e["passed"]]
    sessions = len(doc["sessions"])
    print(f"{doc['input'].get('name') or target}: {doc['verdict'].upper()} - "
          f"{doc['span']['messages']} messages over {doc['span']['duration_s']:.1f} s"
          f"{f' in {sessions} sessions' if sessions > 1 else ''}, "
          f"{len(doc['alerts'])} alerts, {len(doc['expectations']) - len(failed)}/"
          f"{len(doc['expectations'])} expectations held", flush=True)
    for e in failed:
        print(f"  FAILED {e['id']}: {e['detail']}", flush=True)
    return 1 if failed else 0


def _import(args: argparse.Namespace) -> int:
    from pathlib import Path

    from scenarios.importers import import_files
    from telemetry.drivelog import Conditions

    conditions = Conditions(weather=args.weather, light=args.light, road=args.road)
    report = import_files(args.format, [Path(p) for p in args.inputs], Path(args.out),
                          site=args.site, conditions=conditions, timezone=args.tz,
                          mapping=args.mapping)
    print("\n".join(report.lines()), flush=True)
    return 0


def _report(args: argparse.Namespace) -> int:
    """Build the report once; the HTML, CSV, Parquet and PDF are renderings of it."""
    from pathlib import Path

    from l4mon.report import (
        ReportOptions,
        build_report,
        print_pdf,
        render,
        write_csv,
        write_parquet,
    )
    from l4mon.report.periods import parse_time
    from l4mon.site import DEMO_SITE_PATH, load_site

    site = None if args.site is None else load_site(
        DEMO_SITE_PATH if args.site == "demo" else args.site)
    options = ReportOptions(config=load_config(args.config) if args.config else None, site=site,
                            start=parse_time(args.start, "--from"),
                            end=parse_time(args.end, "--to"), replay=args.replay,
                            replay_max_rows=args.replay_max_rows, title=args.title)
    report = build_report(args.inputs, options)
    out = Path(args.out)
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
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="l4mon", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="hub + simulated fleet in one process, no broker")
    demo.add_argument("--http", default="127.0.0.1:8080", help="HOST:PORT to serve on")
    demo.add_argument("--vehicles", type=int, default=4)
    demo.add_argument("--rate", type=float, default=10.0, help="samples per second per stream")
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument("--duration", type=float, default=None, help="stop after S seconds")

    serve = sub.add_parser("serve", help="the hub against a real MQTT broker")
    serve.add_argument("--config", default=None, help="TOML config file (defaults without)")
    serve.add_argument("--broker", default=None, help="mqtt://HOST:PORT (overrides the file)")
    serve.add_argument("--http", default=None, help="HOST:PORT (overrides the file)")
    serve.add_argument("--mqtt-client", choices=["gmqtt", "aiomqtt"], default=None)
    serve.add_argument("--journal", default=None, help="alert journal file (overrides the file)")
    serve.add_argument("--record", default=None, metavar="DIR",
                       help="record everything ingested as a drive log in DIR")

    sim = sub.add_parser("simulate", help="publish the simulated fleet to a real broker")
    sim.add_argument("--broker", required=True, help="mqtt://HOST:PORT")
    sim.add_argument("--vehicles", type=int, default=4)
    sim.add_argument("--rate", type=float, default=10.0, help="samples per second per stream")
    sim.add_argument("--duration", type=float, default=60.0, help="seconds to publish for")
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--site", default=None, help="site TOML (the demo site without)")

    rep = sub.add_parser("replay", help="replay a drive log or scenario through the pipeline")
    rep.add_argument("input", help="a drive log directory or a scenario .toml")
    rep.add_argument("--speed", default="max", help="1, 10 (times real time) or max")
    rep.add_argument("--out", default=None, help="write the results JSON here")
    rep.add_argument("--publish", default=None,
                     help="mqtt://HOST:PORT: publish the messages to a broker as well")
    rep.add_argument("--config", default=None,
                     help="hub config TOML (default: the one the log was recorded with)")
    rep.add_argument("--site", default=None,
                     help="site TOML or 'demo' (default: the one the log was recorded with)")

    imp = sub.add_parser("import", help="turn drive-test logs into an l4mon drive log")
    imp.add_argument("format", choices=["gnettrack", "cicv5g", "mapped"])
    imp.add_argument("--mapping", default=None, metavar="TOML",
                     help="mapped: the column mapping (a TOML file, or a shipped one's name: "
                          "gnettrack, cicv5g)")
    imp.add_argument("inputs", nargs="+", help="source files (one vehicle each)")
    imp.add_argument("--out", required=True, help="drive log directory to write")
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
    rpt.add_argument("--chromium", default=None, help="Chromium binary for --pdf")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
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
        if args.command == "serve":
            config = with_overrides(load_config(args.config), broker=args.broker, http=args.http,
                                    mqtt_client=args.mqtt_client, journal=args.journal)
            return _run(_serve(config, args.record))
        if args.vehicles < 1 or args.rate <= 0 or args.duration <= 0:
            raise ConfigError("--vehicles must be >= 1, --rate and --duration > 0")
        return _run(_simulate(args))
    except (ConfigError, ValueError) as error:
        print(f"l4mon: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except OSError as error:
        print(f"l4mon: {error}", file=sys.stderr)
        return 1
