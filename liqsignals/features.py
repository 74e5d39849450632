"""Per-candle ``liq_*`` columns: clusters, magnet zones, gaps, sweeps, imbalance.

Each column turns one reading of a liquidation heatmap (as traders' guides describe them) into a
causal number: the value at candle ``t`` uses candles ``<= t`` only. The engine
(:func:`liqsignals.liquidation_levels`) gives the state of the book at each close; this module
derives the rest with finite, backward-looking windows only (no centred windows, no back-fill, no
whole-column normalisation). All columns, with units, are in :mod:`liqsignals.columns`.

Rules
-----
* **Significant cluster**: a run of dense bins (mass >= ``cluster_dense_factor`` x the side's mean
  bin mass within ``cluster_range_pct`` of price) that holds at least ``cluster_min_share`` of the
  side's mass in that range. The nearest one on each side is reported.
* **Magnet**: among significant clusters on both sides, the one with the highest
  ``share / distance_pct ** magnet_distance_power`` (big and close wins).
* **Liquidity gap**: distance to the first bin whose combined mass is at least ``gap_factor`` x the
  mean bin mass within the search range.
* **Intensity**: percentile of the nearest significant cluster's size among the last
  ``intensity_lookback`` candles; buckets 0-3 at the 25/50/75th percentiles (low, medium, high,
  extreme, as in the traders' guides' table).
* **Tracked clusters**: the nearest, second, third cluster and the wall of each side are
  followed from candle to candle (same cluster: overlapping edges, see
  :mod:`liqsignals._tracking`): their age (capped at ``age_cap``), a fresh flag and the drift of
  the same cluster's centre; the magnet's age and drift are those of its cluster.
* **Sweep**: the candle's low reached the centre of the nearest long cluster *of the previous
  candle* (so the cluster existed before the move) and closed back above its upper edge; the
  "through" variant closed below its lower edge. Shorts mirrored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from liqsignals.columns import FEATURE_COLUMNS, rename_prefix
from liqsignals.engine import liquidation_levels
from liqsignals.inputs import prepare_inputs, single_values
from liqsignals.model import LiquidationModel, resolve_model, timeframe_to_timedelta
from liqsignals.readout import LOOKBACK_FIELDS, ReadoutParams, split_readout

__all__ = [
    "FeatureStream",
    "derive_features",
    "liquidation_features",
    "merge_informative",
    "timeframe_to_timedelta",
]

_DEFAULT = ReadoutParams()
DEFAULT_ATR_PERIOD = _DEFAULT.atr_period
DEFAULT_INTENSITY_LOOKBACK = _DEFAULT.intensity_lookback
DEFAULT_DRIFT_LOOKBACK = _DEFAULT.drift_lookback


def _atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int) -> np.ndarray:
    """Simple-mean ATR. Each window is summed on its own (not as a running sum), so the value
    at a candle does not depend on how much history precedes it: bit-identical on any tail."""
    prev = np.concatenate([[np.nan], close[:-1]])
    tr = np.fmax(high - low, np.fmax(np.abs(high - prev), np.abs(low - prev)))
    out = np.full(tr.shape[0], np.nan)
    if tr.shape[0] >= period:
        windows = np.lib.stride_tricks.sliding_window_view(tr, period)
        out[period - 1 :] = windows.sum(axis=1) / period
    return out


def _intensity(near: np.ndarray, lookback: int, rows: int | None) -> np.ndarray:
    """Percentile rank (``method="max"``: share of the window's valid values ``<=`` the value)
    of each value of ``near`` among the last ``lookback`` values, with at least a quarter of the
    window valid; ``rows``: only the last ``rows`` values are ranked (the others are NaN)."""
    minp = max(2, lookback // 4)
    n = near.shape[0]
    if rows is None or rows > 64:
        inten = (
            pd.Series(near)
            .rolling(lookback, min_periods=minp)
            .rank(pct=True, method="max")
            .to_numpy(copy=True)
        )
        if rows is not None:
            inten[: n - rows] = np.nan
    else:
        # the same rank for a few rows: what a live bot needs per new candle
        inten = np.full(n, np.nan)
        for t in range(max(0, n - rows), n):
            win = near[max(0, t - lookback + 1) : t + 1]
            valid = win[~np.isnan(win)]
            if valid.shape[0] >= minp:
                inten[t] = np.count_nonzero(valid <= near[t]) / valid.shape[0]
    inten[np.isnan(near)] = np.nan
    return inten


#: the clusters of a side the tracking follows, in slot order (those the engine reports)
TRACK_SLOTS: tuple[str, ...] = ("cluster", "cluster2", "cluster3", "wall")


def _slots(lv: Mapping[str, np.ndarray]) -> list[str]:
    return [s for s in TRACK_SLOTS if f"liq_long_{s}_price" in lv]


def new_track_state(lv: Mapping[str, np.ndarray], readout: ReadoutParams) -> dict[str, Any]:
    """The empty tracking state of both sides (see :mod:`liqsignals._tracking`)."""
    from liqsignals import _tracking

    return {"state": _tracking.new_state(len(_slots(lv)), readout.drift_lookback)}


def _tracked(
    lv: Mapping[str, np.ndarray],
    readout: ReadoutParams,
    rows: int | None,
    state: dict[str, Any] | None,
) -> dict[str, np.ndarray]:
    """Age, fresh flag, continuity and drift of the tracked clusters, for the last ``rows``
    rows (all rows without ``rows``) from ``state`` (updated in place; default: empty)."""
    from liqsignals import _tracking

    slots = _slots(lv)
    n = lv["liq_long_total"].shape[0]
    first = 0 if rows is None else n - rows
    if state is None:
        state = new_track_state(lv, readout)
    books = np.empty((2, 3, n - first, len(slots)))
    for i, side in enumerate(("long", "short")):
        for j, slot in enumerate(slots):
            books[i, 0, :, j] = lv[f"liq_{side}_{slot}_low"][first:]
            books[i, 1, :, j] = lv[f"liq_{side}_{slot}_high"][first:]
            books[i, 2, :, j] = lv[f"liq_{side}_{slot}_price"][first:]
    mag = np.empty((n - first, 2))
    mag[:, 0] = lv["liq_magnet_price"][first:]
    mag[:, 1] = lv["liq_magnet_side"][first:]
    res = np.full((n, 12), np.nan)
    wall = slots.index("wall") if "wall" in slots else -1
    _tracking.track_columns(
        books, mag, float(readout.age_limit), float(readout.fresh_age), wall, state["state"],
        res[first:],
    )  # fmt: skip
    names = [f"liq_{side}_{c}" for side in ("long", "short") for c in _tracking.SIDE_COLUMNS]
    names += [f"liq_{c}" for c in _tracking.MAGNET_COLUMNS]
    out = {name: res[:, i] for i, name in enumerate(names)}
    if wall < 0:
        del out["liq_long_wall_age"], out["liq_short_wall_age"]
    return out


def _derive_arrays(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    lv: dict[str, np.ndarray],
    *,
    readout: ReadoutParams,
    rows: int | None = None,
    near_prefix: np.ndarray | None = None,
    track: dict[str, Any] | None = None,
) -> dict[str, np.ndarray]:
    """The derived columns as arrays (plus ``_near``, the size of the nearest cluster that the
    intensity ranks).

    ``rows``: the percentile rank is computed for the last ``rows`` rows only (other rows of
    ``liq_intensity`` / its bucket are then NaN). ``near_prefix``: the ``_near`` values of the
    candles before those last ``rows`` rows (a stream keeps them), so the arrays themselves only
    need to reach back as far as the short lookbacks (ATR, drift, previous candle). ``track``:
    the cluster tracking's state before those last ``rows`` rows (a stream keeps it; updated in
    place); without it the tracking starts empty at the first row."""
    atr_period, intensity_lookback, drift_lookback = (
        readout.atr_period,
        readout.intensity_lookback,
        readout.drift_lookback,
    )
    out: dict[str, np.ndarray] = {}
    warm = np.isnan(lv["liq_long_total"])

    long_band, short_band = lv["liq_long_band"], lv["liq_short_band"]
    tot = long_band + short_band
    with np.errstate(invalid="ignore", divide="ignore"):
        imb = np.where(tot > 0, (short_band - long_band) / tot, np.nan)
    imb[warm] = np.nan
    out["liq_imbalance"] = imb

    atr = _atr(high, low, close, atr_period)
    out["liq_atr"] = atr
    lc, sc = lv["liq_long_cluster_price"], lv["liq_short_cluster_price"]
    out["liq_long_cluster_dist_pct"] = (close - lc) / close * 100.0
    out["liq_short_cluster_dist_pct"] = (sc - close) / close * 100.0
    with np.errstate(invalid="ignore", divide="ignore"):
        out["liq_long_cluster_dist_atr"] = np.where(atr > 0, (close - lc) / atr, np.nan)
        out["liq_short_cluster_dist_atr"] = np.where(atr > 0, (sc - close) / atr, np.nan)
    extra_dist = []
    for slot in ("cluster2", "cluster3", "wall"):
        if f"liq_long_{slot}_price" not in lv:
            continue
        lp, sp = lv[f"liq_long_{slot}_price"], lv[f"liq_short_{slot}_price"]
        out[f"liq_long_{slot}_dist_pct"] = (close - lp) / close * 100.0
        out[f"liq_short_{slot}_dist_pct"] = (sp - close) / close * 100.0
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"liq_long_{slot}_dist_atr"] = np.where(atr > 0, (close - lp) / atr, np.nan)
            out[f"liq_short_{slot}_dist_atr"] = np.where(atr > 0, (sp - close) / atr, np.nan)
        extra_dist += [
            f"liq_{side}_{slot}_dist_{u}" for side in ("long", "short") for u in ("pct", "atr")
        ]
    mag = lv["liq_magnet_price"]
    out["liq_magnet_dist_pct"] = (mag / close - 1.0) * 100.0
    if "liq_magnet_mean_price" in lv:
        out["liq_magnet_mean_dist_pct"] = (lv["liq_magnet_mean_price"] / close - 1.0) * 100.0
        extra_dist.append("liq_magnet_mean_dist_pct")
    prev_mag = np.concatenate(
        [np.full(min(drift_lookback, len(mag)), np.nan), mag[:-drift_lookback]]
    )
    out["liq_magnet_drift"] = (mag / prev_mag - 1.0) * 100.0

    # intensity: size of the nearest significant cluster (either side) vs its own history
    dl = out["liq_long_cluster_dist_pct"]
    ds = out["liq_short_cluster_dist_pct"]
    near = np.where(
        np.isnan(ds) | (~np.isnan(dl) & (dl <= ds)),
        lv["liq_long_cluster_size"],
        lv["liq_short_cluster_size"],
    )
    out["_near"] = near
    if near_prefix is None:
        inten = _intensity(near, intensity_lookback, rows)
    else:
        # the rows before the last ``rows`` ones are given as their ``near`` values only
        if rows is None or not 0 < rows <= near.shape[0]:
            raise ValueError("near_prefix needs rows between 1 and the number of rows")
        series = np.concatenate([near_prefix, near[-rows:]])
        inten = np.full(near.shape[0], np.nan)
        inten[-rows:] = _intensity(series, intensity_lookback, rows)[-rows:]
    inten[np.isnan(near)] = np.nan
    out["liq_intensity"] = inten
    bucket = np.floor(np.clip(inten, 0.0, 0.999999) * 4.0)
    out["liq_intensity_bucket"] = bucket

    # sweeps against the previous candle's nearest clusters
    def prev(a: np.ndarray) -> np.ndarray:
        return np.concatenate([[np.nan], a[:-1]])

    p_lc, p_lc_lo, p_lc_hi = (prev(lv[f"liq_long_cluster_{x}"]) for x in ("price", "low", "high"))
    p_sc, p_sc_lo, p_sc_hi = (prev(lv[f"liq_short_cluster_{x}"]) for x in ("price", "low", "high"))
    undefined = warm | np.isnan(prev(lv["liq_long_total"]))
    with np.errstate(invalid="ignore"):
        hit_long = low <= p_lc
        hit_short = high >= p_sc
        sw_l = hit_long & (close > p_lc_hi)
        sw_l_thru = hit_long & (close < p_lc_lo)
        sw_s = hit_short & (close < p_sc_lo)
        sw_s_thru = hit_short & (close > p_sc_hi)

    def flag(mask: np.ndarray) -> np.ndarray:
        f = mask.astype(np.float64)
        f[undefined] = np.nan
        return f

    out["liq_sweep_long"] = flag(sw_l)
    out["liq_sweep_long_through"] = flag(sw_l_thru)
    notional_l = np.where(sw_l | sw_l_thru, lv["liq_long_liquidated"], 0.0)
    notional_l[undefined] = np.nan
    out["liq_sweep_long_notional"] = notional_l
    out["liq_sweep_long_low"] = np.where(sw_l | sw_l_thru, p_lc_lo, np.nan)
    out["liq_sweep_short"] = flag(sw_s)
    out["liq_sweep_short_through"] = flag(sw_s_thru)
    notional_s = np.where(sw_s | sw_s_thru, lv["liq_short_liquidated"], 0.0)
    notional_s[undefined] = np.nan
    out["liq_sweep_short_notional"] = notional_s
    out["liq_sweep_short_high"] = np.where(sw_s | sw_s_thru, p_sc_hi, np.nan)
    out.update(_tracked(lv, readout, rows if track is not None else None, track))

    for key in ("liq_atr", "liq_long_cluster_dist_pct", "liq_short_cluster_dist_pct",
                "liq_long_cluster_dist_atr", "liq_short_cluster_dist_atr",
                "liq_magnet_dist_pct", "liq_magnet_drift", *extra_dist):  # fmt: skip
        out[key][warm] = np.nan
    return out


def derive_features(
    candles: pd.DataFrame,
    levels: pd.DataFrame,
    readout: ReadoutParams | None = None,
    **lookbacks: Any,
) -> pd.DataFrame:
    """Derive the feature columns from candles and the engine's ``levels`` (same index).

    ``readout`` gives the lookbacks (default :class:`~liqsignals.readout.ReadoutParams`);
    ``atr_period=``, ``intensity_lookback=``, ``drift_lookback=`` override them.

    Every operation looks back a bounded number of rows (``max(atr_period, intensity_lookback,
    drift_lookback) + 1``), so recomputing it over the tail of a growing frame gives the same
    values as over the whole frame (what the live bot relies on).
    """
    readout = _lookbacks(readout, lookbacks)
    lv = {c: levels[c].to_numpy(dtype=np.float64, copy=True) for c in levels.columns}
    out = _derive_arrays(
        candles["high"].to_numpy(dtype=np.float64),
        candles["low"].to_numpy(dtype=np.float64),
        candles["close"].to_numpy(dtype=np.float64),
        lv,
        readout=readout,
    )
    return pd.DataFrame(
        {c: lv[c] if c in lv else out[c] for c in FEATURE_COLUMNS}, index=levels.index
    )


def _lookbacks(readout: ReadoutParams | None, lookbacks: Mapping[str, Any]) -> ReadoutParams:
    unknown = sorted(set(lookbacks) - set(LOOKBACK_FIELDS))
    if unknown:
        raise ValueError(f"unknown lookback(s) {unknown}; known: {list(LOOKBACK_FIELDS)}")
    return (readout or _DEFAULT).replace(**lookbacks)


def _split(params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Keyword arguments into (model parameters, lookbacks)."""
    look = {k: v for k, v in params.items() if k in LOOKBACK_FIELDS}
    return {k: v for k, v in params.items() if k not in LOOKBACK_FIELDS}, look


