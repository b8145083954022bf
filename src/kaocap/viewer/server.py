"""The viewer's server: the page's own static files and the JSON WebSocket, on one port.

:class:`ViewerServer` is :class:`kaocap.stream.websocket.WebSocketServer` (JSON results, the
``{"type": "ping"}`` request, 64 KiB message limit, slow clients skip frames) with a plain HTTP
side for the page:

* Files: only those found at start under the built ``static/`` folder plus ``head.glb``; they
  are read into memory once and looked up by exact URL path, so nothing else on disk can be
  reached (``..``, encoded slashes and absolute paths are just unknown paths: 404).
* A WebSocket is any request with ``Upgrade: websocket`` (the page uses ``/ws``). Each frame
  sends the result as JSON text (``FrameResult.to_dict(landmarks=False)``) and, when an image is
  given, the frame with :func:`kaocap.stream.preview.draw_overlay` as a JPEG binary message
  (longest side at most ``max_image_px``).
* Binding: 127.0.0.1 by default. Any non-loopback address needs ``token``; with a token every
  request must carry it as ``?token=`` or the ``kaocap_token`` cookie that the page's first
  response sets (HttpOnly, SameSite=Strict), else HTTP 401. Without a token the server answers
  only ``Host: 127.0.0.1|localhost|[::1]`` (no DNS rebinding, 403). A WebSocket whose ``Origin``
  is not the page's own is refused (403), so other web sites cannot read the face data.

>>> with ViewerServer(port=8080) as server:              # doctest: +SKIP
...     server.send_frame(result, frame.image)             # open http://127.0.0.1:8080/
"""

from __future__ import annotations

import email.utils
import hmac
import logging
import re
import socket
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
from numpy.typing import NDArray

from kaocap.errors import ConfigError, KaocapError
from kaocap.stream.websocket import MAX_BACKLOG_BYTES, WebSocketServer, is_loopback
from kaocap.types import FrameResult

logger = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
#: Where the build puts the page (``web/`` built by vite, see ``kaocap.viewer._build``).
STATIC_DIR = PACKAGE_DIR / "static"
#: The head with its 52 morph targets (made by ``scripts/make_viewer_head.py``).
HEAD_PATH = PACKAGE_DIR / "head.glb"
DEFAULT_PORT = 8080
COOKIE = "kaocap_token"
#: Tokens are URL- and cookie-safe: letters, digits and ``-._~``.
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9._~-]{8,256}")
#: Static files larger than this are not served (the bundle is well under 2 MB).
MAX_FILE_BYTES = 8 << 20
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8", ".json": "application/json", ".glb": "model/gltf-binary",
    ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon", ".txt": "text/plain; charset=utf-8",
}  # fmt: skip
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
#: Headers a request may carry once at most.
SINGLE_HEADERS = ("Host", "Origin", "Cookie", "Upgrade")
BUILD_HINT = (
    "the viewer's web page is not built (no kaocap/viewer/static/index.html): install Node.js "
    ">= 20.19 with npm and reinstall kaocap (pip install .), or run 'npm ci && npm run build' in web/"
)


class ViewerNotBuilt(KaocapError):
    """The page's static files are missing: the package was built without Node.js / npm."""

    exit_code = 4


def load_static(
    static_dir: Path = STATIC_DIR, head: Path = HEAD_PATH
) -> dict[str, tuple[bytes, str]]:
    """URL path -> (body, content type) for every file the viewer serves; raises ViewerNotBuilt.

    ``/`` is ``index.html``; other files keep their path relative to ``static_dir``. Links,
    unknown file types and files over :data:`MAX_FILE_BYTES` are left out.
    """
    index = static_dir / "index.html"
    if not index.is_file() or index.is_symlink():
        raise ViewerNotBuilt(BUILD_HINT)
    files: dict[str, tuple[bytes, str]] = {}
    for path in [*sorted(static_dir.rglob("*")), head]:
        kind = CONTENT_TYPES.get(path.suffix.lower())
        if kind is None or path.is_symlink() or not path.is_file():
            continue
        if path.stat().st_size > MAX_FILE_BYTES:
            continue
        url = "/" + (path.name if path == head else path.relative_to(static_dir).as_posix())
        files[url] = (path.read_bytes(), kind)
    files["/"] = files["/index.html"]
    return files


def encode_jpeg(image: NDArray[np.uint8], *, quality: int = 75, max_px: int = 640) -> bytes:
    """(H, W, 3) uint8 RGB -> JPEG bytes, shrunk so that its longest side is at most ``max_px``."""
    import cv2

    height, width = image.shape[:2]
    scale = max_px / max(height, width)
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, quality])  # fmt: skip
    if not ok:
        raise ValueError("JPEG encoding failed")
    return data.tobytes()


