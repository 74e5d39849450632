"""Stronger candle-only baselines for the realised-liquidation comparison, and the long-share test.

Ranking realised liquidations per bar is mostly ranking volatility, so the estimate is compared
with baselines built from the candles alone (columns of
:func:`liqsignals.analysis.realised.realised_bars`):

* **fitted baseline** (:func:`fit_log_linear`): per side, ordinary least squares of
  ``log1p(realised)`` on 7 parameters, fitted on *training* bars only: intercept, ``log1p`` of the
  bar's long and short excursions (``exc_long``, ``exc_short``), ``log1p`` of the long and short
  path excursions (``path_long``, ``path_short``: the same measured per candle and summed over the
  bar), ``log(quote_volume)`` and the bar return (``return_pct``). Prediction ``expm1(fit)``
  clipped at 0.
* **path-excursion baseline**: ``path_long``, ``path_short`` themselves.
* **long-share test**: on the busier half of the evaluated bars (realised long + short at or above
  its median), Spearman of the realised long share ``long / (long + short)`` with the model's share,
  the excursion share and the fitted baseline's share.

Differences "model minus baseline" of Spearman correlations get a paired circular moving-block
bootstrap interval (:func:`spearman_difference`): blocks of consecutive bars are drawn with
replacement (the scheme of :func:`liqsignals.analysis.intervals.paired_block_bootstrap`) and both
correlations are recomputed on the same resampled bars.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from liqsignals.analysis.common import json_safe, spearman
from liqsignals.analysis.intervals import Interval

__all__ = [
    "BASELINE_FEATURES",
    "BaselineComparison",
    "LogLinearBaseline",
    "block_indices",
    "busier_half",
    "candle_features",
    "compare_baselines",
    "fit_log_linear",
    "long_share",
    "row_spearman",
    "spearman_difference",
]

#: Bar columns the fitted baseline reads (besides the realised target).
BASELINE_FEATURES: tuple[str, ...] = (
    "exc_long", "exc_short", "path_long", "path_short", "quote_volume", "return_pct",
)  # fmt: skip


def candle_features(bars: pd.DataFrame) -> np.ndarray:
    """Design matrix of the fitted baseline, shape ``(n, 7)``: a column of ones, ``log1p`` of
    ``exc_long, exc_short, path_long, path_short``, ``log(quote_volume)``, ``return_pct``.

    Raises ``ValueError`` naming the column and row of a missing column, a non-finite value, a
    negative excursion or a non-positive quote volume.
    """
    missing = [c for c in BASELINE_FEATURES if c not in bars.columns]
    if missing:
        raise ValueError(f"bars: missing column(s) {missing} (from realised_bars)")
    cols = [np.ones(len(bars))]
    for c in BASELINE_FEATURES:
        v = bars[c].to_numpy(dtype=np.float64)
        lower = 0.0 if c != "return_pct" else -math.inf
        bad = ~np.isfinite(v) | (v < lower) | ((v <= 0) if c == "quote_volume" else False)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"bars: column {c!r} has an invalid value {v[i]!r} at row {i}")
        if c == "quote_volume":
            cols.append(np.log(v))
        elif c == "return_pct":
            cols.append(v)
        else:
            cols.append(np.log1p(v))
    return np.column_stack(cols)


@dataclass(frozen=True)
class LogLinearBaseline:
    """A fitted candle-only baseline: ``coef_long``, ``coef_short`` (7 each, in the order of
    :func:`candle_features`) and ``n_train`` (training bars)."""

    coef_long: tuple[float, ...]
    coef_short: tuple[float, ...]
    n_train: int

    def predict(self, bars: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Predicted long and short liquidations per bar (quote), ``expm1(X @ coef)`` at >= 0."""
        x = candle_features(bars)
        out = []
        for coef in (self.coef_long, self.coef_short):
            with np.errstate(over="ignore"):
                out.append(np.maximum(np.expm1(x @ np.asarray(coef)), 0.0))
        return out[0], out[1]


def fit_log_linear(bars: pd.DataFrame) -> LogLinearBaseline:
    """Least-squares fit of ``log1p(real_long)`` and ``log1p(real_short)`` on
    :func:`candle_features` of ``bars`` (the training bars).

    Raises ``ValueError`` with fewer than 14 bars (twice the parameters) or a rank-deficient
    design (e.g. a constant feature).
    """
    x = candle_features(bars)
    n, k = x.shape
    if n < 2 * k:
        raise ValueError(f"fitted baseline: {n} training bars, need at least {2 * k}")
    if np.linalg.matrix_rank(x) < k:
        raise ValueError("fitted baseline: the candle features are collinear on the training bars")
    coefs = []
    for col in ("real_long", "real_short"):
        y = bars[col].to_numpy(dtype=np.float64)
        if not np.all(np.isfinite(y)) or (y < 0).any():
            raise ValueError(f"bars: column {col!r} must be finite and non-negative")
        coef, *_ = np.linalg.lstsq(x, np.log1p(y), rcond=None)
        coefs.append(tuple(float(c) for c in coef))
    return LogLinearBaseline(coefs[0], coefs[1], int(n))