def _window_map(windows: Mapping[str, Any] | Sequence[Any] | None) -> dict[str, Any] | None:
    if windows is None:
        return None
    if isinstance(windows, Mapping):
        items = dict(windows)
    elif isinstance(windows, str):
        items = {windows: windows}
    else:
        items = {str(w): w for w in windows}
    if not items:
        raise ValueError("windows must not be empty")
    for name in items:
        if not name or not all(ch.isalnum() or ch == "_" for ch in name):
            raise ValueError(f"window name {name!r} must be letters, digits or _")
    return items


def liquidation_features(
    df: pd.DataFrame,
    model: LiquidationModel | None = None,
    *,
    windows: Mapping[str, Any] | Sequence[Any] | None = None,
    readout: ReadoutParams | None = None,
    **params: Any,
) -> pd.DataFrame:
    """All ``liq_*`` feature columns for a candle frame.

    Parameters
    ----------
    df : candles (``date, open, high, low, close, volume`` and the optional inputs of
        :func:`liqsignals.liquidation_levels`).
    model : a :class:`~liqsignals.LiquidationModel`; ``**params`` override its fields.
    readout : a :class:`~liqsignals.readout.ReadoutParams` (band, cluster rule, gap, magnet and
        the derived columns' lookbacks); default: the model's book fields and default lookbacks.
        ``atr_period=``, ``intensity_lookback=``, ``drift_lookback=`` in ``**params`` override
        its lookbacks.
    windows : several windows at once, each with its own prefix: ``{"fast": "1d", "slow": "1w"}``
        gives ``liq_fast_*`` and ``liq_slow_*`` columns (a list such as ``["1d", "1w"]`` uses the
        window labels as names). Default: one model, prefix ``liq_``.

    Returns
    -------
    DataFrame aligned to ``df.index`` with the columns of :data:`liqsignals.COLUMNS` (units and
    meaning there), NaN during warm-up.

    Example
    -------
    >>> feats = liquidation_features(candles, window="1w", symbol="BTC/USDT:USDT")  # doctest: +SKIP
    >>> feats[["liq_imbalance", "liq_magnet_price", "liq_sweep_long"]].tail()       # doctest: +SKIP
    """
    model_params, look = _split(params)
    base, readout = split_readout(resolve_model(model, model_params), readout, look)
    wmap = _window_map(windows)
    prepare_inputs(df)  # validate once, with a clear error, before any work
    if wmap is None:
        return derive_features(df, liquidation_levels(df, base), readout)
    frames = []
    for name, window in wmap.items():
        feats = derive_features(df, liquidation_levels(df, base.replace(window=window)), readout)
        frames.append(feats.rename(columns=lambda c, n=name: rename_prefix(c, f"liq_{n}_")))
    return pd.concat(frames, axis=1)


