"""The HTTP doors of a real ``l4mon serve`` (uvicorn, its own process), attacked
did: a 1 GB anonymous body, bodies past the bound (declared and chunked), a blocked address's
body, a spoofed ``X-Forwarded-For``, and the headers every answer carries."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import msgspec
import pytest

from telemetry.topics import event_topic
from telemetry.wire import VehicleEvent
from testing.broker import Broker, free_port
from testing.hub import TEST_TOKEN, HubProcess, launch_hub, stop_hub, write_hub_config
from tests.mqtt_publish import Publisher

pytestmark = pytest.mark.mqtt

GIB = 1 << 30
#: What the hub's failed-token limit is set to here: few, so an address is blocked quickly.
MAX_FAILURES = 3
CHUNK = b"x" * 65_536


@dataclass
class Refusal:
    """How a hub answered a body being streamed at it."""

    status: int
    #: From the first byte of the request to the status line of the answer.
    seconds: float
    #: Body bytes the client got into its socket before the hub closed the connection.
    sent: int
    headers: dict[str, str]
    #: The hub's resident memory, MB: before, and the highest seen while the body streamed.
    rss_before: float
    rss_peak: float


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return 0.0


def stream_body(hub: HubProcess, path: str, *, total: int, headers: dict[str, str],
                chunked: bool = False, source: str = "127.0.0.1",
                time_limit_s: float = 20.0) -> Refusal:
    """POST ``total`` bytes of body to ``path`` from a raw socket (sent by a thread, as fast
    as the hub takes them, never more than ``total`` nor for longer than ``time_limit_s``),
    and read the answer as soon as it comes, while the body is still being sent."""
    sock = socket.create_connection(("127.0.0.1", hub.port), source_address=(source, 0))
    sock.settimeout(time_limit_s)
    framing = {"Transfer-Encoding": "chunked"} if chunked else {"Content-Length": str(total)}
    head = "".join(f"{k}: {v}\r\n" for k, v in {"Host": "hub", **framing, **headers}.items())
    sent = 0
    done = threading.Event()
    peak = [_rss_mb(hub.pid)]
    before = peak[0]

    def send() -> None:
        nonlocal sent
        deadline = time.monotonic() + time_limit_s
        try:
            while sent < total and not done.is_set() and time.monotonic() < deadline:
                piece = CHUNK[:min(len(CHUNK), total - sent)]
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                sent += len(piece)
            if chunked and sent >= total:
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the hub closed the connection: what a refusal should do

    def watch_memory() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_mb(hub.pid))
            time.sleep(0.005)

    watcher = threading.Thread(target=watch_memory, daemon=True)
    watcher.start()
    started = time.perf_counter()
    sock.sendall(f"POST {path} HTTP/1.1\r\n{head}\r\n".encode())
    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    answer = b""
    try:
        while b"\r\n\r\n" not in answer:
            data = sock.recv(65_536)
            if not data:
                break
            answer += data
        seconds = time.perf_counter() - started
    finally:
        time.sleep(0.2)  # the memory a late read would cost shows up in the peak
        done.set()
        sender.join(timeout=time_limit_s)
        watcher.join(timeout=1)
        sock.close()
    status_line, *header_lines = answer.split(b"\r\n\r\n")[0].decode().split("\r\n")
    return Refusal(status=int(status_line.split()[1]), seconds=seconds, sent=sent,
                   headers={k.lower(): v.strip() for k, _, v in
                            (line.partition(":") for line in header_lines)},
                   rss_before=before, rss_peak=peak[0])


def _hub(broker: Broker, tmp_path: Path, extra: str = "") -> HubProcess:
    config = write_hub_config(tmp_path, extra=f"[auth]\nmax_failures = {MAX_FAILURES}\n"
                                               f"window_s = 600.0\n{extra}")
    return launch_hub(broker, config, tmp_path / "hub.log", free_port())


def takeover_seconds(hub: HubProcess, broker: Broker, vehicle: str) -> float:
    """Seconds from a takeover request published by ``vehicle`` (QoS 1) to its alert in the
    hub's API; fails past 5 s."""
    before = len(hub.json("/api/alerts", vehicle=vehicle))
    with Publisher(broker.host, broker.port, client_id=f"pub-{vehicle}") as pub:
        started = time.monotonic()
        pub.publish(event_topic("s", vehicle), msgspec.json.encode(VehicleEvent(
            ts=time.time(), kind="takeover_request", seq=1)), qos=1)
        pub.flush()
        hub.wait_for(lambda: len(hub.json("/api/alerts", vehicle=vehicle)) > before,
                     timeout=5.0, what=f"{vehicle}'s takeover alert")
    return time.monotonic() - started


