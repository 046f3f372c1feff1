"""Replay at real or scaled time, optionally publishing to a broker for a live console.

Pacing only waits between batches: every decision still uses the log's virtual clock, so the
results are the same as at full speed. Published messages get their ``ts`` mapped onto the
scaled timeline that starts now (``now + (ts - start) / speed``), so a live hub sees fresh
telemetry whose timestamps advance as fast as it receives it, rather than a day-old log it
would quarantine, or timestamps racing ahead of its clock.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from l4mon.config import HubConfig
from scenarios.scenario import encode_results, prepare, run_prepared
from telemetry import codec
from telemetry.site import Site


async def replay_paced(target: Path, *, speed: str, publish: str | None,
                       out: str | None, config: HubConfig | None = None,
                       site: Site | None = None, linkmap: str | None = None) -> int:
    factor = 1e9 if speed == "max" else float(speed)
    prepared = prepare(target, config=config, site=site, linkmap=linkmap)
    publisher = None
    if publish:
        import paho.mqtt.client as paho

        from l4mon.ingest.mqtt import parse_url

        host, port, _ = parse_url(publish)
        publisher = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="l4mon-replay",
                                protocol=paho.MQTTv5)
        publisher.connect(host, port)
        publisher.loop_start()
    wall_start = time.monotonic()
    epoch_start = time.time()
    sent = 0
    stream = prepared.stream

    def paced():  # type: ignore[no-untyped-def]
        nonlocal sent
        for recv_time, topic, payload, content_type in stream:
            delay = (recv_time - prepared.start) / factor - (time.monotonic() - wall_start)
            if delay > 0:
                time.sleep(delay)  # the replay runs in a worker thread; nothing else waits
            if publisher is not None:
                data = codec.decode(payload, content_type)
                data["ts"] = epoch_start + (data["ts"] - prepared.start) / factor
                properties = None
                if content_type is not None:  # MessagePack stays MessagePack on the wire
                    from paho.mqtt.packettypes import PacketTypes
                    from paho.mqtt.properties import Properties

                    properties = Properties(PacketTypes.PUBLISH)
                    properties.ContentType = content_type
                publisher.publish(topic, codec.encode(data, content_type),
                                  qos=1 if topic.endswith("/event") else 0,
                                  properties=properties)
                sent += 1
            yield recv_time, topic, payload, content_type

    prepared.stream = paced()
    doc = await asyncio.to_thread(run_prepared, prepared)
    if publisher is not None:
        publisher.loop_stop()
        publisher.disconnect()
    if out:
        await asyncio.to_thread(Path(out).write_bytes, encode_results(doc))
    print(f"{doc['input'].get('name') or target}: {doc['verdict'].upper()} at {speed}x"
          + (f", published {sent} messages to {publish}" if publish else ""), flush=True)
    return 1 if doc["verdict"] == "fail" else 0
