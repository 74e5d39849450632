"""Clocks that tell the replay exchange what "now" is.

The server never reads the wall clock itself: every request asks its :class:`Clock` for

* ``now_ms()``: the exchange's current time (what ``/fapi/v1/time`` answers), and
* ``offset_ms``: how far served timestamps are shifted from the stored ones
  (``served = stored + offset_ms``).

From those two the server derives the *data time* ``now_ms() - offset_ms``: a stored candle is
served once it has closed by then, so nothing from the future leaks out.

:class:`HistoricalClock`
    A fixed instant and no shift: what backtests, tests and tools that page through history want.
:class:`LiveClock`
    History shifted by a whole number of weeks so that a chosen moment of the data plays back as
    "now", with time running at wall-clock speed or faster. Candles appear as time passes, the way
    they do on the real exchange.

Example
-------
>>> clock = HistoricalClock(1_700_000_000_000)
>>> clock.now_ms(), clock.offset_ms, clock.data_now_ms()
(1700000000000, 0, 1700000000000)
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable

#: one week in milliseconds; live replays shift history by whole weeks so candle boundaries,
#: funding times and weekdays stay where they were
WEEK_MS = 7 * 24 * 3600 * 1000


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class Clock(ABC):
    """What the replay exchange asks for the current time."""

    #: served timestamp minus stored timestamp, in milliseconds
    offset_ms: int = 0

    @abstractmethod
    def now_ms(self) -> int:
        """Current exchange time in milliseconds since the epoch (UTC)."""

    def data_now_ms(self) -> int:
        """Current time on the stored data's own time axis."""
        return self.now_ms() - self.offset_ms

    def to_data(self, served_ms: int) -> int:
        """Map a served (client-side) timestamp onto the stored data's time axis."""
        return served_ms - self.offset_ms

    def to_served(self, data_ms: int) -> int:
        """Map a stored timestamp onto the served (client-side) time axis."""
        return data_ms + self.offset_ms

    @property
    def live(self) -> bool:
        """``True`` when time moves on its own (candles appear while the server runs)."""
        return False


class HistoricalClock(Clock):
    """A clock stopped at one instant, with stored timestamps served unchanged.

    Parameters
    ----------
    at_ms:
        The instant (ms since the epoch, UTC). Everything that closed by then is served; the
        candle open at that instant is served as a forming candle (see the server docs).
    """

    def __init__(self, at_ms: int) -> None:
        self._at = int(at_ms)
        self.offset_ms = 0

    def now_ms(self) -> int:
        return self._at

    def set(self, at_ms: int) -> None:
        """Move the clock to another instant (tests step through history with this)."""
        self._at = int(at_ms)

    def advance(self, ms: int) -> None:
        """Move the clock forward by ``ms`` milliseconds."""
        self._at += int(ms)

    def __repr__(self) -> str:
        return f"HistoricalClock(at_ms={self._at})"


class LiveClock(Clock):
    """History replayed as if it were happening now, optionally faster than real time.

    At construction the stored moment ``start_ms`` is mapped to the current wall-clock time,
    rounded so that the shift is a whole number of weeks (so the served ``start`` lies within a
    week of the requested one and every candle boundary, funding time and weekday is kept).
    From then on exchange time runs ``speed`` times as fast as the wall clock.

    Parameters
    ----------
    start_ms:
        Stored moment that should play back as "now" when the server starts.
    speed:
        How many exchange milliseconds pass per wall-clock millisecond (1.0 = real time).
        Above 1 the served time runs ahead of the client's own clock; tools that compare candle
        dates with their wall clock (freqtrade does) want ``speed=1``.
    wall:
        Source of wall-clock milliseconds (injectable for tests).
    """

    def __init__(
        self,
        start_ms: int,
        *,
        speed: float = 1.0,
        wall: Callable[[], int] = _wall_ms,
    ) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be positive, got {speed!r}")
        self._wall = wall
        self._speed = float(speed)
        self._wall_start = int(wall())
        shift = self._wall_start - int(start_ms)
        # round the shift to whole weeks so candles keep their boundaries and weekdays
        self.offset_ms = ((shift + WEEK_MS // 2) // WEEK_MS) * WEEK_MS
        self._now_start = self._wall_start

    @property
    def speed(self) -> float:
        return self._speed

    @property
    def live(self) -> bool:
        return True

    def now_ms(self) -> int:
        elapsed = int(self._wall()) - self._wall_start
        return self._now_start + int(elapsed * self._speed)

    def __repr__(self) -> str:
        return f"LiveClock(offset_ms={self.offset_ms}, speed={self._speed})"


def align_down(ms: int, step_ms: int, origin_ms: int = 0) -> int:
    """Largest ``origin + k * step`` that is ``<= ms``."""
    return origin_ms + ((ms - origin_ms) // step_ms) * step_ms
