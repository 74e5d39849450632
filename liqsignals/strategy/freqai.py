"""FreqAI glue: ``liq_*`` columns as FreqAI features, and the base of the FreqAI twins.

FreqAI (freqtrade's machine-learning framework) builds a model's inputs from three strategy
hooks and takes every column whose name starts with ``%`` as a feature:

* ``feature_engineering_expand_all(dataframe, period, metadata)``: called for every
  ``indicator_periods_candles`` entry, every ``include_timeframes`` entry and every pair of
  ``include_corr_pairlist``; FreqAI appends the period, pair and timeframe to the names;
* ``feature_engineering_expand_basic(dataframe, metadata)``: the same without the periods;
* ``feature_engineering_standard(dataframe, metadata)``: once, on the base timeframe of the pair
  being traded, not expanded.

The helpers here give each hook its ``liq_*`` features, the ``%-`` prefix convention included:

* :func:`liq_expand_basic`: the scale-free ``liq_*`` columns of the column table
  (:func:`freqai_columns`), for each model window (``windows=("1d", "1w")`` gives
  ``%-liq_1d_imbalance`` and ``%-liq_1w_imbalance``), plus two shares built from the notional
  columns (:data:`SHARE_COLUMNS`);
* :func:`liq_expand_all`: trailing means and sums over ``period`` candles of a few of them
  (:data:`PERIOD_FEATURES`);
* :func:`liq_standard`: the same columns as :func:`liq_expand_basic`, on the base timeframe
  only.

Each hook computes the engine once per (pair, timeframe, frame) and reuses it across periods
(:class:`LiqFeatureCache`). All values are causal: the engine and the readout use candles up to
the row only, the trailing windows end at the row, and FreqAI merges other timeframes with
``merge_informative_pair`` (a candle's value becomes visible when the candle closes).
A value that is NaN for a reason other than warm-up (no cluster on that side, no magnet, no
sweep, ...) is filled with 0 and a presence flag (:data:`PRESENCE_FLAGS`) says whether it was
there: FreqAI drops training rows with a NaN feature and refuses to predict on them, so a gap in
the book must not look like missing data. Warm-up rows stay NaN.

:class:`LiqFreqAIStrategy` is the strategy both shipped FreqAI twins derive from
(``strategies/LiqFreqAIExample.py`` adds the liq features, ``LiqFreqAIPriceOnly`` does not):
price features, the target (:func:`signed_excursion`, the 4h signed excursion), entries on the
prediction, a time exit at the target's horizon and the ATR stop (:func:`atr_stoploss`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from freqtrade.strategy import IStrategy, stoploss_from_absolute

from liqsignals.columns import COLUMNS, nan_reasons
from liqsignals.features import DEFAULT_INTENSITY_LOOKBACK, liquidation_features
from liqsignals.indicators import rsi
from liqsignals.strategy import market_data as md
from liqsignals.strategy import settings, stops

__all__ = [
    "FREQAI_UNITS",
    "PERIOD_FEATURES",
    "PRESENCE_FLAGS",
    "SHARE_COLUMNS",
    "TWIN_COLUMNS",
    "LiqFeatureCache",
    "LiqFreqAIStrategy",
    "atr_stoploss",
    "freqai_columns",
    "liq_expand_all",
    "liq_expand_basic",
    "liq_feature_frame",
    "liq_standard",
    "price_expand_all",
    "price_expand_basic",
    "signed_excursion",
    "true_range_atr",
]

#: units of the column table whose values compare across prices, pairs and time (no price, no
#: notional): these columns become FreqAI features as they are
FREQAI_UNITS: frozenset[str] = frozenset(
    {"%", "[-1, 1]", "ATR", "[0, 1]", "0-3", "0/1", "-1/+1", "1/%"}
)

#: shares built from the notional ("quote") columns: name -> (numerator, denominator) column
#: lists of the table; the value is sum(numerator) / sum(denominator)
SHARE_COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # share of the open long notional in all open notional (which side is crowded)
    "liq_long_share": (("liq_long_total",), ("liq_long_total", "liq_short_total")),
    # notional liquidated in the candle per unit of open notional
    "liq_liquidated_share": (
        ("liq_long_liquidated", "liq_short_liquidated"),
        ("liq_long_total", "liq_short_total"),
    ),
}

#: presence flags: name -> the table column whose finiteness (after warm-up) it reports
PRESENCE_FLAGS: dict[str, str] = {
    "liq_has_long_cluster": "liq_long_cluster_price",
    "liq_has_short_cluster": "liq_short_cluster_price",
    "liq_has_magnet": "liq_magnet_price",
}

#: :func:`liq_expand_all`: name -> (column, "mean" or "sum") over the last ``period`` candles
PERIOD_FEATURES: dict[str, tuple[str, str]] = {
    "liq_imbalance_mean": ("liq_imbalance", "mean"),
    "liq_liquidated_share_sum": ("liq_liquidated_share", "sum"),
    "liq_sweep_long_sum": ("liq_sweep_long", "sum"),
    "liq_sweep_short_sum": ("liq_sweep_short", "sum"),
}

#: the table columns of the shipped FreqAI twins, frozen as registered for the measurement in
#: docs/freqai.md (the :func:`freqai_columns` of that day): new columns of the table do not
#: change the twins' features (``LiqFreqAIStrategy.liq_columns``)
TWIN_COLUMNS: tuple[str, ...] = (
    "liq_magnet_side",
    "liq_magnet_score",
    "liq_gap_above_pct",
    "liq_gap_below_pct",
    "liq_imbalance",
    "liq_long_cluster_dist_pct",
    "liq_short_cluster_dist_pct",
    "liq_long_cluster_dist_atr",
    "liq_short_cluster_dist_atr",
    "liq_magnet_dist_pct",
    "liq_magnet_drift",
    "liq_intensity",
    "liq_intensity_bucket",
    "liq_sweep_long",
    "liq_sweep_long_through",
    "liq_sweep_short",
    "liq_sweep_short_through",
)

_WARM = "liq_long_total"  # NaN exactly during warm-up (column table: nan_when "warmup")


def freqai_columns() -> tuple[str, ...]:
    """The ``liq_*`` columns of :data:`liqsignals.COLUMNS` whose unit is in
    :data:`FREQAI_UNITS`, in table order."""
    return tuple(name for name, col in COLUMNS.items() if col.unit in FREQAI_UNITS)


def _window_prefixes(windows: Sequence[str]) -> dict[str, str]:
    if isinstance(windows, str):
        raise TypeError("windows must be a sequence of window labels such as ('1d', '1w')")
    if len(set(windows)) != len(windows):
        raise ValueError(f"windows must be distinct, got {list(windows)}")
    if not windows:
        raise ValueError("windows must name at least one model window, e.g. ('1w',)")
    if len(windows) == 1:
        return {windows[0]: "liq_"}
    return {w: f"liq_{w}_" for w in windows}


def _retag(name: str, prefix: str) -> str:
    return prefix + name[len("liq_") :]


def _model_frame(feats: pd.DataFrame, prefix: str, columns: Sequence[str]) -> dict[str, Any]:
    """The FreqAI columns of one model window, NaN filled outside warm-up (see module doc)."""

    def col(name: str) -> np.ndarray:
        return feats[_retag(name, prefix)].to_numpy(dtype=np.float64)

    warm = np.isfinite(col(_WARM))
    out: dict[str, Any] = {}
    for name in columns:
        values = col(name)
        if nan_reasons(name) - {"warmup", "warmup_prev"}:
            values = np.where(warm & ~np.isfinite(values), 0.0, values)
        out[_retag(name, prefix)] = values
    for name, (num, den) in SHARE_COLUMNS.items():
        top = np.sum([col(c) for c in num], axis=0)
        bottom = np.sum([col(c) for c in den], axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(bottom > 0, top / np.where(bottom > 0, bottom, 1.0), 0.0)
        out[_retag(name, prefix)] = np.where(warm, share, np.nan)
    for name, source in PRESENCE_FLAGS.items():
        flag = np.isfinite(col(source)).astype(np.float64)
        out[_retag(name, prefix)] = np.where(warm, flag, np.nan)
    return out


class LiqFeatureCache:
    """The last few ``liq_*`` feature frames, keyed by pair, timeframe, windows and candles.

    FreqAI calls ``feature_engineering_expand_all`` once per period on the same candles; the
    engine then runs once. Entries are matched on the candle values themselves (a hash of
    date, OHLCV), so a changed or extended frame is computed afresh.
    """

    def __init__(self, size: int = 8) -> None:
        if size < 1:
            raise ValueError(f"size must be at least 1, got {size}")
        self.size = size
        self.entries: OrderedDict[tuple[Any, ...], pd.DataFrame] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(
        dataframe: pd.DataFrame,
        pair: str,
        tf: str,
        windows: Sequence[str],
        columns: Sequence[str] = (),
    ) -> tuple[Any, ...]:
        cols = [c for c in ("date", "open", "high", "low", "close", "volume") if c in dataframe]
        digest = int(pd.util.hash_pandas_object(dataframe[cols], index=False).sum())
        return (pair, tf, tuple(windows), tuple(columns), len(dataframe), digest)

    def get(self, key: tuple[Any, ...]) -> pd.DataFrame | None:
        frame = self.entries.get(key)
        if frame is None:
            self.misses += 1
            return None
        self.hits += 1
        self.entries.move_to_end(key)
        return frame

    def put(self, key: tuple[Any, ...], frame: pd.DataFrame) -> None:
        self.entries[key] = frame
        self.entries.move_to_end(key)
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)


def _inputs(dataframe: pd.DataFrame, strategy: Any, pair: str, tf: str) -> pd.DataFrame:
    """Engine inputs: the candles, plus open interest where the DataProvider has it."""
    dp = getattr(strategy, "dp", None)
    if dp is None or not getattr(strategy, "liq_use_market_data", True):
        return md.candle_inputs(dataframe)
    warned: set[tuple[str, str]] = getattr(strategy, "liq_freqai_warned", set())
    inputs = md.market_inputs(dataframe, dp, pair, tf, warned)
    inputs.pop("funding_rate")  # not an engine input; not a liq_* feature either
    return inputs


def liq_feature_frame(
    dataframe: pd.DataFrame,
    pair: str,
    tf: str,
    *,
    windows: Sequence[str] = ("1w",),
    strategy: Any = None,
    cache: LiqFeatureCache | None = None,
) -> pd.DataFrame:
    """The FreqAI-ready ``liq_*`` columns (no ``%-`` yet) of a candle frame, index aligned.

    One model per window (``windows``; one window keeps the ``liq_`` prefix, several give
    ``liq_<window>_``) with the pair's margin tiers; ``strategy`` (optional) supplies the
    DataProvider for open interest and the model settings ``liq_leverage``, ``liq_params`` and
    ``liq_intensity_lookback`` when it has them. Columns: the strategy's ``liq_columns`` if it
    has them (the twins: :data:`TWIN_COLUMNS`), else :func:`freqai_columns`; then
    :data:`SHARE_COLUMNS` and :data:`PRESENCE_FLAGS`, per window.
    """
    prefixes = _window_prefixes(windows)
    columns = tuple(getattr(strategy, "liq_columns", None) or freqai_columns())
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown:
        raise ValueError(f"liq_columns not in the column table: {unknown}")
    key = LiqFeatureCache.key(dataframe, pair, tf, list(prefixes), columns)
    if cache is not None and (hit := cache.get(key)) is not None:
        return hit
    leverage = getattr(strategy, "liq_leverage", "all")
    params = getattr(strategy, "liq_params", {})
    config = getattr(strategy, "config", None) or {}
    lookback = getattr(strategy, "liq_intensity_lookback", DEFAULT_INTENSITY_LOOKBACK)
    inputs = _inputs(dataframe, strategy, pair, tf)
    data: dict[str, Any] = {}
    for window, prefix in prefixes.items():
        model = settings.config_model(pair, window, leverage, params, config)
        feats = liquidation_features(inputs, model, **settings.feature_kwargs(lookback))
        feats.columns = [_retag(c, prefix) for c in feats.columns]
        data.update(_model_frame(feats, prefix, columns))
    frame = pd.DataFrame(data, index=dataframe.index)
    if cache is not None:
        cache.put(key, frame)
    return frame


def _strategy_cache(strategy: Any) -> LiqFeatureCache | None:
    cache = getattr(strategy, "liq_freqai_cache", None)
    return cache if isinstance(cache, LiqFeatureCache) else None


def _add(dataframe: pd.DataFrame, features: Mapping[str, Any], tag: str = "") -> pd.DataFrame:
    block = pd.DataFrame(
        {f"%-{name}{tag}": values for name, values in features.items()}, index=dataframe.index
    )
    clash = [c for c in block.columns if c in dataframe.columns]
    if clash:
        raise ValueError(f"feature columns already in the frame: {clash[:5]}")
    return pd.concat([dataframe, block], axis=1)


def liq_expand_basic(
    dataframe: pd.DataFrame,
    metadata: Mapping[str, Any],
    *,
    windows: Sequence[str] = ("1w",),
    strategy: Any = None,
) -> pd.DataFrame:
    """For ``feature_engineering_expand_basic``: ``dataframe`` plus ``%-liq_*`` features of
    ``metadata["pair"]`` at ``metadata["tf"]`` (FreqAI repeats the hook for every timeframe and
    corr pair, and shifts it ``include_shifted_candles`` times)."""
    pair, tf = metadata["pair"], metadata.get("tf", "")
    feats = liq_feature_frame(
        dataframe, pair, tf, windows=windows, strategy=strategy, cache=_strategy_cache(strategy)
    )
    return _add(dataframe, {c: feats[c].to_numpy() for c in feats.columns})


def liq_expand_all(
    dataframe: pd.DataFrame,
    period: int,
    metadata: Mapping[str, Any],
    *,
    windows: Sequence[str] = ("1w",),
    strategy: Any = None,
) -> pd.DataFrame:
    """For ``feature_engineering_expand_all``: ``dataframe`` plus :data:`PERIOD_FEATURES` over
    the last ``period`` candles (``%-liq_imbalance_mean-period``, ...; FreqAI appends the
    period value, the pair and the timeframe to the names)."""
    if int(period) < 1:
        raise ValueError(f"period must be a positive number of candles, got {period!r}")
    pair, tf = metadata["pair"], metadata.get("tf", "")
    feats = liq_feature_frame(
        dataframe, pair, tf, windows=windows, strategy=strategy, cache=_strategy_cache(strategy)
    )
    out: dict[str, Any] = {}
    for prefix in _window_prefixes(windows).values():
        for name, (source, how) in PERIOD_FEATURES.items():
            roll = feats[_retag(source, prefix)].rolling(int(period), min_periods=int(period))
            out[_retag(name, prefix) + "-period"] = (
                roll.mean() if how == "mean" else roll.sum()
            ).to_numpy()
    return _add(dataframe, out)


def liq_standard(
    dataframe: pd.DataFrame,
    metadata: Mapping[str, Any],
    *,
    windows: Sequence[str] = ("1w",),
    strategy: Any = None,
    timeframe: str | None = None,
) -> pd.DataFrame:
    """For ``feature_engineering_standard``: the :func:`liq_expand_basic` columns on the base
    timeframe of the traded pair only (not expanded); names end in ``-std`` so they never clash
    with the expanded ones."""
    tf = timeframe or getattr(strategy, "timeframe", "") or ""
    feats = liq_feature_frame(
        dataframe,
        metadata["pair"],
        tf,
        windows=windows,
        strategy=strategy,
        cache=_strategy_cache(strategy),
    )
    return _add(dataframe, {c: feats[c].to_numpy() for c in feats.columns}, tag="-std")


# --- price features, target and stop: shared by both twins -----------------------------------


def true_range_atr(dataframe: pd.DataFrame, period: int = 14) -> pd.Series:
    """Simple mean of the true range over ``period`` candles (NaN for the first ones)."""
    high, low, close = dataframe["high"], dataframe["low"], dataframe["close"]
    prev = close.shift(1)
    tr = pd.concat([high - low, (high - prev).abs(), (low - prev).abs()], axis=1).max(axis=1)
    return tr.rolling(int(period), min_periods=int(period)).mean()


def price_expand_all(dataframe: pd.DataFrame, period: int) -> pd.DataFrame:
    """Price and volume features over ``period`` candles (both twins)."""
    close, volume = dataframe["close"], dataframe["volume"]
    ret = np.log(close).diff()
    sma = close.rolling(period, min_periods=period).mean()
    vol_mean = volume.rolling(period, min_periods=period).mean()
    feats = {
        "rsi-period": np.asarray(rsi(close, period), dtype=np.float64),
        "roc-period": (close / close.shift(period) - 1.0).to_numpy(),
        "close_sma-period": (close / sma - 1.0).to_numpy(),
        "realized_vol-period": ret.rolling(period, min_periods=period).std().to_numpy(),
        "natr-period": (true_range_atr(dataframe, period) / close).to_numpy(),
        "relative_volume-period": (volume / vol_mean.where(vol_mean > 0)).to_numpy(),
    }
    return _add(dataframe, feats)


def price_expand_basic(dataframe: pd.DataFrame) -> pd.DataFrame:
    """One-candle price features (both twins)."""
    close = dataframe["close"]
    feats = {
        "pct_change": close.pct_change().to_numpy(),
        "range_pct": ((dataframe["high"] - dataframe["low"]) / close).to_numpy(),
        "body_pct": ((close - dataframe["open"]) / close).to_numpy(),
    }
    return _add(dataframe, feats)


def signed_excursion(dataframe: pd.DataFrame, candles: int) -> pd.Series:
    """The target: over the next ``candles`` candles (t+1 .. t+candles), the highest high's rise
    over the close plus the lowest low's fall (negative), as fractions of the close at t.

    Positive when the move up reaches further than the move down. Uses future candles by
    definition (a target, never a feature): NaN for the last ``candles`` rows.
    """
    if int(candles) < 1:
        raise ValueError(f"candles must be positive, got {candles!r}")
    n = int(candles)
    close = dataframe["close"]
    # rolling over t-n+1..t, shifted back by n: the window t+1..t+n
    up = dataframe["high"].rolling(n, min_periods=n).max().shift(-n)
    down = dataframe["low"].rolling(n, min_periods=n).min().shift(-n)
    return (up - close) / close + (down - close) / close


def atr_stoploss(
    row: Mapping[str, Any] | None, trade: Any, current_rate: float, multiple: float
) -> float | None:
    """``custom_stoploss`` value: ``multiple`` ATRs (the ``atr`` column of the signal candle
    ``row``) beyond the trade's open rate; ``None`` (keep the stop) without a row or ATR."""
    if row is None:
        return None
    atr = float(row.get("atr", np.nan))
    if not np.isfinite(atr) or atr <= 0:
        return None
    side = "short" if trade.is_short else "long"
    stop = stops.stop_beyond(float(trade.open_rate), atr, side, multiple)
    if stop <= 0:
        return None
    return float(
        stoploss_from_absolute(stop, current_rate, is_short=trade.is_short, leverage=trade.leverage)
    )