@pytest.fixture
def hub(broker: Broker, tmp_path: Path) -> Iterator[HubProcess]:
    running = _hub(broker, tmp_path)
    try:
        yield running
    finally:
        stop_hub(running)


def test_an_anonymous_gigabyte_is_refused_at_once_without_being_read(
        hub: HubProcess, broker: Broker) -> None:
    """an anonymous 1 GB POST /api/alerts/1/ack blocked the loop 7.2 s and took 3 GB.
    Now the token is checked before the body: 401 in under 100 ms, the connection closed, the
    hub's memory up by less than 10 MB, and another vehicle's takeover request reaches the
    operators within 1 s."""
    hub.get("/healthz")  # a first request warms the server up; the attack is not the first
    refused = stream_body(hub, "/api/alerts/1/ack", total=GIB,
                          headers={"Content-Type": "application/json"})
    assert refused.status == 401
    assert refused.seconds < 0.1, refused
    assert refused.headers["connection"] == "close"
    assert refused.sent < 64 * 1024 * 1024, refused  # the hub stopped taking it
    assert refused.rss_peak - refused.rss_before < 10.0, refused
    assert hub.get("/api/me").json()["name"] == "tester"  # and serves on
    assert takeover_seconds(hub, broker, "shuttle-02") < 1.0


def test_a_body_past_the_bound_is_413_declared_or_chunked(hub: HubProcess) -> None:
    """With a good token: a Content-Length over 16 KiB is refused before a byte is read, a
    chunked body as soon as its bytes pass 16 KiB; a body within the bound is taken."""
    auth = {"Authorization": f"Bearer {TEST_TOKEN}", "Content-Type": "application/json"}
    declared = stream_body(hub, "/api/duty/on", total=GIB, headers=auth)
    assert (declared.status, declared.headers["connection"]) == (413, "close")
    assert declared.seconds < 0.1 and declared.rss_peak - declared.rss_before < 10.0, declared
    chunked = stream_body(hub, "/api/duty/on", total=GIB, headers=auth, chunked=True)
    assert (chunked.status, chunked.headers["connection"]) == (413, "close")
    assert chunked.sent < 64 * 1024 * 1024 and chunked.rss_peak - chunked.rss_before < 10.0
    fits = hub.http.post("/api/alerts/999/ack", json={"note": "n" * 400})
    assert fits.status_code == 404  # read, parsed, and answered: no such alert
    padded = hub.http.post("/api/alerts/999/ack", content=b" " * 20_000,
                           headers={"Content-Type": "application/json"})
    assert padded.status_code == 413
    assert "16384 bytes" in padded.json()["detail"]


def test_a_blocked_address_body_is_never_parsed(hub: HubProcess) -> None:
    """an address already answered 429 still had its 300 MB body parsed first. Now
    its bad token gets 429 before the body: fast, memory flat; its good token still passes."""
    anonymous = httpx.Client(base_url=f"http://127.0.0.1:{hub.port}", timeout=10)
    for _ in range(MAX_FAILURES):
        assert anonymous.get("/api/me", headers={"Authorization": "Bearer guess"}
                             ).status_code == 401
    blocked = stream_body(hub, "/api/alerts/1/ack", total=300 * 1024 * 1024,
                          headers={"Authorization": "Bearer guess"})
    assert blocked.status == 429 and "retry-after" in blocked.headers
    assert blocked.seconds < 0.1 and blocked.rss_peak - blocked.rss_before < 10.0, blocked
    assert hub.get("/api/me").status_code == 200  # the operator at that address is not locked out


