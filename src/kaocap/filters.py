"""One Euro filter (Casiez et al., CHI 2012), vectorised over channels.

Each channel is low-pass filtered with a cutoff that rises with its speed: still faces stop
jittering, fast motion keeps little lag. ``min_cutoff`` (Hz) sets the smoothing at rest,
``beta`` how fast the cutoff opens with speed, ``d_cutoff`` (Hz) the smoothing of the speed.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray


def _alpha(cutoff: NDArray | float, dt: float) -> NDArray | float:
    tau = 1.0 / (2 * math.pi * np.asarray(cutoff))
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Filters arrays of a fixed shape, one independent filter per element.

    >>> f = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    >>> float(f(np.array([0.0]), 0.0)[0]), float(f(np.array([1.0]), 0.1)[0]) < 1.0
    (0.0, True)
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0) -> None:
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise ValueError("min_cutoff and d_cutoff must be > 0 and beta >= 0")
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.reset()

    def reset(self) -> None:
        self._x: NDArray | None = None
        self._dx: NDArray | None = None
        self._t: float | None = None

    @property
    def last(self) -> NDArray | None:
        """The last filtered value, or None before the first sample."""
        return None if self._x is None else self._x.copy()

    def __call__(self, x: NDArray, t_s: float) -> NDArray:
        """Filter sample ``x`` taken at time ``t_s`` seconds; returns the filtered array."""
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or self._t is None or t_s <= self._t or x.shape != self._x.shape:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t_s
            return x.copy()
        dt = t_s - self._t
        dx = (x - self._x) / dt
        self._dx = self._dx + _alpha(self.d_cutoff, dt) * (dx - self._dx)
        cutoff = self.min_cutoff + self.beta * np.abs(self._dx)
        self._x = self._x + _alpha(cutoff, dt) * (x - self._x)
        self._t = t_s
        return self._x.copy()
