"""What the API shows of the hub's state: plain dicts, computed at the time the caller gives."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from telemetry.fleet import Fleet, RsuTrack
from telemetry.link import WINDOWS, LinkTrack
from telemetry.quarantine import Quarantine, Quarantined
from telemetry.vehicle import VehicleTrack

if TYPE_CHECKING:
    from telemetry.linkmap.outlook import LinkAhead, LookAhead


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def link_brief(link: LinkTrack, now: float) -> dict[str, Any]:
    """A link at a glance: cheap enough to list for every vehicle of a large fleet."""
    last = link.last
    health = link.health
    return {
        "state": health.state,
        "reasons": health.reasons,
        "rat": last.rat if last else None,
        "cell_id": last.cell_id if last else None,
        "rsrp_dbm": last.rsrp_dbm if last else None,
        "sinr_db": last.sinr_db if last else None,
        "rtt_p95_ms": _round(link.judged_rtt_p95_ms),
        "loss_ratio": _round(link.judged_loss_ratio, 5),
        "ul_kbps": last.ul_kbps if last else None,
        "dl_kbps": last.dl_kbps if last else None,
        "age_s": _round(link.age(now)),
        "clock_suspect": link.clock_suspect,
        "min_uplink_delay_ms": None if link.min_owd_s is None else round(link.min_owd_s * 1e3, 1),
    }


def link_detail(link: LinkTrack, now: float) -> dict[str, Any]:
    seq = link.seq
    out = link_brief(link, now)
    signal = link.signal()
    out.update({
        "name": link.name,
        "state_since": link.health.since,
        "state_changes": link.health.changes,
        "signal": None if signal is None else {
            "rat": signal.rat, "cell_id": signal.cell_id, "rsrp_dbm": signal.rsrp_dbm,
            "rsrq_db": signal.rsrq_db, "sinr_db": signal.sinr_db,
        },
        "cell_changes": link.cell_changes,
        "sequence": {
            "received": seq.received, "lost": seq.lost, "duplicates": seq.duplicates,
            "reordered": seq.reordered, "restarts": seq.restarts,
            "loss_ratio": _round(seq.loss_ratio, 6),
        },
        "windows": {},
    })
    for window in WINDOWS:
        fig = link.figures(now, window)
        out["windows"][f"{int(window)}s"] = {
            "samples": fig.samples,
            "rtt_p50_ms": _round(fig.rtt_p50_ms), "rtt_p95_ms": _round(fig.rtt_p95_ms),
            "rtt_p99_ms": _round(fig.rtt_p99_ms), "rtt_jitter_ms": _round(fig.rtt_jitter_ms),
            "probes": fig.probes, "probe_timeouts": fig.probe_timeouts,
            "uplink_delay_p50_ms": _round(fig.owd_p50_ms),
            "uplink_delay_p95_ms": _round(fig.owd_p95_ms),
            "loss_ratio": _round(fig.loss_ratio, 6),
            "ul_kbps": _round(fig.ul_kbps, 1), "dl_kbps": _round(fig.dl_kbps, 1),
        }
    return out


def ahead_brief(lookahead: LookAhead, ahead: LinkAhead) -> dict[str, Any]:
    """One link's outlook on the map: the console highlights the weak stretch it names."""
    spot = ahead.outlook.spot
    out: dict[str, Any] = {"weak": spot is not None, "mapped": ahead.outlook.mapped,
                           "weather": ahead.weather, "light": ahead.light}
    if spot is not None:
        lat, lon = lookahead.linkmap.grid.centre(spot.cell)
        out.update(in_s=_round(ahead.in_s, 1), distance_m=_round(spot.distance_m, 1),
                   share=_round(spot.share), passes=spot.passes, pooled=spot.pooled,
                   cell=list(spot.cell), lat=_round(lat, 7), lon=_round(lon, 7))
    return out


