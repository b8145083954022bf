"""Live senders to avatar apps: the :class:`Sender` protocol, :func:`open_sender` and :class:`Fanout`.

Sender specs (``name[:host][:port]``; host defaults to 127.0.0.1)::

    vmc        VMC protocol (OSC/UDP) to VSeeFace, VNyan, Warudo, ...     port 39539
    vts        VTube Studio plugin API (WebSocket client)                  port 8001
    livelink   Unreal Live Link Face (UDP)                                 port 11111
    ifm        iFacialMocap text (UDP) to VSeeFace, VMagicMirror           port 49983
    vrchat     VRChat OSC avatar parameters (UDP)                          port 9000
    osf        OpenSeeFace tracker packets (UDP) to VSeeFace               port 11573
    ws         JSON WebSocket server (FrameResult.to_dict per frame)       port 8765

e.g. ``vmc``, ``vmc:39540``, ``livelink:192.168.1.20:11111``, ``ws:8765``, ``ws:0.0.0.0:8765``
(a non-loopback ``ws`` needs ``token=``). Aliases: ``vtube_studio``, ``ifacialmocap``,
``openseeface``, ``websocket``.

:class:`Fanout` sends every result to several senders without ever blocking the caller: each
sender has a worker thread and a one-frame mailbox (a newer frame replaces an unsent one), a
sender that raises is retried with exponential backoff, and its failure is logged once.

>>> with Fanout([open_sender("vmc"), open_sender("ws:8765")]) as out:   # doctest: +SKIP
...     for result in pipeline.stream(source):
...         out.send(result)
...     print(out.stats())
"""

from __future__ import annotations

import difflib
import functools
import importlib
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from kaocap._closing import Closing
from kaocap.errors import ConfigError, OutputError
from kaocap.types import FrameResult

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
#: name -> (module, class, default port).
SENDERS: dict[str, tuple[str, str, int]] = {
    "vmc": ("kaocap.stream.vmc", "VmcSender", 39539),
    "vts": ("kaocap.stream.vtube_studio", "VTubeStudioSender", 8001),
    "livelink": ("kaocap.stream.livelink", "LiveLinkSender", 11111),
    "ifm": ("kaocap.stream.ifacialmocap", "IFacialMocapSender", 49983),
    "vrchat": ("kaocap.stream.vrchat", "VRChatSender", 9000),
    "osf": ("kaocap.stream.openseeface", "OpenSeeFaceSender", 11573),
    "ws": ("kaocap.stream.websocket", "WebSocketServer", 8765),
}
ALIASES = {
    "vtube_studio": "vts", "vtubestudio": "vts", "ifacialmocap": "ifm", "openseeface": "osf",
    "websocket": "ws", "live_link": "livelink",
}  # fmt: skip
#: Latency samples kept per sender for :meth:`Fanout.stats`.
STATS_WINDOW = 1000
BACKOFF_START_S = 0.25
BACKOFF_MAX_S = 10.0


@runtime_checkable
class Sender(Protocol):
    """Something that sends results somewhere live; ``send`` must not block for long."""

    def send(self, result: FrameResult) -> None: ...

    def close(self) -> None: ...


def parse_spec(spec: str) -> tuple[str, str, int]:
    """``name[:host][:port]`` -> (canonical name, host, port); raises ConfigError."""
    parts = spec.strip().split(":")
    name = ALIASES.get(parts[0].lower(), parts[0].lower())
    if name not in SENDERS:
        close = difflib.get_close_matches(name, [*SENDERS, *ALIASES], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"unknown sender {parts[0]!r} in {spec!r}{hint} (one of {', '.join(SENDERS)})"
        )
    rest = parts[1:]
    if len(rest) > 2 or any(not p for p in rest):
        raise ConfigError(f"sender spec {spec!r}: expected name[:host][:port]")
    host, port_text = DEFAULT_HOST, str(SENDERS[name][2])
    if len(rest) == 2:
        host, port_text = rest
    elif rest and rest[0].isdigit():
        port_text = rest[0]
    elif rest:
        host = rest[0]
    lowest = 0 if name == "ws" else 1  # ws:0 binds an ephemeral port
    if not port_text.isdigit() or not lowest <= int(port_text) <= 65535:
        raise ConfigError(f"sender spec {spec!r}: port must be {lowest}..65535, got {port_text!r}")
    return name, host, int(port_text)


