"""Sender specs, open_sender, and Fanout: a raising or blocking target never stalls the others;
a missing receiver is one warning."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from kaocap.errors import ConfigError
from kaocap.stream.senders import SENDERS, Fanout, Sender, UdpTarget, open_sender, parse_spec
from kaocap.types import FrameResult
from tests.stream._net import TIMEOUT_S, free_udp_port, udp_receiver


def test_parse_spec() -> None:
    assert parse_spec("vmc") == ("vmc", "127.0.0.1", 39539)
    assert parse_spec("vmc:127.0.0.1:39540") == ("vmc", "127.0.0.1", 39540)
    assert parse_spec("livelink:192.168.1.20:11112") == ("livelink", "192.168.1.20", 11112)
    assert parse_spec("livelink:192.168.1.20") == ("livelink", "192.168.1.20", 11111)
    assert parse_spec("ws:8765") == ("ws", "127.0.0.1", 8765)
    assert parse_spec("VTube_Studio") == ("vts", "127.0.0.1", 8001)
    for spec, port in (("ifm", 49983), ("vrchat", 9000), ("osf", 11573), ("openseeface", 11573)):
        assert parse_spec(spec)[2] == port
    with pytest.raises(ConfigError, match="did you mean 'vmc'"):
        parse_spec("vcm")
    for bad in ("vmc:1:2:3", "vmc:", "vmc:70000", "vmc:0", "ws:host:-1"):
        with pytest.raises(ConfigError):
            parse_spec(bad)


def test_open_sender_opens_every_kind(tmp_path, make_result) -> None:
    port = free_udp_port()
    for name in SENDERS:
        options = {"token_path": tmp_path / "token.txt"} if name == "vts" else {}
        spec = f"{name}:0" if name == "ws" else f"{name}:{port}"
        sender = open_sender(spec, **options)
        try:
            assert isinstance(sender, Sender)
            sender.send(make_result(0))
        finally:
            sender.close()


class Raising:
    name = "raising"

    def __init__(self) -> None:
        self.calls = 0

    def send(self, result: FrameResult) -> None:
        self.calls += 1
        raise RuntimeError("target is down")

    def close(self) -> None:
        pass


class Blocking:
    name = "blocking"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def send(self, result: FrameResult) -> None:
        self.calls += 1
        self.release.wait(TIMEOUT_S)

    def close(self) -> None:
        self.release.set()


class Recording:
    name = "recording"

    def __init__(self) -> None:
        self.timestamps: list[int] = []

    def send(self, result: FrameResult) -> None:
        self.timestamps.append(result.timestamp_ms)

    def close(self) -> None:
        pass


def test_fanout_isolates_failing_and_blocking_targets(make_result, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="kaocap.stream.senders")
    raising, blocking, recording = Raising(), Blocking(), Recording()
    results = [make_result(i * 10) for i in range(100)]
    with Fanout([raising, blocking, recording]) as out:
        start = time.perf_counter()
        for result in results:
            out.send(result, captured_at=time.perf_counter())
            time.sleep(0.002)
        elapsed = time.perf_counter() - start
        deadline = time.monotonic() + TIMEOUT_S
        while (
            not recording.timestamps or recording.timestamps[-1] != 990
        ) and time.monotonic() < deadline:
            time.sleep(0.01)
    stats = out.stats()  # after close, which flushes each pending frame once
    assert elapsed < 1.0  # the caller never waited for a target
    assert recording.timestamps[-1] == 990 and len(recording.timestamps) >= 90
    assert blocking.calls == 1 and stats["blocking"]["dropped"] >= 90  # stale frames dropped
    assert 1 <= raising.calls < 20  # retried with backoff, not per frame
    assert (
        stats["recording"]["sent"] == len(recording.timestamps)
        and stats["recording"]["errors"] == 0
    )
    assert 0 <= stats["recording"]["p50_ms"] <= stats["recording"]["p99_ms"] < 1000
    assert stats["raising"]["errors"] == raising.calls and stats["raising"]["p50_ms"] is None
    warnings = [
        r for r in caplog.records if r.levelno == logging.WARNING and "raising" in r.getMessage()
    ]
    assert len(warnings) == 1 and "target is down" in warnings[0].getMessage()


def test_missing_receiver_logs_once(make_result, caplog) -> None:
    caplog.set_level(logging.WARNING)
    port = free_udp_port()
    with Fanout(
        [open_sender(f"livelink:127.0.0.1:{port}"), open_sender(f"ifm:127.0.0.1:{port}")]
    ) as out:
        for i in range(50):
            out.send(make_result(i * 20))
            time.sleep(0.004)
        time.sleep(0.1)
        stats = out.stats()
    assert (
        stats[f"livelink:127.0.0.1:{port}"]["sent"] >= 1
        and stats[f"ifm:127.0.0.1:{port}"]["errors"] == 0
    )
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(messages) == 2, messages  # one per target, not one per frame
    assert all("nothing is listening" in m for m in messages)


def test_udp_target_reaches_a_receiver_that_starts_later() -> None:
    with udp_receiver() as rx:
        target = UdpTarget("127.0.0.1", rx.getsockname()[1], name="t")
        assert target.send(b"hello") and rx.recv(16) == b"hello"
        target.close()
        target.close()


class Breaking:
    """Sends ``good`` results, then breaks for good (a dead socket or event loop)."""

    name = "breaking"

    def __init__(self, good: int, log: list) -> None:
        self.good, self.log, self.closed = good, log, False

    def send(self, result: FrameResult) -> None:
        if self.good <= 0:
            raise ConnectionError("socket is dead")
        self.good -= 1
        self.log.append(result.timestamp_ms)

    def close(self) -> None:
        self.closed = True


def test_a_broken_sender_is_restarted_and_logged_once(make_result, caplog) -> None:
    """Each instance breaks after 3 sends; the lane closes it and makes a fresh one: the target
    keeps receiving, with one warning per outage, and the other target never notices."""
    caplog.set_level(logging.DEBUG, logger="kaocap.stream.senders")
    made, got, recording = [], [], Recording()

    def factory() -> Breaking:
        made.append(Breaking(3, got))
        return made[-1]

    with Fanout([factory(), recording], factories=[factory, None]) as out:
        for i in range(150):
            out.send(make_result(i * 10))
            time.sleep(0.01)
        deadline = time.monotonic() + TIMEOUT_S
        while len(made) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    stats = out.stats()["breaking"]
    assert len(made) >= 3 and stats["restarts"] == len(made) - 1 and all(b.closed for b in made)
    assert len(got) >= 7 and got == sorted(got)  # frames after each restart got through
    assert len(recording.timestamps) >= 140
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "breaking" in r.getMessage()]
    assert sum("send failed" in m for m in warned) == stats["restarts"]  # one per outage, not per frame
    assert all("restarting it" in m for m in warned if "send failed" in m)


def test_from_specs_fails_at_start_on_a_bad_spec() -> None:
    port = free_udp_port()
    with pytest.raises(ConfigError):
        Fanout.from_specs([f"vmc:127.0.0.1:{port}", "nosuch:1"])
