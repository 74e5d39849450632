"""Estimated vs realised liquidations, per bar of a realised series.

**Estimated vs realised liquidations** (:func:`read_realised`, :func:`realised_bars`,
:func:`compare_realised`). Per-candle estimates (``liq_long_liquidated``, ``liq_short_liquidated``)
are summed into the coarser bars of a realised series (candles whose open time falls in
``[bar, bar + bar_length)``; only bars whose candles are all present and past warm-up). Reported:
Spearman rank correlation per side, side accuracy on the largest bars, and the same for a naive
baseline, ``|return| x quote volume`` put on the long side for falling bars and on the short side for
rising bars.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from liqsignals._time import to_utc_datetime
from liqsignals.analysis.common import (
    candle_dates,
    candle_spacing,
    format_timedelta,
    json_safe,
    json_value,
    spearman,
    utc_dates,
    utc_timestamp,
)
from liqsignals.engine import LiquidationEngine
from liqsignals.features import timeframe_to_timedelta
from liqsignals.inputs import prepare_inputs
from liqsignals.model import LiquidationModel, resolve_model

__all__ = [
    "BASELINE_POOLED_KEYS",
    "POOLED_KEYS",
    "REALISED_COLUMNS",
    "RealisedEvaluation",
    "compare_realised",
    "evaluate_realised",
    "evaluate_realised_pairs",
    "read_realised",
    "realised_bars",
    "realised_warmup",
]

#: Columns of a realised liquidation series (quote currency per bar, bar open time in UTC).
REALISED_COLUMNS: tuple[str, ...] = ("date", "long_liquidation_usd", "short_liquidation_usd")


# ----------------------------------------------------------------------------- realised
def read_realised(source: str | Path | pd.DataFrame) -> pd.DataFrame:
    """Read and check a realised liquidation series.

    ``source`` is a CSV path, a collector's event file (``...-liquidation_events.feather``,
    optionally ``...feather@5m`` for the bar; see
    :func:`liqsignals.data.liquidations.read_realised_events`) or a DataFrame with ``date`` (bar
    open time; naive times are UTC),
    ``long_liquidation_usd`` (longs liquidated, i.e. forced sells) and ``short_liquidation_usd``
    (shorts liquidated), both in quote currency per bar; other columns are ignored.

    Returns
    -------
    DataFrame with exactly those three columns, ``date`` as UTC timestamps, sorted.

    Raises
    ------
    ValueError naming the file and the missing column, the unparsable date or the row with a
    negative, non-numeric or NaN amount, or a duplicate date.
    """
    name = str(source) if not isinstance(source, pd.DataFrame) else "realised frame"
    if isinstance(source, pd.DataFrame):
        raw = source.copy()
    elif ".feather" in Path(source).name:  # a collector's event file (optionally "...@<bar>")
        from liqsignals.data.liquidations import read_realised_events

        raw = read_realised_events(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"realised liquidations file {path} does not exist")
        try:
            raw = pd.read_csv(path)
        except pd.errors.EmptyDataError as exc:
            raise ValueError(f"{path}: empty file") from exc
    if "date" not in raw.columns and isinstance(raw.index, pd.DatetimeIndex):
        raw = raw.rename_axis("date").reset_index()
    missing = [c for c in REALISED_COLUMNS if c not in raw.columns]
    if missing:
        raise ValueError(
            f"{name}: missing column(s) {missing}; need {list(REALISED_COLUMNS)} "
            f"(found {list(raw.columns)})"
        )
    out = raw.loc[:, list(REALISED_COLUMNS)].reset_index(drop=True)
    try:
        out["date"] = to_utc_datetime(out["date"])
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name}: column 'date' has values that are not dates: {exc}") from exc
    if out["date"].isna().any():
        raise ValueError(
            f"{name}: column 'date' is empty at row {int(out['date'].isna().idxmax())}"
        )
    for col in REALISED_COLUMNS[1:]:
        vals = pd.to_numeric(out[col], errors="coerce")
        bad = vals.isna() | (vals < 0)
        if bad.any():
            i = int(bad.to_numpy().nonzero()[0][0])
            raise ValueError(
                f"{name}: column {col!r} must be a non-negative number, got {raw[col].iloc[i]!r} "
                f"at row {i} ({out['date'].iloc[i]})"
            )
        out[col] = vals.astype(np.float64)
    out = out.sort_values("date", kind="stable").reset_index(drop=True)
    dup = out["date"].duplicated()
    if dup.any():
        raise ValueError(f"{name}: duplicate date {out['date'][dup].iloc[0]}")
    if len(out) < 1:
        raise ValueError(f"{name}: no rows")
    return out


def realised_bars(
    candles: pd.DataFrame,
    realised: pd.DataFrame | str | Path,
    model: LiquidationModel | None = None,
    *,
    estimates: pd.DataFrame | None = None,
    bar: str | pd.Timedelta | None = None,
    start: Any = None,
    stop: Any = None,
    **params: Any,
) -> pd.DataFrame:
    """Per-candle estimates and a naive baseline summed into the realised series' bars.

    Parameters
    ----------
    candles : candle frame for the engine (include one model window before the first bar of
        interest: warm-up candles have no estimate).
    realised : output of :func:`read_realised`, or anything it reads.
    model, **params : the model; ignored when ``estimates`` (``liq_long_liquidated``,
        ``liq_short_liquidated`` per candle, aligned to ``candles``) is given.
    bar : bar length (``"4h"``); default the most common spacing of the realised dates.
    start, stop : keep bars that lie entirely inside ``[start, stop]`` (open time ``>= start``,
        end ``<= stop``), so that ranges meeting at one instant share no bar.

    Returns
    -------
    DataFrame, one row per complete bar (all ``bar / timeframe`` candles present and past
    warm-up), columns:

    date : bar open time (UTC)
    est_long, est_short : estimated long / short liquidations in the bar (quote)
    real_long, real_short : realised long / short liquidations (quote)
    base_long, base_short : baseline ``|return| x quote volume`` on the long side when the bar
        fell, on the short side when it rose (quote; 0 on the other side)
    exc_long, exc_short : second baseline, ``quote_volume x (open - low) / open`` and
        ``quote_volume x (high - open) / open`` with the bar's first open, lowest low and highest
        high (quote): how far the bar travelled each way, weighted by turnover
    path_long, path_short : the same per candle, summed over the bar's candles,
        ``sum(volume_i x typical_i x (open_i - low_i) / open_i)`` and ``... (high_i - open_i) / open_i``
        (quote): the path travelled each way inside the bar, weighted by turnover
    return_pct : bar return, last close over first open (%)
    quote_volume : sum of ``volume * (high + low + close) / 3`` over the bar's candles (quote)

    Raises
    ------
    ValueError when the bars are not coarser than the candles, when they do not overlap the
    candles, or when no bar is complete.
    """
    real = read_realised(realised)
    prepare_inputs(candles)
    cdates = candle_dates(candles)
    tf = candle_spacing(cdates)
    if bar is None:
        if len(real) < 2:
            raise ValueError("one realised bar: pass bar=... (its length)")
        bar_td = candle_spacing(real["date"])
    else:
        bar_td = timeframe_to_timedelta(bar) if isinstance(bar, str) else pd.Timedelta(bar)
    ratio = bar_td / tf
    if ratio < 1 or abs(ratio - round(ratio)) > 1e-9:
        raise ValueError(
            f"realised bars ({bar_td}) must be a whole multiple of the candle timeframe ({tf}) "
            f"and not shorter"
        )
    per_bar = int(round(ratio))
    c_lo, c_hi = pd.Timestamp(cdates[0], tz="UTC"), pd.Timestamp(cdates[-1], tz="UTC") + tf
    r_lo, r_hi = real["date"].iloc[0], real["date"].iloc[-1] + bar_td
    if r_hi <= c_lo or r_lo >= c_hi:
        raise ValueError(
            f"realised bars ({r_lo} .. {r_hi}) do not overlap the candles ({c_lo} .. {c_hi})"
        )
    if start is not None:
        real = real.loc[real["date"] >= utc_timestamp(start)]
    if stop is not None:
        real = real.loc[real["date"] + bar_td <= utc_timestamp(stop)]
    if real.empty:
        raise ValueError(f"no realised bar between {start} and {stop}")
    if estimates is None:
        engine = LiquidationEngine(resolve_model(model, params), summaries=False)
        estimates = engine.update_many(candles)
    est_l = estimates["liq_long_liquidated"].to_numpy(dtype=np.float64)
    est_s = estimates["liq_short_liquidated"].to_numpy(dtype=np.float64)
    if est_l.shape[0] != cdates.shape[0]:
        raise ValueError("estimates and candles must have the same length")
    o = candles["open"].to_numpy(dtype=np.float64)
    c = candles["close"].to_numpy(dtype=np.float64)
    typical = (
        candles["high"].to_numpy(dtype=np.float64) + candles["low"].to_numpy(dtype=np.float64) + c
    ) / 3.0
    qv = candles["volume"].to_numpy(dtype=np.float64) * typical
    bad = ~(np.isfinite(est_l) & np.isfinite(est_s))
    h_arr = candles["high"].to_numpy(dtype=np.float64)
    l_arr = candles["low"].to_numpy(dtype=np.float64)

    def csum(a: np.ndarray) -> np.ndarray:
        return np.concatenate([[0.0], np.cumsum(a)])

    cs_l, cs_s, cs_q, cs_bad = csum(np.where(bad, 0, est_l)), csum(np.where(bad, 0, est_s)), \
        csum(qv), csum(bad.astype(np.float64))  # fmt: skip
    cs_pl, cs_ps = csum(qv * (o - l_arr) / o), csum(qv * (h_arr - o) / o)
    bd = utc_dates(real["date"])
    lo = np.searchsorted(cdates, bd, side="left")
    hi = np.searchsorted(cdates, bd + bar_td.to_timedelta64(), side="left")
    complete = (hi - lo == per_bar) & (cs_bad[hi] - cs_bad[lo] == 0)
    if not complete.any():
        first_est = pd.Timestamp(cdates[np.argmax(~bad)], tz="UTC") if (~bad).any() else None
        raise ValueError(
            f"no complete realised bar: {len(real)} bars overlap the candles, but none has all its "
            f"{per_bar} candles past the engine's warm-up (first estimate at {first_est}); load "
            f"candles from at least one model window before the first bar"
        )
    lo, hi = lo[complete], hi[complete]
    sel = real.loc[complete]
    ret = c[hi - 1] / o[lo] - 1.0
    vol = cs_q[hi] - cs_q[lo]
    mag = np.abs(ret) * vol
    bar_hi = np.array([h_arr[a:b].max() for a, b in zip(lo, hi, strict=True)])
    bar_lo = np.array([l_arr[a:b].min() for a, b in zip(lo, hi, strict=True)])
    return pd.DataFrame(
        {
            "date": pd.DatetimeIndex(sel["date"]),
            "est_long": cs_l[hi] - cs_l[lo],
            "est_short": cs_s[hi] - cs_s[lo],
            "real_long": sel["long_liquidation_usd"].to_numpy(),
            "real_short": sel["short_liquidation_usd"].to_numpy(),
            "base_long": np.where(ret < 0, mag, 0.0),
            "base_short": np.where(ret > 0, mag, 0.0),
            "exc_long": vol * (o[lo] - bar_lo) / o[lo],
            "exc_short": vol * (bar_hi - o[lo]) / o[lo],
            "path_long": cs_pl[hi] - cs_pl[lo],
            "path_short": cs_ps[hi] - cs_ps[lo],
            "return_pct": ret * 100.0,
            "quote_volume": vol,
        }
    )


def _side_accuracy(pred_l: np.ndarray, pred_s: np.ndarray, real_l: np.ndarray,
                   real_s: np.ndarray, mask: np.ndarray) -> float:  # fmt: skip
    if not mask.any():
        return math.nan
    pred = np.sign(pred_l - pred_s)[mask]
    real = np.sign(real_l - real_s)[mask]
    return float(np.mean((pred == real) & (pred != 0)))


def _slope(x: np.ndarray, y: np.ndarray) -> float:
    vx = float(np.var(x))
    return float(np.mean((x - x.mean()) * (y - y.mean())) / vx) if vx > 0 else math.nan


def compare_realised(bars: pd.DataFrame, *, large_quantile: float = 0.9) -> dict[str, Any]:
    """Estimated (and baseline) vs realised liquidations per bar.

    Parameters
    ----------
    bars : output of :func:`realised_bars`.
    large_quantile : "large" bars are those whose realised total is at or above this quantile.

    Returns
    -------
    dict with keys:

    n_bars, n_large : bars compared, and large bars among them
    first_bar, last_bar : their open times (ISO strings)
    spearman_long, spearman_short : rank correlation, estimated vs realised, per side
    spearman_total : the same for long + short
    spearman_mean : mean of the two sides (the calibration objective)
    baseline_spearman_long, baseline_spearman_short, baseline_spearman_total,
    baseline_spearman_mean : the same for the naive baseline
    excursion_spearman_long, excursion_spearman_short, excursion_spearman_mean : the same for the
        excursion baseline (``exc_long``, ``exc_short`` of :func:`realised_bars`)
    side_accuracy_large : on large bars, share where the side with more estimated liquidations is
        the side with more realised ones (0-1; a tie in the estimate counts as wrong)
    baseline_side_accuracy_large : the same for the baseline (side = sign of the bar's return)
    excursion_side_accuracy_large : the same for the excursion baseline
    majority_side_share_large : share of large bars whose realised majority side is the more
        common one (what always guessing that side would score)
    log10_scale : median of ``log10(estimated / realised)`` of the totals (0 = right scale;
        bars where either is 0 are left out)
    log10_rmse : root mean square of that log ratio (orders of magnitude)
    log10_slope : least-squares slope of ``log10(estimated)`` on ``log10(realised)`` totals (1 =
        estimates grow like realised ones; above 1 = realised totals are compressed at the top)
    """
    if len(bars) < 3:
        raise ValueError(f"need at least 3 complete bars to compare, got {len(bars)}")
    el, es = bars["est_long"].to_numpy(), bars["est_short"].to_numpy()
    rl, rs = bars["real_long"].to_numpy(), bars["real_short"].to_numpy()
    bl, bs = bars["base_long"].to_numpy(), bars["base_short"].to_numpy()
    xl, xs = bars["exc_long"].to_numpy(), bars["exc_short"].to_numpy()
    rt = rl + rs
    large = rt >= np.quantile(rt, large_quantile)
    real_side = np.sign(rl - rs)[large]
    majority = max(np.mean(real_side > 0), np.mean(real_side < 0)) if large.any() else math.nan
    et = el + es
    pos = (et > 0) & (rt > 0)
    lr = np.log10(et[pos] / rt[pos]) if pos.any() else np.array([])
    out: dict[str, Any] = {
        "n_bars": len(bars),
        "n_large": int(large.sum()),
        "first_bar": str(pd.Timestamp(bars["date"].iloc[0])),
        "last_bar": str(pd.Timestamp(bars["date"].iloc[-1])),
        "spearman_long": spearman(el, rl),
        "spearman_short": spearman(es, rs),
        "spearman_total": spearman(et, rt),
        "baseline_spearman_long": spearman(bl, rl),
        "baseline_spearman_short": spearman(bs, rs),
        "baseline_spearman_total": spearman(bl + bs, rt),
        "excursion_spearman_long": spearman(xl, rl),
        "excursion_spearman_short": spearman(xs, rs),
        "side_accuracy_large": _side_accuracy(el, es, rl, rs, large),
        "excursion_side_accuracy_large": _side_accuracy(xl, xs, rl, rs, large),
        "baseline_side_accuracy_large": _side_accuracy(bl, bs, rl, rs, large),
        "majority_side_share_large": float(majority),
        "log10_scale": float(np.median(lr)) if lr.size else math.nan,
        "log10_rmse": float(np.sqrt(np.mean(lr**2))) if lr.size else math.nan,
        "log10_slope": _slope(np.log10(rt[pos]), np.log10(et[pos])) if pos.sum() > 2 else math.nan,
    }
    out["spearman_mean"] = float(np.mean([out["spearman_long"], out["spearman_short"]]))
    out["baseline_spearman_mean"] = float(
        np.mean([out["baseline_spearman_long"], out["baseline_spearman_short"]])
    )
    out["excursion_spearman_mean"] = float(
        np.mean([out["excursion_spearman_long"], out["excursion_spearman_short"]])
    )
    return {k: json_value(v) for k, v in out.items()}


def evaluate_realised(
    candles: pd.DataFrame,
    realised: pd.DataFrame | str | Path,
    model: LiquidationModel | None = None,
    *,
    start: Any = None,
    stop: Any = None,
    bar: str | pd.Timedelta | None = None,
    **params: Any,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """:func:`realised_bars` then :func:`compare_realised`; returns ``(metrics, bars)``."""
    bars = realised_bars(candles, realised, model, bar=bar, start=start, stop=stop, **params)
    return compare_realised(bars), bars


def realised_warmup(model: LiquidationModel) -> pd.Timedelta:
    """History to load before the first realised bar: one model window and a day."""
    return model.window_td + pd.Timedelta(days=1)


#: Metrics averaged over pairs in :meth:`RealisedEvaluation.pooled`.
POOLED_KEYS: tuple[str, ...] = (
    "spearman_long", "spearman_short", "spearman_total", "spearman_mean",
    "baseline_spearman_long", "baseline_spearman_short", "baseline_spearman_total",
    "baseline_spearman_mean", "excursion_spearman_long", "excursion_spearman_short",
    "excursion_spearman_mean", "side_accuracy_large", "baseline_side_accuracy_large",
    "excursion_side_accuracy_large", "majority_side_share_large", "log10_scale", "log10_rmse",
    "log10_slope",
)  # fmt: skip

#: Baseline metrics averaged over pairs when a training range is given.
BASELINE_POOLED_KEYS: tuple[str, ...] = (
    "fitted_baseline_spearman_long", "fitted_baseline_spearman_short",
    "path_baseline_spearman_long", "path_baseline_spearman_short", "long_share_spearman",
    "excursion_long_share_spearman", "fitted_long_share_spearman", "path_long_share_spearman",
)  # fmt: skip


@dataclass
class RealisedEvaluation:
    """Estimated vs realised liquidations over one or more pairs.

    ``per_pair``: pair -> :func:`compare_realised` metrics; ``bars``: pair ->
    :func:`realised_bars`; ``model``: the model's name as given (``"default"`` for none) and
    ``window`` its window; ``timeframe``, ``timerange`` as given; ``report`` the file written.

    :meth:`to_dict` is the ``--json`` object: one pair's metrics, or for several pairs
    ``n_bars`` (total), the :data:`POOLED_KEYS` averaged over pairs and ``per_pair``; then
    ``pairs``, ``timeframe``, ``timerange``, ``model``, ``window``, ``report`` (if written) and
    ``train`` (with a training range: each pair's metrics then also hold the
    :class:`~liqsignals.analysis.baselines.BaselineComparison` keys, and for several pairs the
    :data:`BASELINE_POOLED_KEYS` are averaged like the others).
    """

    per_pair: dict[str, dict[str, Any]]
    bars: dict[str, pd.DataFrame]
    timeframe: str
    model: str = "default"
    window: str = ""
    timerange: str | None = None
    report: str | None = None
    train: str | None = None

    @property
    def pairs(self) -> list[str]:
        return list(self.per_pair)

    def pooled(self) -> dict[str, Any]:
        """The metrics of one pair, or the total ``n_bars`` and the mean of each
        :data:`POOLED_KEYS` metric over the pairs that have it, with ``per_pair``."""
        if len(self.per_pair) == 1:
            return dict(next(iter(self.per_pair.values())))
        out: dict[str, Any] = {"n_bars": sum(m["n_bars"] for m in self.per_pair.values())}
        keys = POOLED_KEYS + (BASELINE_POOLED_KEYS if self.train is not None else ())
        for k in keys:
            vals = [m[k] for m in self.per_pair.values() if m.get(k) is not None]
            out[k] = float(np.mean(vals)) if vals else None
        out["per_pair"] = self.per_pair
        return out

    def to_dict(self) -> dict[str, Any]:
        out = self.pooled()
        out.update(
            pairs=self.pairs, timeframe=self.timeframe, timerange=self.timerange,
            model=self.model, window=self.window,
        )  # fmt: skip
        if self.train is not None:
            out["train"] = self.train
        if self.report is not None:
            out["report"] = self.report
        return json_safe(out)


def evaluate_realised_pairs(
    candles: Mapping[str, pd.DataFrame],
    realised: Mapping[str, pd.DataFrame | str | Path],
    model: LiquidationModel | None = None,
    *,
    model_name: str | None = None,
    timeframe: str | None = None,
    timerange: str | None = None,
    train: str | None = None,
) -> RealisedEvaluation:
    """:func:`evaluate_realised` for every pair of ``candles`` (bars inside ``timerange``,
    freqtrade's ``START-STOP``), as a :class:`RealisedEvaluation`; ``model_name`` and
    ``timeframe`` are carried into it (default ``"default"`` and the candles' spacing).

    With ``train`` (a range that ends before ``timerange`` starts), the candle-only baseline of
    :func:`liqsignals.analysis.baselines.compare_baselines` is fitted on that range's bars and its
    results are added to each pair's metrics (``candles`` must then cover the training range).
    """
    from liqsignals.analysis.baselines import compare_baselines
    from liqsignals.data.datadir import parse_timerange

    if not candles:
        raise ValueError("no candle frames given")
    missing = [p for p in candles if p not in realised]
    if missing:
        raise ValueError(f"no realised liquidations for {missing}")
    m = model or LiquidationModel()
    tr = parse_timerange(timerange)
    per_pair: dict[str, dict[str, Any]] = {}
    bars: dict[str, pd.DataFrame] = {}
    trr = parse_timerange(train) if train is not None else None
    if trr is not None and (tr.start is None or trr.stop is None or trr.stop > tr.start):
        raise ValueError(
            f"the training range {train!r} must end at or before the evaluated range "
            f"{timerange!r} starts (both ends needed)"
        )
    for pair, df in candles.items():
        real = read_realised(realised[pair])
        if trr is None:
            per_pair[pair], bars[pair] = evaluate_realised(
                df, real, m, start=tr.start, stop=tr.stop
            )
            continue
        allbars = realised_bars(df, real, m, start=trr.start, stop=tr.stop)
        d = allbars["date"]
        bar_td = candle_spacing(real["date"]) if len(real) > 1 else pd.Timedelta(0)
        train_bars = allbars.loc[(d + bar_td) <= trr.stop].reset_index(drop=True)
        test_bars = allbars.loc[d >= tr.start].reset_index(drop=True)
        if train_bars.empty or test_bars.empty:
            raise ValueError(f"{pair}: no complete bar in the training or the evaluated range")
        per_pair[pair], bars[pair] = compare_realised(test_bars), test_bars
        per_pair[pair].update(compare_baselines(train_bars, test_bars).to_dict())
    if timeframe is None:
        timeframe = format_timedelta(candle_spacing(candle_dates(next(iter(candles.values())))))
    return RealisedEvaluation(
        per_pair=per_pair, bars=bars, timeframe=timeframe, model=model_name or "default",
        window=m.to_dict()["window"],
        timerange=timerange, train=train,
    )  # fmt: skip