def vehicle_brief(vehicle: VehicleTrack, now: float,
                  unseen: Mapping[str, str] | None = None,
                  lookahead: LookAhead | None = None) -> dict[str, Any]:
    """The vehicle at a glance. ``unseen``: sites the hub cannot see (site -> why,
    l4mon/site_watch.py): their vehicles' connectivity is unknown, not down, and says why.
    ``ahead``, with a link map: each link's outlook; None without a map or a recent pose."""
    state = vehicle.state
    why = unseen.get(vehicle.site) if unseen else None
    outlook = lookahead.links(vehicle, now) if lookahead is not None else None
    return {
        "id": vehicle.id,
        "site": vehicle.site,
        "connectivity": "unknown" if why else vehicle.connectivity,
        "unseen": why,
        "telemetry": vehicle.telemetry,
        "mode": state.mode if state else None,
        "lat": state.lat if state else None,
        "lon": state.lon if state else None,
        "speed_mps": state.speed_mps if state else None,
        "heading_deg": state.heading_deg if state else None,
        "age_s": None if vehicle.state_rx is None else _round(now - vehicle.state_rx),
        # in_service, out_of_service, or unknown (it never said: judged as in service)
        "service": {"status": vehicle.service, "since": vehicle.service_since,
                    "reason": vehicle.service_reason},
        "links": {name: link_brief(link, now) for name, link in sorted(vehicle.links.items())},
        "ahead": None if outlook is None or lookahead is None else
        {name: ahead_brief(lookahead, a) for name, a in sorted(outlook.items())},
    }


def vehicle_detail(vehicle: VehicleTrack, now: float,
                   unseen: Mapping[str, str] | None = None,
                   lookahead: LookAhead | None = None) -> dict[str, Any]:
    out = vehicle_brief(vehicle, now, unseen, lookahead)
    out["links"] = {name: link_detail(link, now) for name, link in sorted(vehicle.links.items())}
    seq = vehicle.state_seq
    out["state_sequence"] = {"received": seq.received, "lost": seq.lost,
                             "duplicates": seq.duplicates, "reordered": seq.reordered}
    out["v2i_rx"] = vehicle.state.v2i_rx if vehicle.state else None
    out["events"] = [
        {"received_at": at, "ts": ev.ts, "kind": ev.kind, "seq": ev.seq, "detail": ev.detail}
        for at, ev in reversed(vehicle.events)
    ]
    return out


def vehicles(fleet: Fleet, now: float, *, site: str | None = None,
             unseen: Mapping[str, str] | None = None,
             lookahead: LookAhead | None = None,
             service: str | None = None) -> list[dict[str, Any]]:
    return [vehicle_brief(v, now, unseen, lookahead) for _, v in sorted(fleet.vehicles.items())
            if (site is None or v.site == site) and (service is None or v.service == service)]


def rsu_brief(rsu: RsuTrack, now: float) -> dict[str, Any]:
    last = rsu.last
    return {
        "id": rsu.id, "site": rsu.site,
        "intersection": last.intersection if last else None,
        "health": last.health if last else None,
        "tx_msgs": last.tx_msgs if last else None,
        "age_s": None if rsu.last_rx is None else _round(now - rsu.last_rx),
        "lost": rsu.seq.lost, "received": rsu.seq.received,
    }


def quarantined(item: Quarantined) -> dict[str, Any]:
    return {
        "received_at": item.received_at,
        "topic": item.topic,
        "reason": item.reason,
        "detail": item.detail,
        "payload_len": item.payload_len,
        "payload_b64": base64.b64encode(item.payload).decode("ascii"),
        "payload_text": item.payload.decode("utf-8", "replace")[:1_000],
    }


def quarantine(store: Quarantine, *, limit: int, reason: str | None) -> dict[str, Any]:
    return {
        "total": store.total,
        "kept": len(store),
        "counts": dict(sorted(store.counts.items())),
        "items": [quarantined(i) for i in store.newest(limit=limit, reason=reason)],
    }
