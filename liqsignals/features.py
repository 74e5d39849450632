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

from liqsignals import _derive, _tracking
from liqsignals.columns import FEATURE_COLUMNS, LEVEL_COLUMNS, rename_prefix
from liqsignals.engine import LiquidationEngine
from liqsignals.inputs import prepare_inputs, single_values
from liqsignals.levelrow import LevelRow
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


def _layout(columns: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Positions in the engine's rows (``columns``) of what the derive kernel reads: the
    :data:`liqsignals._derive.INPUTS` and the tracked clusters' low, high, price."""
    key = tuple(columns)
    hit = _LAYOUTS.get(key)
    if hit is not None:
        return hit
    pos = {c: i for i, c in enumerate(key)}
    need = [*_derive.INPUTS] + [
        f"liq_{side}_{slot}_{f}"
        for side in ("long", "short")
        for slot in _derive.SLOTS
        for f in ("low", "high", "price")
    ]
    need += [c for c in FEATURE_COLUMNS if c not in _derive.DERIVED]
    missing = [c for c in need if c not in pos]
    if missing:
        raise ValueError(f"the engine's rows lack {missing} (the features need every summary)")
    src = np.array([pos[c] for c in _derive.INPUTS], dtype=np.int64)
    slots = np.array(
        [
            pos[f"liq_{side}_{slot}_{f}"]
            for side in ("long", "short")
            for slot in _derive.SLOTS
            for f in ("low", "high", "price")
        ],
        dtype=np.int64,
    )
    _LAYOUTS[key] = (src, slots)
    return src, slots


_LAYOUTS: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]] = {}
_OUT_POS = {c: j for j, c in enumerate(FEATURE_COLUMNS)}
#: output row of each derived column (``_near`` after the feature columns)
#: column -> position in a feature row (the LevelRow of FeatureStream.update)
_FEATURE_INDEX = {name: i for i, name in enumerate(FEATURE_COLUMNS)}
_DERIVED_DST = np.array(
    [_OUT_POS.get(c, len(FEATURE_COLUMNS)) for c in _derive.DERIVED], dtype=np.int64
)
_BATCH_DST = np.where(_DERIVED_DST < len(FEATURE_COLUMNS), _DERIVED_DST, -1)


def _level_dst(columns: Sequence[str]) -> np.ndarray:
    """Output row of each engine column (-1: not a feature column)."""
    return np.array([_OUT_POS.get(c, -1) for c in columns], dtype=np.int64)


def _look(readout: ReadoutParams) -> np.ndarray:
    return np.array(
        [readout.atr_period, readout.intensity_lookback, readout.drift_lookback,
         readout.age_limit, readout.fresh_age],
        dtype=np.float64,
    )  # fmt: skip


def new_track_state(readout: ReadoutParams) -> np.ndarray:
    """The empty tracking state of both sides (see :mod:`liqsignals._tracking`)."""
    return _tracking.new_state(len(_derive.SLOTS), readout.drift_lookback)


def _feature_frame(
    px: np.ndarray,
    lv: np.ndarray,
    columns: Sequence[str],
    readout: ReadoutParams,
    index: pd.Index,
) -> pd.DataFrame:
    """Every feature column of the candles ``px`` (high, low, close rows) with engine rows
    ``lv`` (named by ``columns``), as one block."""
    src, slots = _layout(columns)
    dst = _level_dst(columns)
    n = px.shape[1]
    out = np.empty((len(FEATURE_COLUMNS), n))
    _derive.copy_rows(lv, 0, dst, out)
    _derive.derive_rows(
        px, lv, src, slots, 0, np.zeros(0), _look(readout), new_track_state(readout), out,
        _BATCH_DST,
    )  # fmt: skip
    return pd.DataFrame(out.T, index=index, columns=list(FEATURE_COLUMNS), copy=False)


#: the feature columns are the engine's columns, then the derived ones: a frame of the features
#: can hold the engine's rows as one block and the derived columns as another (no copy of either)
_N_LEVELS = len(LEVEL_COLUMNS)
_SPLIT = FEATURE_COLUMNS[:_N_LEVELS] == LEVEL_COLUMNS and set(FEATURE_COLUMNS[_N_LEVELS:]) <= set(
    _derive.DERIVED
)
#: output row of each derived column in the derived block (-1: not written)
_SPLIT_DST = np.where(_BATCH_DST >= _N_LEVELS, _BATCH_DST - _N_LEVELS, -1)


