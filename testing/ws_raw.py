"""A WebSocket client on a bare socket, for what a polite client library will not do: stop
reading, flood pings, never answer a close. Tests and benches use it as the attacker
of the HTTP doors; it speaks just enough RFC 6455 (client frames masked) to be accepted.
"""

from __future__ import annotations

import base64
import os
import socket
import struct
import time
from pathlib import Path

#: WebSocket opcodes (RFC 6455 5.2).
TEXT, PING = 0x1, 0x9


def frame(opcode: int, payload: bytes = b"") -> bytes:
    """One final client frame (masked, as a server requires), payload under 64 KiB."""
    mask = os.urandom(4)
    size = len(payload)
    header = bytes([0x80 | opcode]) + (bytes([0x80 | size]) if size < 126
                                       else bytes([0x80 | 126]) + struct.pack("!H", size))
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def open_raw(port: int, query: str, *, rcvbuf: int | None = None, timeout_s: float = 10.0
             ) -> socket.socket:
    """A socket past the upgrade (101) to ``/ws?query``; nothing of the stream read yet.
    ``rcvbuf`` shrinks the receive buffer before connecting, so the hub's sends back up
    soon once this side stops reading. Raises ``ConnectionRefusedError`` with the status
    line when the upgrade is refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(timeout_s)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /ws?{query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                  "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)  # byte by byte: nothing after the headers is taken
        if not chunk:
            sock.close()
            raise ConnectionRefusedError("closed during the handshake")
        head += chunk
    status = head.split(b"\r\n", 1)[0].decode(errors="replace")
    if " 101 " not in status:
        sock.close()
        raise ConnectionRefusedError(status)
    return sock


def _tcp_rows() -> list[list[str]]:
    rows: list[list[str]] = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        rows += [line.split() for line in lines]
    return rows


def _socket_inodes(pid: int) -> set[str]:
    inodes: set[str] = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue  # closed while listed
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def hub_end(pid: int, client: socket.socket) -> int | None:
    """Bytes the kernel holds unsent (Send-Q) on process ``pid``'s end of ``client``'s
    connection; None once ``pid`` holds no such socket (the hub closed it for real)."""
    port = f"{client.getsockname()[1]:04X}"
    mine = _socket_inodes(pid)
    for row in _tcp_rows():
        if row[2].rsplit(":", 1)[1] == port and row[9] in mine:
            return int(row[4].split(":")[0], 16)
    return None


def wait_backed_up(pid: int, client: socket.socket, *, within_s: float = 30.0) -> int:
    """Until the kernel's buffer of the hub's end stops growing for a second: from then on
    the hub itself holds what it sends (a peer that does not read). Bytes then in it."""
    deadline = time.monotonic() + within_s
    last, steady_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        queued = hub_end(pid, client) or 0
        if queued != last:
            last, steady_since = queued, time.monotonic()
        elif queued > 0 and time.monotonic() - steady_since > 1.0:
            return queued
        time.sleep(0.1)
    raise TimeoutError(f"the hub's end did not back up within {within_s} s ({last} bytes)")