def long_share(long: np.ndarray, short: np.ndarray) -> np.ndarray:
    """``long / (long + short)`` per bar; NaN where both are 0."""
    lo = np.asarray(long, dtype=np.float64)
    tot = lo + np.asarray(short, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tot > 0, lo / np.where(tot > 0, tot, 1.0), np.nan)


def busier_half(real_long: np.ndarray, real_short: np.ndarray) -> np.ndarray:
    """Mask of the bars whose realised total is at or above the median total."""
    tot = np.asarray(real_long, dtype=np.float64) + np.asarray(real_short, dtype=np.float64)
    return np.asarray(tot >= np.median(tot))


# ----------------------------------------------------------------------------- bootstrap
def block_indices(n: int, block: int, resamples: int, seed: int) -> np.ndarray:
    """Indices of ``resamples`` circular moving-block resamples of ``n`` samples, shape
    ``(resamples, ceil(n / block) * block)``: block starts drawn uniformly among the ``n``
    positions, each block ``block`` consecutive samples modulo ``n``."""
    if n < 1 or block < 1 or resamples < 1:
        raise ValueError(f"need n, block, resamples >= 1, got {n}, {block}, {resamples}")
    b = min(int(block), n)
    k = math.ceil(n / b)
    starts = np.random.default_rng(seed).integers(0, n, size=(resamples, k))
    return ((starts[:, :, None] + np.arange(b)[None, None, :]) % n).reshape(resamples, k * b)


def _row_ranks(a: np.ndarray) -> np.ndarray:
    """Average ranks (1-based, ties shared) along the last axis of a 2-D array."""
    r, m = a.shape
    order = np.argsort(a, axis=1, kind="stable")
    s = np.take_along_axis(a, order, axis=1)
    pos = np.broadcast_to(np.arange(m), (r, m))
    change = np.ones((r, m), dtype=bool)
    change[:, 1:] = s[:, 1:] != s[:, :-1]
    start = np.maximum.accumulate(np.where(change, pos, 0), axis=1)
    last = np.ones((r, m), dtype=bool)
    last[:, :-1] = change[:, 1:]
    end = np.minimum.accumulate(np.where(last, pos, m)[:, ::-1], axis=1)[:, ::-1]
    ranks = np.empty((r, m))
    np.put_along_axis(ranks, order, (start + end) / 2.0 + 1.0, axis=1)
    return ranks