def _split_frame(
    px: np.ndarray,
    values: np.ndarray,
    readout: ReadoutParams,
    index: pd.Index,
) -> pd.DataFrame:
    """:func:`_feature_frame` of engine rows ``values`` (``(candles, columns)``, column-major)
    named :data:`LEVEL_COLUMNS`: the derive kernel reads them in place, a column after another,
    and the frame holds them as one block beside the derived columns' block."""
    lv_t = values.T  # (columns, candles), row-major
    if not lv_t.flags.c_contiguous:
        lv_t = np.ascontiguousarray(lv_t)
    levels = pd.DataFrame(lv_t.T, index=index, columns=list(LEVEL_COLUMNS), copy=False)
    src, slots = _layout(LEVEL_COLUMNS)
    out = np.empty((len(FEATURE_COLUMNS) - _N_LEVELS, px.shape[1]))
    look = np.append(_look(readout), 1.0)  # 1: ``lv_t`` is transposed
    _derive.derive_rows(
        px, lv_t, src, slots, 0, np.zeros(0), look, new_track_state(readout), out, _SPLIT_DST
    )
    derived = pd.DataFrame(
        out.T, index=index, columns=list(FEATURE_COLUMNS[_N_LEVELS:]), copy=False
    )
    return pd.concat([levels, derived], axis=1)


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
    px = np.stack([candles[c].to_numpy(dtype=np.float64) for c in ("high", "low", "close")])
    lv = np.ascontiguousarray(levels.to_numpy(dtype=np.float64))
    return _feature_frame(px, lv, list(levels.columns), readout, levels.index)


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
    inp = prepare_inputs(df)  # validate once, with a clear error, before any work
    px = np.stack([inp.high, inp.low, inp.close])
    models = [base] if wmap is None else [base.replace(window=w) for w in wmap.values()]
    frames = []
    for m in models:
        engine = LiquidationEngine(m)
        if _SPLIT and tuple(engine.columns) == LEVEL_COLUMNS:
            # column-major rows: the frame takes them as its block and the kernel reads them
            values = engine.run(inp, order="F").values
            if values.base is not None and values.base.size != values.size:
                values = values.copy(order="F")  # part of the kernel's buffer: keep only these
            frames.append(_split_frame(px, values, readout, df.index))
        else:
            res = engine.run(inp)
            frames.append(_feature_frame(px, res.values, res.columns, readout, df.index))
    if wmap is None:
        return frames[0]
    return pd.concat(
        [
            f.rename(columns=lambda c, n=name: rename_prefix(c, f"liq_{n}_"))
            for name, f in zip(wmap, frames, strict=True)
        ],
        axis=1,
    )


