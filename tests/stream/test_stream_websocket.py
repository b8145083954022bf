"""JSON WebSocket server: broadcast to real websockets clients, the token rule, oversized and
malformed client messages, a busy port, and a fuzzed message handler."""

from __future__ import annotations

import json
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from kaocap.errors import ConfigError, OutputError
from kaocap.stream.websocket import MAX_MESSAGE_BYTES, WebSocketServer, handle_message, is_loopback
from tests.stream._net import TIMEOUT_S


def _client(server: WebSocketServer, query: str = ""):
    return connect(f"ws://127.0.0.1:{server.port}/{query}", open_timeout=TIMEOUT_S, proxy=None)


def _wait_clients(server: WebSocketServer, n: int) -> None:
    import time

    deadline = time.monotonic() + TIMEOUT_S
    while server.clients < n:
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_broadcasts_to_every_client(make_result) -> None:
    result = make_result(1234, n_faces=2)
    with WebSocketServer(port=0) as server, _client(server) as a, _client(server) as b:
        _wait_clients(server, 2)
        server.send(result)
        for client in (a, b):
            assert json.loads(client.recv(timeout=TIMEOUT_S)) == json.loads(
                json.dumps(result.to_dict(landmarks=False))
            )
        a.send(json.dumps({"type": "ping"}))
        assert json.loads(a.recv(timeout=TIMEOUT_S)) == {"type": "pong"}


def test_oversized_and_malformed_messages_do_not_stop_the_server(make_result) -> None:
    with WebSocketServer(port=0) as server:
        with _client(server) as client:
            client.send("{not json")
            assert json.loads(client.recv(timeout=TIMEOUT_S))["type"] == "error"
            client.send(b"\x00\x01")
            assert "binary" in json.loads(client.recv(timeout=TIMEOUT_S))["error"]
            client.send("x" * (MAX_MESSAGE_BYTES + 1))
            with pytest.raises(ConnectionClosed) as closed:
                client.recv(timeout=TIMEOUT_S)
            assert closed.value.rcvd.code == 1009  # message too big
        with _client(server) as again:  # the server still serves
            _wait_clients(server, 1)
            server.send(make_result(0))
            assert json.loads(again.recv(timeout=TIMEOUT_S))["timestamp_ms"] == 0


def test_token_rule(make_result) -> None:
    with pytest.raises(ConfigError, match="token"):
        WebSocketServer("0.0.0.0", 0)
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2")
    with WebSocketServer(port=0, token="s3cret") as server:
        for query in ("", "?token=wrong"):
            with pytest.raises(InvalidStatus) as refused:
                _client(server, query)
            assert refused.value.response.status_code == 401
        with _client(server, "?token=s3cret") as client:
            _wait_clients(server, 1)
            server.send(make_result(7))
            assert json.loads(client.recv(timeout=TIMEOUT_S))["timestamp_ms"] == 7


def test_port_in_use_is_a_one_line_output_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(OutputError, match=f"cannot listen on 127.0.0.1:{port}") as err:
            WebSocketServer(port=port)
    assert "\n" not in str(err.value)


def test_closed_server_refuses_to_send(make_result) -> None:
    server = WebSocketServer(port=0)
    server.close()
    server.close()
    with pytest.raises(OutputError, match="closed"):
        server.send(make_result(0))


@settings(max_examples=200, deadline=200)
@given(st.one_of(
    st.text(max_size=2000),
    st.binary(max_size=2000),
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
        lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
        max_leaves=30,
    ).map(json.dumps),
))  # fmt: skip
def test_fuzz_message_handler(message: str | bytes) -> None:
    reply = json.loads(handle_message(message))
    assert reply["type"] in ("pong", "error")
    assert (reply["type"] == "pong") == (isinstance(message, str) and _is_ping(message))


def _is_ping(text: str) -> bool:
    try:
        data = json.loads(text)
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("type") == "ping"


def test_deeply_nested_json_is_an_error_not_a_crash() -> None:
    assert json.loads(handle_message("[" * 100_000))["type"] == "error"
    assert json.loads(handle_message("x" * (MAX_MESSAGE_BYTES + 1)))["type"] == "error"