class ViewerServer(WebSocketServer):
    """Serve the viewer page and stream results to it (module docstring).

    ``port=0`` picks a free port (``port`` then holds it); ``url`` is the address to open.
    ``static_dir`` replaces the built page (tests). Raises ConfigError for a non-loopback host
    without a token or a malformed token, ViewerNotBuilt when the page is missing, OutputError
    when the port is taken.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT, *, token: str | None = None,
                 static_dir: Path | None = None, jpeg_quality: int = 75, max_image_px: int = 640) -> None:  # fmt: skip
        if token is not None and not TOKEN_PATTERN.fullmatch(token):
            raise ConfigError("serve: --token must be 8-256 characters of A-Z a-z 0-9 - . _ ~")
        if not is_loopback(host) and not token:
            raise ConfigError(
                f"serve: binding {host} (not loopback) needs a token, e.g. --token "
                '$(python -c "import secrets; print(secrets.token_urlsafe(16))")'
            )
        self._files = load_static(STATIC_DIR if static_dir is None else Path(static_dir))
        self.jpeg_quality, self.max_image_px = jpeg_quality, max_image_px
        super().__init__(host, port, token=token)
        self.name = f"viewer:{host}:{self.port}"

    @property
    def url(self) -> str:
        """The page's address (with ``?token=`` when there is a token)."""
        host = socket.gethostname() if self.host in ("0.0.0.0", "::", "") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/" + (f"?token={self.token}" if self.token else "")

    def send_frame(self, result: FrameResult, image: NDArray[np.uint8] | None = None) -> None:
        """Send ``result`` (and ``image`` with the overlay, as JPEG) to every page; never blocks
        on the network. Does nothing while no page is connected."""
        if not self.clients:
            return
        if image is not None:
            from kaocap.stream.preview import draw_overlay

            jpeg = encode_jpeg(
                draw_overlay(image, result), quality=self.jpeg_quality, max_px=self.max_image_px
            )
            self._loop.call_soon_threadsafe(self._broadcast_bytes, jpeg)
        self.send(result)

    def _broadcast_bytes(self, data: bytes) -> None:
        ready = [
            c for c in self._clients if c.transport.get_write_buffer_size() <= MAX_BACKLOG_BYTES
        ]
        self._ws.broadcast(ready, data)

    # -- HTTP side: WebSocketServer calls this for every request before the handshake ----------

    def _check_token(self, connection: Any, request: Any) -> Any:
        """None lets a WebSocket handshake go on; otherwise the HTTP response to send."""
        headers = request.headers
        if getattr(request, "method", "GET") != "GET":  # websockets >= 15 parses other methods
            return _reply(HTTPStatus.METHOD_NOT_ALLOWED, b"only GET\n")
        if any(len(headers.get_all(name)) > 1 for name in SINGLE_HEADERS):
            return _reply(
                HTTPStatus.BAD_REQUEST, b"repeated Host, Origin, Cookie or Upgrade header\n"
            )
        try:
            return self._route(request.path, headers)
        except ValueError:  # urlsplit: a malformed path, Host or Origin
            return _reply(HTTPStatus.BAD_REQUEST, b"malformed request\n")

    def _route(self, path: str, headers: Any) -> Any:
        host = headers.get("Host", "")
        if self.token is None and not _loopback_host(host):
            return _reply(HTTPStatus.FORBIDDEN, b"unknown Host header\n")
        from_query = self._given_token(path, headers)
        if self.token is not None and from_query is None:
            return _reply(HTTPStatus.UNAUTHORIZED, b"a valid ?token= is required\n")
        if headers.get("Upgrade", "").lower() == "websocket":
            if not _same_origin(headers.get("Origin"), host):
                return _reply(HTTPStatus.FORBIDDEN, b"cross-origin WebSocket refused\n")
            return None
        found = self._files.get(urlsplit(path).path)
        if found is None:
            return _reply(HTTPStatus.NOT_FOUND, b"not found\n")
        cookie = f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict" if from_query else None
        return _reply(HTTPStatus.OK, found[0], found[1], cookie=cookie)

    def _given_token(self, path: str, headers: Any) -> bool | None:
        """None: no valid token; True: valid in the query; False: valid in the cookie (or no
        token is needed)."""
        if self.token is None:
            return False
        expected = self.token.encode()
        query = parse_qs(urlsplit(path).query).get("token", [""])[0]
        if hmac.compare_digest(query.encode(), expected):
            return True
        try:
            morsel = SimpleCookie(headers.get("Cookie", "")).get(COOKIE)
        except CookieError:
            return None
        if morsel is not None and hmac.compare_digest(morsel.value.encode(), expected):
            return False
        return None


def _loopback_host(host_header: str) -> bool:
    """True when a Host header names a loopback address (any port)."""
    host = urlsplit(f"//{host_header}").hostname if host_header else None
    return host is not None and is_loopback(host)


def _same_origin(origin: str | None, host_header: str) -> bool:
    """A request without Origin (not a browser) passes; a browser's must be the page's own."""
    if origin is None:
        return True
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host_header.lower()


def _reply(status: HTTPStatus, body: bytes, content_type: str = "text/plain; charset=utf-8",
           *, cookie: str | None = None) -> Any:  # fmt: skip
    """A complete HTTP response (the connection closes after it)."""
    from websockets.datastructures import Headers
    from websockets.http11 import Response

    headers = Headers([
        ("Date", email.utils.formatdate(usegmt=True)), ("Connection", "close"),
        ("Content-Length", str(len(body))), ("Content-Type", content_type), *SECURITY_HEADERS.items(),
    ])  # fmt: skip
    if cookie is not None:
        headers["Set-Cookie"] = cookie
    return Response(status.value, status.phrase, headers, body)
