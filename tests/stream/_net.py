"""Loopback receivers for the sender tests: a plain UDP socket and a python-osc server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

TIMEOUT_S = 5.0


@contextmanager
def udp_receiver() -> Iterator[socket.socket]:
    """A UDP socket bound to an ephemeral 127.0.0.1 port, with a receive timeout."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(TIMEOUT_S)
    try:
        yield sock
    finally:
        sock.close()


def free_udp_port() -> int:
    """A 127.0.0.1 UDP port that nothing listens on (bound, then released)."""
    with udp_receiver() as sock:
        return sock.getsockname()[1]


class OscCollector:
    """Every OSC message a python-osc server received, as (address, args)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, tuple]] = []
        self._lock = threading.Lock()

    def __call__(self, address: str, *args: object) -> None:
        with self._lock:
            self.messages.append((address, args))

    def wait_for(
        self, predicate: Callable[[list[tuple[str, tuple]]], bool]
    ) -> list[tuple[str, tuple]]:
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            with self._lock:
                snapshot = list(self.messages)
            if predicate(snapshot):
                return snapshot
            time.sleep(0.01)
        raise AssertionError(f"OSC messages not received in {TIMEOUT_S} s: {snapshot[:5]}")


@contextmanager
def osc_server() -> Iterator[tuple[int, OscCollector]]:
    """A python-osc ThreadingOSCUDPServer on an ephemeral 127.0.0.1 port: (port, collector)."""
    from pythonosc.dispatcher import Dispatcher
    from pythonosc.osc_server import ThreadingOSCUDPServer

    collector = OscCollector()
    dispatcher = Dispatcher()
    dispatcher.set_default_handler(collector)
    server = ThreadingOSCUDPServer(("127.0.0.1", 0), dispatcher)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield server.server_address[1], collector
    finally:
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT_S)
