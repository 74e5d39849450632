"""Liquidation-risk forecast: does the book near price at the start of a bar forecast that bar's
realised liquidations and its range better than past volatility and volume alone?

Rules fixed in ``docs/preregistration.md`` (Question 3). Per bar (``bar`` long, 4h by default)
of the candles, everything that forecasts the bar is read at the close of the last candle before
it opens (:func:`risk_bars`):

* **model A** (:data:`PAST_FEATURES`): log range of the previous bar, log of the mean range of the
  previous 6 bars, log of the standard deviation of the candle log returns over the previous week,
  log quote volume of the previous bar, log of the mean quote volume of the previous 6 bars, sine
  and cosine of the bar's hour of day;
* **model B**: A plus the book (:data:`BOOK_FEATURES`): ``log1p`` of ``liq_long_band`` and
  ``liq_short_band``, ``log1p`` of the nearest long / short cluster sizes and their distances in
  units of the bar volatility ``sigma_bar = std(log returns, 1w) x sqrt(candles per bar)``,
  clipped to [0, 10] (no cluster: size 0, distance 10).

Targets: ``total`` = ``log1p(long + short)`` realised liquidations, ``long``, ``short`` (``log1p``
of one side) and ``range`` = ``log(max high / min low)`` of the bar.

:func:`walk_forward`: ordinary least squares on features standardised with the training mean and
standard deviation, refitted every calendar month on every bar that ended before the month
(expanding window); the first predicted month is the first one starting at least ``min_days``
after the first usable bar. :func:`risk_test`: ``improvement = mean(SE_A - SE_B)`` of the squared
errors per predicted bar (positive: the book helps) with a paired circular moving-block bootstrap
interval (:func:`liqsignals.analysis.intervals.paired_block_bootstrap`, block 1 week of bars).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from liqsignals.analysis.common import candle_dates, candle_spacing, json_safe, utc_dates
from liqsignals.analysis.intervals import Interval, paired_block_bootstrap

__all__ = [
    "BOOK_FEATURES",
    "PAST_FEATURES",
    "TARGETS",
    "RiskResult",
    "main",
    "risk_bars",
    "risk_test",
    "walk_forward",
]

PAST_FEATURES: tuple[str, ...] = (
    "log_prev_range", "log_mean_range_1d", "log_sigma_1w", "log_prev_volume",
    "log_mean_volume_1d", "hour_sin", "hour_cos",
)  # fmt: skip
BOOK_FEATURES: tuple[str, ...] = (
    "log_long_band", "log_short_band", "log_long_cluster", "log_short_cluster",
    "long_cluster_sigmas", "short_cluster_sigmas",
)  # fmt: skip
TARGETS: tuple[str, ...] = ("total", "long", "short", "range")

_BOOK_COLUMNS = ("liq_long_band", "liq_short_band", "liq_long_cluster_size",
                 "liq_short_cluster_size", "liq_long_cluster_dist_pct",
                 "liq_short_cluster_dist_pct")  # fmt: skip


def risk_bars(
    candles: pd.DataFrame,
    features: pd.DataFrame,
    realised: pd.DataFrame | None = None,
    *,
    bar: str | pd.Timedelta = "4h",
    start: Any = None,
    stop: Any = None,
) -> pd.DataFrame:
    """One row per complete bar with its forecasting features (read before it opens) and targets.

    Parameters
    ----------
    candles : candle frame (``date, open, high, low, close, volume``), evenly spaced; include a
        week and 6 bars of history before the first bar of interest.
    features : the ``liq_*`` columns aligned to ``candles`` (``liquidation_features`` output).
    realised : optional :func:`liqsignals.analysis.realised.read_realised` frame: bars are then
        the realised bars (targets ``total``, ``long``, ``short`` filled), else every bar.
    bar : bar length, a whole multiple of the candle spacing.
    start, stop : keep bars opening at or after ``start`` and ending at or before ``stop``.

    Returns
    -------
    DataFrame: ``date`` (bar open, UTC), :data:`PAST_FEATURES`, :data:`BOOK_FEATURES`, ``range``
    and, with ``realised``, ``total``, ``long``, ``short``. Bars with missing candles, missing
    history, a zero-volume candle or a book still in the engine's warm-up (NaN band) are left
    out; a missing cluster counts as size 0 at distance 10.

    Raises ``ValueError`` on misaligned features, a bar that is not a multiple of the candles, or
    no complete bar.
    """
    from liqsignals.analysis.common import utc_timestamp
    from liqsignals.features import timeframe_to_timedelta

    if len(features) != len(candles):
        raise ValueError("features and candles must have the same length")
    miss = [c for c in _BOOK_COLUMNS if c not in features.columns]
    if miss:
        raise ValueError(f"features lack column(s) {miss}; pass liquidation_features(...) output")
    dates = candle_dates(candles)
    tf = candle_spacing(dates)
    bar_td = timeframe_to_timedelta(bar) if isinstance(bar, str) else pd.Timedelta(bar)
    ratio = bar_td / tf
    if ratio < 1 or abs(ratio - round(ratio)) > 1e-9:
        raise ValueError(f"bar ({bar_td}) must be a whole multiple of the candles ({tf})")
    k = int(round(ratio))
    week = int(round(pd.Timedelta(days=7) / tf))
    day_bars = max(1, int(round(pd.Timedelta(days=1) / bar_td)))
    o, h, lo, c, v = (candles[x].to_numpy(dtype=np.float64)
                      for x in ("open", "high", "low", "close", "volume"))  # fmt: skip
    qv = v * (h + lo + c) / 3.0
    s_hi = pd.Series(h).rolling(k, min_periods=k).max().to_numpy()
    s_lo = pd.Series(lo).rolling(k, min_periods=k).min().to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        rng_k = np.log(s_hi / s_lo)  # range of the k candles ending at each candle
        lr = np.concatenate([[np.nan], np.diff(np.log(c))])
    sig = pd.Series(lr).rolling(week, min_periods=week).std().to_numpy()
    qv_k = pd.Series(qv).rolling(k, min_periods=k).sum().to_numpy()
    zero = pd.Series((v <= 0).astype(float)).rolling(k, min_periods=k).sum().to_numpy()
    # bars: open times on the bar grid, all k candles present
    if realised is not None:
        bdates = utc_dates(realised["date"])
    else:
        first = pd.Timestamp(dates[0]).ceil(bar_td)
        bdates = pd.date_range(first, pd.Timestamp(dates[-1]), freq=bar_td).as_unit("ns")
        bdates = bdates.to_numpy()
    idx = np.searchsorted(dates, bdates)
    n = dates.shape[0]
    end = idx + k - 1  # last candle of the bar
    prev = idx - 1  # the candle whose close forecasts the bar
    ok = (idx < n) & (end < n) & (prev >= 0)
    ok &= np.where(ok, dates[np.minimum(idx, n - 1)] == bdates, False)
    ok &= np.where(ok, dates[np.minimum(end, n - 1)] - dates[np.minimum(idx, n - 1)]
                   == (k - 1) * tf.to_timedelta64(), False)  # fmt: skip
    ok &= np.where(ok, dates[np.maximum(prev, 0)] == bdates - tf.to_timedelta64(), False)
    ok &= prev - (day_bars - 1) * k >= 0
    if start is not None:
        ok &= bdates >= utc_dates([utc_timestamp(start)])[0]
    if stop is not None:
        ok &= bdates + bar_td.to_timedelta64() <= utc_dates([utc_timestamp(stop)])[0]
    if not ok.any():
        raise ValueError("no complete bar with a week of history before it")
    bi, be, bp = idx[ok], end[ok], prev[ok]
    past_r = np.stack([rng_k[bp - j * k] for j in range(day_bars)])
    past_v = np.stack([qv_k[bp - j * k] for j in range(day_bars)])
    hour = pd.DatetimeIndex(bdates[ok]).hour.to_numpy() + pd.DatetimeIndex(bdates[ok]).minute / 60
    sigma_bar = sig[bp] * math.sqrt(k)
    f = {col: features[col].to_numpy(dtype=np.float64)[bp] for col in _BOOK_COLUMNS}
    with np.errstate(divide="ignore", invalid="ignore"):
        out = pd.DataFrame(
            {
                "date": pd.DatetimeIndex(bdates[ok]).tz_localize("UTC"),
                "log_prev_range": np.log(np.maximum(past_r[0], 1e-6)),
                "log_mean_range_1d": np.log(np.maximum(past_r.mean(axis=0), 1e-6)),
                "log_sigma_1w": np.log(np.maximum(sig[bp], 1e-9)),
                "log_prev_volume": np.log1p(past_v[0]),
                "log_mean_volume_1d": np.log1p(past_v.mean(axis=0)),
                "hour_sin": np.sin(2 * np.pi * hour / 24.0),
                "hour_cos": np.cos(2 * np.pi * hour / 24.0),
                "log_long_band": np.log1p(np.nan_to_num(f["liq_long_band"], nan=0.0)),
                "log_short_band": np.log1p(np.nan_to_num(f["liq_short_band"], nan=0.0)),
                "log_long_cluster": np.log1p(np.nan_to_num(f["liq_long_cluster_size"], nan=0.0)),
                "log_short_cluster": np.log1p(np.nan_to_num(f["liq_short_cluster_size"], nan=0.0)),
                "long_cluster_sigmas": _sigmas(f["liq_long_cluster_dist_pct"], sigma_bar),
                "short_cluster_sigmas": _sigmas(f["liq_short_cluster_dist_pct"], sigma_bar),
                "range": np.log(
                    np.array(
                        [
                            h[a : b + 1].max() / lo[a : b + 1].min()
                            for a, b in zip(bi, be, strict=True)
                        ]
                    )
                ),  # fmt: skip
                "_zero": zero[be] + zero[bp],
            }
        )
    if realised is not None:
        rl = realised["long_liquidation_usd"].to_numpy(dtype=np.float64)[ok]
        rs = realised["short_liquidation_usd"].to_numpy(dtype=np.float64)[ok]
        out["total"] = np.log1p(rl + rs)
        out["long"] = np.log1p(rl)
        out["short"] = np.log1p(rs)
    cols = list(PAST_FEATURES + BOOK_FEATURES) + ["range"]
    warm = ~(np.isfinite(f["liq_long_band"]) & np.isfinite(f["liq_short_band"]))  # engine warm-up
    good = np.isfinite(out[cols].to_numpy()).all(axis=1) & (out["_zero"].to_numpy() == 0) & ~warm
    out = out.loc[good].drop(columns="_zero").reset_index(drop=True)
    if out.empty:
        raise ValueError("no complete bar: every bar misses history, volume or the book")
    return out


def _sigmas(dist_pct: np.ndarray, sigma_bar: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.abs(dist_pct) / 100.0 / sigma_bar
    return np.clip(np.where(np.isfinite(s), s, 10.0), 0.0, 10.0)


def _ols(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray) -> np.ndarray:
    mu = x_train.mean(axis=0)
    sd = x_train.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    a = np.column_stack([np.ones(len(x_train)), (x_train - mu) / sd])
    b = np.column_stack([np.ones(len(x_test)), (x_test - mu) / sd])
    coef, *_ = np.linalg.lstsq(a, y_train, rcond=None)
    return np.asarray(b @ coef)


def walk_forward(
    bars: pd.DataFrame,
    target: str,
    *,
    bar: str | pd.Timedelta = "4h",
    min_days: float = 60.0,
    past: Sequence[str] = PAST_FEATURES,
    book: Sequence[str] = BOOK_FEATURES,
) -> pd.DataFrame:
    """Monthly expanding-window forecasts of ``target`` by model A (``past``) and B (``past`` +
    ``book``): one row per predicted bar, ``date, month, y, pred_a, pred_b, se_a, se_b``.

    Raises ``ValueError`` for an unknown target column or when no month can be predicted (fewer
    than ``2 x`` the parameters of B in the training bars).
    """
    from liqsignals.features import timeframe_to_timedelta

    if target not in bars.columns:
        raise ValueError(
            f"bars have no target column {target!r} (realised targets need --realised)"
        )
    bar_td = timeframe_to_timedelta(bar) if isinstance(bar, str) else pd.Timedelta(bar)
    d = pd.DatetimeIndex(bars["date"])
    d_naive = d.tz_convert("UTC").tz_localize(None) if d.tz is not None else d
    month = d_naive.to_period("M")
    first_ok = d_naive[0] + pd.Timedelta(days=min_days)
    start_month = first_ok.to_period("M") + (0 if first_ok == first_ok.to_period("M").start_time
                                             else 1)  # fmt: skip
    y = bars[target].to_numpy(dtype=np.float64)
    xa = bars[list(past)].to_numpy(dtype=np.float64)
    xb = bars[list(past) + list(book)].to_numpy(dtype=np.float64)
    ends = d_naive + bar_td
    rows = []
    for m in sorted(set(month[month >= start_month])):
        test = np.asarray(month == m)
        train = np.asarray(ends <= m.start_time)
        if train.sum() < 2 * (xb.shape[1] + 1):
            continue
        pa = _ols(xa[train], y[train], xa[test])
        pb = _ols(xb[train], y[train], xb[test])
        rows.append(pd.DataFrame({"date": d[test], "month": str(m), "y": y[test], "pred_a": pa,
                                  "pred_b": pb}))  # fmt: skip
    if not rows:
        raise ValueError(
            f"no month to predict: bars {d[0]} .. {d[-1]}, first predicted month {start_month}"
        )
    out = pd.concat(rows, ignore_index=True)
    out["se_a"] = (out["y"] - out["pred_a"]) ** 2
    out["se_b"] = (out["y"] - out["pred_b"]) ** 2
    return out


@dataclass
class RiskResult:
    """One cell: ``improvement`` (mean SE_A - SE_B) with its interval, the mean squared errors
    and out-of-sample R^2 of both models, the predicted bars and months; ``settings`` are added
    to :meth:`to_dict`."""

    target: str
    improvement: Interval
    mse_a: float
    mse_b: float
    r2_a: float
    r2_b: float
    n_bars: int
    months: list[str]
    first_bar: str
    last_bar: str
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "target": self.target,
            "improvement": self.improvement.estimate,
            "improvement_ci_low": self.improvement.low,
            "improvement_ci_high": self.improvement.high,
            "improvement_p": self.improvement.p_value,
            "relative_improvement": self.improvement.estimate / self.mse_a
            if self.mse_a > 0
            else math.nan,
            "mse_a": self.mse_a,
            "mse_b": self.mse_b,
            "r2_a": self.r2_a,
            "r2_b": self.r2_b,
            "n_bars": self.n_bars,
            "predicted_months": self.months,
            "first_bar": self.first_bar,
            "last_bar": self.last_bar,
            "block": self.improvement.block,
            "resamples": self.improvement.resamples,
        }
        out.update(self.settings)
        return dict(json_safe(out))


def risk_test(
    bars: pd.DataFrame,
    target: str,
    *,
    bar: str | pd.Timedelta = "4h",
    min_days: float = 60.0,
    block: int | None = None,
    resamples: int = 2000,
    seed: int = 0,
) -> RiskResult:
    """:func:`walk_forward` then the paired block bootstrap of ``SE_A - SE_B`` (``block``
    default: one week of bars)."""
    from liqsignals.features import timeframe_to_timedelta

    bar_td = timeframe_to_timedelta(bar) if isinstance(bar, str) else pd.Timedelta(bar)
    wf = walk_forward(bars, target, bar=bar_td, min_days=min_days)
    blk = max(1, int(round(pd.Timedelta(days=7) / bar_td))) if block is None else int(block)
    iv = paired_block_bootstrap(wf["se_a"].to_numpy(), wf["se_b"].to_numpy(), block=blk,
                                resamples=resamples, seed=seed)  # fmt: skip
    var = float(np.var(wf["y"].to_numpy()))
    mse_a, mse_b = float(wf["se_a"].mean()), float(wf["se_b"].mean())
    return RiskResult(
        target=target, improvement=iv, mse_a=mse_a, mse_b=mse_b,
        r2_a=1 - mse_a / var if var > 0 else math.nan,
        r2_b=1 - mse_b / var if var > 0 else math.nan,
        n_bars=int(len(wf)), months=sorted(set(wf["month"])),
        first_bar=str(wf["date"].iloc[0]), last_bar=str(wf["date"].iloc[-1]),
    )  # fmt: skip


# ----------------------------------------------------------------------------- command
def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="liqsignals evaluate risk",
        description="Does the book near price at a bar's start forecast the bar's realised "
        "liquidations and range better than past volatility and volume alone? Monthly "
        "walk-forward OLS, paired block-bootstrap interval of the squared-error improvement.",
    )
    ap.add_argument("--datadir", required=True, help="freqtrade datadir (exchange folder)")
    ap.add_argument("--pairs", nargs="+", required=True, help="ccxt symbols, e.g. BTC/USDT:USDT")
    ap.add_argument("--timeframe", default="15m")
    ap.add_argument("--timerange", default=None, help="bars inside it, e.g. 20241101-20250601")
    ap.add_argument("--bar", default="4h", help="bar length (default 4h)")
    ap.add_argument("--model", default=None, help="preset name or model JSON (default model)")
    ap.add_argument("--realised", nargs="+", type=Path, default=None,
                    help="realised liquidations CSV per pair (targets total, long, short)")  # fmt: skip
    ap.add_argument("--targets", nargs="+", default=None, choices=TARGETS,
                    help="default: all four with --realised, else range")  # fmt: skip
    ap.add_argument("--min-days", type=float, default=60.0, help="history before the first month")
    ap.add_argument("--resamples", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    return ap


def _model(spec: str | None) -> Any:
    from liqsignals.model import LiquidationModel

    if spec is None:
        return LiquidationModel()
    path = Path(spec)
    if path.suffix == ".json" or path.is_file():
        if not path.is_file():
            raise FileNotFoundError(f"--model: model file {path} does not exist")
        return LiquidationModel.from_json(path)
    return LiquidationModel.preset(spec)


def main(argv: Sequence[str] | None = None) -> int:
    """``liqsignals evaluate risk``: ``--json`` prints one object, the first pair's first target
    at the top level (the primary cell) and every cell in ``cells``."""
    from liqsignals.analysis.realised import read_realised
    from liqsignals.data.datadir import TimeRange, load_candles, parse_timerange
    from liqsignals.features import liquidation_features

    args = _parser().parse_args(argv)
    cells: list[dict[str, Any]] = []
    try:
        if args.realised is not None and len(args.realised) != len(args.pairs):
            raise ValueError("--realised needs one CSV per pair (same order as --pairs)")
        targets = args.targets or (list(TARGETS) if args.realised else ["range"])
        if args.realised is None and any(t != "range" for t in targets):
            raise ValueError("targets total, long and short need --realised")
        model = _model(args.model)
        tr = parse_timerange(args.timerange)
        pad = model.window_td + pd.Timedelta(days=9)
        lo = None if tr.start is None else tr.start - pad
        for k, pair in enumerate(args.pairs):
            df = load_candles(args.datadir, pair, args.timeframe, timerange=TimeRange(lo, tr.stop))
            print(f"{pair}: liq_* features on {len(df)} candles ...", file=sys.stderr)
            feats = liquidation_features(df, model)
            real = read_realised(args.realised[k]) if args.realised else None
            bars = risk_bars(df, feats, real, bar=args.bar, start=tr.start, stop=tr.stop)
            for target in targets:
                res = risk_test(bars, target, bar=args.bar, min_days=args.min_days,
                                resamples=args.resamples, seed=args.seed)  # fmt: skip
                res.settings = {"pair": pair, "timeframe": args.timeframe, "bar": args.bar,
                                "timerange": args.timerange, "model": args.model or "default"}  # fmt: skip
                cells.append(res.to_dict())
    except (ValueError, FileNotFoundError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        out = dict(cells[0])
        out["cells"] = cells
        print(json.dumps(json_safe(out), allow_nan=False))
        return 0
    for r in cells:
        print(f"{r['pair']} {r['target']:5s} n={r['n_bars']} improvement {r['improvement']:+.3g} "
              f"[{r['improvement_ci_low']:+.3g}, {r['improvement_ci_high']:+.3g}] "
              f"R2 A {r['r2_a']:.3f} B {r['r2_b']:.3f}")  # fmt: skip
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