def open_sender(spec: str, **options: Any) -> Sender:
    """Open the sender a spec names (module docstring); ``options`` go to its constructor
    (e.g. ``token=`` for ``ws``, ``blendshapes="vrm"`` for ``vmc``).

    >>> sender = open_sender("livelink:192.168.1.20")     # doctest: +SKIP
    """
    name, host, port = parse_spec(spec)
    module, cls, _ = SENDERS[name]
    return getattr(importlib.import_module(module), cls)(host, port, **options)


def require(module: str, package: str, sender: str) -> Any:
    """Import an optional dependency of a sender, or raise OutputError naming the package."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise OutputError(f"the {sender} sender needs {package}: pip install {package}") from None


class UdpTarget:
    """A non-blocking UDP socket connected to ``host:port``.

    ``send`` never blocks: a full socket buffer drops the datagram (counted in ``dropped``).
    Being connected, the socket learns from the ICMP reply when nothing listens on the port;
    that, and any other send error, is logged once as a warning. Datagrams flow again on their
    own once the receiver is back.
    """

    def __init__(self, host: str, port: int, *, name: str) -> None:
        self.name = name
        self.dropped = 0
        self.refused = 0
        self._warned = False
        try:
            family, kind, proto, _, address = socket.getaddrinfo(
                host, port, type=socket.SOCK_DGRAM
            )[0]
            self._sock: socket.socket | None = socket.socket(family, kind, proto)
            self._sock.setblocking(False)
            self._sock.connect(address)
        except OSError as err:
            raise OutputError(
                f"{name}: cannot send to {host}:{port} ({err.strerror or err})"
            ) from None

    def send(self, data: bytes) -> bool:
        """Send one datagram; False when it was dropped or refused."""
        if self._sock is None:
            raise OutputError(f"{self.name}: sender is closed")
        try:
            self._sock.send(data)
            return True
        except BlockingIOError:
            self.dropped += 1
        except ConnectionRefusedError:
            self.refused += 1
            self._warn_once("nothing is listening there yet (is the app running?); still sending")
        except OSError as err:
            self._warn_once(f"send failed ({err.strerror or err}); still sending")
        return False

    def _warn_once(self, message: str) -> None:
        if not self._warned:
            self._warned = True
            logger.warning("%s: %s", self.name, message)

    def close(self) -> None:
        """Close the socket; idempotent."""
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()


class UdpSender(Closing):
    """Base of the UDP senders: subclasses set ``name`` and ``_udp`` (a :class:`UdpTarget`) and
    implement ``send``; closing and the context manager live here once."""

    name: str
    _udp: UdpTarget

    def close(self) -> None:
        """Close the socket; idempotent."""
        self._udp.close()



class _Lane:
    """One sender's worker thread and one-frame mailbox (the newest frame wins).

    A failing send is logged once per outage (a warning; the next ones at debug level) and
    retried with backoff; with a ``factory`` the failed sender is closed and a fresh one made
    first (a restart: a sender whose socket or event loop died gets a new one).
    """

    def __init__(self, sender: Sender, name: str, factory: Callable[[], Sender] | None = None) -> None:
        self.sender: Sender | None = sender
        self.name, self.factory = name, factory
        self.sent = self.dropped = self.errors = self.restarts = 0
        self._failing = False
        self.latency_ms: deque[float] = deque(maxlen=STATS_WINDOW)
        self._cond = threading.Condition()
        self._item: tuple[FrameResult, float] | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"kaocap-send-{name}", daemon=True)
        self._thread.start()

    def put(self, result: FrameResult, captured_at: float) -> None:
        with self._cond:
            if self._item is not None:
                self.dropped += 1
            self._item = (result, captured_at)
            self._cond.notify()

    def _take(self, timeout: float | None = None) -> tuple[FrameResult, float] | None:
        """The pending frame; on close, the last pending one is still handed out (flushed)."""
        with self._cond:
            if self._item is None and not self._closed:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item

    def _run(self) -> None:
        backoff = 0.0
        while True:
            item = self._take()
            if item is None:
                if self._closed:
                    return
                continue
            if self._send(*item):
                if self._failing:
                    logger.warning("%s: sending again", self.name)
                backoff, self._failing = 0.0, False
                continue
            backoff = min(max(backoff * 2, BACKOFF_START_S), BACKOFF_MAX_S)
            with self._cond:  # wait out the backoff, but wake up on close
                self._cond.wait_for(lambda: self._closed, timeout=backoff)

    def _send(self, result: FrameResult, captured_at: float) -> bool:
        try:
            if self.sender is None:
                self._restart()
            self.sender.send(result)
        except Exception as err:  # noqa: BLE001 - a failing target must not stop the others
            self.errors += 1
            log = logger.debug if self._failing else logger.warning
            what = "restarting it" if self.factory is not None else "retrying"
            log("%s: send failed (%s: %s); %s with backoff", self.name, type(err).__name__, err, what)
            self._failing = True
            if self.factory is not None and self.sender is not None:
                self._close_sender()
            return False
        self.sent += 1
        self.latency_ms.append((time.perf_counter() - captured_at) * 1000.0)
        return True

    def _restart(self) -> None:
        assert self.factory is not None
        self.sender = self.factory()
        self.restarts += 1
        logger.debug("%s: restarted", self.name)

    def _close_sender(self) -> None:
        sender, self.sender = self.sender, None
        try:
            sender.close()
        except Exception as err:  # noqa: BLE001 - it failed already; closing may fail too
            logger.debug("%s: close failed (%s)", self.name, err)

    def close(self, timeout: float) -> None:
        """Flush the pending frame (one attempt), stop the worker, then close the sender."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive():
            with self._cond:  # a stuck sender gets no further frame once it comes back
                self._item = None
            logger.warning("%s: sender still busy after %.1f s; abandoned", self.name, timeout)
        if self.sender is None:
            return
        try:
            self.sender.close()
        except Exception as err:  # noqa: BLE001
            logger.warning("%s: close failed (%s)", self.name, err)

    def stats(self) -> dict[str, float | int | None]:
        samples = np.array(self.latency_ms, np.float64)
        p50, p99 = np.percentile(samples, [50, 99]) if samples.size else (None, None)
        return {
            "sent": self.sent, "dropped": self.dropped, "errors": self.errors, "restarts": self.restarts,
            "p50_ms": None if p50 is None else float(p50),
            "p99_ms": None if p99 is None else float(p99),
        }  # fmt: skip


