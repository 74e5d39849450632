"""Incremental information: does ``liq_*`` improve a touch forecast that already sees price?

At sampled candles ``t`` (every ``step`` candles) two labels are read from the future and two
feature sets from data ``<= t`` (the rules are fixed in ``docs/preregistration.md``):

* labels (:func:`touch_labels`): ``up`` when ``max(high[t+1..t+H]) >= close * (1 + d)``, ``down``
  when ``min(low[t+1..t+H]) <= close * (1 - d)``, with ``d = k * sigma * sqrt(H)`` and ``sigma``
  the standard deviation of the 1-candle log returns of the ``vol_lookback`` candles up to ``t``
  (``k = 1``: about 30-45 % per side);
* model A (:func:`price_features`): distances to prior highs/lows, ATR, volatility, returns,
  relative volume, time of day and week, funding when given;
* model B: A plus :func:`liq_feature_frame` (the ``liq_*`` columns as distances and relative
  sizes, never raw prices).

Both go through the same learner (``logistic`` or ``gbm``, fixed hyper-parameters) and the same
transform fitted on the training fold only (signed log, clipping at the training 1/99 % quantiles,
median fill with missing indicators, standardisation). Walk-forward (:func:`walk_forward`): for
each calendar month, fit on the samples whose label window ends before the month starts (a gap of
``H``), predict the month, refit every month. The score is the per-sample mean of the two binary
log losses; ``improvement = logloss(A) - logloss(B)`` (positive: ``liq_*`` helps) with paired
moving-block bootstrap intervals (1-day and 1-week blocks), and the permutation importance of each
``liq_*`` feature in B.

Run: ``python -m liqsignals.analysis.information --datadir DIR --pairs BTC/USDT:USDT
--timeframe 1h [--json]``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from liqsignals._time import to_utc_datetime
from liqsignals.analysis.common import candle_dates, future_extremes
from liqsignals.analysis.intervals import Interval, holm, paired_block_bootstrap
from liqsignals.extras import require
from liqsignals.features import liquidation_features, timeframe_to_timedelta
from liqsignals.model import parse_duration

__all__ = [
    "LEARNERS",
    "STATISTICS",
    "InformationOptions",
    "InformationResult",
    "Transform",
    "information_test",
    "liq_feature_frame",
    "log_loss",
    "main",
    "clark_west_terms",
    "make_learner",
    "price_features",
    "touch_labels",
    "walk_forward",
]

#: The learners of the test (same for A and B, fixed hyper-parameters: no tuning budget).
LEARNERS: tuple[str, ...] = ("logistic", "gbm")
#: The headline statistics: Clark-West adjusted Brier difference (primary since the amendment
#: of 2026-12-02 in ``docs/preregistration.md``) and the raw log-loss difference (registered first).
STATISTICS: tuple[str, ...] = ("clark_west", "logloss")
#: Measured limits of the Clark-West statistic per learner (``docs/evidence_information.md``).
_CW_NOTE = {
    "gbm": "not calibrated for gbm: on random walks its interval lies above 0 in 12 of 12 seeds "
    "(B's trees refit the price inputs differently from A's, so (pA-pB)^2 holds A's own "
    "estimation noise too); read the raw log-loss and Brier differences",
}
_EPS = 1e-6
_C = 1.0


@dataclass(frozen=True)
class InformationOptions:
    """Settings of :func:`information_test` (defaults: the pre-registered primary cell).

    horizon : wall-clock duration or candles (int); k : ``d = k * sigma * sqrt(H)``;
    vol_lookback : candles of ``sigma`` (and of the longest high/low, volume mean);
    learner : ``"logistic"`` or ``"gbm"``; step : sampling step in candles (None: ``H // 4``);
    min_train_days : the first predicted month starts this long after the first sample;
    window : model window of ``liq_*`` (when the features are computed here);
    resamples, seed : bootstrap; importance_repeats : permutations per feature (0: skip);
    statistic : the headline statistic, ``"clark_west"`` (the amended primary: Clark-West
    adjusted Brier difference) or ``"logloss"`` (the originally registered log-loss
    difference); both are always computed and reported.
    """

    horizon: str | int = "1d"
    k: float = 1.0
    vol_lookback: int = 168
    learner: str = "logistic"
    step: int | None = None
    min_train_days: float = 180.0
    window: str = "1w"
    resamples: int = 2000
    seed: int = 0
    importance_repeats: int = 5
    statistic: str = "clark_west"


def _horizon_candles(horizon: str | int, timeframe: pd.Timedelta) -> int:
    if isinstance(horizon, (int, np.integer)):
        h = int(horizon)
    else:
        h = int(round(parse_duration(horizon, "horizon") / timeframe))
    if h < 1:
        raise ValueError(f"horizon must be at least one candle, got {horizon!r}")
    return h


def _sigma(close: np.ndarray, lookback: int) -> np.ndarray:
    r = np.diff(np.log(close), prepend=np.nan)
    return pd.Series(r).rolling(lookback, min_periods=lookback).std().to_numpy()


def touch_labels(
    candles: pd.DataFrame, horizon: int, *, k: float = 1.0, vol_lookback: int = 168
) -> pd.DataFrame:
    """Per candle: ``d`` (fraction of the close), ``up`` and ``down`` (1.0/0.0; NaN when the
    horizon runs past the data or ``sigma`` is still warming up)."""
    if not k > 0:
        raise ValueError(f"k must be > 0, got {k!r}")
    close = candles["close"].to_numpy(dtype=np.float64)
    high = candles["high"].to_numpy(dtype=np.float64)
    low = candles["low"].to_numpy(dtype=np.float64)
    n = close.shape[0]
    d = k * _sigma(close, vol_lookback) * math.sqrt(horizon)
    fmax, fmin = future_extremes(high, low, horizon)
    valid = np.isfinite(d) & (np.arange(n) < n - horizon)
    with np.errstate(invalid="ignore"):
        up = np.where(valid, (fmax >= close * (1.0 + d)).astype(float), np.nan)
        down = np.where(valid, (fmin <= close * (1.0 - d)).astype(float), np.nan)
    return pd.DataFrame({"d": d, "up": up, "down": down}, index=candles.index)


def price_features(
    candles: pd.DataFrame, *, vol_lookback: int = 168, funding: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Model A's features from candles ``<= t`` (and the last funding rate known at ``t``)."""
    close = candles["close"].astype(float)
    high = candles["high"].astype(float)
    low = candles["low"].astype(float)
    vol = candles["volume"].astype(float)
    sigma = pd.Series(_sigma(close.to_numpy(), vol_lookback), index=candles.index)
    out: dict[str, pd.Series] = {"sigma": sigma}
    for w in (24, 72, vol_lookback):
        hi = high.rolling(w, min_periods=w).max()
        lo = low.rolling(w, min_periods=w).min()
        out[f"dist_high_{w}"] = np.log(hi / close) / sigma
        out[f"dist_low_{w}"] = np.log(close / lo) / sigma
    prev = close.shift(1)
    tr = pd.concat([high - low, (high - prev).abs(), (low - prev).abs()], axis=1).max(axis=1)
    out["atr_pct"] = tr.rolling(14, min_periods=14).mean() / close
    for w in (1, 4, 24):
        out[f"ret_{w}"] = np.log(close / close.shift(w))
    mean_vol = vol.rolling(vol_lookback, min_periods=vol_lookback).mean()
    with np.errstate(divide="ignore", invalid="ignore"):
        out["rel_volume"] = np.log((vol + 1e-12) / (mean_vol + 1e-12))
    dates = pd.DatetimeIndex(candle_dates(candles))
    hour = (dates.hour + dates.minute / 60.0).to_numpy()
    dow = dates.day_of_week.to_numpy()
    out["hour_sin"] = pd.Series(np.sin(2 * np.pi * hour / 24), index=candles.index)
    out["hour_cos"] = pd.Series(np.cos(2 * np.pi * hour / 24), index=candles.index)
    out["dow_sin"] = pd.Series(np.sin(2 * np.pi * dow / 7), index=candles.index)
    out["dow_cos"] = pd.Series(np.cos(2 * np.pi * dow / 7), index=candles.index)
    if funding is not None and len(funding):
        if "funding_rate" not in funding.columns or "date" not in funding.columns:
            raise ValueError("funding needs the columns 'date' and 'funding_rate'")
        f = funding[["date", "funding_rate"]].dropna().sort_values("date")
        f = f.assign(date=to_utc_datetime(f["date"]).astype("datetime64[ns, UTC]"))
        left = pd.DataFrame({"date": to_utc_datetime(candles["date"])
                             .astype("datetime64[ns, UTC]")})  # fmt: skip
        merged = pd.merge_asof(left, f, on="date", direction="backward")
        out["funding"] = pd.Series(merged["funding_rate"].to_numpy(), index=candles.index)
    frame = pd.DataFrame(out, index=candles.index)
    return frame.replace([np.inf, -np.inf], np.nan)


def _col(feats: pd.DataFrame, name: str) -> pd.Series:
    if name not in feats.columns:
        raise ValueError(f"features lack column {name!r}; pass liquidation_features(...) output")
    return feats[name].astype(float)


def liq_feature_frame(feats: pd.DataFrame, close: pd.Series, d: pd.Series) -> pd.DataFrame:
    """The ``liq_*`` columns as distances (in % and in units of ``d``) and relative sizes."""
    close = close.astype(float)
    dpct = d.astype(float) * 100.0
    total = (_col(feats, "liq_long_total") + _col(feats, "liq_short_total")).where(lambda s: s > 0)
    out: dict[str, pd.Series] = {}
    lc, sc = _col(feats, "liq_long_cluster_price"), _col(feats, "liq_short_cluster_price")
    long_pct = (close - lc) / close * 100.0
    short_pct = (sc - close) / close * 100.0
    out["liq_long_dist_pct"] = long_pct
    out["liq_short_dist_pct"] = short_pct
    out["liq_long_dist_d"] = long_pct / dpct
    out["liq_short_dist_d"] = short_pct / dpct
    for side in ("long", "short"):
        out[f"liq_{side}_size_rel"] = _col(feats, f"liq_{side}_cluster_size") / total
        out[f"liq_{side}_band_rel"] = _col(feats, f"liq_{side}_band") / total
        out[f"liq_{side}_liquidated_rel"] = _col(feats, f"liq_{side}_liquidated") / total
        width = _col(feats, f"liq_{side}_cluster_high") - _col(feats, f"liq_{side}_cluster_low")
        out[f"liq_{side}_width_pct"] = width / close * 100.0
    out["liq_long_share"] = _col(feats, "liq_long_total") / total
    out["liq_imbalance"] = _col(feats, "liq_imbalance")
    out["liq_gap_above_d"] = _col(feats, "liq_gap_above_pct") / dpct
    out["liq_gap_below_d"] = _col(feats, "liq_gap_below_pct") / dpct
    out["liq_magnet_dist_d"] = _col(feats, "liq_magnet_dist_pct") / dpct
    out["liq_magnet_score"] = _col(feats, "liq_magnet_score")
    out["liq_magnet_drift"] = _col(feats, "liq_magnet_drift")
    out["liq_intensity"] = _col(feats, "liq_intensity")
    for name in ("sweep_long", "sweep_short", "sweep_long_through", "sweep_short_through"):
        out[f"liq_{name}"] = _col(feats, f"liq_{name}")
    frame = pd.DataFrame(out, index=feats.index)
    return frame.replace([np.inf, -np.inf], np.nan)


class Transform:
    """Signed log, clipping at the training 1/99 % quantiles, median fill (+ missing indicators
    for columns with NaN in training), standardisation; fitted on the training rows only."""

    def __init__(self, clip: tuple[float, float] = (0.01, 0.99)) -> None:
        self.clip = clip

    def fit(self, x: np.ndarray) -> Transform:
        z = np.sign(x) * np.log1p(np.abs(x))
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                self.lo = np.nanquantile(z, self.clip[0], axis=0)
                self.hi = np.nanquantile(z, self.clip[1], axis=0)
                self.med = np.nanmedian(z, axis=0)
        self.lo = np.nan_to_num(self.lo)
        self.hi = np.nan_to_num(self.hi)
        self.med = np.nan_to_num(self.med)
        self.missing = np.flatnonzero(np.isnan(z).any(axis=0))
        filled = self._clip_fill(z)
        self.mean = filled.mean(axis=0)
        sd = filled.std(axis=0)
        self.sd = np.where(sd > 1e-12, sd, 1.0)
        return self

    def _clip_fill(self, z: np.ndarray) -> np.ndarray:
        c = np.clip(z, self.lo, self.hi)
        return np.where(np.isnan(c), self.med, c)

    def transform(self, x: np.ndarray) -> np.ndarray:
        z = np.sign(x) * np.log1p(np.abs(x))
        out = (self._clip_fill(z) - self.mean) / self.sd
        if self.missing.size:
            out = np.hstack([out, np.isnan(z[:, self.missing]).astype(float)])
        return out


def make_learner(name: str) -> Any:
    """The fixed-hyper-parameter learner ``"logistic"`` or ``"gbm"`` (scikit-learn)."""
    if name == "logistic":
        lm = require("sklearn.linear_model", "the information test")
        return lm.LogisticRegression(C=_C, solver="newton-cholesky", max_iter=200)
    if name == "gbm":
        ens = require("sklearn.ensemble", "the information test")
        return ens.HistGradientBoostingClassifier(
            max_iter=200, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=50,
            l2_regularization=1.0, random_state=0,
        )  # fmt: skip
    raise ValueError(f"learner must be one of {LEARNERS}, got {name!r}")


def log_loss(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Per-sample binary log loss (nats), probabilities clipped to ``[1e-6, 1 - 1e-6]``."""
    q = np.clip(p, _EPS, 1.0 - _EPS)
    return -(y * np.log(q) + (1.0 - y) * np.log(1.0 - q))


def clark_west_terms(
    y: np.ndarray, pa: np.ndarray, pb: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample Brier score of the nested model A and Clark-West adjusted Brier score of B.

    ``y``, ``pa``, ``pb``: labels and the two models' probabilities, one column per label (or
    1-d). Returns ``(mean_j (y - pa)^2, mean_j [(y - pb)^2 - (pa - pb)^2])`` per sample; the
    mean of their difference, ``f_t = (y - pa)^2 - [(y - pb)^2 - (pa - pb)^2]``, is Clark and
    West's (2007) statistic for nested forecasts: when B's extra inputs are useless, B's
    out-of-sample squared error exceeds A's by about ``mean((pa - pb)^2)`` (the noise of the
    extra estimated coefficients), which the adjustment adds back, so ``f`` is centred on 0
    under the null and positive when the extra inputs carry information.
    """
    y2, a2, b2 = (np.asarray(v, dtype=np.float64) for v in (y, pa, pb))
    if y2.ndim == 1:
        y2, a2, b2 = y2[:, None], a2[:, None], b2[:, None]
    if not (y2.shape == a2.shape == b2.shape):
        raise ValueError(f"labels and probabilities must match: {y2.shape}, {a2.shape}, {b2.shape}")
    sa = ((y2 - a2) ** 2).mean(axis=1)
    sb = ((y2 - b2) ** 2 - (a2 - b2) ** 2).mean(axis=1)
    return sa, sb


def _fit_predict(learner: str, x_tr: np.ndarray, y_tr: np.ndarray) -> Any:
    if np.unique(y_tr).shape[0] < 2:
        rate = float(np.clip(y_tr.mean(), _EPS, 1 - _EPS))
        return lambda x: np.full(x.shape[0], rate)
    model = make_learner(learner)
    model.fit(x_tr, y_tr)
    return lambda x: model.predict_proba(x)[:, 1]


def _folds(dates: pd.DatetimeIndex, label_end: pd.DatetimeIndex, min_train: pd.Timedelta
           ) -> list[tuple[np.ndarray, np.ndarray, pd.Timestamp]]:  # fmt: skip
    if len(dates) == 0:
        return []
    first = dates[0] + min_train
    month0 = pd.Timestamp(first.year, first.month, 1, tz="UTC")
    if month0 < first:
        month0 = month0 + pd.offsets.MonthBegin(1)
    out = []
    m = month0
    last = dates[-1]
    while m <= last:
        nxt = m + pd.offsets.MonthBegin(1)
        test = np.flatnonzero((dates >= m) & (dates < nxt))
        train = np.flatnonzero(label_end < m)
        if test.size and train.size:
            out.append((train, test, m))
        m = nxt
    return out


def walk_forward(
    x: np.ndarray,
    labels: np.ndarray,
    dates: pd.DatetimeIndex,
    label_end: pd.DatetimeIndex,
    *,
    learner: str = "logistic",
    min_train_days: float = 180.0,
    permute: Sequence[int] = (),
    repeats: int = 0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Monthly-refit walk-forward predictions for each label column of ``labels``.

    ``label_end[i]`` is when sample ``i``'s label is known (``t + H``); a month's model is fitted
    on samples whose label ended before the month starts. Returns the predicted-sample positions,
    their per-sample log loss (mean over the label columns), for each column index in
    ``permute`` the log-loss increase when that column is permuted within each month
    (``repeats`` times, averaged), and the predicted probabilities (one column per label).
    """
    folds = _folds(dates, label_end, pd.Timedelta(days=min_train_days))
    rng = np.random.default_rng(seed)
    pos: list[np.ndarray] = []
    loss: list[np.ndarray] = []
    prob: list[np.ndarray] = []
    imp = np.zeros(len(permute))
    n_imp = 0
    for train, test, _month in folds:
        tf = Transform().fit(x[train])
        xtr, xte = tf.transform(x[train]), tf.transform(x[test])
        preds = [_fit_predict(learner, xtr, labels[train, j]) for j in range(labels.shape[1])]
        p_te = np.column_stack([f(xte) for f in preds])
        base = np.mean([log_loss(labels[test, j], p_te[:, j]) for j in range(len(preds))], axis=0)
        pos.append(test)
        loss.append(base)
        prob.append(p_te)
        if permute and repeats > 0:
            for c_i, c in enumerate(permute):
                acc = 0.0
                for _ in range(repeats):
                    xp = x[test].copy()
                    xp[:, c] = xp[rng.permutation(test.shape[0]), c]
                    xpt = tf.transform(xp)
                    pl = np.mean([log_loss(labels[test, j], f(xpt)) for j, f in enumerate(preds)],
                                 axis=0)  # fmt: skip
                    acc += float(pl.sum() - base.sum())
                imp[c_i] += acc / repeats
            n_imp += test.shape[0]
    if not pos:
        raise ValueError(
            "no month to predict: the data must cover more than min_train_days "
            f"({min_train_days:g} days) of samples plus one horizon"
        )
    return np.concatenate(pos), np.concatenate(loss), imp / max(n_imp, 1), np.vstack(prob)


@dataclass
class InformationResult:
    """Result of :func:`information_test` (one pair or several pooled in time order).

    ``score_price_only``, ``score_with_liq``, ``improvement``, ``ci_day``, ``ci_week`` are the
    headline ``statistic``: for ``"clark_west"`` the Brier score of A, the Clark-West adjusted
    Brier score of B and their difference; for ``"logloss"`` the two log losses. The ``logloss_*``
    and ``brier_*`` fields are always filled (raw differences, not adjusted).
    """

    pairs: list[str]
    timeframe: str
    horizon: int
    horizon_text: str
    learner: str
    k: float
    n: int
    months: int
    base_rate_up: float
    base_rate_down: float
    statistic: str
    score_price_only: float
    score_with_liq: float
    improvement: float
    ci_day: Interval
    ci_week: Interval
    logloss_price_only: float
    logloss_with_liq: float
    logloss_ci_day: Interval
    logloss_ci_week: Interval
    brier_price_only: float
    brier_with_liq: float
    brier_ci_week: Interval
    cw_ci_day: Interval
    cw_ci_week: Interval
    importance: dict[str, float] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def improvement_ci_low(self) -> float:
        return self.ci_week.low

    @property
    def improvement_ci_high(self) -> float:
        return self.ci_week.high

    @property
    def logloss_improvement(self) -> float:
        return self.logloss_price_only - self.logloss_with_liq

    def to_dict(self) -> dict[str, Any]:
        score = (
            "Brier score of A and Clark-West adjusted Brier score of B (mean of the up and down "
            "touch labels); improvement = mean((y-pA)^2 - [(y-pB)^2 - (pA-pB)^2])"
            if self.statistic == "clark_west"
            else "mean binary log loss (nats) of the up and down touch labels"
        )
        return {
            "pairs": self.pairs,
            "timeframe": self.timeframe,
            "n": self.n,
            "months": self.months,
            "horizon": self.horizon,
            "horizon_text": self.horizon_text,
            "learner": self.learner,
            "k": self.k,
            "base_rate_up": self.base_rate_up,
            "base_rate_down": self.base_rate_down,
            "statistic": self.statistic,
            "score": score,
            "score_price_only": self.score_price_only,
            "score_with_liq": self.score_with_liq,
            "improvement": self.improvement,
            "improvement_ci_low": self.ci_week.low,
            "improvement_ci_high": self.ci_week.high,
            "improvement_p_value": self.ci_week.p_value,
            "improvement_ci_day": self.ci_day.to_dict(),
            "improvement_ci_week": self.ci_week.to_dict(),
            "clark_west": {
                "note": _CW_NOTE.get(self.learner, ""),
                "improvement": self.cw_ci_week.estimate,
                "ci_day": self.cw_ci_day.to_dict(),
                "ci_week": self.cw_ci_week.to_dict(),
            },
            "logloss": {
                "price_only": self.logloss_price_only,
                "with_liq": self.logloss_with_liq,
                "improvement": self.logloss_improvement,
                "ci_day": self.logloss_ci_day.to_dict(),
                "ci_week": self.logloss_ci_week.to_dict(),
            },
            "brier": {
                "price_only": self.brier_price_only,
                "with_liq": self.brier_with_liq,
                "improvement": self.brier_price_only - self.brier_with_liq,
                "ci_week": self.brier_ci_week.to_dict(),
            },
            "importance": dict(self.importance),
            "options": dict(self.options),
        }


def _pair_samples(
    candles: pd.DataFrame, feats: pd.DataFrame, h: int, opts: InformationOptions,
    funding: pd.DataFrame | None,
) -> pd.DataFrame:  # fmt: skip
    if len(feats) != len(candles):
        raise ValueError("features and candles must have the same length")
    lab = touch_labels(candles, h, k=opts.k, vol_lookback=opts.vol_lookback)
    a = price_features(candles, vol_lookback=opts.vol_lookback, funding=funding)
    b = liq_feature_frame(feats.set_axis(candles.index), candles["close"], lab["d"])
    dates = pd.DatetimeIndex(candle_dates(candles)).tz_localize("UTC")
    step = max(1, h // 4) if opts.step is None else int(opts.step)
    warm = feats["liq_long_total"].notna().to_numpy() & a["sigma"].notna().to_numpy()
    i0 = int(np.argmax(warm)) if warm.any() else len(candles)
    grid = np.arange(i0 + opts.vol_lookback, len(candles), step)
    grid = grid[np.isfinite(lab["up"].to_numpy()[grid])]
    frame = pd.concat([a, b], axis=1).iloc[grid].reset_index(drop=True)
    frame.insert(0, "date", dates[grid])
    frame.insert(1, "label_end", dates[np.minimum(grid + h, len(candles) - 1)])
    frame["y_up"] = lab["up"].to_numpy()[grid]
    frame["y_down"] = lab["down"].to_numpy()[grid]
    return frame


def _blocks(spacing: pd.Timedelta, step: int) -> tuple[int, int]:
    per = spacing * step
    return (max(1, int(round(pd.Timedelta(days=1) / per))),
            max(1, int(round(pd.Timedelta(days=7) / per))))  # fmt: skip


def information_test(
    candles: pd.DataFrame | dict[str, pd.DataFrame],
    features: pd.DataFrame | dict[str, pd.DataFrame] | None = None,
    *,
    timeframe: str,
    options: InformationOptions | None = None,
    funding: dict[str, pd.DataFrame] | None = None,
    symbol: str | None = None,
) -> InformationResult:
    """Walk-forward log loss of model A (price only) and model B (A + ``liq_*``).

    ``candles`` is one candle frame or ``{pair: frame}``; ``features`` the matching
    :func:`liqsignals.liquidation_features` output (computed with ``options.window`` when None).
    Several pairs are fitted separately and their per-sample differences pooled in date order.
    """
    opts = options or InformationOptions()
    if opts.learner not in LEARNERS:
        raise ValueError(f"learner must be one of {LEARNERS}, got {opts.learner!r}")
    if opts.statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {STATISTICS}, got {opts.statistic!r}")
    cmap = candles if isinstance(candles, dict) else {symbol or "pair": candles}
    fmap: dict[str, pd.DataFrame | None]
    if features is None:
        fmap = {p: None for p in cmap}
    elif isinstance(features, dict):
        fmap = dict(features)
    else:
        fmap = {next(iter(cmap)): features}
    spacing = timeframe_to_timedelta(timeframe)
    h = _horizon_candles(opts.horizon, spacing)
    step = max(1, h // 4) if opts.step is None else int(opts.step)
    rows = []
    imp_total: dict[str, float] = {}
    months = 0
    for pair, df in cmap.items():
        feats = fmap.get(pair)
        if feats is None:
            sym = None if pair == "pair" else pair
            feats = liquidation_features(df, window=opts.window, symbol=sym)
        fr = None if funding is None else funding.get(pair)
        s = _pair_samples(df, feats, h, opts, fr)
        a_cols = [c for c in s.columns[2:] if not c.startswith(("liq_", "y_"))]
        b_cols = a_cols + [c for c in s.columns if c.startswith("liq_")]
        y = s[["y_up", "y_down"]].to_numpy()
        dates = pd.DatetimeIndex(s["date"])
        lend = pd.DatetimeIndex(s["label_end"])
        xa = s[a_cols].to_numpy(dtype=np.float64)
        xb = s[b_cols].to_numpy(dtype=np.float64)
        liq_idx = list(range(len(a_cols), len(b_cols)))
        pa, la, _, qa = walk_forward(xa, y, dates, lend, learner=opts.learner,
                                 min_train_days=opts.min_train_days)  # fmt: skip
        pb, lb, imp, qb = walk_forward(xb, y, dates, lend, learner=opts.learner,
                                   min_train_days=opts.min_train_days, permute=liq_idx,
                                   repeats=opts.importance_repeats, seed=opts.seed)  # fmt: skip
        if not np.array_equal(pa, pb):
            raise AssertionError("A and B predicted different samples")
        months += len(_folds(dates, lend, pd.Timedelta(days=opts.min_train_days)))
        ba, cb = clark_west_terms(y[pa], qa, qb)
        bb = ((y[pa] - qb) ** 2).mean(axis=1)
        rows.append(pd.DataFrame({"date": dates[pa], "la": la, "lb": lb, "ba": ba, "bb": bb,
                                  "cb": cb, "up": y[pa, 0], "down": y[pa, 1]}))  # fmt: skip
        for c_i, c in enumerate(liq_idx):
            imp_total[b_cols[c]] = imp_total.get(b_cols[c], 0.0) + float(imp[c_i]) / len(cmap)
    allr = pd.concat(rows).sort_values("date", kind="stable")
    la, lb = allr["la"].to_numpy(), allr["lb"].to_numpy()
    ba, bb, cb = allr["ba"].to_numpy(), allr["bb"].to_numpy(), allr["cb"].to_numpy()
    bd, bw = _blocks(spacing, step)

    def boot(a: np.ndarray, b: np.ndarray, block: int) -> Interval:
        return paired_block_bootstrap(a, b, block=block, resamples=opts.resamples, seed=opts.seed)

    ll_d, ll_w = boot(la, lb, bd), boot(la, lb, bw)
    cw_d, cw_w = boot(ba, cb, bd), boot(ba, cb, bw)
    br_w = boot(ba, bb, bw)
    if opts.statistic == "clark_west":
        head = (float(ba.mean()), float(cb.mean()), cw_d, cw_w)
    else:
        head = (float(la.mean()), float(lb.mean()), ll_d, ll_w)
    opt_d = {k: v for k, v in opts.__dict__.items()}
    opt_d["step"] = step
    return InformationResult(
        pairs=[p for p in cmap], timeframe=timeframe, horizon=h,
        horizon_text=str(spacing * h), learner=opts.learner, k=opts.k, n=int(la.shape[0]),
        months=months, base_rate_up=float(allr["up"].mean()),
        base_rate_down=float(allr["down"].mean()), statistic=opts.statistic,
        score_price_only=head[0], score_with_liq=head[1], improvement=head[2].estimate,
        ci_day=head[2], ci_week=head[3], logloss_price_only=float(la.mean()),
        logloss_with_liq=float(lb.mean()), logloss_ci_day=ll_d, logloss_ci_week=ll_w,
        brier_price_only=float(ba.mean()), brier_with_liq=float(bb.mean()), brier_ci_week=br_w,
        cw_ci_day=cw_d, cw_ci_week=cw_w, importance=dict(sorted(imp_total.items(), key=lambda kv: -kv[1])),
        options=opt_d,
    )  # fmt: skip


def holm_table(results: Sequence[InformationResult], labels: Sequence[str]) -> pd.DataFrame:
    """One row per result with its one-sided p-value (1-week block) and the Holm-adjusted one."""
    p = np.array([r.ci_week.p_value for r in results])
    adj = holm(p) if len(p) else p
    return pd.DataFrame({
        "cell": list(labels),
        "n": [r.n for r in results],
        "logloss_A": [r.score_price_only for r in results],
        "logloss_B": [r.score_with_liq for r in results],
        "improvement": [r.improvement for r in results],
        "ci_day": [f"[{r.ci_day.low:+.5f}, {r.ci_day.high:+.5f}]" for r in results],
        "ci_week": [f"[{r.ci_week.low:+.5f}, {r.ci_week.high:+.5f}]" for r in results],
        "p": p,
        "p_holm": adj,
    })  # fmt: skip


__all__ += ["holm_table"]


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m liqsignals.analysis.information",
        description="Walk-forward log loss of a touch forecast without and with liq_* columns.",
    )
    ap.add_argument("--datadir", required=True, help="freqtrade datadir (exchange folder)")
    ap.add_argument("--pairs", nargs="+", required=True, help="ccxt symbols, e.g. BTC/USDT:USDT")
    ap.add_argument("--timeframe", default="1h")
    ap.add_argument("--timerange", default=None, help="freqtrade syntax, e.g. 20230101-")
    ap.add_argument("--horizon", default="1d", help="duration (1d) or candles (24)")
    ap.add_argument("--k", type=float, default=1.0, help="d = k * sigma * sqrt(H)")
    ap.add_argument("--learner", choices=LEARNERS, default="logistic")
    ap.add_argument(
        "--statistic",
        choices=STATISTICS,
        default="clark_west",
        help="headline statistic: Clark-West adjusted Brier difference (primary, "
        "default) or the raw log-loss difference; both are always reported",
    )
    ap.add_argument("--window", default="1w", help="model window of the liq_* columns")
    ap.add_argument("--min-train-days", type=float, default=180.0)
    ap.add_argument("--resamples", type=int, default=2000)
    ap.add_argument("--importance-repeats", type=int, default=5)
    ap.add_argument("--no-funding", action="store_true", help="ignore funding files")
    ap.add_argument("--separate", action="store_true", help="one result per pair")
    ap.add_argument("--json", action="store_true", help="print JSON")
    return ap


def _load(args: argparse.Namespace) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    from liqsignals.data.datadir import load_candles, load_funding_rate

    candles, funding = {}, {}
    for pair in args.pairs:
        candles[pair] = load_candles(args.datadir, pair, args.timeframe, timerange=args.timerange)
        if not args.no_funding:
            try:
                funding[pair] = load_funding_rate(args.datadir, pair)
            except (FileNotFoundError, ValueError):
                pass
    return candles, funding


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    horizon: str | int = int(args.horizon) if str(args.horizon).isdigit() else args.horizon
    opts = InformationOptions(horizon=horizon, k=args.k, learner=args.learner,
                              window=args.window, min_train_days=args.min_train_days,
                              resamples=args.resamples, statistic=args.statistic,
                              importance_repeats=args.importance_repeats)  # fmt: skip
    try:
        candles, funding = _load(args)
        groups = [[p] for p in args.pairs] if args.separate else [list(args.pairs)]
        results = []
        for g in groups:
            results.append(information_test(
                {p: candles[p] for p in g}, timeframe=args.timeframe, options=opts,
                funding={p: funding[p] for p in g if p in funding},
            ))  # fmt: skip
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        payload: Any = results[0].to_dict() if len(results) == 1 else [r.to_dict() for r in results]
        print(json.dumps(payload, indent=2, default=str))
        return 0
    for r in results:
        print(f"{'+'.join(r.pairs)} {r.timeframe} H={r.horizon} ({r.horizon_text}) "
              f"learner={r.learner} k={r.k:g}: n={r.n} months={r.months} "
              f"base up/down={r.base_rate_up:.3f}/{r.base_rate_down:.3f}")  # fmt: skip
        cw, ll = (r.cw_ci_day, r.cw_ci_week), (r.logloss_ci_day, r.logloss_ci_week)
        print(f"  Clark-West (Brier) A {r.brier_price_only:.5f}  B {r.brier_with_liq:.5f}  "
              f"improvement {cw[1].estimate:+.5f}  95% CI 1-day [{cw[0].low:+.5f}, "
              f"{cw[0].high:+.5f}]  1-week [{cw[1].low:+.5f}, {cw[1].high:+.5f}] "
              f"p={cw[1].p_value:.4f}")  # fmt: skip
        print(f"  log loss A (price only) {r.logloss_price_only:.5f}  B (+liq_*) "
              f"{r.logloss_with_liq:.5f}  improvement {ll[1].estimate:+.5f}  95% CI 1-day "
              f"[{ll[0].low:+.5f}, {ll[0].high:+.5f}]  1-week [{ll[1].low:+.5f}, "
              f"{ll[1].high:+.5f}] p={ll[1].p_value:.4f}")  # fmt: skip
        if r.learner in _CW_NOTE:
            print(f"  note: Clark-West {_CW_NOTE[r.learner]}")
        top = list(r.importance.items())[:8] if args.importance_repeats > 0 else []
        if not top:
            continue
        print("  permutation importance (nats/sample): "
              + ", ".join(f"{k}={v:+.5f}" for k, v in top))  # fmt: skip
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
