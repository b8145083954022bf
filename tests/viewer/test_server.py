"""Viewer server: only its own static files (path traversal refused), the token rule, Host and
Origin checks, malformed and oversized messages (WebSocket and raw HTTP), frames as JSON + JPEG,
and a fuzzed request router."""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from kaocap.errors import ConfigError
from kaocap.stream.websocket import MAX_MESSAGE_BYTES
from kaocap.types import FrameResult
from kaocap.viewer.server import COOKIE, HEAD_PATH, ViewerNotBuilt, ViewerServer
from tests.stream.conftest import build_face
from tests.viewer._http import TIMEOUT_S, get, parse, raw_request

TOKEN = "s3cret-token_42"
SECRET = b"must never be served"
INDEX = b"<!doctype html><title>test page</title>"
SCRIPT = b"console.log('app');"


#: Requests that are not a plain GET of a page, and the status each gets (0: closed unanswered).
JUNK = [
    (b"GARBAGE\r\n\r\n", 0),
    (b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 405),
    (b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}", 0),  # a body
    (b"HEAD / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 405),
    (b"GET / HTTP/1.0\r\n\r\n", 403),  # no Host header
    (b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n", 431),
    (b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(500)) + b"\r\n", 431),
]


@pytest.fixture
def static(tmp_path: Path) -> Path:
    """A built page in tmp_path/static, a secret beside it, and links that point at the secret."""
    root = tmp_path / "static"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_bytes(INDEX)
    (root / "assets" / "app.js").write_bytes(SCRIPT)
    (root / "assets" / "notes.unknown").write_bytes(SECRET)  # not a served file type
    (tmp_path / "secret.txt").write_bytes(SECRET)
    (root / "link.txt").symlink_to(tmp_path / "secret.txt")
    (root / "linked").symlink_to(tmp_path, target_is_directory=True)
    return root


def _result(timestamp_ms: int) -> FrameResult:
    return FrameResult(timestamp_ms, 0, (256, 256), (build_face(),))


def _client(server: ViewerServer, query: str = "", **kwargs):
    return connect(
        f"ws://127.0.0.1:{server.port}/ws{query}", open_timeout=TIMEOUT_S, proxy=None, **kwargs
    )


def _wait_clients(server: ViewerServer, n: int) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while server.clients < n:
        assert time.monotonic() < deadline, "the client never registered"
        time.sleep(0.01)


def test_serves_its_own_files(static: Path) -> None:
    with ViewerServer(port=0, static_dir=static) as server:
        for path in ("/", "/index.html", "/?x=1"):
            reply = get(server.port, path)
            assert (reply.status, reply.body) == (200, INDEX)
            assert reply.headers["content-type"].startswith("text/html")
        script = get(server.port, "/assets/app.js")
        assert (script.status, script.body) == (200, SCRIPT)
        assert script.headers["content-type"].startswith("text/javascript")
        head = get(server.port, "/head.glb")
        assert head.status == 200 and head.body == HEAD_PATH.read_bytes()
        assert head.headers["content-type"] == "model/gltf-binary"
        assert "default-src 'self'" in script.headers["content-security-policy"]
        assert script.headers["x-content-type-options"] == "nosniff"
        assert get(server.port, "/missing.js").status == 404


@pytest.mark.parametrize("path", [
    "/../secret.txt", "/assets/../../secret.txt", "/%2e%2e/secret.txt", "/%2e%2e%2fsecret.txt",
    "/assets/%2e%2e/%2e%2e/secret.txt", "/..%5csecret.txt", "/..\\secret.txt", "//secret.txt",
    "/link.txt", "/linked/secret.txt", "/assets/notes.unknown", "/etc/passwd", "/../../../../etc/passwd",
    "/server.py", "/head.glb.md", "/static/index.html", "/./index.html", "/assets//app.js",
    "/%00", "/index.html%00.js", "http://127.0.0.1/../secret.txt",
])  # fmt: skip
def test_path_traversal_is_refused(static: Path, path: str) -> None:
    with ViewerServer(port=0, static_dir=static) as server:
        reply = get(server.port, path)
        assert reply.status in (400, 404), reply
        assert SECRET not in reply.body and b"root:" not in reply.body
        assert get(server.port, "/").status == 200  # and it still serves


def test_token_rule(static: Path) -> None:
    with pytest.raises(ConfigError, match="--token"):
        ViewerServer("0.0.0.0", 0, static_dir=static)
    for bad in ("short", "has spaces in it", "semi;colon=cookie"):
        with pytest.raises(ConfigError, match="token"):
            ViewerServer(port=0, token=bad, static_dir=static)
    with ViewerServer("0.0.0.0", 0, token=TOKEN, static_dir=static) as server:
        assert server.url.endswith(f":{server.port}/?token={TOKEN}")
        for path in ("/", "/?token=wrong", "/assets/app.js", "/head.glb"):
            assert get(server.port, path).status == 401
        assert get(server.port, "/assets/app.js", {"Cookie": f"{COOKIE}=wrong"}).status == 401
        page = get(server.port, f"/?token={TOKEN}")
        assert page.status == 200 and page.body == INDEX
        cookie = page.headers["set-cookie"]
        assert (
            cookie.startswith(f"{COOKIE}={TOKEN};")
            and "HttpOnly" in cookie
            and "SameSite=Strict" in cookie
        )
        assert get(server.port, "/assets/app.js", {"Cookie": f"{COOKIE}={TOKEN}"}).body == SCRIPT
        for query in ("", "?token=wrong"):
            with pytest.raises(InvalidStatus) as refused:
                _client(server, query)
            assert refused.value.response.status_code == 401
        cookie_header = {"Cookie": f"{COOKIE}={TOKEN}"}
        with (
            _client(server, f"?token={TOKEN}") as a,
            _client(server, additional_headers=cookie_header) as b,
        ):
            _wait_clients(server, 2)
            server.send(_result(7))
            for client in (a, b):
                assert json.loads(client.recv(timeout=TIMEOUT_S))["timestamp_ms"] == 7


def test_host_and_origin_checks(static: Path) -> None:
    """Without a token only loopback Host names are answered (no DNS rebinding), and a
    browser's WebSocket must come from the page's own origin."""
    with ViewerServer(port=0, static_dir=static) as server:
        port = server.port
        assert get(port, "/", {"Host": f"evil.example:{port}"}).status == 403
        assert get(port, "/", {"Host": f"localhost:{port}"}).status == 200
        for origin in ("http://evil.example", f"http://localhost:{port + 1}", "null"):
            with pytest.raises(InvalidStatus) as refused:
                _client(server, origin=origin)
            assert refused.value.response.status_code == 403
        with _client(server, origin=f"http://127.0.0.1:{port}"):
            _wait_clients(server, 1)


def test_malformed_and_oversized_messages(static: Path) -> None:
    with ViewerServer(port=0, static_dir=static) as server:
        with _client(server) as client:
            client.send("{not json")
            assert json.loads(client.recv(timeout=TIMEOUT_S))["type"] == "error"
            client.send(b"\x00\x01")
            assert "binary" in json.loads(client.recv(timeout=TIMEOUT_S))["error"]
            client.send(json.dumps({"type": "ping"}))
            assert json.loads(client.recv(timeout=TIMEOUT_S)) == {"type": "pong"}
            client.send("x" * (MAX_MESSAGE_BYTES + 1))
            with pytest.raises(ConnectionClosed) as closed:
                client.recv(timeout=TIMEOUT_S)
            assert closed.value.rcvd.code == 1009  # message too big
        tls_hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64)
        assert raw_request(server.port, tls_hello, half_close=True) == b""  # dropped, no reply
        for junk, status in JUNK:
            reply = parse(raw_request(server.port, junk))
            assert reply.status == status and INDEX not in reply.body, (junk[:20], reply)
        assert get(server.port, "/").status == 200  # the server still serves
        with _client(server) as again:
            _wait_clients(server, 1)
            server.send(_result(3))
            assert json.loads(again.recv(timeout=TIMEOUT_S))["timestamp_ms"] == 3