def row_spearman(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman correlation of each row of ``x`` with the same row of ``y`` (2-D, finite);
    NaN for a row where either side is constant."""
    rx, ry = _row_ranks(np.asarray(x, dtype=np.float64)), _row_ranks(np.asarray(y, np.float64))
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    den = np.sqrt((rx * rx).sum(axis=1) * (ry * ry).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (rx * ry).sum(axis=1) / np.where(den > 0, den, 1.0), np.nan)


def spearman_difference(
    target: np.ndarray,
    model: np.ndarray,
    baseline: np.ndarray,
    *,
    block: int = 12,
    resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Interval:
    """``spearman(model, target) - spearman(baseline, target)`` with a paired circular
    moving-block bootstrap percentile interval (both correlations on the same resampled samples,
    in time order). Samples where any of the three is not finite are dropped first. The
    one-sided p-value is ``(1 + #{resampled difference <= 0}) / (1 + resamples)``; resamples where
    a side is constant are left out. Raises ``ValueError`` on misaligned input or fewer than 3
    usable samples."""
    t, a, b = (np.asarray(v, dtype=np.float64) for v in (target, model, baseline))
    if not t.shape == a.shape == b.shape or t.ndim != 1:
        raise ValueError(
            f"target, model, baseline must be 1-D and aligned: {t.shape, a.shape, b.shape}"
        )
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    ok = np.isfinite(t) & np.isfinite(a) & np.isfinite(b)
    t, a, b = t[ok], a[ok], b[ok]
    n = t.shape[0]
    if n < 3:
        raise ValueError(f"{n} usable samples: need at least 3 for a rank correlation")
    est = spearman(a, t) - spearman(b, t)
    idx = block_indices(n, block, resamples, seed)
    boot = np.empty(resamples)
    chunk = max(1, 2_000_000 // idx.shape[1])
    for lo in range(0, resamples, chunk):
        sl = idx[lo : lo + chunk]
        tt = t[sl]
        boot[lo : lo + chunk] = row_spearman(a[sl], tt) - row_spearman(b[sl], tt)
    boot = boot[np.isfinite(boot)]
    if boot.size == 0 or not math.isfinite(est):
        nan = math.nan
        return Interval(est, nan, nan, nan, min(block, n), n, int(boot.size), confidence, 0.0)
    alpha = 1.0 - confidence
    low, high = np.quantile(boot, [alpha / 2.0, 1.0 - alpha / 2.0])
    p = (1.0 + float(np.sum(boot <= 0.0))) / (1.0 + boot.size)
    return Interval(float(est), float(low), float(high), float(p), min(int(block), n), int(n),
                    int(boot.size), float(confidence), 0.0)  # fmt: skip


# ----------------------------------------------------------------------------- comparison
@dataclass
class BaselineComparison:
    """Model vs candle-only baselines on the evaluated bars, the baseline fitted on training bars.

    ``metrics`` holds the scalar results (see :func:`compare_baselines`), ``intervals`` the
    bootstrap :class:`~liqsignals.analysis.intervals.Interval` of each difference by name,
    ``baseline`` the fit. :meth:`to_dict` flattens them: for each interval ``NAME`` the keys
    ``NAME`` (estimate), ``NAME_ci_low``, ``NAME_ci_high``, ``NAME_p``.
    """

    metrics: dict[str, Any]
    intervals: dict[str, Interval]
    baseline: LogLinearBaseline
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.metrics)
        for name, iv in self.intervals.items():
            out[name] = iv.estimate
            out[f"{name}_ci_low"] = iv.low
            out[f"{name}_ci_high"] = iv.high
            out[f"{name}_p"] = iv.p_value
        out["fitted_coef_long"] = list(self.baseline.coef_long)
        out["fitted_coef_short"] = list(self.baseline.coef_short)
        out.update(self.settings)
        return dict(json_safe(out))


def compare_baselines(
    train: pd.DataFrame,
    test: pd.DataFrame,
    *,
    block: int = 12,
    resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> BaselineComparison:
    """Fit the candle-only baseline on ``train`` bars and compare on ``test`` bars (both from
    :func:`~liqsignals.analysis.realised.realised_bars`).

    Metrics: ``n_train_bars``, ``train_first_bar``, ``train_last_bar``,
    ``fitted_baseline_spearman_long|short``, ``path_baseline_spearman_long|short`` (test bars);
    ``n_busy_bars`` and on them ``long_share_spearman`` (model), ``excursion_long_share_spearman``,
    ``fitted_long_share_spearman``, ``path_long_share_spearman``. Intervals (model minus baseline):
    ``diff_vs_fitted_long|short``, ``diff_vs_path_long|short``, ``diff_vs_excursion_long|short``,
    ``diff_share_vs_fitted``, ``diff_share_vs_excursion``.

    Raises ``ValueError`` when the ranges overlap (a test bar at or before the last training bar).
    """
    if train.empty or test.empty:
        raise ValueError("compare_baselines: no training or no evaluated bars")
    if pd.Timestamp(test["date"].iloc[0]) <= pd.Timestamp(train["date"].iloc[-1]):
        raise ValueError(
            f"the training bars (to {train['date'].iloc[-1]}) must end before the evaluated bars "
            f"(from {test['date'].iloc[0]})"
        )
    fit = fit_log_linear(train)
    fl, fs = fit.predict(test)
    col = {c: test[c].to_numpy(dtype=np.float64) for c in test.columns if c != "date"}
    rl, rs = col["real_long"], col["real_short"]
    boot: dict[str, Any] = {
        "block": block,
        "resamples": resamples,
        "seed": seed,
        "confidence": confidence,
    }
    metrics: dict[str, Any] = {
        "n_train_bars": int(len(train)),
        "train_first_bar": pd.Timestamp(train["date"].iloc[0]).isoformat(),
        "train_last_bar": pd.Timestamp(train["date"].iloc[-1]).isoformat(),
        "fitted_baseline_spearman_long": spearman(fl, rl),
        "fitted_baseline_spearman_short": spearman(fs, rs),
        "path_baseline_spearman_long": spearman(col["path_long"], rl),
        "path_baseline_spearman_short": spearman(col["path_short"], rs),
    }
    iv: dict[str, Interval] = {}
    for side, real, fitted in (("long", rl, fl), ("short", rs, fs)):
        est = col[f"est_{side}"]
        iv[f"diff_vs_fitted_{side}"] = spearman_difference(real, est, fitted, **boot)
        iv[f"diff_vs_path_{side}"] = spearman_difference(real, est, col[f"path_{side}"], **boot)
        iv[f"diff_vs_excursion_{side}"] = spearman_difference(real, est, col[f"exc_{side}"], **boot)
    busy = busier_half(rl, rs)
    share = long_share(rl, rs)[busy]
    shares = {
        "long_share_spearman": long_share(col["est_long"], col["est_short"])[busy],
        "excursion_long_share_spearman": long_share(col["exc_long"], col["exc_short"])[busy],
        "fitted_long_share_spearman": long_share(fl, fs)[busy],
        "path_long_share_spearman": long_share(col["path_long"], col["path_short"])[busy],
    }
    metrics["n_busy_bars"] = int(busy.sum())
    for name, s in shares.items():
        metrics[name] = spearman(s, share)
    model_share = shares["long_share_spearman"]
    iv["diff_share_vs_fitted"] = spearman_difference(
        share, model_share, shares["fitted_long_share_spearman"], **boot
    )
    iv["diff_share_vs_excursion"] = spearman_difference(
        share, model_share, shares["excursion_long_share_spearman"], **boot
    )
    settings = {f"bootstrap_{k}": v for k, v in boot.items()}
    return BaselineComparison(metrics, iv, fit, settings)
