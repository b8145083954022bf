"""Sharing networks between the threads of one process (``kaocap video``'s clip threads):
:class:`Batcher` gathers their calls of a network into one batched call, :class:`OneAtATime`
serialises the calls of a session that takes no batch or is not thread-safe."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


class Batcher:
    """Gathers the network calls of the clip threads of one worker: a thread's call waits
    until every member thread is waiting on a call (or has left), then each network runs all
    its waiting rows at once (feeds concatenated on axis 0, outputs split back).

    ``members`` threads take part; each calls :meth:`leave` when it is done, so the others
    never wait for it. One barrier for every network: a thread waiting on one network never
    blocks another network's batch. Rows are independent in kaocap's networks, so a row's
    outputs do not depend on the rest of its batch (checked bit for bit by
    ``tests/test_offline.py``).

    >>> batcher = Batcher(members=3)                          # doctest: +SKIP
    >>> model.session = batcher.share("face", model.session)  # in each member thread
    """

    def __init__(self, members: int) -> None:
        self._members = members
        self._sessions: dict[str, object] = {}
        self._pending: dict[str, list[_Call]] = {}
        self._waiting = 0
        self._cond = threading.Condition()
        self.calls = self.rows = 0  # network calls made and rows run, for the batch size

    def share(self, key: str, session) -> BatchedSession:
        """A session that batches with every other member's session of ``key`` (the first
        one given runs them all: every member opens the same network)."""
        with self._cond:
            self._sessions.setdefault(key, session)
        return BatchedSession(self, key, self._sessions[key])

    def run(self, key: str, feeds: Mapping[str, NDArray]) -> dict[str, NDArray]:
        call = _Call(feeds)
        with self._cond:
            self._pending.setdefault(key, []).append(call)
            self._waiting += 1
            if self._waiting >= self._members:
                self._flush()
            while not call.done:
                self._cond.wait()
        if call.error is not None:
            raise call.error
        return call.out

    def leave(self) -> None:
        """One member thread is done: the others stop waiting for it."""
        with self._cond:
            self._members -= 1
            if self._waiting and self._waiting >= self._members:
                self._flush()

    def _flush(self) -> None:  # with the lock held
        pending, self._pending, self._waiting = self._pending, {}, 0
        for key, calls in pending.items():
            rows = np.cumsum([0] + [len(next(iter(c.feeds.values()))) for c in calls])
            try:
                feeds = {k: np.concatenate([c.feeds[k] for c in calls]) for k in calls[0].feeds}
                out = self._sessions[key].run(feeds)
                for c, lo, hi in zip(calls, rows[:-1], rows[1:]):
                    c.out = {k: v[lo:hi].copy() for k, v in out.items()}
            except Exception as err:  # noqa: BLE001 (every waiting thread gets the error, none hangs)
                for c in calls:
                    c.error = err
            for c in calls:
                c.done = True
            self.calls, self.rows = self.calls + 1, self.rows + int(rows[-1])
        self._cond.notify_all()


class BatchedSession:
    """A :class:`kaocap.runtime.Session` whose calls go through a :class:`Batcher`."""

    def __init__(self, batcher: Batcher, key: str, session) -> None:
        self._batcher, self._key = batcher, key
        self.inputs, self.outputs = session.inputs, session.outputs
        self.runtime = getattr(session, "runtime", "")

    def run(self, feeds: Mapping[str, NDArray]) -> dict[str, NDArray]:
        return self._batcher.run(self._key, feeds)


@dataclass(slots=True)
class _Call:
    feeds: Mapping[str, NDArray]
    out: dict[str, NDArray] | None = None
    error: Exception | None = None
    done: bool = False


class OneAtATime:
    """A session shared by threads, one call at a time (LiteRT's interpreter is not
    thread-safe)."""

    def __init__(self, session) -> None:
        self._session, self._lock = session, threading.Lock()
        self.inputs, self.outputs = session.inputs, session.outputs
        self.runtime = getattr(session, "runtime", "")

    def run(self, feeds: Mapping[str, NDArray]) -> dict[str, NDArray]:
        with self._lock:
            return self._session.run(feeds)