class FeatureStream:
    """Candle-by-candle feature computation for live bots (same values as the batch function).

    Keeps a :class:`~liqsignals.LiquidationEngine`, a short tail of candles and engine rows (as
    far back as the ATR and drift lookbacks reach), the sizes the intensity percentile ranks
    (``intensity_lookback`` values) and the cluster tracking's state after the last candle (the
    previous candle's clusters, their ages and last ``drift_lookback`` centres). Each update
    advances the engine by the new candles only and derives the feature columns of those candles
    from that bounded state in one kernel call (:mod:`liqsignals._derive`, the batch functions'
    kernel), so the cost of a new candle does not grow with the history.

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
        self._levels = list(self.engine.columns)
        self._src, self._slots = _layout(self._levels)
        self._level_dst = _level_dst(self._levels)
        self._look = _look(self.readout)
        # the tail, right-aligned in fixed buffers: high, low, close (rows) and the engine's
        # rows of the last ``context`` candles (and room for the next one); the last
        # ``intensity_lookback`` nearest-cluster sizes; how many of each are held
        cap = self.context + 1
        self._pxb = np.zeros((3, cap))
        self._lvb = np.zeros((cap, len(self._levels)))
        self._nearb = np.zeros(self.intensity_lookback)
        self._counts = np.zeros(2, dtype=np.int64)
        self._track = new_track_state(self.readout)
        self._meta = np.concatenate(
            [self._look.astype(np.int64), self._src, self._slots, _DERIVED_DST, self._level_dst]
        )
        self._out1 = np.empty((len(FEATURE_COLUMNS) + 1, 1))
        self._px1 = np.empty(3)
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
            # the engine's lean per-candle path (same values as a block, bit for bit), and the
            # stream's one-candle kernel
            names = list(values)
            cols = [np.asarray(values[c], dtype=np.float64).tolist() for c in names]
            day = dates.tolist()
            width = len(FEATURE_COLUMNS)
            result = np.empty((n, width))
            for i in range(n):
                rec: dict[str, Any] = {"date": day[i]}
                for name, col in zip(names, cols, strict=True):
                    rec[name] = col[i]
                result[i] = self._step(single_values(rec))[:width, 0]
            return result
        frame = pd.DataFrame(
            {"date": pd.to_datetime(dates, utc=True), **{c: values[c] for c in values}}
        )
        levels = self.engine.update_many(frame)[self._levels].to_numpy(dtype=np.float64)
        px = np.stack([np.asarray(values[c], dtype=np.float64) for c in ("high", "low", "close")])
        return np.ascontiguousarray(self._derive(px, levels))

    def _step(self, vals: Any) -> np.ndarray:
        """One validated candle (:func:`~liqsignals.inputs.single_values`) through the engine
        and the one-candle kernel; the output buffer (feature rows, then the nearest-cluster
        size), reused by the next call."""
        level_row = self.engine.update_values(vals)
        px1 = self._px1
        px1[0], px1[1], px1[2] = vals[2], vals[3], vals[4]
        out = self._out1
        _derive.stream_step(
            self._pxb, self._lvb, px1, level_row, self._nearb, self._counts, self._meta,
            self._track, out,
        )  # fmt: skip
        return out

    @property
    def _tail(self) -> dict[str, np.ndarray]:
        """The last ``context`` candles the stream keeps, by column (for inspection)."""
        held = min(int(self._counts[0]), self.context)
        names = ["high", "low", "close", *self._levels]
        cap = self._lvb.shape[0]
        px, lv = self._pxb[:, cap - held :], self._lvb[cap - held :]
        return {c: (px[j] if j < 3 else lv[:, j - 3]) for j, c in enumerate(names)}

    @property
    def _near(self) -> np.ndarray:
        """The nearest-cluster sizes the intensity ranks the next candle's among."""
        held = int(self._counts[1])
        return self._nearb[self._nearb.shape[0] - held :]

    def _derive(self, px_new: np.ndarray, levels: np.ndarray) -> np.ndarray:
        """The feature rows of the new candles from their high, low, close (``(3, n)``) and
        engine rows (``(n, len(engine.columns))``)."""
        n = px_new.shape[1]
        width = len(FEATURE_COLUMNS)
        cap = self._lvb.shape[0]
        held = int(self._counts[0])
        px = np.concatenate([self._pxb[:, cap - held :], px_new], axis=1)
        lv = np.concatenate([self._lvb[cap - held :], levels])
        m = px.shape[1]
        out = np.empty((width + 1, n))  # the feature rows, then the nearest-cluster sizes
        _derive.copy_rows(lv, m - n, self._level_dst, out)
        _derive.derive_rows(
            px, lv, self._src, self._slots, m - n, self._near, self._look, self._track, out,
            _DERIVED_DST,
        )  # fmt: skip
        keep = min(cap, m)
        self._pxb[:, cap - keep :] = px[:, m - keep :]
        self._lvb[cap - keep :] = lv[m - keep :]
        near = np.concatenate([self._near, out[width]])[-self._nearb.shape[0] :]
        self._nearb[self._nearb.shape[0] - near.shape[0] :] = near
        self._counts[:] = (keep, near.shape[0])
        return out[:width].T

    def update(self, candle: Mapping[str, Any]) -> LevelRow:
        """Process one closed candle; returns ``{column: value}`` as a read-only
        :class:`~liqsignals.levelrow.LevelRow` mapping (``row.to_dict()`` for a ``dict``).

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
            row = self._step(vals)[: len(FEATURE_COLUMNS), 0].copy()
        except Exception as exc:
            self._failed = str(exc)
            raise
        return LevelRow(FEATURE_COLUMNS, _FEATURE_INDEX, row)


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