def test_a_spoofed_forwarded_for_does_not_move_the_limit(hub: HubProcess) -> None:
    """from loopback, X-Forwarded-For was believed, so anyone there could spend any
    address's failures. By default no proxy is trusted: the failures count for the socket's
    own address whatever the header says."""
    anonymous = httpx.Client(base_url=f"http://127.0.0.1:{hub.port}", timeout=10)
    for n in range(MAX_FAILURES):
        assert anonymous.get("/api/me", headers={"Authorization": "Bearer guess",
                                                 "X-Forwarded-For": f"203.0.113.{n}"}
                             ).status_code == 401
    assert anonymous.get("/api/me", headers={"Authorization": "Bearer guess"}
                         ).status_code == 429


def test_forwarded_for_is_believed_from_a_configured_proxy_only(broker: Broker,
                                                                tmp_path: Path) -> None:
    """``[http] trusted_proxies = ["127.0.0.2"]``: a request from 127.0.0.2 is counted for the
    client its header names; the same header from 127.0.0.1 is ignored."""
    hub = _hub(broker, tmp_path, '[http]\ntrusted_proxies = ["127.0.0.2"]\n')
    try:
        def status(source: str, forwarded: str | None) -> int:
            transport = httpx.HTTPTransport(local_address=source)
            with httpx.Client(base_url=f"http://127.0.0.1:{hub.port}", transport=transport,
                              timeout=10) as client:
                headers = {"Authorization": "Bearer guess"}
                if forwarded:
                    headers["X-Forwarded-For"] = forwarded
                return client.get("/api/me", headers=headers).status_code

        for _ in range(MAX_FAILURES):
            assert status("127.0.0.2", "198.51.100.7") == 401
        assert status("127.0.0.2", "198.51.100.7") == 429  # that client is blocked
        assert status("127.0.0.2", "198.51.100.8") == 401  # another behind the proxy is not
        assert status("127.0.0.2", None) == 401  # nor the proxy itself
        for _ in range(MAX_FAILURES):
            assert status("127.0.0.1", "198.51.100.9") == 401
        assert status("127.0.0.1", "198.51.100.10") == 429  # not a proxy: its own address
    finally:
        stop_hub(hub)


def test_every_answer_carries_the_security_headers(hub: HubProcess) -> None:
    """The console page, the API, a refusal and a 404 alike; the API is never cached; the
    console's policy lets it load only its own files."""
    anonymous = httpx.Client(base_url=f"http://127.0.0.1:{hub.port}", timeout=10)
    answers = {"page": anonymous.get("/"), "api": hub.get("/api/vehicles"),
               "refused": anonymous.get("/api/vehicles"), "missing": hub.get("/nowhere"),
               "health": anonymous.get("/healthz")}
    assert [a.status_code for a in answers.values()] == [200, 200, 401, 404, 200]
    for name, answer in answers.items():
        assert answer.headers["x-frame-options"] == "DENY", name
        assert answer.headers["x-content-type-options"] == "nosniff", name
        assert answer.headers["referrer-policy"] == "no-referrer", name
        assert answer.headers["cache-control"] == "no-store", name
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"], name
    page_policy = answers["page"].headers["content-security-policy"]
    assert "script-src 'self';" in page_policy and "unsafe-inline" not in page_policy
    assert "cache-control" not in anonymous.get("/static/console.js").headers


def test_healthz_tells_a_stranger_only_ok_or_not(hub: HubProcess) -> None:
    """/healthz without a token showed versions and the broker's last error. Now a
    stranger reads ok/degraded and the role (how a console finds a pair's leader); a token
    holder reads the detail; a wrong token is refused, not quietly treated as none."""
    anonymous = httpx.Client(base_url=f"http://127.0.0.1:{hub.port}", timeout=10)
    assert anonymous.get("/healthz").json() == {"status": "ok", "role": "single"}
    detail = hub.health()
    assert detail["status"] == "ok" and "version" in detail and detail["mqtt"]["connected"]
    assert anonymous.get("/healthz", headers={"Authorization": "Bearer guess"}
                         ).status_code == 401
