"""``liqsignals poll``: keep other venues' candles current in datadirs, one process.

freqtrade's DataProvider serves one exchange. A strategy that combines several venues
(:class:`liqsignals.multi.MultiFeatureStream`, :mod:`liqsignals.strategy.venues`) reads the
other venues' candles from freqtrade datadirs that this poller keeps current:

* every ``interval`` seconds a *round* asks each venue (ccxt, public endpoints only) for the
  closed candles missing from each pair's file, ``<datadir>/futures/<PAIR>-<tf>-futures.feather``
  (freqtrade's layout, so ``freqtrade download-data`` and backtests read the same files);
* missing spans are found with :func:`liqsignals.data.download.missing_spans` (gaps between
  stored candles, and everything after the last one, are fetched again), rows are merged with
  :func:`liqsignals.data.datadir.append_frame` (file lock, atomic rewrite);
* only **closed** candles are stored: a candle whose close is after the venue's clock
  (``fetch_time``) is left for the next round, so a reader never sees a candle that changes;
* an error of one venue or pair (network, exchange) is logged and retried next round; the
  others go on.

A new file starts ``history`` before the venue's now (default 30 days).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from liqsignals.model import timeframe_to_timedelta

__all__ = ["PollStatus", "PollVenue", "poll_candles", "poll_round", "run_poller"]

logger = logging.getLogger(__name__)

#: how far back a new file starts
DEFAULT_HISTORY = pd.Timedelta(days=30)
_COLUMNS = ["date", "open", "high", "low", "close", "volume"]


@dataclass(frozen=True)
class PollVenue:
    """One venue to poll: ``name`` (the datadir's exchange name, e.g. ``bybit``), the ccxt id
    (``exchange``, default ``name``), its datadir, pairs, and a freqtrade-style config whose
    ``exchange.ccxt_config`` is applied (e.g. another URL)."""

    name: str
    datadir: Path
    pairs: tuple[str, ...]
    exchange: str = ""
    config: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ccxt_id(self) -> str:
        return self.exchange or self.name

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "exchange": self.ccxt_id,
            "datadir": str(self.datadir),
            "pairs": list(self.pairs),
        }


@dataclass
class PollStatus:
    """What the poller has done so far."""

    rounds: int = 0
    #: (venue, pair, timeframe) -> newest stored candle
    last: dict[tuple[str, str, str], pd.Timestamp | None] = field(default_factory=dict)
    #: (venue, pair, timeframe) -> candles added since the start
    added: dict[tuple[str, str, str], int] = field(default_factory=dict)
    #: problems of the last round
    errors: dict[tuple[str, str, str], str] = field(default_factory=dict)

    def line(self) -> str:
        parts = [f"round {self.rounds}"]
        for key, last in sorted(self.last.items()):
            stamp = "-" if last is None else pd.Timestamp(last).strftime("%m-%d %H:%M")
            parts.append(f"{' '.join(key)} {stamp} (+{self.added.get(key, 0)})")
        if self.errors:
            parts.append(f"{len(self.errors)} failing")
        return " | ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rounds": self.rounds,
            "last": {
                " ".join(k): None if v is None else pd.Timestamp(v).isoformat()
                for k, v in self.last.items()
            },
            "added": {" ".join(k): v for k, v in self.added.items()},
            "errors": {" ".join(k): v for k, v in self.errors.items()},
        }


def venue_now(exchange: Any) -> pd.Timestamp:
    """The venue's clock (``fetch_time``), else the local one."""
    try:
        return pd.Timestamp(int(exchange.fetch_time()), unit="ms", tz="UTC")
    except Exception as exc:
        logger.debug("%s: fetch_time failed (%s); using the local clock", exchange.id, exc)
        return pd.Timestamp.now(tz="UTC")


def poll_candles(
    exchange: Any,
    pair: str,
    timeframe: str,
    datadir: str | Path,
    *,
    now: pd.Timestamp | None = None,
    history: pd.Timedelta = DEFAULT_HISTORY,
    limit: int = 500,
) -> tuple[int, pd.Timestamp | None]:
    """Fetch ``pair``'s closed ``timeframe`` candles missing from its file in ``datadir``
    (gaps and everything after the last stored candle; a new file starts ``history`` before
    ``now``). Returns (candles added, newest stored candle)."""
    from liqsignals.data.datadir import append_frame, data_path, read_frame
    from liqsignals.data.download import missing_spans

    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    period = timeframe_to_timedelta(timeframe)
    clock = venue_now(exchange) if now is None else now
    last_open = (clock - period).floor(period)  # the newest candle that has closed
    path = data_path(datadir, pair, timeframe, "futures")
    stored = read_frame(path)["date"] if path.exists() else None
    start = stored.min() if stored is not None and len(stored) else last_open - history
    added = 0
    for lo, hi in missing_spans(stored, start, last_open, timeframe, "futures"):
        cursor = lo
        while cursor <= hi:
            rows = exchange.fetch_ohlcv(
                pair, timeframe, since=int(cursor.value // 10**6), limit=limit
            )
            frame = pd.DataFrame(rows, columns=_COLUMNS) if rows else pd.DataFrame(columns=_COLUMNS)
            frame["date"] = pd.to_datetime(frame["date"].astype("int64"), unit="ms", utc=True)
            frame = frame.loc[(frame["date"] >= cursor) & (frame["date"] <= min(hi, last_open))]
            if frame.empty:
                break  # the venue has nothing more in this span (yet)
            frame = frame.astype({c: "float64" for c in _COLUMNS[1:]})
            _, n = append_frame(frame.reset_index(drop=True), path)
            added += n
            cursor = frame["date"].max() + period
    dates = read_frame(path)["date"] if path.exists() else None
    return added, (dates.max() if dates is not None and len(dates) else None)


def poll_round(
    venues: Sequence[tuple[PollVenue, Any]],
    timeframes: Sequence[str],
    status: PollStatus,
    *,
    stopping: Callable[[], bool] = lambda: False,
    history: pd.Timedelta = DEFAULT_HISTORY,
) -> None:
    """One round over every (venue, exchange object) pair, pair and timeframe."""
    import ccxt

    for venue, exchange in venues:
        now = venue_now(exchange)
        for pair in venue.pairs:
            for tf in timeframes:
                key = (venue.name, pair, tf)
                if stopping():
                    return
                try:
                    n, last = poll_candles(
                        exchange, pair, tf, venue.datadir, now=now, history=history
                    )
                except (ccxt.BaseError, OSError, ValueError) as exc:  # retried next round
                    status.errors[key] = str(exc)
                    logger.warning("poll %s %s %s: %s; retrying next round", *key, exc)
                    continue
                status.errors.pop(key, None)
                status.last[key] = last
                status.added[key] = status.added.get(key, 0) + n
    status.rounds += 1


def run_poller(
    venues: Sequence[PollVenue],
    *,
    timeframes: Sequence[str] = ("15m",),
    interval: float = 30.0,
    rounds: int | None = None,
    stop: threading.Event | None = None,
    status: Callable[[PollStatus], None] | None = None,
    history: pd.Timedelta = DEFAULT_HISTORY,
) -> PollStatus:
    """Keep every venue's candles current until ``stop`` is set (or ``rounds`` rounds ran);
    see the module docstring. Returns the final :class:`PollStatus`."""
    from liqsignals.data.download import make_exchange

    if not venues:
        raise ValueError("no venue to poll")
    if not interval > 0:
        raise ValueError(f"interval must be positive, got {interval!r}")
    names = [v.name for v in venues]
    if len(set(names)) != len(names):
        raise ValueError(f"venue names must be distinct, got {names}")
    for tf in timeframes:
        timeframe_to_timedelta(tf)  # a clear error for a bad timeframe
    stop = stop or threading.Event()
    show = status or (lambda s: print(f"poll: {s.line()}", file=sys.stderr, flush=True))
    clients = [(v, make_exchange(v.ccxt_id, v.config)) for v in venues]
    state = PollStatus()
    while not stop.is_set():
        began = time.monotonic()
        poll_round(clients, timeframes, state, stopping=stop.is_set, history=history)
        show(state)
        if rounds is not None and state.rounds >= rounds:
            break
        stop.wait(max(0.0, interval - (time.monotonic() - began)))
    return state