class FeatureStream:
    """Candle-by-candle feature computation for live bots (same values as the batch function).

        Keeps a :class:`~liqsignals.LiquidationEngine`, a short tail of candles and engine rows (as
        far back as the ATR and drift lookbacks reach) and the sizes the intensity percentile ranks
        (``intensity_lookback`` values), and the cluster tracking's state after the last candle (the
    previous candle's clusters, their ages and last ``drift_lookback`` centres). Each update advances the engine by the new candles only and
        derives the feature columns of those candles from that bounded state, so the cost of a new
        candle does not grow with the history.

        >>> stream = FeatureStream(LiquidationModel(window="1d"))   # doctest: +SKIP
        >>> row = stream.update(candle_dict)                         # doctest: +SKIP
    """

    _LEAN_ROWS = 64  # up to this many new candles go through the engine's per-candle path

    def __init__(
        self,
        model: LiquidationModel | None = None,
        *,
        readout: ReadoutParams | None = None,
        **params: Any,
    ) -> None:
        from liqsignals.engine import LiquidationEngine

        model_params, look = _split(params)
        base, self.readout = split_readout(resolve_model(model, model_params), readout, look)
        self.engine = LiquidationEngine(base)
        self.context = self.readout.context
        self.intensity_lookback = self.readout.intensity_lookback
        self._tail: dict[str, np.ndarray] | None = None
        self._near = np.zeros(0)
        self._track: dict[str, Any] | None = None
        self._tail2d: np.ndarray | None = None
        self._levels = list(self.engine.columns)
        self._tail_names = ["high", "low", "close", *self._levels]
        self._level_pos = {c: i for i, c in enumerate(self._levels)}
        # where each output column comes from: the engine's row, or the derived arrays
        pos = [
            (j, self._levels.index(c))
            for j, c in enumerate(FEATURE_COLUMNS)
            if c in self._level_pos
        ]
        self._out_level_pos = np.array([j for j, _ in pos], dtype=np.int64)
        self._level_src = np.array([i for _, i in pos], dtype=np.int64)
        self._out_derived = [
            (j, c) for j, c in enumerate(FEATURE_COLUMNS) if c not in self._level_pos
        ]
        self._failed: str | None = None

    @property
    def model(self) -> LiquidationModel:
        return self.engine.model

    @property
    def columns(self) -> list[str]:
        """Names of the feature columns, in the order of :meth:`update_arrays`' output."""
        return list(FEATURE_COLUMNS)

    def update_many(self, df: pd.DataFrame) -> pd.DataFrame:
        """Process new candles (newer than any seen); returns their feature rows."""
        if len(df) == 0:
            return pd.DataFrame(columns=list(FEATURE_COLUMNS), index=df.index, dtype=float)
        inp = prepare_inputs(df)  # the same checks and clear errors as the batch functions
        values = {
            "open": inp.open,
            "high": inp.high,
            "low": inp.low,
            "close": inp.close,
            "volume": inp.volume,
            "open_interest": inp.oi,
            "taker_buy_volume": inp.taker_buy,
            "long_short_ratio": inp.ls_ratio,
            "mark_high": inp.mark_high,
            "mark_low": inp.mark_low,
        }
        rows = self.update_arrays(inp.dates, values)
        return pd.DataFrame(rows, index=df.index, columns=list(FEATURE_COLUMNS))

    def update_arrays(self, dates: np.ndarray, values: Mapping[str, np.ndarray]) -> np.ndarray:
        """:meth:`update_many` on arrays, for callers that hold them already (a live bot):
        ``dates`` as int64 nanoseconds UTC, ``values`` the engine's input columns (``open,
        high, low, close, volume`` and the optional ones) as float arrays of the same length.
        Returns a ``(len(dates), len(columns))`` float array. An invalid candle raises
        ``ValueError`` naming the problem; the stream is then spent (the engine may have taken
        the candles before it) and says so on the next call."""
        if self._failed is not None:
            raise RuntimeError(
                f"this FeatureStream stopped at an invalid candle ({self._failed}); "
                "build a new one from valid history"
            )
        dates = np.asarray(dates, dtype=np.int64)
        n = dates.shape[0]
        if n == 0:
            return np.zeros((0, len(FEATURE_COLUMNS)))
        try:
            return self._advance(dates, values)
        except Exception as exc:
            # the engine may have taken some of the candles: the tail no longer matches it
            self._failed = str(exc)
            raise

    def _advance(self, dates: np.ndarray, values: Mapping[str, np.ndarray]) -> np.ndarray:
        n = dates.shape[0]
        if n <= self._LEAN_ROWS:
            # the engine's lean per-candle path (same values as a block, bit for bit)
            names = list(values)
            cols = [np.asarray(values[c], dtype=np.float64) for c in names]
            levels = np.empty((n, len(self._levels)))
            update = self.engine.update_row
            for i in range(n):
                rec: dict[str, Any] = {"date": int(dates[i])}
                for name, col in zip(names, cols, strict=True):
                    rec[name] = col[i]
                levels[i] = update(rec)[: len(self._levels)]
        else:
            frame = pd.DataFrame(
                {"date": pd.to_datetime(dates, utc=True), **{c: values[c] for c in values}}
            )
            levels = self.engine.update_many(frame)[self._levels].to_numpy(dtype=np.float64)
        hlc = [np.asarray(values[c], dtype=np.float64) for c in ("high", "low", "close")]
        return self._derive(n, hlc, levels)

    def _derive(self, n: int, hlc: list[np.ndarray], levels: np.ndarray) -> np.ndarray:
        """The feature rows of ``n`` new candles from their high, low, close and engine rows."""
        width = len(FEATURE_COLUMNS)
        # the tail as one array (high, low, close, then the engine's columns): one concatenation
        # per update instead of one per column
        block = np.empty((n, 3 + len(self._levels)))
        for j, a in enumerate(hlc):
            block[:, j] = a
        block[:, 3:] = levels[:, : len(self._levels)]
        full = block if self._tail2d is None else np.concatenate([self._tail2d, block])
        tail = {c: full[:, j] for j, c in enumerate(self._tail_names)}
        lv = {c: tail[c] for c in self._levels}
        if self._track is None:
            self._track = new_track_state(lv, self.readout)
        out = _derive_arrays(
            tail["high"],
            tail["low"],
            tail["close"],
            dict(lv),
            rows=n,
            near_prefix=self._near,
            readout=self.readout,
            track=self._track,
        )
        result = np.empty((n, width))
        # the engine's columns in one step, the derived ones one by one
        result[:, self._out_level_pos] = full[-n:, 3:][:, self._level_src]
        for j, c in self._out_derived:
            result[:, j] = out[c][-n:]
        self._tail2d = full[-self.context :].copy()
        self._tail = {c: self._tail2d[:, j] for j, c in enumerate(self._tail_names)}
        self._near = np.concatenate([self._near, out["_near"][-n:]])[-self.intensity_lookback :]
        return result

    def update(self, candle: Mapping[str, Any]) -> dict[str, float]:
        """Process one closed candle; returns ``{column: value}``.

        The engine's per-candle path (:meth:`LiquidationEngine.update`): the candle is
        validated by :func:`liqsignals.inputs.single_values` (the rules and messages of the
        single-candle check; an invalid candle raises ``ValueError`` and leaves the stream
        usable), then advances the engine and the derived features."""
        vals = single_values(candle)
        if self._failed is not None:
            raise RuntimeError(
                f"this FeatureStream stopped at an invalid candle ({self._failed}); "
                "build a new one from valid history"
            )
        try:
            levels = self.engine.update_values(vals)[None, : len(self._levels)].copy()
            hlc = [np.array([vals[2]]), np.array([vals[3]]), np.array([vals[4]])]
            row = self._derive(1, hlc, levels)
        except Exception as exc:
            self._failed = str(exc)
            raise
        return dict(zip(FEATURE_COLUMNS, row[0].tolist(), strict=True))


