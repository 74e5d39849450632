"""The replay exchange's view of a freqtrade datadir: markets, candles and metric series.

Files are found and read with :mod:`liqsignals.data.datadir` (freqtrade's layout:
``<datadir>/futures/<PAIR>-<tf>-<kind>.feather``, with series freqtrade does not know under
``futures/liqsignals/``). Everything is loaded lazily, once, into plain numpy arrays.

Candles for an interval that is not stored are built from the coarsest stored timeframe that
divides it (``4h`` from ``1h``, ``1w`` from ``1d`` or ``1h``, ``1M`` from ``1d``/``1h``), with bins
aligned the way Binance aligns them: on the epoch for minutes, hours and days, on Mondays for
weeks, on calendar months for ``1M``.
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

from liqsignals.data.datadir import list_data, load_series

#: every kline interval Binance USDT-M accepts, with its length in ms (``1M``: 0, calendar month)
INTERVALS: dict[str, int] = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
    "1M": 0,
}
#: the ``period`` values of Binance's ``/futures/data/*`` endpoints
PERIODS: tuple[str, ...] = ("5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1d")

_MONDAY_MS = 4 * 86_400_000  # 1970-01-05, a Monday: weekly candles open on Mondays
_METRIC_KINDS = ("open_interest", "long_short_ratio", "taker_volume")


@dataclass(frozen=True)
class MarketSpec:
    """Exchange filters of one symbol, as strings the way Binance writes them."""

    tick_size: str
    step_size: str
    min_qty: str
    max_qty: str
    market_max_qty: str
    min_notional: str
    min_price: str
    max_price: str
    onboard_ms: int | None = None

    @property
    def price_precision(self) -> int:
        return _decimals(self.tick_size)

    @property
    def quantity_precision(self) -> int:
        return _decimals(self.step_size)


#: real Binance USDT-M filters for the pairs the project ships data for
KNOWN_SPECS: dict[str, MarketSpec] = {
    "BTCUSDT": MarketSpec(
        tick_size="0.10",
        step_size="0.001",
        min_qty="0.001",
        max_qty="1000",
        market_max_qty="120",
        min_notional="100",
        min_price="556.80",
        max_price="4529764",
        onboard_ms=1569398400000,
    ),
    "ETHUSDT": MarketSpec(
        tick_size="0.01",
        step_size="0.001",
        min_qty="0.001",
        max_qty="10000",
        market_max_qty="2000",
        min_notional="20",
        min_price="39.86",
        max_price="306177",
        onboard_ms=1569398400000,
    ),
}


def _decimals(text: str) -> int:
    exp = Decimal(text).normalize().as_tuple().exponent
    return max(0, -int(exp))


def guess_spec(price: float) -> MarketSpec:
    """Plausible filters for a symbol Binance's table above does not list, from its price.

    The tick is about five significant digits of the price, the step keeps one lot near a few
    USDT; minimum notional is 5 USDT, Binance's floor for most symbols.
    """
    mag = math.floor(math.log10(price)) if price > 0 else 0
    tick = Decimal(1).scaleb(mag - 5)
    step = Decimal(1).scaleb(-min(3, max(0, mag - 2)))
    return MarketSpec(
        tick_size=format(tick, "f"),
        step_size=format(step, "f"),
        min_qty=format(step, "f"),
        max_qty=format(step * 10**6, "f"),
        market_max_qty=format(step * 10**5, "f"),
        min_notional="5",
        min_price=format(tick, "f"),
        max_price=format(Decimal(1).scaleb(mag + 2), "f"),
    )


@dataclass
class Series:
    """A time series as arrays: ``ts`` (int64 ms, ascending, unique) and float64 columns."""

    ts: np.ndarray
    cols: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ts)

    def take(self, idx: np.ndarray | slice) -> Series:
        return Series(self.ts[idx], {k: v[idx] for k, v in self.cols.items()})

    @classmethod
    def from_frame(cls, df: pd.DataFrame, columns: tuple[str, ...]) -> Series:
        ts = df["date"].dt.as_unit("ms").astype("int64").to_numpy()
        return cls(ts, {c: df[c].to_numpy(dtype="float64") for c in columns})


@dataclass(frozen=True)
class Market:
    """One symbol the replay exchange lists."""

    symbol: str  # exchange id, e.g. BTCUSDT
    pair: str  # freqtrade/ccxt symbol, e.g. BTC/USDT:USDT
    base: str
    quote: str
    settle: str


def interval_ms(interval: str) -> int:
    """Length of a fixed-length Binance interval in ms (``ValueError`` for ``1M`` or unknown)."""
    ms = INTERVALS.get(interval)
    if not ms:
        raise ValueError(f"interval {interval!r} has no fixed length")
    return ms


def bin_open(ts: np.ndarray, interval: str) -> np.ndarray:
    """Open time of the ``interval`` candle containing each timestamp (ms)."""
    if interval == "1M":
        months = ts.astype("datetime64[ms]").astype("datetime64[M]")
        return months.astype("datetime64[ms]").astype("int64")
    step = INTERVALS[interval]
    origin = _MONDAY_MS if interval == "1w" else 0
    return ts - (ts - origin) % step


def bin_close(open_ms: np.ndarray, interval: str) -> np.ndarray:
    """Open time of the candle after each ``interval`` candle (its exclusive end, ms)."""
    if interval == "1M":
        months = open_ms.astype("datetime64[ms]").astype("datetime64[M]") + np.timedelta64(1, "M")
        return months.astype("datetime64[ms]").astype("int64")
    return open_ms + INTERVALS[interval]


def _divides(small: str, big: str) -> bool:
    s = INTERVALS[small]
    if big == "1M":
        return 86_400_000 % s == 0
    b = INTERVALS[big]
    if b % s:
        return False
    # weekly bins start on Mondays, 3-day bins on the epoch: the small bins must line up
    return big != "1w" or (_MONDAY_MS % s == 0)


def aggregate(src: Series, interval: str) -> Series:
    """OHLCV candles of ``interval`` from finer candles (first/max/min/last/sum per bin)."""
    if len(src) == 0:
        return src
    opens = bin_open(src.ts, interval)
    starts = np.flatnonzero(np.r_[True, opens[1:] != opens[:-1]])
    ends = np.r_[starts[1:], len(opens)] - 1
    c = src.cols
    return Series(
        opens[starts],
        {
            "open": c["open"][starts],
            "high": np.maximum.reduceat(c["high"], starts),
            "low": np.minimum.reduceat(c["low"], starts),
            "close": c["close"][ends],
            "volume": np.add.reduceat(c["volume"], starts),
        },
    )


class DataStore:
    """Markets and series found in a freqtrade datadir (``<datadir>/futures/...``).

    Parameters
    ----------
    datadir:
        The exchange folder of a freqtrade datadir (the one holding ``futures/``), e.g.
        ``user_data/data/binance``. A ``futures`` folder itself is accepted too.
    specs:
        Exchange filters per symbol id, overriding :data:`KNOWN_SPECS` and the price-based guess.
    """

    def __init__(
        self,
        datadir: str | os.PathLike[str],
        *,
        specs: dict[str, MarketSpec] | None = None,
    ) -> None:
        root = Path(datadir)
        if root.name == "futures" and not (root / "futures").is_dir():
            root = root.parent
        if not (root / "futures").is_dir():
            raise FileNotFoundError(f"no futures data folder in {root} (expected {root}/futures)")
        self.datadir = root
        self._specs = dict(KNOWN_SPECS)
        self._specs.update(specs or {})
        self._lock = threading.RLock()
        self._cache: dict[tuple[str, str, str], Series] = {}
        self._files: dict[str, dict[str, list[str]]] = {}  # symbol -> kind -> timeframes
        self.markets: dict[str, Market] = {}
        for pair, tf, kind in list_data(root):
            market = _market_of(pair)
            if market is None:
                continue
            self._files.setdefault(market.symbol, {}).setdefault(kind, []).append(tf)
            if kind == "futures":
                self.markets[market.symbol] = market
        for kinds in self._files.values():
            for tfs in kinds.values():
                tfs.sort(key=lambda t: INTERVALS.get(t, 0) or 2_592_000_000)
        if not self.markets:
            raise FileNotFoundError(
                f"no futures candles (*-<tf>-futures.feather) in {root}/futures"
            )

    # ---------------------------------------------------------------- discovery

    def timeframes(self, symbol: str, kind: str = "futures") -> list[str]:
        """Stored timeframes of ``kind`` for ``symbol``, shortest first."""
        return [t for t in self._files.get(symbol, {}).get(kind, []) if t in INTERVALS]

    def has(self, symbol: str, kind: str) -> bool:
        return bool(self._files.get(symbol, {}).get(kind))

    def spec(self, symbol: str) -> MarketSpec:
        """Exchange filters of ``symbol``."""
        if symbol in self._specs:
            return self._specs[symbol]
        base = self.stored(symbol, "futures", self.timeframes(symbol)[-1])
        closes = base.cols["close"][-500:]
        price = float(np.median(closes[closes > 0])) if np.any(closes > 0) else 1.0
        spec = guess_spec(price)
        self._specs[symbol] = spec
        return spec

    def first_ms(self, symbol: str) -> int:
        """Open time of the first stored futures candle of ``symbol``."""
        return int(min(self.stored(symbol, "futures", tf).ts[0] for tf in self.timeframes(symbol)))

    def last_close_ms(self) -> int:
        """Close time of the newest stored futures candle of any symbol (end of the data)."""
        end = 0
        for sym in self.markets:
            for tf in self.timeframes(sym):
                s = self.stored(sym, "futures", tf)
                if len(s):
                    end = max(end, int(s.ts[-1]) + INTERVALS[tf])
        return end

    # ---------------------------------------------------------------- loading

    def stored(self, symbol: str, kind: str, timeframe: str) -> Series:
        """A stored file as a :class:`Series` (cached)."""
        key = (symbol, kind, timeframe)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                return hit
            df = load_series(self.datadir, self.markets_pair(symbol), timeframe, kind)
            cols = tuple(c for c in df.columns if c != "date")
            series = Series.from_frame(df, cols)
            self._cache[key] = series
            return series

    def markets_pair(self, symbol: str) -> str:
        market = self.markets.get(symbol)
        if market is not None:
            return market.pair
        raise KeyError(symbol)

    def candles(self, symbol: str, interval: str, kind: str = "futures") -> Series | None:
        """Closed candles of ``interval`` (stored or aggregated); ``None`` if none can be made."""
        src_tf = self._source_tf(symbol, interval, kind, coarsest=True)
        if src_tf is None:
            return None
        if src_tf == interval:
            return self.stored(symbol, kind, interval)
        key = (symbol, kind, f"agg:{interval}")
        with self._lock:
            hit = self._cache.get(key)
            if hit is None:
                src = self.stored(symbol, kind, src_tf)
                hit = aggregate(src, interval)
                # the last bin may still be incomplete where the data ends: keep only bins whose
                # source candles all exist up to the bin's end
                if len(hit):
                    last_src_close = int(src.ts[-1]) + INTERVALS[src_tf]
                    complete = bin_close(hit.ts, interval) <= last_src_close
                    hit = hit.take(complete)
                self._cache[key] = hit
            return hit

    def source_intervals(self, symbol: str, interval: str, kind: str = "futures") -> list[str]:
        """Stored timeframes that divide ``interval``, finest first."""
        return [t for t in self.timeframes(symbol, kind) if _divides(t, interval)]

    def _source_tf(self, symbol: str, interval: str, kind: str, *, coarsest: bool) -> str | None:
        tfs = [t for t in self.timeframes(symbol, kind) if _divides(t, interval)]
        if not tfs:
            return None
        return tfs[-1] if coarsest else tfs[0]

    def funding(self, symbol: str) -> Series | None:
        """Funding events: ``ts`` = funding time, column ``funding_rate``."""
        tfs = self._files.get(symbol, {}).get("funding_rate", [])
        if not tfs:
            return None
        best = max((self.stored(symbol, "funding_rate", tf) for tf in tfs), key=len)
        return best

    def metric(self, symbol: str, kind: str, period: str) -> tuple[Series, str] | None:
        """A metric series (open interest, long/short ratio, taker volume) for ``period``.

        Returns the series and the timeframe it is stored at: the ``period`` file when it exists,
        else the finest stored timeframe dividing ``period``, sampled at ``period`` boundaries
        (snapshots) or summed per ``period`` (taker volume).
        """
        if kind not in _METRIC_KINDS:
            raise ValueError(f"unknown metric kind {kind!r}")
        tfs = [t for t in self.timeframes(symbol, kind) if _divides(t, period)]
        if not tfs:
            return None
        if period in tfs:
            return self.stored(symbol, kind, period), period
        key = (symbol, kind, f"agg:{period}")
        with self._lock:
            hit = self._cache.get(key)
            if hit is None:
                src_tf = tfs[-1]
                src = self.stored(symbol, kind, src_tf)
                if kind == "taker_volume":
                    hit = _sum_bins(src, period)
                else:
                    hit = src.take(bin_open(src.ts, period) == src.ts)
                self._cache[key] = hit
            return hit, period


def _sum_bins(src: Series, period: str) -> Series:
    if len(src) == 0:
        return src
    opens = bin_open(src.ts, period)
    starts = np.flatnonzero(np.r_[True, opens[1:] != opens[:-1]])
    return Series(opens[starts], {k: np.add.reduceat(v, starts) for k, v in src.cols.items()})


def _market_of(pair: str) -> Market | None:
    """``BTC/USDT:USDT`` -> Market; ``None`` for anything that is not a linear perpetual."""
    base, slash, rest = pair.partition("/")
    quote, colon, settle = rest.partition(":")
    if not (slash and colon and base and quote and settle) or settle != quote:
        return None
    return Market(symbol=f"{base}{quote}", pair=pair, base=base, quote=quote, settle=settle)


__all__ = [
    "INTERVALS",
    "KNOWN_SPECS",
    "PERIODS",
    "DataStore",
    "Market",
    "MarketSpec",
    "Series",
    "aggregate",
    "bin_close",
    "bin_open",
    "guess_spec",
]
