"""VTube Studio sender: a plugin of VTube Studio's public API over WebSocket (ws://127.0.0.1:8001).

Every message is the API's JSON envelope ``{"apiName": "VTubeStudioPublicAPI", "apiVersion":
"1.0", "requestID", "messageType", "data"}``; a background thread runs one session at a time:

1. ``AuthenticationRequest`` with the token saved from an earlier run (``token_path``, default
   ``kaocap.models.cache_dir() / "vtube_studio_token.txt"``). If VTube Studio refuses it (or
   there is none), ``AuthenticationTokenRequest`` (the user clicks "Allow" in VTube Studio), the
   new token is saved (mode 0600) and used.
2. ``ParameterCreationRequest`` for each custom parameter: the 52 ARKit shapes as
   ``<prefix><PascalCaseName>`` (default prefix ``KC``, e.g. ``KCJawOpen``), 0..1. Names must be
   4..32 letters or digits.
3. ``InjectParameterDataRequest {faceFound, mode: "set", parameterValues: [{id, value}]}`` for
   every frame, and every ``keepalive_s`` (< 1 s, VTube Studio's timeout) without frames, with
   ``faceFound`` false and the last values.

Besides the custom parameters it sets VTube Studio's own inputs (:func:`vts_parameters`):
``FaceAngleX/Y/Z`` (degrees: kaocap's yaw, -pitch, roll, i.e. > 0 turning to the image right,
looking up, tilting counter-clockwise as seen), ``MouthOpen``, ``MouthSmile``, ``MouthX``,
``Brows``, ``BrowLeftY``, ``BrowRightY`` (0.5 neutral), ``EyeOpenLeft/Right``,
``EyeLeftX/Y``, ``EyeRightX/Y`` (normalised gaze), ``CheekPuff``, ``TongueOut``.

A missing VTube Studio is one warning; the thread reconnects with exponential backoff (up to
10 s). ``send`` never blocks: it replaces the frame waiting to be injected.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kaocap._closing import Closing
from kaocap.constants import BLENDSHAPES
from kaocap.errors import ConfigError
from kaocap.stream.schema import SenderFrame, gaze_normalized, pascal_case, sender_frame
from kaocap.stream.senders import BACKOFF_MAX_S, BACKOFF_START_S, require
from kaocap.types import FrameResult

logger = logging.getLogger(__name__)

DEFAULT_PORT = 8001
API_NAME, API_VERSION = "VTubeStudioPublicAPI", "1.0"
TOKEN_FILE = "vtube_studio_token.txt"
_PARAM_NAME = re.compile(r"^[A-Za-z0-9]{4,32}$")


class VTubeStudioError(Exception):
    """VTube Studio answered with an APIError or an unexpected message."""


def _clip(v: float, lo: float = 0.0, hi: float = 1.0) -> float:
    return max(lo, min(hi, v))


def vts_parameters(frame: SenderFrame, prefix: str = "KC") -> dict[str, float]:
    """Parameter id -> value injected for one frame (module docstring)."""
    s = frame.blendshapes
    yaw, pitch, roll = frame.head_euler_deg
    lx, ly, rx, ry = gaze_normalized(frame)
    up = (s["browInnerUp"] + s["browOuterUpLeft"] + s["browOuterUpRight"]) / 3

    def brow(side: str) -> float:
        return _clip(
            0.5 + 0.5 * ((s["browInnerUp"] + s[f"browOuterUp{side}"]) / 2 - s[f"browDown{side}"])
        )

    values = {
        "FaceAngleX": yaw, "FaceAngleY": -pitch, "FaceAngleZ": roll,
        "MouthOpen": s["jawOpen"],
        "MouthSmile": (s["mouthSmileLeft"] + s["mouthSmileRight"]) / 2,
        "MouthX": _clip(s["mouthRight"] - s["mouthLeft"], -1.0),
        "Brows": _clip(0.5 + 0.5 * (up - (s["browDownLeft"] + s["browDownRight"]) / 2)),
        "BrowLeftY": brow("Left"), "BrowRightY": brow("Right"),
        "EyeOpenLeft": 1.0 - s["eyeBlinkLeft"], "EyeOpenRight": 1.0 - s["eyeBlinkRight"],
        "EyeLeftX": lx, "EyeLeftY": ly, "EyeRightX": rx, "EyeRightY": ry,
        "CheekPuff": s["cheekPuff"], "TongueOut": s["tongueOut"],
    }  # fmt: skip
    values.update({prefix + pascal_case(n): s[n] for n in BLENDSHAPES})
    return values


def _check_options(plugin_name: str, developer: str, prefix: str, keepalive_s: float) -> None:
    for label, value in (("plugin_name", plugin_name), ("plugin_developer", developer)):
        if not 3 <= len(value) <= 32:
            raise ConfigError(f"vts {label} must be 3..32 characters, got {value!r}")
    names = [prefix + pascal_case(n) for n in BLENDSHAPES]
    bad = [n for n in names if not _PARAM_NAME.match(n)]
    if bad:
        raise ConfigError(
            f"vts prefix {prefix!r} makes invalid parameter names (4..32 letters/digits): {bad[0]}"
        )
    if not 0 < keepalive_s < 1:
        raise ConfigError(f"vts keepalive_s must be in (0, 1) s, got {keepalive_s}")


def envelope(message_type: str, data: dict[str, Any], request_id: str) -> str:
    """One API request as JSON text."""
    return json.dumps({
        "apiName": API_NAME, "apiVersion": API_VERSION, "requestID": request_id,
        "messageType": message_type, "data": data,
    })  # fmt: skip


class VTubeStudioSender(Closing):
    """Inject results into VTube Studio as a plugin (module docstring).

    ``ready`` is set once authenticated with the parameters created; ``injected`` counts the
    InjectParameterDataRequests answered.

    >>> vts = VTubeStudioSender()        # doctest: +SKIP
    >>> vts.send(result); vts.close()    # doctest: +SKIP
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        token_path: str | Path | None = None,
        plugin_name: str = "kaocap",
        plugin_developer: str = "kaocap",
        prefix: str = "KC",
        keepalive_s: float = 0.5,
        request_timeout_s: float = 5.0,
        auth_timeout_s: float = 120.0,
    ) -> None:
        _check_options(plugin_name, plugin_developer, prefix, keepalive_s)
        self._ws_client = require("websockets.sync.client", "websockets", "vts")
        if token_path is None:
            from kaocap.models import cache_dir

            token_path = cache_dir() / TOKEN_FILE
        self.name = f"vts:{host}:{port}"
        self.url = f"ws://{host}:{port}"
        self.token_path = Path(token_path)
        self.plugin = {"pluginName": plugin_name, "pluginDeveloper": plugin_developer}
        self.prefix = prefix
        self.keepalive_s = keepalive_s
        self.request_timeout_s, self.auth_timeout_s = request_timeout_s, auth_timeout_s
        self.ready = threading.Event()
        self.injected = 0
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
        self._pending: SenderFrame | None = None
        self._closed = False
        self._ws: Any = None
        self._thread = threading.Thread(target=self._run, name=f"kaocap-{self.name}", daemon=True)
        self._thread.start()

    def send(self, result: FrameResult) -> None:
        """Queue the first face of ``result`` for injection (replaces a queued one); never blocks."""
        frame = sender_frame(result)
        with self._cond:
            self._pending = frame
            self._cond.notify()

    def close(self) -> None:
        """Stop the thread and close the connection; idempotent."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        ws = self._ws
        if ws is not None:
            ws.close()
        self._thread.join(5.0)

    # -- session ---------------------------------------------------------------------------

    def _run(self) -> None:
        backoff, warned = 0.0, False
        while not self._closed:
            try:
                with self._ws_client.connect(
                    self.url, open_timeout=self.request_timeout_s, proxy=None
                ) as ws:
                    self._ws = ws
                    self._session(ws, on_ready=lambda: logger.info("%s: connected", self.name))
                backoff, warned = 0.0, False
            except Exception as err:  # noqa: BLE001 - any failure ends this session only
                if self._closed:
                    break
                if not warned:
                    warned = True
                    logger.warning("%s: %s; retrying in the background", self.name, _describe(err))
                backoff = min(max(backoff * 2, BACKOFF_START_S), BACKOFF_MAX_S)
            finally:
                self._ws = None
                self.ready.clear()
            with self._cond:
                self._cond.wait_for(lambda: self._closed, timeout=backoff)

    def _session(self, ws: Any, on_ready: Callable[[], None]) -> None:
        self._authenticate(ws)
        for name in BLENDSHAPES:
            self._request(ws, "ParameterCreationRequest", {
                "parameterName": self.prefix + pascal_case(name),
                "explanation": f"ARKit {name} from kaocap (0..1)",
                "min": 0, "max": 1, "defaultValue": 0,
            })  # fmt: skip
        self.ready.set()
        on_ready()
        self._inject_loop(ws)

    def _authenticate(self, ws: Any) -> None:
        token = self._read_token()
        if (
            token
            and self._request(
                ws, "AuthenticationRequest", {**self.plugin, "authenticationToken": token}
            )["authenticated"]
        ):
            return
        if token:
            logger.info(
                "%s: the saved token was refused; asking VTube Studio for a new one", self.name
            )
        logger.info("%s: allow the plugin %r in VTube Studio", self.name, self.plugin["pluginName"])
        reply = self._request(
            ws, "AuthenticationTokenRequest", dict(self.plugin), timeout=self.auth_timeout_s
        )
        token = str(reply["authenticationToken"])
        self._write_token(token)
        reply = self._request(
            ws, "AuthenticationRequest", {**self.plugin, "authenticationToken": token}
        )
        if not reply.get("authenticated"):
            raise VTubeStudioError(
                f"authentication refused ({reply.get('reason', 'no reason given')})"
            )

    def _inject_loop(self, ws: Any) -> None:
        last: SenderFrame | None = None
        while not self._closed:
            with self._cond:
                self._cond.wait_for(
                    lambda: self._pending is not None or self._closed, timeout=self.keepalive_s
                )
                frame, self._pending = self._pending, None
            if self._closed:
                return
            face_found = frame is not None and frame.face_found
            if face_found:
                last = frame
            shown = last or SenderFrame(0, False)
            values = [
                {"id": k, "value": float(v)} for k, v in vts_parameters(shown, self.prefix).items()
            ]
            self._request(
                ws,
                "InjectParameterDataRequest",
                {"faceFound": face_found, "mode": "set", "parameterValues": values},
            )
            self.injected += 1

    def _request(
        self, ws: Any, message_type: str, data: dict[str, Any], timeout: float | None = None
    ) -> dict[str, Any]:
        request_id = f"kaocap-{next(self._ids)}"
        ws.send(envelope(message_type, data, request_id))
        while True:
            reply = json.loads(ws.recv(timeout=timeout or self.request_timeout_s))
            if reply.get("requestID") != request_id:
                continue  # an event or a late answer
            if reply.get("messageType") == "APIError":
                d = reply.get("data", {})
                raise VTubeStudioError(
                    f"{message_type}: API error {d.get('errorID')}: {d.get('message')}"
                )
            return reply.get("data") or {}

    def _read_token(self) -> str | None:
        try:
            return self.token_path.read_text(encoding="utf-8").strip() or None
        except OSError:
            return None

    def _write_token(self, token: str) -> None:
        try:
            self.token_path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.token_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(token)
        except OSError as err:
            logger.warning(
                "%s: cannot save the token to %s (%s)", self.name, self.token_path, err.strerror
            )


def _describe(err: BaseException) -> str:
    if isinstance(err, ConnectionRefusedError):
        return "VTube Studio is not listening (is it running with the plugin API on?)"
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
