"""freqtrade glue: ``liq_*`` columns in strategies, cluster-aware stops, sizing, leverage, plots.

Strategies stay thin: they subclass :class:`LiqStrategy` (an ``IStrategy``) and call
:meth:`LiqStrategy.liq_populate` in ``populate_indicators``. The base class

* computes the ``liq_*`` columns with the model set by class attributes (``liq_window``,
  ``liq_leverage``, ``liq_params``) and the pair's own margin tiers;
* in backtesting / hyperopt computes them over the whole frame at once; in dry-run / live keeps one
  :class:`~liqsignals.features.FeatureStream` per pair and feeds it only the new candles, falling
  back to a full rebuild when the history changed (restart, gap, replaced candles);
* attaches open interest (freqtrade's ``open_interest`` candle type) and funding rate when the data
  exists, and runs on candles alone when it does not;
* offers a cluster-aware ``custom_stoploss`` building block (stop beyond the nearest adverse
  cluster plus an ATR buffer), a ``custom_stake_amount`` that reduces size near high-intensity
  zones, ``leverage()`` with a cap, and a ``plot_config`` with magnet lines, zone bands and
  liquidation bars.

Only strategies import this module (``import liqsignals`` does not), so it imports freqtrade.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from freqtrade.strategy import IStrategy

from liqsignals.columns import FEATURE_COLUMNS
from liqsignals.features import (
    DEFAULT_ATR_PERIOD,
    DEFAULT_DRIFT_LOOKBACK,
    DEFAULT_INTENSITY_LOOKBACK,
    FeatureStream,
    liquidation_features,
    timeframe_to_timedelta,
)
from liqsignals.model import LiquidationModel, load_margin_tiers, parse_duration

__all__ = [
    "LiqStrategy",
    "LiqStreamStats",
    "column_arrays",
    "liq_plot_config",
    "set_signals",
    "stake_factor",
    "startup_candles",
    "stop_beyond",
]

logger = logging.getLogger(__name__)


def startup_candles(
    window: str,
    timeframe: str,
    *,
    intensity_lookback: int = DEFAULT_INTENSITY_LOOKBACK,
    margin: int = 10,
) -> int:
    """Candles a strategy needs before its first valid ``liq_*`` value.

    One model window (the engine's warm-up and memory) plus the longest derived lookback (the
    intensity percentile) plus a small margin. With this many startup candles freqtrade's
    ``recursive-analysis`` finds no difference, because the engine forgets everything older than
    its window.

    >>> startup_candles("1w", "15m", intensity_lookback=500)
    1182
    """
    per_window = parse_duration(window, "window") / timeframe_to_timedelta(timeframe)
    return int(math.ceil(per_window)) + int(intensity_lookback) + int(margin)


def stop_beyond(level: float, atr: float, side: str, buffer_atr: float) -> float:
    """A stop price beyond ``level`` by ``buffer_atr`` ATRs: below it for a long, above for a
    short. NaN in, NaN out (the caller keeps its current stop)."""
    if side == "long":
        return level - buffer_atr * atr
    if side == "short":
        return level + buffer_atr * atr
    raise ValueError(f"side must be 'long' or 'short', got {side!r}")


def stake_factor(
    intensity_bucket: float,
    distance_atr: float,
    *,
    near_atr: float = 3.0,
    factors: dict[int, float] | None = None,
) -> float:
    """Size multiplier near liquidation zones: the usual advice of traders' guides is to trade
    smaller when a high-intensity cluster sits close to price (violent moves through it).

    ``factors`` maps intensity bucket (0 low .. 3 extreme) to a multiplier applied when the nearest
    cluster is within ``near_atr`` ATRs; far or unknown clusters give 1.0.

    >>> stake_factor(3, 1.5)
    0.5
    >>> stake_factor(3, 8.0)
    1.0
    """
    factors = {2: 0.75, 3: 0.5} if factors is None else factors
    if not (math.isfinite(intensity_bucket) and math.isfinite(distance_atr)):
        return 1.0
    if abs(distance_atr) > near_atr:
        return 1.0
    return float(factors.get(int(intensity_bucket), 1.0))


def column_arrays(dataframe: pd.DataFrame, *names: str) -> SimpleNamespace:
    """The named columns as float numpy arrays, as attributes: ``col = column_arrays(df, "rsi",
    "volume")`` then ``col.rsi <= 30``. numpy expressions on these cost microseconds where the
    same Series expressions cost tens of microseconds per operator, paid by a live bot on every
    candle. A missing column raises ``KeyError`` naming it."""
    missing = [n for n in names if n not in dataframe.columns]
    if missing:
        raise KeyError(f"dataframe has no column(s) {missing}")
    return SimpleNamespace(**{n: dataframe[n].to_numpy(dtype=np.float64) for n in names})


def set_signals(
    dataframe: pd.DataFrame,
    long_cond: pd.Series | np.ndarray,
    short_cond: pd.Series | np.ndarray,
    long_tag: str,
    short_tag: str,
) -> None:
    """Write freqtrade's ``enter_long`` / ``enter_short`` / ``enter_tag`` columns from boolean
    conditions (Series or arrays; NaN counts as false), column by column (with pandas 3 a
    multi-column ``.loc[mask, [a, b]] = (1, tag)`` costs milliseconds per call, paid on every
    candle by a live bot). A candle meeting both conditions is tagged long, as freqtrade would
    enter it long."""
    longs = _bool_array(long_cond, len(dataframe))
    shorts = _bool_array(short_cond, len(dataframe))
    dataframe["enter_long"] = longs.astype(np.int64)
    dataframe["enter_short"] = shorts.astype(np.int64)
    tag = np.full(len(dataframe), None, dtype=object)
    tag[shorts] = short_tag
    tag[longs] = long_tag
    dataframe["enter_tag"] = pd.Series(tag, index=dataframe.index, dtype=object)


def _bool_array(cond: pd.Series | np.ndarray, length: int) -> np.ndarray:
    if isinstance(cond, pd.Series):
        out = cond.fillna(False).to_numpy(dtype=bool)
    else:
        arr = np.asarray(cond)
        out = arr.astype(bool) if arr.dtype == bool else np.nan_to_num(arr, nan=0.0) != 0
    if out.shape != (length,):
        raise ValueError(f"a signal condition has shape {out.shape}, the frame {length} rows")
    return out


def liq_plot_config(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """freqtrade ``plot_config`` showing magnet lines, the nearest cluster zones as bands and the
    estimated liquidations as bars (``freqtrade plot-dataframe``)."""
    config: dict[str, Any] = {
        "main_plot": {
            "liq_magnet_price": {"color": "gold", "type": "scatter"},
            "liq_long_cluster_high": {
                "color": "rgba(0,200,83,0.6)",
                "fill_to": "liq_long_cluster_low",
                "fill_label": "long liquidation zone",
                "fill_color": "rgba(0,200,83,0.15)",
            },
            "liq_long_cluster_low": {"color": "rgba(0,200,83,0.6)"},
            "liq_short_cluster_low": {
                "color": "rgba(255,82,82,0.6)",
                "fill_to": "liq_short_cluster_high",
                "fill_label": "short liquidation zone",
                "fill_color": "rgba(255,82,82,0.15)",
            },
            "liq_short_cluster_high": {"color": "rgba(255,82,82,0.6)"},
        },
        "subplots": {
            "Estimated liquidations": {
                "liq_long_liquidated": {"type": "bar", "color": "green"},
                "liq_short_liquidated": {"type": "bar", "color": "red"},
            },
            "Imbalance": {"liq_imbalance": {"color": "blue"}},
        },
    }
    if extra:
        for key in ("main_plot", "subplots"):
            config[key].update(extra.get(key, {}))
    return config


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
class _PairCache:
    stream: FeatureStream
    features: np.ndarray  # feature rows of the inputs last seen, row for row
    names: list[str]  # feature column names
    dates: np.ndarray  # int64 ns dates of the inputs last seen
    values: np.ndarray  # their engine input values, to detect rewritten history
    columns: tuple[str, ...]  # names of those values


# the engine's input columns, in the order the live path reads them
_ENGINE_INPUTS = (
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


@functools.cache
def _feature_index() -> pd.Index:
    return pd.Index(list(FEATURE_COLUMNS), dtype=object)


@functools.cache
def _tag_index(tags: tuple[str, ...]) -> pd.Index:
    return pd.Index(list(tags), dtype=object)


def _column_index(names: list[str]) -> pd.Index:
    """The column labels of the ``liq_*`` block, built once (pandas takes ~0.1 ms to build an
    index of ~40 strings, paid on every candle otherwise). Plain ``object`` labels: with them
    the joined frame's column lookups cost about half of what pandas' default ``str`` labels
    cost, on every column a strategy and freqtrade read or write afterwards."""
    if tuple(names) == FEATURE_COLUMNS:
        return _feature_index()
    return pd.Index(names, dtype=object)


_NS_PER_UNIT = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}


def _ns_dates(dates: pd.Series) -> np.ndarray:
    """int64 nanoseconds UTC of a date column (freqtrade's are tz-aware; naive means UTC)."""
    if not (isinstance(dates.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(dates)):
        dates = pd.to_datetime(dates, utc=True)
    values = dates.array
    raw = np.asarray(values.asi8, dtype=np.int64)
    if raw.shape[0] and raw.min() == np.iinfo(np.int64).min:  # NaT
        raise ValueError("column 'date' has NaT")
    # the unit's integer scale, without pandas' per-call conversion machinery
    return raw * _NS_PER_UNIT[values.unit]


def _unchanged_prefix(
    cache: _PairCache, stamps: np.ndarray, values: np.ndarray, columns: tuple[str, ...]
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


class LiqStrategy(IStrategy):
    """Base class for liquidation-aware strategies: subclass it instead of ``IStrategy``.

    It is a plain ``IStrategy`` subclass (single inheritance) on purpose: freqtrade's parallel
    hyperopt (``-j 2`` and more) pickles the strategy class for its workers, and a strategy whose
    bases include an extra mixin class fails there with "Could not pickle the task to send it to
    the workers" (excessive recursion).

    Class attributes (override in the strategy):

    ``liq_window`` (model window), ``liq_leverage`` (leverage preset), ``liq_params`` (other
    :class:`~liqsignals.LiquidationModel` fields), ``liq_use_market_data`` (attach open interest and
    funding when the data exists), ``leverage_cap``, ``liq_stake_factors`` and ``liq_near_atr``
    (sizing near clusters), ``liq_stop_buffer_atr`` (cluster stop buffer).
    """

    liq_window: ClassVar[str] = "1w"
    liq_leverage: ClassVar[str] = "all"
    liq_params: ClassVar[dict[str, Any]] = {}
    liq_use_market_data: ClassVar[bool] = True
    liq_intensity_lookback: ClassVar[int] = DEFAULT_INTENSITY_LOOKBACK
    leverage_cap: ClassVar[float] = 3.0
    liq_stake_factors: ClassVar[dict[int, float]] = {2: 0.75, 3: 0.5}
    liq_near_atr: ClassVar[float] = 3.0
    liq_stop_buffer_atr: ClassVar[float] = 1.0

    INTERFACE_VERSION = 3

    # ------------------------------------------------------------------ model and inputs
    def liq_model(self, pair: str) -> LiquidationModel:
        """The model for ``pair``: class settings plus the pair's Binance margin tiers."""
        symbol = pair if load_margin_tiers(pair) else None
        return LiquidationModel(
            window=self.liq_window, leverage=self.liq_leverage, symbol=symbol, **self.liq_params
        )

    def _liq_feature_kwargs(self) -> dict[str, Any]:
        return {
            "atr_period": DEFAULT_ATR_PERIOD,
            "intensity_lookback": int(self.liq_intensity_lookback),
            "drift_lookback": DEFAULT_DRIFT_LOOKBACK,
        }

    def _liq_market_data(self, dataframe: pd.DataFrame, pair: str) -> pd.DataFrame:
        """Candles plus open interest / funding columns where the data provider has them."""
        inputs = dataframe[["date", "open", "high", "low", "close", "volume"]].copy()
        if not self.liq_use_market_data or getattr(self, "dp", None) is None:
            return inputs
        if self._liq_live() and not self._liq_live_market_data():
            # in dry-run/live freqtrade only refreshes declared informative pairs: without the
            # opt-in, a lookup would find nothing and log a warning on every analysis
            return inputs
        oi = self._liq_informative(pair, self.timeframe, "open_interest")
        if oi is not None:
            cols = [c for c in ("open_interest_amount", "open_interest_value") if c in oi.columns]
            oi = oi[["date", *cols]].dropna(how="all", subset=cols)
            if len(oi):
                merged = inputs[["date"]].merge(oi, on="date", how="left")
                if (
                    "open_interest_amount" in merged
                    and merged["open_interest_amount"].notna().any()
                ):
                    inputs["open_interest"] = merged["open_interest_amount"].to_numpy()
                elif "open_interest_value" in merged:
                    inputs["open_interest_value"] = merged["open_interest_value"].to_numpy()
        fr = self._liq_informative(pair, "1h", "funding_rate")
        if fr is not None:
            col = "funding_rate" if "funding_rate" in fr.columns else "open"
            fr = fr[["date", col]].rename(columns={col: "funding_rate"}).dropna()
            fr = fr.sort_values("date")
            if len(fr):
                # a funding event is known from its timestamp on: latest event at or before the
                # candle's open (never a later one)
                merged = pd.merge_asof(
                    inputs[["date"]].sort_values("date"), fr, on="date", direction="backward"
                )
                inputs["funding_rate"] = merged["funding_rate"].to_numpy()
        return inputs

    def informative_pairs(self) -> list[tuple[str, str, str]]:
        """In dry-run/live, ask freqtrade to refresh open interest for the whitelist when the
        config says so (``"liqsignals": {"live_open_interest": true}``). Off by default: an
        exchange (or replay datadir) without open-interest history would log a warning every
        loop. Without it, dry-run/live use candles alone (open interest and the funding filter
        only apply in backtests that have the files); backtests read the files without this."""
        dp = getattr(self, "dp", None)
        if not (self.liq_use_market_data and self._liq_live_market_data() and dp):
            return []
        return [(pair, self.timeframe, "open_interest") for pair in dp.current_whitelist()]

    def _liq_live_market_data(self) -> bool:
        settings = getattr(self, "config", {}).get("liqsignals", {}) or {}
        return bool(settings.get("live_open_interest"))

    def _liq_informative(self, pair: str, timeframe: str, candle_type: str) -> pd.DataFrame | None:
        try:
            df = self.dp.get_pair_dataframe(pair, timeframe, candle_type=candle_type)
        except Exception as exc:  # e.g. an exchange without this candle type
            warned: set[tuple[str, str]] = self.__dict__.setdefault("_liq_warned", set())
            if (pair, candle_type) not in warned:
                warned.add((pair, candle_type))
                logger.warning(
                    "liqsignals: no %s data for %s (%s); using candles alone",
                    candle_type,
                    pair,
                    exc,
                )
            return None
        if df is None or len(df) == 0:
            return None
        return df

    def _liq_live(self) -> bool:
        runmode = str(getattr(self, "config", {}).get("runmode", ""))
        return runmode in ("live", "dry_run", "RunMode.LIVE", "RunMode.DRY_RUN")

    # ------------------------------------------------------------------ the columns
    def liq_populate(self, dataframe: pd.DataFrame, metadata: dict[str, Any]) -> pd.DataFrame:
        """Add every ``liq_*`` column (and ``funding_rate`` when known) to ``dataframe``."""
        pair = metadata["pair"]
        if self._liq_live():
            if self._liq_uses_market_data():
                inputs = self._liq_market_data(dataframe, pair)
                funding = inputs.pop("funding_rate") if "funding_rate" in inputs else None
            else:
                inputs, funding = dataframe, None  # candles alone: no copy needed
            names, values = self._liq_incremental(pair, inputs, candles_only=inputs is dataframe)
        else:
            inputs = self._liq_market_data(dataframe, pair)
            funding = inputs.pop("funding_rate") if "funding_rate" in inputs else None
            feats = liquidation_features(inputs, self.liq_model(pair), **self._liq_feature_kwargs())
            names, values = list(feats.columns), feats.to_numpy(dtype=np.float64)
        # one block, one concat: inserting ~40 columns one by one costs pandas a copy of its
        # column index each time, more than the engine update itself in a live bot
        block = pd.DataFrame(
            values, index=dataframe.index, columns=_column_index(names), copy=False
        )
        existing = set(dataframe.columns)
        present = [c for c in names if c in existing]
        parts = [dataframe.drop(columns=present) if present else dataframe, block]
        # freqtrade writes "" to both tag columns before populate_entry_trend /
        # populate_exit_trend; into an existing object column that costs a third of what
        # creating the column costs, on every candle of a live bot
        tags = [c for c in ("enter_tag", "exit_tag") if c not in existing]
        if tags:
            empty = np.full((len(dataframe), len(tags)), None, dtype=object)
            parts.append(
                pd.DataFrame(empty, index=dataframe.index, columns=_tag_index(tuple(tags)))
            )
        dataframe = pd.concat(parts, axis=1)
        if dataframe.columns.dtype != object:
            # pandas 3 labels columns with its Arrow-backed "str" dtype; every later lookup or
            # insert by name (the strategy's and freqtrade's) costs about twice as much as with
            # plain object labels
            dataframe.columns = dataframe.columns.astype(object)
        if funding is not None:
            dataframe["funding_rate"] = funding.to_numpy()
        return dataframe

    def _liq_uses_market_data(self) -> bool:
        """Whether a live bot looks up open interest / funding (see :meth:`informative_pairs`)."""
        return bool(
            self.liq_use_market_data
            and getattr(self, "dp", None) is not None
            and self._liq_live_market_data()
        )

    def _liq_incremental(
        self, pair: str, inputs: pd.DataFrame, *, candles_only: bool = False
    ) -> tuple[list[str], np.ndarray]:
        caches: dict[str, _PairCache] = self.__dict__.setdefault("_liq_caches", {})
        stats = self.__dict__.setdefault("_liq_stats", {}).setdefault(pair, LiqStreamStats())
        cache = caches.get(pair)
        stamps = _ns_dates(inputs["date"])
        # the strategy's own frame may hold columns of the same names: read the candles alone,
        # as the backtest does
        available = _ENGINE_INPUTS[:5] if candles_only else _ENGINE_INPUTS
        columns = tuple(c for c in available if c in inputs.columns)
        values = np.empty((len(inputs), len(columns)))
        for j, c in enumerate(columns):
            values[:, j] = inputs[c].to_numpy(dtype=np.float64)
        start = 0
        if cache is not None:
            start = _unchanged_prefix(cache, stamps, values, columns)
            if start < 0:
                logger.info("liqsignals: history of %s changed, rebuilding its engine", pair)
                cache = None
        if cache is None:
            caches.pop(pair, None)
            stream = FeatureStream(self.liq_model(pair), **self._liq_feature_kwargs())
            feats = stream.update_arrays(stamps, {c: values[:, j] for j, c in enumerate(columns)})
            cache = _PairCache(stream, feats, stream.columns, stamps, values, columns)
            caches[pair] = cache
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
                    caches.pop(pair, None)
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
        # the caller's frame gets a copy: the cache must not change when the frame does
        return cache.names, cache.features.copy()

    def liq_stream_stats(self, pair: str) -> LiqStreamStats | None:
        """Counters of the dry-run / live engine of ``pair`` (``None`` before its first call)."""
        return self.__dict__.get("_liq_stats", {}).get(pair)

    # ------------------------------------------------------------------ freqtrade callbacks
    def leverage(
        self,
        pair: str,
        current_time: Any,
        current_rate: float,
        proposed_leverage: float,
        max_leverage: float,
        entry_tag: str | None,
        side: str,
        **kwargs: Any,
    ) -> float:
        """The configured cap, never above what the exchange allows for the pair."""
        return float(min(self.leverage_cap, max_leverage))

    def custom_stake_amount(
        self,
        pair: str,
        current_time: Any,
        current_rate: float,
        proposed_stake: float,
        min_stake: float | None,
        max_stake: float,
        leverage: float,
        entry_tag: str | None,
        side: str,
        **kwargs: Any,
    ) -> float:
        """Reduce the stake when a high-intensity cluster is close on the adverse side."""
        row = self.liq_last_row(pair)
        if row is None:
            return proposed_stake
        adverse = "long" if side == "long" else "short"
        factor = stake_factor(
            float(row.get("liq_intensity_bucket", np.nan)),
            float(row.get(f"liq_{adverse}_cluster_dist_atr", np.nan)),
            near_atr=self.liq_near_atr,
            factors=dict(self.liq_stake_factors),
        )
        stake = proposed_stake * factor
        if min_stake is not None and stake < min_stake:
            stake = min_stake
        return float(min(stake, max_stake))

    def _liq_analyzed(self, pair: str) -> pd.DataFrame | None:
        dp = getattr(self, "dp", None)
        if dp is None:
            return None
        df, _ = dp.get_analyzed_dataframe(pair, self.timeframe)
        if df is None or len(df) == 0:
            return None
        return df

    def liq_last_row(self, pair: str) -> pd.Series | None:
        """The latest analysed candle of ``pair`` (causal in backtests: freqtrade trims it)."""
        df = self._liq_analyzed(pair)
        return None if df is None else df.iloc[-1]

    def liq_signal_row(self, pair: str, trade: Any) -> pd.Series | None:
        """The candle whose signal opened ``trade`` (the last candle closed before the entry)."""
        df = self._liq_analyzed(pair)
        if df is None:
            return None
        signal_time = pd.Timestamp(trade.open_date_utc) - timeframe_to_timedelta(self.timeframe)
        rows = df[df["date"] <= signal_time]
        return None if len(rows) == 0 else rows.iloc[-1]

    def liq_cluster_stop(
        self, pair: str, trade: Any, current_rate: float, *, buffer_atr: float | None = None
    ) -> float | None:
        """Cluster-aware stop as a ``custom_stoploss`` return value: beyond the nearest adverse
        cluster (long liquidations below a long, short liquidations above a short) plus an ATR
        buffer; ``None`` (keep the current stop) when no cluster is known. freqtrade only ever
        tightens a stop, so this never loosens it."""
        from freqtrade.strategy import stoploss_from_absolute

        row = self.liq_last_row(pair)
        if row is None:
            return None
        side = "short" if trade.is_short else "long"
        edge = (
            row.get("liq_long_cluster_low") if side == "long" else row.get("liq_short_cluster_high")
        )
        stop = stop_beyond(float(edge), float(row.get("liq_atr", np.nan)), side,
                           self.liq_stop_buffer_atr if buffer_atr is None else buffer_atr)  # fmt: skip
        if not math.isfinite(stop) or stop <= 0:
            return None
        return stoploss_from_absolute(
            stop, current_rate, is_short=trade.is_short, leverage=trade.leverage
        )
