"""Prometheus exposition of the hub's own counters.

The hub counts with plain integers on its hot path; this collector reads them only when scraped,
so a message costs no metric-library call. Labels are closed sets (reasons, states), never
vehicle ids: a fleet of thousands must not become thousands of time series per metric.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from l4mon.commands.service import REASONS as COMMAND_REASONS
from l4mon.console_stream import Broadcaster
from l4mon.hub import INTERNAL_ERROR, Hub
from l4mon.ingest.buffer import BatchBuffer
from l4mon.ingest.mqtt_status import MqttStatus
from l4mon.loop_lag import LoopLag
from l4mon.recorder import Recorder
from l4mon.records.alert import SEVERITY_RANK
from telemetry.decode import REASONS
from telemetry.fleet import REASONS as FLEET_REASONS
from telemetry.ranges import LINK_RANGES
from telemetry.ranges import REASONS as SCREEN_REASONS
from telemetry.vehicle import CONNECTIVITY, SERVICE_STATES

if TYPE_CHECKING:
    from l4mon.leadership import Leadership


class HubCollector(Collector):
    def __init__(self, hub: Hub, *, buffer: Callable[[], BatchBuffer | None],
                 mqtt: Callable[[], MqttStatus | None],
                 broadcaster: Broadcaster | None = None,
                 recorder: Callable[[], Recorder | None] | None = None,
                 ha: Callable[[], Leadership | None] | None = None,
                 loop_lag: LoopLag | None = None) -> None:
        self.hub = hub
        self.loop_lag = loop_lag
        self.ha = ha
        self.recorder = recorder
        self.buffer = buffer
        self.mqtt = mqtt
        self.broadcaster = broadcaster

    def collect(self) -> Iterator[Metric]:
        """Every family, one group of them per part of the hub."""
        hub = self.hub
        yield from self._messages(hub)
        yield from self._fleet(hub)
        yield from self._alerts(hub)
        yield from self._consoles(hub)
        yield from self._pair(hub)
        yield from self._recorder_and_buffer(hub)
        yield from self._broker(hub)
        yield from self._loop()

    def _loop(self) -> Iterator[Metric]:
        """How late the event loop wakes (l4mon/loop_lag.py): what urgent work waits."""
        lag = self.loop_lag
        if lag is None:
            return
        late = GaugeMetricFamily("l4mon_loop_lag_seconds",
                                 "How late the event loop woke a sleeper over the last "
                                 f"{lag.recent.maxlen} wakes, by quantile (max: since start).",
                                 labels=["quantile"])
        for q in (0.5, 0.9, 0.99):
            late.add_metric([str(q)], lag.quantile(q))
        late.add_metric(["max"], lag.worst_s)
        yield late
        pauses = GaugeMetricFamily("l4mon_gc_pause_seconds",
                                   "The longest garbage collection since start, by generation.",
                                   labels=["generation"])
        runs = CounterMetricFamily("l4mon_gc_collections",
                                   "Garbage collections since start, by generation.",
                                   labels=["generation"])
        for generation in range(3):
            pauses.add_metric([str(generation)], lag.gc_worst_s[generation])
            runs.add_metric([str(generation)], lag.gc_runs[generation])
        yield pauses
        yield runs

    def _messages(self, hub: Hub) -> Iterator[Metric]:
        """What came in, and what was refused or screened."""
        yield CounterMetricFamily("l4mon_messages_received", "Messages handed to the hub.",
                                  value=hub.received)
        yield CounterMetricFamily("l4mon_messages_accepted", "Messages folded into state.",
                                  value=hub.accepted)
        yield CounterMetricFamily("l4mon_messages_duplicate",
                                  "Valid messages already seen (QoS 1 redelivery, replays).",
                                  value=hub.duplicates)
        quarantined = CounterMetricFamily("l4mon_messages_quarantined",
                                          "Messages refused, by reason.", labels=["reason"])
        counts = hub.quarantine.counts
        for reason in (*REASONS, *FLEET_REASONS, *COMMAND_REASONS, INTERNAL_ERROR):
            quarantined.add_metric([reason], counts.get(reason, 0))
        yield quarantined
        not_measured = CounterMetricFamily(
            "l4mon_fields_not_measured",
            "Link sample figures outside their physical range (a logger's no-value marker), "
            "accepted as not measured, by field and reason.", labels=["field", "reason"])
        screened = hub.fields_not_measured
        for name in LINK_RANGES:
            for reason in SCREEN_REASONS:
                not_measured.add_metric([name, reason], screened.get(name, {}).get(reason, 0))
        yield not_measured

    def _fleet(self, hub: Hub) -> Iterator[Metric]:
        """Links, vehicles, RSUs and newcomers, and the cost of a tick."""
        links = GaugeMetricFamily("l4mon_links", "Tracked links by state.", labels=["state"])
        for state, count in sorted(hub.fleet.link_state_counts().items()):
            links.add_metric([state], count)
        yield links
        yield GaugeMetricFamily("l4mon_links_clock_suspect",
                                "Links whose sender clock offset is implausible.",
                                value=hub.fleet.clock_suspect_links())
        vehicles = GaugeMetricFamily("l4mon_vehicles", "Tracked vehicles by connectivity.",
                                     labels=["connectivity"])
        by_conn = {c: 0 for c in CONNECTIVITY}
        for vehicle in hub.fleet.vehicles.values():
            by_conn[vehicle.connectivity] = by_conn.get(vehicle.connectivity, 0) + 1
        for conn, count in by_conn.items():
            vehicles.add_metric([conn], count)
        yield vehicles
        service = GaugeMetricFamily("l4mon_vehicles_by_service",
                                    "Tracked vehicles by service (unknown: never said).",
                                    labels=["service"])
        by_service = {state: 0 for state in SERVICE_STATES}
        for vehicle in hub.fleet.vehicles.values():
            by_service[vehicle.service] += 1
        for state, count in by_service.items():
            service.add_metric([state], count)
        yield service
        yield GaugeMetricFamily("l4mon_rsus", "Tracked roadside units.", value=len(hub.fleet.rsus))
        newcomers = hub.fleet.newcomers
        yield GaugeMetricFamily("l4mon_vehicles_newcomers",
                                "Vehicles heard but not yet confirmed (no register vouches).",
                                value=len(newcomers))
        yield GaugeMetricFamily("l4mon_vehicles_on_probation",
                                "Newcomers let in beyond the admission rate: not judged yet.",
                                value=len(newcomers.on_probation))
        yield CounterMetricFamily("l4mon_vehicles_evicted",
                                  "Newcomers never confirmed that the hub let go.",
                                  value=hub.fleet.evicted)
        yield GaugeMetricFamily("l4mon_tick_seconds", "Cost of the last evaluation tick.",
                                value=hub.last_tick_cost_s)

    def _alerts(self, hub: Hub) -> Iterator[Metric]:
        """Open alerts, journal failures, operators on duty."""
        alerts = hub.alerts
        open_alerts = GaugeMetricFamily("l4mon_alerts_open", "Open alerts by severity.",
                                        labels=["severity"])
        by_severity = {s: 0 for s in SEVERITY_RANK}
        for alert in alerts.open.values():
            by_severity[alert.severity] += 1
        for severity, count in by_severity.items():
            open_alerts.add_metric([severity], count)
        yield open_alerts
        yield CounterMetricFamily("l4mon_journal_failures",
                                  "Alert transitions that could not be journaled.",
                                  value=alerts.journal_failures)
        yield GaugeMetricFamily("l4mon_operators_on_duty", "Operators on duty.",
                                value=len(alerts.duty.operators()))

    def _consoles(self, hub: Hub) -> Iterator[Metric]:
        """The console stream's clients and those it shut out."""
        if self.broadcaster is not None:
            yield GaugeMetricFamily("l4mon_console_clients", "Connected console WebSockets.",
                                    value=len(self.broadcaster.clients))
            yield CounterMetricFamily("l4mon_console_disconnected_slow",
                                      "Consoles disconnected for not keeping up.",
                                      value=self.broadcaster.disconnected_slow)
            yield CounterMetricFamily("l4mon_console_closed_flooding",
                                      "Consoles closed (1008) for sending more frames than "
                                      "their budget.",
                                      value=self.broadcaster.sockets.flooding)
            refused = CounterMetricFamily("l4mon_console_refused",
                                          "Console handshakes refused by a connection cap.",
                                          labels=["cap"])
            for cap in ("token", "total"):
                refused.add_metric([cap], self.broadcaster.seats.refused[cap])
            yield refused

    def _pair(self, hub: Hub) -> Iterator[Metric]:
        """A hub pair's leadership (a single hub always leads)."""
        ha = self.ha() if self.ha is not None else None
        # A single hub always decides: 1, so "sum over a pair == 1" holds for pairs and singles.
        yield GaugeMetricFamily("l4mon_ha_leader",
                                "1 while this hub decides alerts (a pair's leader, or a single "
                                "hub); 0 on a standby or a fenced former leader.",
                                value=1 if ha is None or ha.leading else 0)
        if ha is not None:
            yield CounterMetricFamily("l4mon_ha_promotions",
                                      "Times this standby took over as leader.",
                                      value=ha.promotions)
            yield GaugeMetricFamily("l4mon_ha_kept_events",
                                    "Events a standby keeps to raise if it takes over.",
                                    value=0 if ha.leading else len(ha.engine.deferred))
            yield CounterMetricFamily("l4mon_ha_errors",
                                      "Failed journal reads or lock attempts of the hub pair.",
                                      value=ha.errors)

    def _recorder_and_buffer(self, hub: Hub) -> Iterator[Metric]:
        """The recorder's and the ingest buffer's backlog and losses."""
        recorder = self.recorder() if self.recorder is not None else None
        if recorder is not None:
            yield CounterMetricFamily("l4mon_recorder_recorded", "Messages recorded.",
                                      value=recorder.recorded)
            yield CounterMetricFamily("l4mon_recorder_dropped",
                                      "Messages not recorded because the writer fell behind.",
                                      value=recorder.dropped)
            yield GaugeMetricFamily("l4mon_recorder_backlog", "Messages waiting to be written.",
                                    value=recorder.backlog)
        buffer = self.buffer()
        if buffer is not None:
            yield GaugeMetricFamily("l4mon_ingest_queue_depth",
                                    "Messages received but not yet processed.", value=buffer.depth)
            yield CounterMetricFamily("l4mon_ingest_dropped",
                                      "Messages dropped because the hub fell behind.",
                                      value=buffer.dropped)

    def _broker(self, hub: Hub) -> Iterator[Metric]:
        """The broker connection and its self-checked paths."""
        status = self.mqtt()
        if status is not None:
            yield GaugeMetricFamily("l4mon_mqtt_connected", "1 while connected to the broker.",
                                    value=1 if status.connected else 0)
            yield CounterMetricFamily("l4mon_mqtt_connects", "Successful broker connections.",
                                      value=status.connects)
            yield CounterMetricFamily("l4mon_mqtt_disconnects", "Broker connections lost.",
                                      value=status.disconnects)
            yield GaugeMetricFamily("l4mon_mqtt_failed_attempts",
                                    "Consecutive failed connection attempts.",
                                    value=status.failed_attempts)
            yield GaugeMetricFamily(
                "l4mon_mqtt_lean_path",
                "1 while gmqtt's PUBLISH packets take l4mon's lean path (self-check passed).",
                value=1 if status.lean_path else 0)
            yield GaugeMetricFamily(
                "l4mon_mqtt_bounded_read",
                "1 while packets are read with the hub's bound, an oversized one dropped unread "
                "(self-check passed).", value=1 if status.bounded_read else 0)
            if status.max_packet_bytes is not None:
                yield GaugeMetricFamily(
                    "l4mon_mqtt_max_packet_bytes",
                    "The largest MQTT packet the hub reads, announced as its Maximum Packet "
                    "Size.", value=status.max_packet_bytes)
            yield CounterMetricFamily(
                "l4mon_mqtt_oversize_refused",
                "Packets over the hub's bound, refused unread (also quarantined as oversize).",
                value=status.refused_oversize)
            yield CounterMetricFamily(
                "l4mon_mqtt_session_taken_over",
                "Times the broker handed the hub's session to another client with its client "
                "id (MQTT 5 reason 0x8E).", value=status.session_takeovers)
            yield CounterMetricFamily(
                "l4mon_mqtt_closed_by_broker",
                "Times the broker closed the hub's connection unasked and without a reason "
                "(Mosquitto 2.0.11 handing its session to another client, or shutting down).",
                value=status.broker_closes_total)
            acked = GaugeMetricFamily(
                "l4mon_mqtt_ack_after_processing",
                "1 where a QoS 1 event is acknowledged only once processed, by ingest path.",
                labels=["path"])
            for path, holds in sorted(status.ack_after_processing.items()):
                acked.add_metric([path], 1 if holds else 0)
            yield acked


def make_registry(collector: HubCollector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
