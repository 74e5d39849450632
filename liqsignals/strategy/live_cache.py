"""The dry-run / live path: one :class:`~liqsignals.features.FeatureStream` per pair, fed only
the candles it has not seen.

A running bot hands the strategy its whole kline cache (~1,700 candles) on every new candle.
:class:`LiveFeatureCache` compares that frame with the one it saw last: when the frame continues
the same history (candles appended, old ones dropped at the front), only the new candles go to
the pair's stream; any other change (restart, gap, a candle replaced, an input column gained or
lost) rebuilds the stream from the whole frame.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from liqsignals.features import FeatureStream

__all__ = [
    "ENGINE_INPUTS",
    "LiqStreamStats",
    "LiveFeatureCache",
    "PairCache",
    "ns_dates",
    "unchanged_prefix",
]

logger = logging.getLogger(__name__)

#: the engine's input columns, in the order the live path reads them
ENGINE_INPUTS = (
    "open",
    "high",
    "low",
    "close",
    "volume",
    "open_interest",
    "open_interest_value",
    "taker_buy_volume",
    "long_short_ratio",
)


@dataclass
class LiqStreamStats:
    """How the strategy computed one pair's ``liq_*`` columns in dry-run / live.

    ``rebuilds`` counts full computations (the first frame, and every time the history changed:
    restart, gap, replaced candles), ``updates`` the calls that fed new candles to the existing
    engine, ``unchanged`` the calls with no new candle. ``candles_fed`` is the total number of
    candles given to the engine, ``last_fed`` the number in the latest call.
    """

    rebuilds: int = 0
    updates: int = 0
    unchanged: int = 0
    candles_fed: int = 0
    last_fed: int = 0
    last_mode: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class PairCache:
    """One pair's stream and the frame it last saw."""

    stream: FeatureStream
    features: np.ndarray  # feature rows of the inputs last seen, row for row
    names: list[str]  # feature column names
    dates: np.ndarray  # int64 ns dates of the inputs last seen
    values: np.ndarray  # their engine input values, to detect rewritten history
    columns: tuple[str, ...]  # names of those values


_NS_PER_UNIT = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}


def ns_dates(dates: pd.Series) -> np.ndarray:
    """int64 nanoseconds UTC of a date column (freqtrade's are tz-aware; naive means UTC).
    A ``NaT`` raises ``ValueError`` naming the column."""
    if not (isinstance(dates.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(dates)):
        dates = pd.to_datetime(dates, utc=True)
    values = dates.array
    raw = np.asarray(values.asi8, dtype=np.int64)
    if raw.shape[0] and raw.min() == np.iinfo(np.int64).min:  # NaT
        raise ValueError("column 'date' has NaT")
    # the unit's integer scale, without pandas' per-call conversion machinery
    return raw * _NS_PER_UNIT[values.unit]


def unchanged_prefix(
    cache: PairCache, stamps: np.ndarray, values: np.ndarray, columns: tuple[str, ...]
) -> int:
    """Index of the first candle of the new frame the engine has not seen, or -1 when the frame
    does not continue the history the engine processed (a candle changed, went missing or was
    added before the newest one, the inputs gained or lost a column, or the frame jumped)."""
    old = cache.dates
    if columns != cache.columns or not len(old) or not len(stamps):
        return -1
    if stamps[0] < old[0]:
        return -1  # older candles than the engine started with: it cannot take them in
    first = int(np.searchsorted(old, stamps[0]))
    overlap = len(old) - first
    if overlap <= 0 or overlap > len(stamps):
        return -1  # no common candle, or the frame ends before the last processed candle
    if not np.array_equal(stamps[:overlap], old[first:]):
        return -1
    if not np.array_equal(values[:overlap], cache.values[first:], equal_nan=True):
        return -1
    return overlap


class LiveFeatureCache:
    """Per-pair incremental ``liq_*`` features for a running bot.

    ``features(pair, inputs, build)`` returns the feature names and a rows x names array for the
    frame ``inputs`` (``date`` plus engine input columns); ``build()`` makes a fresh stream for the
    pair when one is needed. Counters per pair in :meth:`stats`.
    """

    def __init__(self) -> None:
        self.pairs: dict[str, PairCache] = {}
        self.counters: dict[str, LiqStreamStats] = {}

    def stats(self, pair: str) -> LiqStreamStats | None:
        """Counters of ``pair`` (``None`` before its first call)."""
        return self.counters.get(pair)

    def features(
        self,
        pair: str,
        inputs: pd.DataFrame,
        build: Callable[[], FeatureStream],
        *,
        candles_only: bool = False,
    ) -> tuple[list[str], np.ndarray]:
        """Feature names and values of ``inputs`` for ``pair``. ``candles_only`` reads the candle
        columns alone (a strategy frame may hold columns named like other engine inputs). An
        invalid new candle raises (the engine's ``ValueError``) and drops the pair's stream, so
        the next call rebuilds."""
        stats = self.counters.setdefault(pair, LiqStreamStats())
        stamps = ns_dates(inputs["date"])
        available = ENGINE_INPUTS[:5] if candles_only else ENGINE_INPUTS
        columns = tuple(c for c in available if c in inputs.columns)
        values = np.empty((len(inputs), len(columns)))
        for j, c in enumerate(columns):
            values[:, j] = inputs[c].to_numpy(dtype=np.float64)
        cache = self.pairs.get(pair)
        start = 0 if cache is None else unchanged_prefix(cache, stamps, values, columns)
        if cache is not None and start < 0:
            logger.info("liqsignals: history of %s changed, rebuilding its engine", pair)
            cache = None
        if cache is None:
            self.pairs.pop(pair, None)
            stream = build()
            feats = stream.update_arrays(stamps, {c: values[:, j] for j, c in enumerate(columns)})
            cache = PairCache(stream, feats, stream.columns, stamps, values, columns)
            self.pairs[pair] = cache
            stats.rebuilds += 1
            stats.last_mode, stats.last_fed = "rebuild", len(inputs)
            logger.info("liqsignals: %s engine built from %d candles", pair, len(inputs))
        else:
            # rows of the new frame the engine has seen: the last ``start`` rows it kept
            kept = cache.features[len(cache.features) - start :]
            if start < len(inputs):
                try:
                    added = cache.stream.update_arrays(
                        stamps[start:], {c: values[start:, j] for j, c in enumerate(columns)}
                    )
                except Exception:
                    # an invalid new candle: the next analysis rebuilds from its whole frame
                    self.pairs.pop(pair, None)
                    raise
                cache.features = np.concatenate([kept, added])
                stats.updates += 1
                stats.last_mode, stats.last_fed = "update", len(inputs) - start
                logger.debug("liqsignals: %s engine fed %d new candle(s)", pair, stats.last_fed)
            else:
                cache.features = kept
                stats.unchanged += 1
                stats.last_mode, stats.last_fed = "unchanged", 0
        stats.candles_fed += stats.last_fed
        cache.dates, cache.values = stamps, values
        # the caller gets a copy: the cache must not change when the caller's frame does
        return cache.names, cache.features.copy()
