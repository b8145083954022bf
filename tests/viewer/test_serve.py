"""The serve job and CLI without a browser: a file waits for a page, frames reach a WebSocket
client as JPEG + JSON, stop ends it; CLI refusals are one line with the right exit code."""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

import kaocap.viewer.server as viewer_server
from kaocap.cli import main
from kaocap.viewer import serve
from kaocap.viewer.server import STATIC_DIR
from tests.viewer._http import TIMEOUT_S, get

needs_page = pytest.mark.skipif(
    not (STATIC_DIR / "index.html").is_file(),
    reason="the viewer page is not built (npm ci && npm run build in web/)",
)


def _start(**kwargs) -> tuple[threading.Thread, threading.Event, str, list[int]]:
    stop, urls, out = threading.Event(), queue.Queue(), []
    thread = threading.Thread(
        target=lambda: out.append(serve(None, port=0, stop=stop, on_ready=urls.put, **kwargs)),
        daemon=True,
    )
    thread.start()
    return thread, stop, urls.get(timeout=60), out


@needs_page
def test_a_file_waits_for_a_page_then_streams_frames() -> None:
    thread, stop, url, out = _start()
    port = int(url.rsplit(":", 1)[1].strip("/"))
    try:
        assert get(port, "/").status == 200
        time.sleep(0.3)  # nobody watching: the embedded portrait waits
        with connect(f"ws://127.0.0.1:{port}/ws", open_timeout=TIMEOUT_S, proxy=None) as client:
            jpeg, text = client.recv(timeout=30), client.recv(timeout=TIMEOUT_S)
            again = client.recv(timeout=TIMEOUT_S)  # the still image is sent again (once a second)
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive() and out[0] >= 2
    assert jpeg[:2] == b"\xff\xd8" and isinstance(again, bytes)
    result = json.loads(text)
    assert len(result["faces"]) == 1 and set(result["faces"][0]["blendshapes"]) >= {"jawOpen"}


def test_cli_refuses_other_hosts_without_a_token(capsys) -> None:
    assert main(["serve", "--host", "0.0.0.0", "--port", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--token" in err and "\n" not in err


def test_cli_bad_port(capsys) -> None:
    assert main(["serve", "--port", "70000"]) == 2
    assert "--port" in capsys.readouterr().err


def test_cli_without_the_page_names_the_fix(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(viewer_server, "STATIC_DIR", tmp_path)
    assert main(["serve", "--port", "0"]) == 4
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "npm ci && npm run build" in err and "pip install ." in err


def _reconnect(port: int, tries: int = 50):
    for _ in range(tries):
        try:
            return connect(f"ws://127.0.0.1:{port}/ws", open_timeout=TIMEOUT_S, proxy=None)
        except ConnectionRefusedError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on port {port} again")


@needs_page
def test_a_viewer_failure_is_logged_once_and_the_viewer_restarts(monkeypatch, caplog) -> None:
    """The viewer breaks while a page watches (its event loop dies mid-frame): one warning, a
    fresh server on the same port, the pipeline never stops, a page that reconnects gets frames."""
    real_send, calls = viewer_server.ViewerServer.send_frame, []

    def send_frame(self, result, image=None):
        calls.append(self)
        if len(calls) == 3:
            raise RuntimeError("Event loop is closed")
        return real_send(self, result, image)

    monkeypatch.setattr(viewer_server.ViewerServer, "send_frame", send_frame)
    results = []
    thread, stop, url, _out = _start(on_result=results.append)
    port = int(url.rsplit(":", 1)[1].strip("/"))
    try:
        with connect(f"ws://127.0.0.1:{port}/ws", open_timeout=TIMEOUT_S, proxy=None) as client:
            client.recv(timeout=30)
            with pytest.raises(ConnectionClosed):  # the broken server's connection goes away
                while True:
                    client.recv(timeout=TIMEOUT_S)
        with _reconnect(port) as client:  # as the page does, after a pause
            jpeg = client.recv(timeout=30)
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive() and jpeg[:2] == b"\xff\xd8"
    assert len({id(s) for s in calls}) == 2 and len(results) == len(calls)  # every frame processed
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "viewer" in r.getMessage()]
    assert sum("viewer failed" in m for m in warnings) == 1