# ----------------------------------------------------------------------------- multi-timeframe
def merge_informative(
    dataframe: pd.DataFrame,
    informative: pd.DataFrame,
    timeframe: str,
    timeframe_inf: str,
    *,
    ffill: bool = True,
    suffix: str | None = None,
) -> pd.DataFrame:
    """Merge higher-timeframe columns onto a lower timeframe without lookahead.

    Same semantics as freqtrade's ``merge_informative_pair``: a higher-timeframe candle (dated by
    its open time) becomes visible on the lower-timeframe candle that closes at the same moment,
    i.e. its date is shifted by ``timeframe_inf - timeframe``. Informative columns get the suffix
    ``_<timeframe_inf>`` (or ``_<suffix>``). Both frames need a ``date`` column.
    """
    if "date" not in dataframe.columns or "date" not in informative.columns:
        raise ValueError("merge_informative needs a 'date' column in both frames")
    td = timeframe_to_timedelta(timeframe)
    td_inf = timeframe_to_timedelta(timeframe_inf)
    if td_inf < td:
        raise ValueError(
            f"informative timeframe {timeframe_inf} is shorter than the base timeframe {timeframe}"
        )
    tag = suffix or timeframe_inf
    inf = informative.copy()
    inf["date_merge"] = pd.to_datetime(inf["date"], utc=True) + (td_inf - td)
    inf = inf.rename(columns={c: f"{c}_{tag}" for c in inf.columns if c != "date_merge"})
    inf = inf.sort_values("date_merge")
    left = dataframe.assign(_ls_date=pd.to_datetime(dataframe["date"], utc=True))
    if ffill:
        # each candle sees the latest informative candle that has closed (a genuine NaN in that
        # row stays NaN: rows are carried forward, values are not back-filled from older rows)
        left = left.reset_index(drop=True)
        order = np.argsort(left["_ls_date"].to_numpy(), kind="stable")
        merged = pd.merge_asof(
            left.iloc[order], inf, left_on="_ls_date", right_on="date_merge", direction="backward"
        )
        merged = merged.iloc[np.argsort(order, kind="stable")].reset_index(drop=True)
    else:
        merged = left.merge(inf, left_on="_ls_date", right_on="date_merge", how="left")
    merged = merged.drop(columns=["_ls_date", "date_merge"])
    merged.index = dataframe.index
    return merged