class Fanout(Closing):
    """Send every result to several senders; a slow or failing one never stalls the others.

    ``send(result, captured_at=None)`` returns at once. ``captured_at`` is the
    ``time.perf_counter()`` value when the frame was captured (default: now); :meth:`stats`
    reports per sender how many results were sent, dropped (replaced before a slow sender took
    them) and failed, and the p50/p99 latency in ms from ``captured_at`` to the end of the
    sender's ``send``.
    """

    def __init__(self, senders: Iterable[Sender], *, close_timeout_s: float = 0.5,
                 factories: Sequence[Callable[[], Sender] | None] | None = None) -> None:  # fmt: skip
        self.close_timeout_s = close_timeout_s
        self._closed = False
        self._lanes: list[_Lane] = []
        senders = list(senders)
        factories = list(factories) if factories is not None else [None] * len(senders)
        for i, (sender, factory) in enumerate(zip(senders, factories, strict=True)):
            name = str(getattr(sender, "name", "") or f"{type(sender).__name__}#{i}")
            self._lanes.append(_Lane(sender, name, factory))

    @classmethod
    def from_specs(cls, specs: Iterable[str], **kwargs: Any) -> Fanout:
        """Senders opened from specs (:func:`open_sender`), each restarted from its spec when it
        fails. Opening errors (a port in use) are raised here, before anything runs."""
        specs, senders = list(specs), []
        try:
            for spec in specs:
                senders.append(open_sender(spec))
        except BaseException:
            for sender in senders:
                sender.close()
            raise
        return cls(senders, factories=[functools.partial(open_sender, spec) for spec in specs], **kwargs)

    def send(self, result: FrameResult, captured_at: float | None = None) -> None:
        """Hand ``result`` to every sender's worker; never blocks."""
        if self._closed:
            raise OutputError("fanout is closed")
        t = time.perf_counter() if captured_at is None else captured_at
        for lane in self._lanes:
            lane.put(result, t)

    def stats(self) -> dict[str, dict[str, float | int | None]]:
        """Per sender name: sent, dropped, errors, p50_ms, p99_ms (None before any send)."""
        return {lane.name: lane.stats() for lane in self._lanes}

    def close(self) -> None:
        """Stop the workers and close every sender; idempotent (stats stay readable)."""
        if self._closed:
            return
        self._closed = True
        for lane in self._lanes:
            lane.close(self.close_timeout_s)

