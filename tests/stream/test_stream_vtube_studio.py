"""VTube Studio plugin client against a loopback websockets server that follows the API's
handshake: token request, authentication (a bad token refused), parameter creation, injection."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from websockets.sync.server import ServerConnection, serve

from kaocap.constants import BLENDSHAPES
from kaocap.errors import ConfigError
from kaocap.stream.schema import pascal_case
from kaocap.stream.vtube_studio import API_NAME, VTubeStudioSender
from tests.stream._net import TIMEOUT_S, free_udp_port


class FakeVTubeStudio:
    """Answers like VTube Studio's public API; records every request."""

    def __init__(self, issue: str = "token-1") -> None:
        self.issue, self.valid = issue, set()
        self.requests: list[tuple[str, dict]] = []
        self._lock = threading.Lock()

    def handler(self, ws: ServerConnection) -> None:
        authenticated = False
        for raw in ws:
            msg = json.loads(raw)
            assert msg["apiName"] == API_NAME and msg["apiVersion"] == "1.0"
            kind, data = msg["messageType"], msg["data"]
            with self._lock:
                self.requests.append((kind, data))
            if kind == "AuthenticationTokenRequest":
                self.valid.add(self.issue)
                reply = ("AuthenticationTokenResponse", {"authenticationToken": self.issue})
            elif kind == "AuthenticationRequest":
                authenticated = data["authenticationToken"] in self.valid
                reply = (
                    "AuthenticationResponse",
                    {
                        "authenticated": authenticated,
                        "reason": "ok" if authenticated else "bad token",
                    },
                )
            elif not authenticated:
                reply = ("APIError", {"errorID": 8, "message": "not authenticated"})
            elif kind == "ParameterCreationRequest":
                reply = ("ParameterCreationResponse", {"parameterName": data["parameterName"]})
            else:
                reply = ("InjectParameterDataResponse", {})
            ws.send(json.dumps({"apiName": API_NAME, "apiVersion": "1.0", "requestID": msg["requestID"],
                                "messageType": reply[0], "data": reply[1]}))  # fmt: skip

    def of(self, kind: str) -> list[dict]:
        with self._lock:
            return [d for k, d in self.requests if k == kind]

    def wait_for(self, predicate: Callable[[], bool]) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while not predicate():
            assert time.monotonic() < deadline, (
                f"timed out; requests: {[k for k, _ in self.requests][:8]}"
            )
            time.sleep(0.01)


@contextmanager
def fake_vts(issue: str = "token-1") -> Iterator[tuple[FakeVTubeStudio, int]]:
    fake = FakeVTubeStudio(issue)
    with serve(fake.handler, "127.0.0.1", 0) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield fake, server.socket.getsockname()[1]
        finally:
            server.shutdown()
            thread.join(TIMEOUT_S)


def test_handshake_parameters_injection_and_keepalive(tmp_path: Path, make_result) -> None:
    token_path = tmp_path / "vts" / "token.txt"
    with fake_vts() as (fake, port), VTubeStudioSender(port=port, token_path=token_path) as vts:
        assert vts.ready.wait(TIMEOUT_S)
        assert [k for k, _ in fake.requests[:3]] == [
            "AuthenticationTokenRequest",
            "AuthenticationRequest",
            "ParameterCreationRequest",
        ]
        assert fake.of("AuthenticationTokenRequest")[0]["pluginName"] == "kaocap"
        assert token_path.read_text() == "token-1" and token_path.stat().st_mode & 0o777 == 0o600
        created = fake.of("ParameterCreationRequest")
        assert [p["parameterName"] for p in created] == ["KC" + pascal_case(n) for n in BLENDSHAPES]
        assert all((p["min"], p["max"]) == (0, 1) for p in created)

        result = make_result(0)
        vts.send(result)
        fake.wait_for(lambda: any(d["faceFound"] for d in fake.of("InjectParameterDataRequest")))
        inject = next(d for d in fake.of("InjectParameterDataRequest") if d["faceFound"])
        assert inject["mode"] == "set"
        values = {p["id"]: p["value"] for p in inject["parameterValues"]}
        assert values["KCJawOpen"] == pytest.approx(result.faces[0].blendshape("jawOpen"), abs=1e-6)
        assert values["MouthOpen"] == values["KCJawOpen"]
        assert {"FaceAngleX", "FaceAngleY", "FaceAngleZ", "EyeOpenLeft", "EyeOpenRight"} <= set(
            values
        )

        # No frames: a keepalive with faceFound false comes well within VTube Studio's 1 s.
        count = len(fake.of("InjectParameterDataRequest"))
        time.sleep(1.1)
        later = fake.of("InjectParameterDataRequest")[count:]
        assert len(later) >= 2 and not any(d["faceFound"] for d in later)
        assert {p["id"]: p["value"] for p in later[-1]["parameterValues"]}["KCJawOpen"] == values[
            "KCJawOpen"
        ]


def test_saved_token_is_reused_and_a_refused_one_replaced(tmp_path: Path) -> None:
    token_path = tmp_path / "token.txt"
    token_path.write_text("token-1")
    with fake_vts() as (fake, port):
        fake.valid.add("token-1")
        with VTubeStudioSender(port=port, token_path=token_path) as vts:
            assert vts.ready.wait(TIMEOUT_S)
        assert not fake.of("AuthenticationTokenRequest")  # reused, no new prompt
    token_path.write_text("stale")
    with (
        fake_vts(issue="token-2") as (fake, port),
        VTubeStudioSender(port=port, token_path=token_path) as vts,
    ):
        assert vts.ready.wait(TIMEOUT_S)
        kinds = [k for k, _ in fake.requests[:3]]
        assert kinds == [
            "AuthenticationRequest",
            "AuthenticationTokenRequest",
            "AuthenticationRequest",
        ]
        assert [d["authenticationToken"] for d in fake.of("AuthenticationRequest")] == [
            "stale",
            "token-2",
        ]
    assert token_path.read_text() == "token-2"


def test_missing_vtube_studio_is_one_warning(tmp_path: Path, caplog, make_result) -> None:
    port = free_udp_port()  # nothing listens there over TCP either, in practice
    caplog.set_level(logging.WARNING, logger="kaocap.stream.vtube_studio")
    vts = VTubeStudioSender(port=port, token_path=tmp_path / "t.txt")
    for i in range(20):
        vts.send(make_result(i * 40))
        time.sleep(0.03)
    start = time.monotonic()
    vts.close()
    assert time.monotonic() - start < 2.0 and not vts.ready.is_set()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "not listening" in warnings[0].getMessage()


def test_bad_options() -> None:
    with pytest.raises(ConfigError, match="prefix"):
        VTubeStudioSender(prefix="x" * 20)
    with pytest.raises(ConfigError, match="keepalive"):
        VTubeStudioSender(keepalive_s=1.5)