def test_frames_go_out_as_json_and_jpeg(static: Path) -> None:
    image = np.zeros((720, 1280, 3), np.uint8)
    image[:, :, 1] = 200
    result = FrameResult(40, 1, (1280, 720), (build_face(center_xy=(640.0, 360.0), size_px=300.0),))
    with ViewerServer(port=0, static_dir=static) as server:
        server.send_frame(result, image)  # nobody connected: nothing to do
        with _client(server) as client:
            _wait_clients(server, 1)
            server.send_frame(result, image)
            jpeg, text = client.recv(timeout=TIMEOUT_S), client.recv(timeout=TIMEOUT_S)
    assert isinstance(jpeg, bytes) and jpeg[:2] == b"\xff\xd8"
    decoded = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (360, 640, 3)  # longest side 640
    assert json.loads(text) == json.loads(json.dumps(result.to_dict(landmarks=False)))


def test_missing_page_is_one_line_naming_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ViewerNotBuilt) as err:
        ViewerServer(port=0, static_dir=tmp_path)
    assert (
        "\n" not in str(err.value) and "npm" in str(err.value) and "pip install" in str(err.value)
    )


_HEADER_NAMES = st.sampled_from(["Host", "Origin", "Cookie", "Upgrade", "Connection", "X-Any"])
_HEADER_VALUES = st.one_of(
    st.sampled_from([
        "127.0.0.1:8080", "localhost", "[::1]:9", "evil.example", "[", "http://127.0.0.1:8080",
        "null", "websocket", f"{COOKIE}={TOKEN}", f"{COOKIE}=nope", f'{COOKIE}="{TOKEN}"; a=b', "",
    ]),
    st.text(max_size=60),
)  # fmt: skip


