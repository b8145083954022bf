"""A JSON WebSocket server: every client gets ``FrameResult.to_dict(landmarks=False)`` per frame.

* Binds 127.0.0.1:8765 by default. Binding any other address requires ``token=``; clients then
  connect to ``ws://host:port/?token=<token>`` (a wrong or missing token gets HTTP 401). A token
  given on loopback is required too.
* Frames are broadcast as JSON text from a background event-loop thread; ``send`` never blocks.
  A client whose unsent data exceeds :data:`MAX_BACKLOG_BYTES` skips frames until it catches up.
* Clients may send JSON objects: ``{"type": "ping"}`` is answered ``{"type": "pong"}``; any
  other message gets ``{"type": "error", "error": ...}``. Messages over 64 KiB close that
  connection (code 1009); nothing a client sends stops the server (:func:`handle_message`).
* A port already in use raises :class:`~kaocap.errors.OutputError` at start.

>>> with WebSocketServer(port=8765) as ws:      # doctest: +SKIP
...     ws.send(result)                          # clients: ws://127.0.0.1:8765
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import threading
from concurrent.futures import Future
from typing import Any
from urllib.parse import parse_qs, urlsplit

from kaocap._closing import Closing
from kaocap.errors import ConfigError, OutputError
from kaocap.stream.senders import require
from kaocap.types import FrameResult

logger = logging.getLogger(__name__)

DEFAULT_PORT = 8765
MAX_MESSAGE_BYTES = 64 * 1024
MAX_BACKLOG_BYTES = 1 << 20


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP addresses."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def handle_message(message: str | bytes) -> str:
    """The reply to one client message (JSON text); never raises."""
    if isinstance(message, bytes):
        return _error("binary messages are not accepted; send JSON text")
    if len(message) > MAX_MESSAGE_BYTES:
        return _error(f"message over {MAX_MESSAGE_BYTES} bytes")
    try:
        data = json.loads(message)
    except (ValueError, RecursionError):
        return _error("not JSON")
    if not isinstance(data, dict):
        return _error("expected a JSON object")
    if data.get("type") == "ping":
        return json.dumps({"type": "pong"})
    return _error('unknown message; the only request is {"type": "ping"}')


def _error(text: str) -> str:
    return json.dumps({"type": "error", "error": text})


class WebSocketServer(Closing):
    """Serve results as JSON to WebSocket clients (module docstring).

    ``port=0`` picks a free port; ``port`` then holds the bound one. ``clients`` is the number
    of connected clients.
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = DEFAULT_PORT, *, token: str | None = None
    ) -> None:
        if not is_loopback(host) and not token:
            raise ConfigError(
                f"ws: binding {host} (not loopback) needs a token: ws:{host}:{port} with token=..."
            )
        self._ws = require("websockets.asyncio.server", "websockets", "ws")
        self.host, self.port, self.token = host, port, token
        self.name = f"ws:{host}:{port}"
        self._clients: set[Any] = set()
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        started: Future[int] = Future()
        self._thread = threading.Thread(
            target=self._run, args=(started,), name=f"kaocap-{self.name}", daemon=True
        )
        self._thread.start()
        try:
            self.port = started.result(timeout=10)
        except OSError as err:
            self._thread.join(5)
            raise OutputError(
                f"ws: cannot listen on {host}:{port} ({err.strerror or err})"
            ) from None
        self.name = f"ws:{host}:{self.port}"

    @property
    def clients(self) -> int:
        return len(self._clients)

    def send(self, result: FrameResult) -> None:
        """Broadcast ``result`` to every client; never blocks."""
        if self._loop.is_closed() or self._stop is None:
            raise OutputError(f"{self.name}: server is closed")
        self._loop.call_soon_threadsafe(self._broadcast, result)

    def close(self) -> None:
        """Close every connection and stop the server; idempotent."""
        if self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5)

    # -- event loop thread ----------------------------------------------------------------

    def _run(self, started: Future[int]) -> None:
        try:
            self._loop.run_until_complete(self._serve(started))
        finally:
            self._loop.close()

    async def _serve(self, started: Future[int]) -> None:
        self._stop = asyncio.Event()
        try:
            server = await self._ws.serve(
                self._handler, self.host, self.port, max_size=MAX_MESSAGE_BYTES,
                process_request=self._check_token, ping_interval=5, ping_timeout=10,
            )  # fmt: skip
        except OSError as err:
            self._stop = None
            started.set_exception(err)
            return
        started.set_result(server.sockets[0].getsockname()[1])
        async with server:
            await self._stop.wait()
            server.close()
        self._stop = None

    def _check_token(self, connection: Any, request: Any) -> Any:
        if self.token is None:
            return None
        given = parse_qs(urlsplit(request.path).query).get("token", [""])[0]
        if hmac.compare_digest(given.encode(), self.token.encode()):
            return None
        return connection.respond(401, "a valid ?token= is required\n")

    async def _handler(self, connection: Any) -> None:
        self._clients.add(connection)
        try:
            async for message in connection:
                await connection.send(handle_message(message))
        except Exception as err:  # noqa: BLE001 - one client's trouble must not stop the server
            logger.debug("%s: client closed (%s)", self.name, err)
        finally:
            self._clients.discard(connection)

    def _broadcast(self, result: FrameResult) -> None:
        if not self._clients:
            return
        text = json.dumps(result.to_dict(landmarks=False), separators=(",", ":"))
        ready = [
            c for c in self._clients if c.transport.get_write_buffer_size() <= MAX_BACKLOG_BYTES
        ]
        self._ws.broadcast(ready, text)
