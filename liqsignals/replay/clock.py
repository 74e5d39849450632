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

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
EIGHT_HOURS_MS = 8 * HOUR_MS
DAY_MS = 24 * HOUR_MS
#: one week in milliseconds; live replays shift history by whole weeks by default so candle
#: boundaries, funding times and weekdays stay where they were
WEEK_MS = 7 * DAY_MS


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
    rounded so that the shift is a whole number of ``align_ms`` (default: weeks, so the served
    ``start`` lies within half a week of the requested one and every candle boundary, funding
    time and weekday is kept). From then on exchange time runs ``speed`` times as fast as the
    wall clock.

    A finer ``align_ms`` lets a chosen stored moment play back as "now" more precisely, at a
    price: with :data:`HOUR_MS` every candle of up to one hour keeps its boundaries, but funding
    events (every 8 h on Binance) are served at other hours of the day and daily or weekly
    candles open at other times than 00:00 UTC. Candles, mark-price candles and funding events
    are all shifted by the same amount, so they stay consistent with each other. With
    ``align_ms=EIGHT_HOURS_MS`` funding times are kept, with :data:`DAY_MS` all but weekdays.

    Parameters
    ----------
    start_ms:
        Stored moment that should play back as "now" when the server starts.
    speed:
        How many exchange milliseconds pass per wall-clock millisecond (1.0 = real time).
        Above 1 the served time runs ahead of the client's own clock; tools that compare candle
        dates with their wall clock (freqtrade does) want ``speed=1``.
    align_ms:
        The shift is a whole multiple of this (default one week). Must be a positive multiple of
        one minute.
    wall:
        Source of wall-clock milliseconds (injectable for tests).
    """

    def __init__(
        self,
        start_ms: int,
        *,
        speed: float = 1.0,
        align_ms: int = WEEK_MS,
        wall: Callable[[], int] = _wall_ms,
    ) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be positive, got {speed!r}")
        align_ms = int(align_ms)
        if align_ms <= 0 or align_ms % MINUTE_MS:
            raise ValueError(f"align_ms must be a positive multiple of one minute, got {align_ms}")
        self._wall = wall
        self._speed = float(speed)
        self._align = align_ms
        self._wall_start = int(wall())
        shift = self._wall_start - int(start_ms)
        # round the shift to whole steps so candles keep their boundaries (and, with the default
        # of one week, funding times and weekdays)
        self.offset_ms = ((shift + align_ms // 2) // align_ms) * align_ms
        self._now_start = self._wall_start

    @property
    def speed(self) -> float:
        return self._speed

    @property
    def align_ms(self) -> int:
        """The shift between stored and served time is a whole multiple of this."""
        return self._align

    @property
    def live(self) -> bool:
        return True

    def now_ms(self) -> int:
        elapsed = int(self._wall()) - self._wall_start
        return self._now_start + int(elapsed * self._speed)

    def __repr__(self) -> str:
        return f"LiveClock(offset_ms={self.offset_ms}, speed={self._speed}, align_ms={self._align})"


def align_down(ms: int, step_ms: int, origin_ms: int = 0) -> int:
    """Largest ``origin + k * step`` that is ``<= ms``."""
    return origin_ms + ((ms - origin_ms) // step_ms) * step_ms