@settings(max_examples=250, deadline=None)
@given(
    path=st.one_of(st.text(max_size=200), st.sampled_from(["/", "/index.html", "/head.glb", "/ws"]).map(
        lambda p: p + "?token=" + TOKEN)),
    headers=st.lists(st.tuples(_HEADER_NAMES, _HEADER_VALUES), max_size=6),
    method=st.sampled_from(["GET", "POST", "HEAD", "PUT", "get", ""]),
)  # fmt: skip
def test_fuzz_request_router(fuzz_servers: dict, path: str, headers: list, method: str) -> None:
    """Whatever the path, headers and method: a known status, never a file from outside the
    page, and a WebSocket (None) or a file only with the token or, without one, a loopback Host."""
    from websockets.datastructures import Headers
    from websockets.exceptions import InvalidHeader
    from websockets.http11 import Request

    try:
        fields = Headers(headers)
    except InvalidHeader:  # websockets itself refuses these before any routing
        assume(False)
    request = Request(path, fields, method=method) if method else Request(path, fields)
    for name, server in fuzz_servers.items():
        response = server._check_token(None, request)
        if response is not None:
            assert response.status_code in (200, 400, 401, 403, 404, 405)
            assert SECRET not in response.body
        if response is not None and response.status_code != 200:
            continue
        assert method in ("GET", "")
        if response is None:
            assert any(k == "Upgrade" for k, _ in headers)
        else:
            assert response.body in (INDEX, SCRIPT, HEAD_PATH.read_bytes())
        if name == "token":
            assert TOKEN in path or any(TOKEN in v for k, v in headers if k == "Cookie")
        else:
            assert any(
                k == "Host" and ("127.0.0.1" in v or "localhost" in v or "::1" in v)
                for k, v in headers
            )


@pytest.fixture(scope="module")
def fuzz_servers(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("fuzz") / "static"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_bytes(INDEX)
    (root / "assets" / "app.js").write_bytes(SCRIPT)
    (root.parent / "secret.txt").write_bytes(SECRET)
    with (
        ViewerServer(port=0, static_dir=root) as plain,
        ViewerServer(port=0, token=TOKEN, static_dir=root) as token,
    ):
        yield {"plain": plain, "token": token}
