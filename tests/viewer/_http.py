"""Raw HTTP for the viewer tests: paths go on the wire exactly as written (no client-side
normalisation of ``..`` or percent escapes), and whatever the server answers is read back."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field

TIMEOUT_S = 5.0


@dataclass
class Reply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def raw_request(port: int, data: bytes, *, half_close: bool = False) -> bytes:
    """Send ``data`` to 127.0.0.1:``port`` and read until the server closes (or times out);
    ``half_close`` ends the sending side first (for junk that never completes a request)."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def get(port: int, path: str, headers: dict[str, str] | None = None) -> Reply:
    """``GET path`` with ``Host: 127.0.0.1:port`` unless ``headers`` give another."""
    fields = {"Host": f"127.0.0.1:{port}", **(headers or {})}
    head = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items()) + "\r\n"
    return parse(raw_request(port, head.encode("latin-1")))


def parse(data: bytes) -> Reply:
    """Status, headers (last value wins, names lower-cased) and body of an HTTP response."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and lines[0].startswith("HTTP/") else 0
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Reply(status, headers, body)