class LiqFreqAIStrategy(IStrategy):
    """Base of the FreqAI twins: a LightGBM regression of the 4h signed excursion.

    Features: price and volume (:func:`price_expand_all`, :func:`price_expand_basic`, the hour
    and weekday) and, when ``liq_windows`` is not empty, the ``liq_*`` features of every model
    window (:func:`liq_expand_all`, :func:`liq_expand_basic`). Everything else is the same for
    both twins: the target (:func:`signed_excursion` over ``label_period_candles``), long when
    the prediction is ``entry_z`` label standard deviations above the training labels' mean and
    short when as far below, exit when it crosses the mean, a time exit at the target's horizon
    (``minimal_roi``) and a stop ``stop_atr`` ATRs beyond the open rate.
    """

    INTERFACE_VERSION = 3
    timeframe = "15m"
    can_short = True
    process_only_new_candles = True
    use_exit_signal = True
    minimal_roi: ClassVar[dict[str, float]] = {"0": 1.0, "240": -1.0}  # out after 4h
    stoploss = -0.5  # the ATR stop below is the real one
    # the same for both twins: the 1-week model's warm-up plus the intensity lookback
    startup_candle_count: int = settings.startup_candles("1w", "15m")
    use_custom_stoploss = True
    order_types: ClassVar[dict[str, Any]] = {
        "entry": "limit",
        "exit": "limit",
        "stoploss": "market",
        "stoploss_on_exchange": False,
    }

    liq_windows: ClassVar[tuple[str, ...]] = ()
    # frozen: the registered measurement's features, whatever columns the table gains later
    liq_columns: ClassVar[tuple[str, ...]] = TWIN_COLUMNS
    liq_leverage: ClassVar[str] = "all"
    liq_params: ClassVar[dict[str, Any]] = {}
    liq_intensity_lookback: ClassVar[int] = DEFAULT_INTENSITY_LOOKBACK
    liq_use_market_data: ClassVar[bool] = True
    entry_z: ClassVar[float] = 0.25
    # a stop noise rarely reaches within the target's horizon: a random walk's range over
    # 16 candles is about sqrt(16) = 4 one-candle ranges
    stop_atr: ClassVar[float] = 4.0
    atr_period: ClassVar[int] = 14
    target: ClassVar[str] = "&-excursion"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.liq_freqai_cache = LiqFeatureCache()
        self.liq_freqai_warned: set[tuple[str, str]] = set()
        self.liq_freqai_signal_atr: dict[tuple[str, datetime], float] = {}
        if self.liq_windows:
            # the longest window's warm-up and the intensity lookback, at the base timeframe
            need = max(
                settings.startup_candles(
                    w, self.timeframe, intensity_lookback=self.liq_intensity_lookback
                )
                for w in self.liq_windows
            )
            self.startup_candle_count = max(int(self.startup_candle_count), need)

    def label_candles(self) -> int:
        return int(self.freqai_info["feature_parameters"]["label_period_candles"])

    # --- FreqAI hooks ------------------------------------------------------------------------
    def feature_engineering_expand_all(
        self, dataframe: pd.DataFrame, period: int, metadata: dict[str, Any], **kwargs: Any
    ) -> pd.DataFrame:
        dataframe = price_expand_all(dataframe, period)
        if self.liq_windows:
            dataframe = liq_expand_all(
                dataframe, period, metadata, windows=self.liq_windows, strategy=self
            )
        return dataframe

    def feature_engineering_expand_basic(
        self, dataframe: pd.DataFrame, metadata: dict[str, Any], **kwargs: Any
    ) -> pd.DataFrame:
        dataframe = price_expand_basic(dataframe)
        if self.liq_windows:
            dataframe = liq_expand_basic(
                dataframe, metadata, windows=self.liq_windows, strategy=self
            )
        return dataframe

    def feature_engineering_standard(
        self, dataframe: pd.DataFrame, metadata: dict[str, Any], **kwargs: Any
    ) -> pd.DataFrame:
        dates = dataframe["date"].dt
        return _add(dataframe, {"day_of_week": dates.dayofweek, "hour_of_day": dates.hour})

    def set_freqai_targets(
        self, dataframe: pd.DataFrame, metadata: dict[str, Any], **kwargs: Any
    ) -> pd.DataFrame:
        dataframe[self.target] = signed_excursion(dataframe, self.label_candles())
        return dataframe

    # --- freqtrade hooks ---------------------------------------------------------------------
    def populate_indicators(self, dataframe: pd.DataFrame, metadata: dict) -> pd.DataFrame:
        dataframe = self.freqai.start(dataframe, metadata, self)
        dataframe["atr"] = true_range_atr(dataframe, self.atr_period)
        return dataframe

    def _scores(self, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        pred = df[self.target].to_numpy(dtype=np.float64)
        mean = df[f"{self.target}_mean"].to_numpy(dtype=np.float64)
        std = df[f"{self.target}_std"].to_numpy(dtype=np.float64)
        ok = (df["do_predict"].to_numpy() == 1) & (df["volume"].to_numpy() > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            z = (pred - mean) / np.where(std > 0, std, np.nan)
        return z, ok

    def populate_entry_trend(self, df: pd.DataFrame, metadata: dict) -> pd.DataFrame:
        z, ok = self._scores(df)
        with np.errstate(invalid="ignore"):
            long_cond, short_cond = ok & (z > self.entry_z), ok & (z < -self.entry_z)
        df["enter_long"] = long_cond.astype(np.int64)
        df["enter_short"] = short_cond.astype(np.int64)
        tags = pd.Series(None, index=df.index, dtype=object)
        tags[long_cond], tags[short_cond] = "pred_up", "pred_down"
        df["enter_tag"] = tags
        return df

    def populate_exit_trend(self, df: pd.DataFrame, metadata: dict) -> pd.DataFrame:
        z, ok = self._scores(df)
        with np.errstate(invalid="ignore"):
            df["exit_long"] = (ok & (z < 0)).astype(np.int64)
            df["exit_short"] = (ok & (z > 0)).astype(np.int64)
        return df

    def custom_stoploss(
        self,
        pair: str,
        trade: Any,
        current_time: datetime,
        current_rate: float,
        current_profit: float,
        after_fill: bool,
        **kwargs: Any,
    ) -> float | None:
        key = (pair, trade.open_date_utc)
        if key not in self.liq_freqai_signal_atr:  # the signal candle's ATR, looked up once
            df = stops.analyzed_frame(getattr(self, "dp", None), pair, self.timeframe)
            row = None if df is None else stops.signal_row(df, trade.open_date_utc, self.timeframe)
            if row is None:
                return None
            self.liq_freqai_signal_atr[key] = float(row.get("atr", np.nan))
        row_atr = {"atr": self.liq_freqai_signal_atr[key]}
        return atr_stoploss(row_atr, trade, current_rate, self.stop_atr)
