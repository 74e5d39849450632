"""The magnet test: do estimated liquidation clusters attract price?

**Magnet test** (:func:`magnet_samples`, :func:`magnet_summary`, :func:`magnet_study`). At candle
``t`` (every ``step`` candles after warm-up) a *target* is read from the engine's state at the close
of ``t`` only: with ``rule="larger"`` (default) the larger, by notional, of the nearest significant
long cluster below and the nearest significant short cluster above, among those whose centre lies
within ``band_pct`` of the close; ``rule="nearest"`` takes the nearer of the two, ``rule="magnet"``
the ``liq_magnet_price``. The target is *hit* when price touches its centre within the next
``horizon`` candles (``high >= level`` above, ``low <= level`` below, candles ``t+1 .. t+H``). Two
reference levels get the same test:

* the *mirror* level, at the same log distance on the other side of the close
  (``close**2 / level``);
* the *baseline* level: the same distance on a random side (seeded coin flip per sample), which a
  driftless market touches exactly as often as the target. ``lift = hit_rate / baseline_hit_rate``.

Samples overlap (a horizon is longer than ``step``, and a cluster persists for up to one window), so
confidence intervals come from a circular moving-block bootstrap over the sampling grid, blocks of
at least ``block`` candles (default: the longer of the horizon and the model window), stratified by
pair.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from liqsignals.analysis.common import (
    candle_dates,
    candle_spacing,
    duration_text,
    format_timedelta,
    future_extremes,
    json_safe,
    json_value,
    utc_datetime64,
    utc_timestamp,
)
from liqsignals.features import liquidation_features, timeframe_to_timedelta
from liqsignals.inputs import prepare_inputs
from liqsignals.model import LiquidationModel, parse_duration, resolve_model

__all__ = [
    "BY_PAIR_KEYS",
    "DISTANCE_EDGES",
    "GUIDE_MOVES",
    "INTENSITY_LABELS",
    "RULES",
    "Bootstrap",
    "MagnetEvaluation",
    "MagnetGrid",
    "MagnetOptions",
    "MagnetStudy",
    "intensity_impact",
    "magnet_samples",
    "magnet_study",
    "magnet_summary",
    "magnet_test",
    "magnet_warmup",
]

#: Target rules of the magnet test.
RULES: tuple[str, ...] = ("larger", "nearest", "magnet")
#: Edges (in % of price) of the distance bands of the magnet tables.
DISTANCE_EDGES: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 100.0)
#: ``liq_intensity_bucket`` value -> name, as in the traders' guides.
INTENSITY_LABELS: dict[int, str] = {0: "low", 1: "medium", 2: "high", 3: "extreme"}
#: The guides' "cluster intensity -> expected BTC move" claims, per bucket.
GUIDE_MOVES: dict[int, str] = {0: "< $200", 1: "$200-500", 2: "$500-1,000", 3: "> $1,000"}

_FEATURES_NEEDED = (
    "liq_long_cluster_price",
    "liq_long_cluster_size",
    "liq_short_cluster_price",
    "liq_short_cluster_size",
    "liq_magnet_price",
    "liq_magnet_side",
    "liq_intensity_bucket",
)


# ----------------------------------------------------------------------------- magnet test
def _targets(
    close: np.ndarray, feats: pd.DataFrame, band_pct: float, rule: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per candle: target side (+1 above, -1 below, 0 none), level (price), size (quote)."""
    col = {c: feats[c].to_numpy(dtype=np.float64) for c in _FEATURES_NEEDED}
    lc, ls = col["liq_long_cluster_price"], col["liq_long_cluster_size"]
    sc, ss = col["liq_short_cluster_price"], col["liq_short_cluster_size"]
    with np.errstate(invalid="ignore"):
        dl = (close - lc) / close * 100.0
        ds = (sc - close) / close * 100.0
        in_l = np.isfinite(lc) & (dl <= band_pct)
        in_s = np.isfinite(sc) & (ds <= band_pct)
    side = np.zeros(close.shape[0])
    level = np.full(close.shape[0], np.nan)
    size = np.full(close.shape[0], np.nan)
    if rule == "magnet":
        mp, msd = col["liq_magnet_price"], col["liq_magnet_side"]
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(mp) & (np.abs(mp / close - 1.0) * 100.0 <= band_pct)
        side[ok] = msd[ok]
        level[ok] = mp[ok]
        # the magnet's notional is known when it is one of the nearest clusters
        size = np.where(ok & (mp == lc), ls, np.where(ok & (mp == sc), ss, np.nan))
        return side, level, size
    with np.errstate(invalid="ignore"):
        if rule == "larger":
            pick_s = in_s & (~in_l | (ss > ls) | ((ss == ls) & (ds < dl)))
        elif rule == "nearest":
            pick_s = in_s & (~in_l | (ds < dl))
        else:
            raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    pick_l = in_l & ~pick_s
    side[pick_s] = 1.0
    side[pick_l] = -1.0
    level = np.where(pick_s, sc, np.where(pick_l, lc, np.nan))
    size = np.where(pick_s, ss, np.where(pick_l, ls, np.nan))
    return side, level, size


def magnet_samples(
    candles: pd.DataFrame,
    model: LiquidationModel | None = None,
    *,
    features: pd.DataFrame | None = None,
    horizon: int = 24,
    band_pct: float = 5.0,
    step: int | None = None,
    rule: str = "larger",
    start: Any = None,
    seed: int = 0,
    **params: Any,
) -> pd.DataFrame:
    """One row per sampled candle that has a target: where it was and whether price got there.

    Parameters
    ----------
    candles : candle frame (``date, open, high, low, close, volume``), sorted, as for the engine.
    model, **params : the model (``features`` is computed from it when not given).
    features : output of :func:`liqsignals.liquidation_features` for ``candles`` (same index).
    horizon : candles ``t+1 .. t+horizon`` are searched for the touch.
    band_pct : only targets whose centre lies within this distance (% of the close) count.
    step : sample every ``step`` candles (default ``max(1, horizon // 4)``).
    rule : ``"larger"``, ``"nearest"`` or ``"magnet"`` (see the module docstring).
    start : first candle date that may be sampled (earlier candles only warm the engine up).
    seed : seed of the coin flips that place the baseline level.

    Returns
    -------
    DataFrame with one row per sample, columns:

    date : candle ``t`` (UTC open time; the state is read at its close)
    i, grid : candle position in ``candles``, and position on the sampling grid ``(i - i0) // step``
    close : close of ``t`` (price)
    side : +1 target above (short liquidations), -1 below (long liquidations)
    level, dist_pct, size : target centre (price), its distance from the close (%) and notional
        (quote; NaN for a magnet that is not one of the nearest clusters)
    bucket : ``liq_intensity_bucket`` at ``t`` (0 low .. 3 extreme; NaN while undefined)
    hit : price touched ``level`` within the horizon (bool)
    mirror_level, mirror_hit : level at the same log distance on the other side, and its touch
    baseline_side, baseline_hit : side of the coin-flip level (+1/-1) and its touch
    move : ``close[t+H] - close[t]`` (quote), move_pct (%)
    move_toward : ``move * side`` (quote; positive = toward the target)
    excursion_toward : furthest move toward the target within the horizon (quote, >= 0 when
        price moved that way)
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    h = int(horizon)
    if h < 1:
        raise ValueError(f"horizon must be >= 1 candle, got {horizon!r}")
    if not band_pct > 0:
        raise ValueError(f"band_pct must be > 0, got {band_pct!r}")
    step = max(1, h // 4) if step is None else int(step)
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step!r}")
    prepare_inputs(candles)
    if features is None:
        features = liquidation_features(candles, resolve_model(model, params))
    missing = [c for c in _FEATURES_NEEDED if c not in features.columns]
    if missing:
        raise ValueError(
            f"features lack column(s) {missing}; pass liquidation_features(...) output"
        )
    if len(features) != len(candles):
        raise ValueError("features and candles must have the same length")
    dates = candle_dates(candles)
    close = candles["close"].to_numpy(dtype=np.float64)
    high = candles["high"].to_numpy(dtype=np.float64)
    low = candles["low"].to_numpy(dtype=np.float64)
    n = close.shape[0]
    i0 = 0 if start is None else int(np.searchsorted(dates, utc_datetime64(start)))
    grid_pos = np.arange(i0, max(i0, n - h), step)
    side, level, size = _targets(close, features, float(band_pct), rule)
    keep = grid_pos[side[grid_pos] != 0]
    fmax, fmin = future_extremes(high, low, h)
    t = keep
    s = side[t]
    lv = level[t]
    c = close[t]
    up_hit = fmax[t] >= lv
    dn_hit = fmin[t] <= lv
    hit = np.where(s > 0, up_hit, dn_hit)
    mirror = c * c / lv
    mirror_hit = np.where(s > 0, fmin[t] <= mirror, fmax[t] >= mirror)
    coin = np.random.default_rng(seed).random(t.shape[0]) < 0.5
    baseline_hit = np.where(coin, hit, mirror_hit)
    move = close[np.minimum(t + h, n - 1)] - c
    excursion = np.where(s > 0, fmax[t] - c, c - fmin[t])
    bucket = features["liq_intensity_bucket"].to_numpy(dtype=np.float64)[t]
    return pd.DataFrame(
        {
            "date": pd.DatetimeIndex(dates[t]).tz_localize("UTC"),
            "i": t,
            "grid": (t - i0) // step,
            "close": c,
            "side": s.astype(np.int64),
            "level": lv,
            "dist_pct": np.abs(lv / c - 1.0) * 100.0,
            "size": size[t],
            "bucket": bucket,
            "hit": hit,
            "mirror_level": mirror,
            "mirror_hit": mirror_hit,
            "baseline_side": np.where(coin, s, -s).astype(np.int64),
            "baseline_hit": baseline_hit,
            "move": move,
            "move_pct": move / c * 100.0,
            "move_toward": move * s,
            "excursion_toward": excursion,
        }
    )


def _block_sums(
    values: np.ndarray, grid: np.ndarray, groups: np.ndarray, block: int, n_boot: int, seed: int
) -> np.ndarray:
    """Circular moving-block bootstrap of column sums of ``values`` (one row per sample).

    Samples sit on a per-group sampling grid; grid positions without a sample contribute zeros, so
    a block always spans ``block`` grid steps of time. Each group (pair) is resampled on its own
    and the sums are added (stratified). Returns ``(n_boot, values.shape[1])``.
    """
    rng = np.random.default_rng(seed)
    out = np.zeros((n_boot, values.shape[1]))
    for g in pd.unique(groups):
        sel = groups == g
        gi = grid[sel]
        size = int(gi.max()) + 1
        dense = np.zeros((size, values.shape[1]))
        np.add.at(dense, gi, values[sel])
        b = max(1, min(block, size))
        ext = np.concatenate([dense, dense[: b - 1]]) if b > 1 else dense
        csum = np.concatenate([np.zeros((1, values.shape[1])), np.cumsum(ext, axis=0)])
        bsum = csum[b : b + size] - csum[:size]  # circular block sum starting at each position
        k = math.ceil(size / b)
        chunk = max(1, 2_000_000 // max(1, k * values.shape[1]))
        for a in range(0, n_boot, chunk):
            m = min(chunk, n_boot - a)
            starts = rng.integers(0, size, size=(m, k))
            out[a : a + m] += bsum[starts].sum(axis=1)
    return out


def _ratio_ci(num: np.ndarray, den: np.ndarray, confidence: float) -> tuple[float, float]:
    with np.errstate(divide="ignore", invalid="ignore"):
        r = num / den
    r = r[np.isfinite(r)]
    if r.size == 0:
        return math.nan, math.nan
    a = (1.0 - confidence) / 2.0 * 100.0
    lo, hi = np.percentile(r, [a, 100.0 - a])
    return float(lo), float(hi)


def magnet_summary(
    samples: pd.DataFrame,
    *,
    step: int,
    block: int,
    by: str | pd.Series | None = None,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Hit rates, lift and block-bootstrap confidence intervals, overall or per group.

    Parameters
    ----------
    samples : output of :func:`magnet_samples` (several pairs may be concatenated with a ``pair``
        column; each pair is then resampled on its own).
    step : the ``step`` the samples were taken with (candles between grid positions).
    block : bootstrap block length in candles (at least the horizon; converted to
        ``ceil(block / step)`` grid positions).
    by : column name or Series of group labels (e.g. ``"bucket"``); ``None`` gives one row
        ``"all"``. Every group's statistics come from the same time-block resamples.
    n_boot, confidence, seed : bootstrap resamples, two-sided percentile level, RNG seed.

    Returns
    -------
    DataFrame indexed by group, columns:

    n : samples
    hit_rate, baseline_hit_rate, mirror_hit_rate : touch shares of target, coin-flip level and
        mirror level (0-1)
    lift : ``hit_rate / baseline_hit_rate``; lift_ci_low, lift_ci_high : its bootstrap interval
    lift_vs_mirror : ``hit_rate / mirror_hit_rate``; its interval in lift_vs_mirror_ci_low/_high
    hit_rate_ci_low, hit_rate_ci_high, baseline_ci_low, baseline_ci_high : intervals of the rates
    median_dist_pct : median target distance (%)
    """
    if block < 1 or step < 1:
        raise ValueError("block and step must be >= 1")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    cols = [
        "n", "hit_rate", "baseline_hit_rate", "mirror_hit_rate", "lift", "lift_ci_low",
        "lift_ci_high", "lift_vs_mirror", "lift_vs_mirror_ci_low", "lift_vs_mirror_ci_high",
        "hit_rate_ci_low", "hit_rate_ci_high", "baseline_ci_low", "baseline_ci_high",
        "median_dist_pct",
    ]  # fmt: skip
    if len(samples) == 0:
        return pd.DataFrame([{c: (0 if c == "n" else math.nan) for c in cols}], index=["all"])
    if by is None:
        labels = pd.Series(["all"] * len(samples), index=samples.index)
    elif isinstance(by, str):
        labels = samples[by]
    else:
        labels = pd.Series(by, index=samples.index)
    keys = [k for k in pd.unique(labels) if not (isinstance(k, float) and math.isnan(k))]
    try:
        keys = sorted(keys)
    except TypeError:
        pass
    hit = samples["hit"].to_numpy(dtype=np.float64)
    base = samples["baseline_hit"].to_numpy(dtype=np.float64)
    mirr = samples["mirror_hit"].to_numpy(dtype=np.float64)
    lab = labels.to_numpy()
    stacks = []
    for k in keys:
        m = (lab == k).astype(np.float64)
        stacks += [m, m * hit, m * base, m * mirr]
    values = np.column_stack(stacks)
    groups = samples["pair"].to_numpy() if "pair" in samples.columns else np.zeros(len(samples))
    grid = samples["grid"].to_numpy(dtype=np.int64)
    sums = _block_sums(values, grid, groups, math.ceil(block / step), n_boot, seed)
    rows = {}
    dist = samples["dist_pct"].to_numpy()
    for j, k in enumerate(keys):
        cnt, nh, nb, nm = values[:, 4 * j : 4 * j + 4].sum(axis=0)
        bc, bh, bb, bm = (sums[:, 4 * j + q] for q in range(4))
        with np.errstate(divide="ignore", invalid="ignore"):
            row = {
                "n": int(cnt),
                "hit_rate": nh / cnt,
                "baseline_hit_rate": nb / cnt,
                "mirror_hit_rate": nm / cnt,
                "lift": nh / nb if nb else math.nan,
                "lift_vs_mirror": nh / nm if nm else math.nan,
            }
        row["lift_ci_low"], row["lift_ci_high"] = _ratio_ci(bh, bb, confidence)
        row["lift_vs_mirror_ci_low"], row["lift_vs_mirror_ci_high"] = _ratio_ci(bh, bm, confidence)
        row["hit_rate_ci_low"], row["hit_rate_ci_high"] = _ratio_ci(bh, bc, confidence)
        row["baseline_ci_low"], row["baseline_ci_high"] = _ratio_ci(bb, bc, confidence)
        row["median_dist_pct"] = float(np.median(dist[lab == k]))
        rows[k] = row
    return pd.DataFrame.from_dict(rows, orient="index")[cols]


def _distance_labels(dist: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    labels = np.array([f"{a:g}-{b:g}%" for a, b in zip(edges[:-1], edges[1:], strict=True)])
    idx = np.clip(np.searchsorted(np.asarray(edges), dist, side="right") - 1, 0, len(labels) - 1)
    return labels[idx]


def intensity_impact(
    candles: pd.DataFrame,
    features: pd.DataFrame,
    *,
    horizon: int,
    step: int = 1,
    start: Any = None,
) -> pd.DataFrame:
    """Price moves after each candle, grouped by ``liq_intensity_bucket`` (the guides' table).

    Every ``step``-th candle from ``start`` whose bucket is defined and whose horizon lies inside
    the data is used; the "nearest cluster" is the nearest significant cluster on either side, the
    one the intensity describes.

    Returns
    -------
    DataFrame indexed by bucket name (``low``, ``medium``, ``high``, ``extreme``, ``all``), columns:

    bucket : 0-3 (-1 for ``all``); guide : the guides' expected move for the bucket
    n : candles
    median_abs_move, p75_abs_move : median / 75th percentile of ``|close[t+H] - close[t]|`` (quote)
    median_abs_move_pct : the median in % of the close
    median_range : median of ``max(high) - min(low)`` over ``t+1 .. t+H`` (quote)
    median_excursion_toward : median furthest move toward the nearest cluster (quote)
    touch_rate : share of candles whose nearest cluster was touched within the horizon (0-1)
    median_cluster_dist_pct, median_cluster_size : the nearest cluster's distance (%) and
        notional (quote)
    """
    h = int(horizon)
    if h < 1 or step < 1:
        raise ValueError("horizon and step must be >= 1")
    close = candles["close"].to_numpy(dtype=np.float64)
    high = candles["high"].to_numpy(dtype=np.float64)
    low = candles["low"].to_numpy(dtype=np.float64)
    n = close.shape[0]
    dates = candle_dates(candles)
    i0 = 0 if start is None else int(np.searchsorted(dates, utc_datetime64(start)))
    t = np.arange(i0, max(i0, n - h), step)
    bucket = features["liq_intensity_bucket"].to_numpy(dtype=np.float64)[t]
    t = t[np.isfinite(bucket)]
    bucket = bucket[np.isfinite(bucket)]
    fmax, fmin = future_extremes(high, low, h)
    f = {c: features[c].to_numpy(dtype=np.float64)[t] for c in _FEATURES_NEEDED}
    c = close[t]
    dl = (c - f["liq_long_cluster_price"]) / c * 100.0
    ds = (f["liq_short_cluster_price"] - c) / c * 100.0
    use_long = np.isnan(ds) | (~np.isnan(dl) & (dl <= ds))
    level = np.where(use_long, f["liq_long_cluster_price"], f["liq_short_cluster_price"])
    size = np.where(use_long, f["liq_long_cluster_size"], f["liq_short_cluster_size"])
    dist = np.where(use_long, dl, ds)
    touched = np.where(use_long, fmin[t] <= level, fmax[t] >= level)
    toward = np.where(use_long, c - fmin[t], fmax[t] - c)
    move = np.abs(close[t + h] - c)
    rng_ = fmax[t] - fmin[t]
    rows = {}
    for b in (0, 1, 2, 3, -1):
        m = np.ones(t.shape[0], dtype=bool) if b < 0 else bucket == b
        name = "all" if b < 0 else INTENSITY_LABELS[b]
        k = int(m.sum())

        def med(a: np.ndarray, mask: np.ndarray = m, q: float = 50.0) -> float:
            return float(np.percentile(a[mask], q)) if mask.any() else math.nan

        rows[name] = {
            "bucket": b,
            "guide": GUIDE_MOVES.get(b, ""),
            "n": k,
            "median_abs_move": med(move),
            "p75_abs_move": med(move, q=75.0),
            "median_abs_move_pct": med(move / c * 100.0),
            "median_range": med(rng_),
            "median_excursion_toward": med(toward),
            "touch_rate": float(touched[m].mean()) if k else math.nan,
            "median_cluster_dist_pct": med(dist),
            "median_cluster_size": med(size),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


@dataclass(frozen=True)
class Bootstrap:
    """Block-bootstrap settings of the magnet test's intervals.

    ``n_boot`` resamples, two-sided percentile ``confidence``, ``block`` length in candles
    (``None``: the longer of the horizon and the model window).
    """

    n_boot: int = 1000
    confidence: float = 0.95
    block: int | None = None


@dataclass(frozen=True)
class MagnetOptions:
    """The main configuration of a magnet test (see :func:`magnet_samples`): ``horizon`` in
    candles, target ``band_pct`` (%), target ``rule``, sampling ``step`` (``None``: horizon/4),
    first sampled date ``start`` (earlier candles only warm up) and the ``seed`` of the
    baseline coin flips and the bootstrap."""

    horizon: int = 24
    band_pct: float = 5.0
    rule: str = "larger"
    step: int | None = None
    start: Any = None
    seed: int = 0


@dataclass(frozen=True)
class MagnetGrid:
    """Extra model windows, horizons (candles) and bands (%) of :func:`magnet_study`'s grid
    table; the main configuration is always included."""

    windows: Sequence[str] = ()
    horizons: Sequence[int] = ()
    bands: Sequence[float] = ()


def magnet_test(
    candles: pd.DataFrame,
    model: LiquidationModel | None = None,
    *,
    horizon: int = 24,
    band_pct: float = 5.0,
    step: int | None = None,
    rule: str = "larger",
    start: Any = None,
    seed: int = 0,
    bootstrap: Bootstrap | None = None,
    **params: Any,
) -> dict[str, Any]:
    """The magnet test on one candle frame, summarised.

    Parameters are those of :func:`magnet_samples`; ``bootstrap`` (:class:`Bootstrap`) sets the
    intervals of :func:`magnet_summary`, its ``block`` defaulting to the longer of ``horizon``
    and the model window (in candles).

    Returns
    -------
    dict with keys ``n``, ``hit_rate``, ``baseline_hit_rate``, ``mirror_hit_rate`` (0-1), ``lift``,
    ``lift_ci_low``, ``lift_ci_high``, ``lift_vs_mirror`` (ratios), ``horizon``, ``step``,
    ``block`` (candles), ``band_pct`` (%), ``rule``, ``window``.
    """
    boot = bootstrap or Bootstrap()
    m = resolve_model(model, params)
    step = max(1, int(horizon) // 4) if step is None else int(step)
    tf = candle_spacing(candle_dates(candles))
    block = boot.block
    if block is None:
        block = max(int(horizon), math.ceil(m.window_td / tf))
    samples = magnet_samples(
        candles, m, horizon=horizon, band_pct=band_pct, step=step, rule=rule, start=start,
        seed=seed,
    )  # fmt: skip
    row = magnet_summary(
        samples, step=step, block=block, n_boot=boot.n_boot, confidence=boot.confidence, seed=seed
    ).iloc[0]
    out: dict[str, Any] = {
        k: json_value(row[k])
        for k in ("hit_rate", "baseline_hit_rate", "mirror_hit_rate", "lift", "lift_ci_low",
                  "lift_ci_high", "lift_vs_mirror")
    }  # fmt: skip
    out = {"n": int(row["n"]), **out}
    out.update(
        horizon=int(horizon), step=step, block=int(block), band_pct=float(band_pct), rule=rule,
        window=m.to_dict()["window"],
    )  # fmt: skip
    return out


@dataclass
class MagnetStudy:
    """Result of :func:`magnet_study`.

    ``headline``: the summary for the main window, horizon and band (keys as in
    :func:`magnet_test`); ``samples``: the main configuration's samples (all pairs, ``pair``
    column); ``tables``: DataFrames ``by_bucket``, ``by_distance``, ``by_side``, ``by_pair``,
    ``grid`` (window x horizon x band) and ``intensity`` (the guides' table, per pair).
    """

    headline: dict[str, Any]
    samples: pd.DataFrame
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)


def magnet_study(
    frames: Mapping[str, pd.DataFrame],
    model: LiquidationModel | None = None,
    options: MagnetOptions | None = None,
    *,
    grid: MagnetGrid | None = None,
    bootstrap: Bootstrap | None = None,
    progress: Callable[[str], None] | None = None,
) -> MagnetStudy:
    """The magnet test over several pairs (pooled), with tables by bucket, distance, side, pair,
    and a grid over windows, horizons (in candles) and bands.

    ``frames`` maps a pair name to its candles (one timeframe for all); earlier candles than
    ``options.start`` only warm the engine up. The main configuration is ``model.window`` x
    ``options.horizon`` x ``options.band_pct``; ``grid`` (:class:`MagnetGrid`) extends the grid
    table (the main values are always included). ``bootstrap.block`` is ignored: blocks are the
    longer of the horizon and the window of each configuration. ``progress(message)`` is called
    between steps, if given.
    """
    opts = options or MagnetOptions()
    extra = grid or MagnetGrid()
    boot = bootstrap or Bootstrap()
    horizon, band_pct, rule, step, start, seed = (
        opts.horizon, opts.band_pct, opts.rule, opts.step, opts.start, opts.seed
    )  # fmt: skip
    n_boot, confidence = boot.n_boot, boot.confidence
    windows, horizons, bands = extra.windows, extra.horizons, extra.bands
    if not frames:
        raise ValueError("no candle frames given")
    base = resolve_model(model, {})
    main_window = base.to_dict()["window"]
    tfs = {p: candle_spacing(candle_dates(df)) for p, df in frames.items()}
    tf = next(iter(tfs.values()))
    if any(v != tf for v in tfs.values()):
        raise ValueError(f"all pairs need the same timeframe, got {tfs}")
    win_list = [main_window] + [w for w in windows if w != main_window]
    hor_list = [int(horizon)] + [int(h) for h in horizons if int(h) != int(horizon)]
    band_list = [float(band_pct)] + [float(b) for b in bands if float(b) != float(band_pct)]

    def _step(h: int) -> int:
        return max(1, h // 4) if step is None else int(step)

    def _block(h: int, w: str) -> int:
        return max(h, math.ceil(parse_duration(w, "window") / tf))

    grid_rows = []
    main_samples = pd.DataFrame()
    intensity = {}
    for w in win_list:
        m = base.replace(window=w)
        feats = {}
        for pair, df in frames.items():
            if progress:
                progress(f"engine + features: {pair} window {w} ({len(df)} candles)")
            feats[pair] = liquidation_features(df, m)
        for h in hor_list:
            for b in band_list:
                parts = []
                for pair, df in frames.items():
                    s = magnet_samples(
                        df, features=feats[pair], horizon=h, band_pct=b, step=_step(h),
                        rule=rule, start=start, seed=seed,
                    )  # fmt: skip
                    s.insert(0, "pair", pair)
                    parts.append(s)
                samples = pd.concat(parts, ignore_index=True)
                row = magnet_summary(
                    samples, step=_step(h), block=_block(h, w), n_boot=n_boot,
                    confidence=confidence, seed=seed,
                ).iloc[0].to_dict()  # fmt: skip
                row.update(window=w, horizon=h, band_pct=b)
                grid_rows.append(row)
                if w == main_window and h == hor_list[0] and b == band_list[0]:
                    main_samples = samples
        if w == main_window:
            for pair, df in frames.items():
                intensity[pair] = intensity_impact(
                    df, feats[pair], horizon=hor_list[0], step=_step(hor_list[0]), start=start
                )
    h0 = hor_list[0]
    kw: dict[str, Any] = {"step": _step(h0), "block": _block(h0, main_window), "n_boot": n_boot,
          "confidence": confidence, "seed": seed}  # fmt: skip
    tables: dict[str, pd.DataFrame] = {}
    gt = pd.DataFrame(grid_rows)
    gt["_w"] = gt["window"].map({w: i for i, w in enumerate(win_list)})
    gt = gt.sort_values(["_w", "horizon", "band_pct"], kind="stable").drop(columns="_w")
    gt = gt.reset_index(drop=True)
    lead = ["window", "horizon", "band_pct"]
    tables["grid"] = gt[lead + [c for c in gt.columns if c not in lead]]
    overall = magnet_summary(main_samples, **kw)
    if len(main_samples):
        bucket_names = main_samples["bucket"].map(
            lambda v: INTENSITY_LABELS.get(int(v), "") if np.isfinite(v) else "undefined"
        )
        order = [*INTENSITY_LABELS.values(), "undefined"]
        tb = magnet_summary(main_samples, by=bucket_names, **kw)
        tables["by_bucket"] = tb.reindex([k for k in order if k in tb.index])
        dist_lab = pd.Series(
            _distance_labels(main_samples["dist_pct"].to_numpy(), DISTANCE_EDGES),
            index=main_samples.index,
        )
        td = magnet_summary(main_samples, by=dist_lab, **kw)
        edges_order = list(_distance_labels(np.asarray(DISTANCE_EDGES[:-1]) + 1e-9, DISTANCE_EDGES))
        tables["by_distance"] = td.reindex([k for k in edges_order if k in td.index])
        side_lab = main_samples["side"].map({1: "above (shorts)", -1: "below (longs)"})
        tables["by_side"] = magnet_summary(main_samples, by=side_lab, **kw)
        if main_samples["pair"].nunique() > 1:
            tables["by_pair"] = magnet_summary(main_samples, by="pair", **kw)
    if intensity:
        tables["intensity"] = pd.concat(intensity, names=["pair", "intensity"])
    row = overall.iloc[0]
    headline: dict[str, Any] = {"n": int(row["n"])}
    headline |= {
        k: json_value(row[k])
        for k in ("hit_rate", "baseline_hit_rate", "lift", "lift_ci_low", "lift_ci_high",
                  "mirror_hit_rate", "lift_vs_mirror", "lift_vs_mirror_ci_low",
                  "lift_vs_mirror_ci_high")
    }  # fmt: skip
    settings = {
        "pairs": list(frames),
        "timeframe": format_timedelta(tf),
        "window": main_window,
        "horizon": h0,
        "band_pct": band_list[0],
        "rule": rule,
        "step": _step(h0),
        "block": _block(h0, main_window),
        "n_boot": n_boot,
        "confidence": confidence,
        "seed": seed,
        "start": None if start is None else str(utc_timestamp(start)),
        "first_sample": str(main_samples["date"].min()) if len(main_samples) else None,
        "last_sample": str(main_samples["date"].max()) if len(main_samples) else None,
    }
    headline.update({k: settings[k] for k in ("window", "horizon", "band_pct", "rule", "step",
                                               "block")})  # fmt: skip
    return MagnetStudy(headline=headline, samples=main_samples, tables=tables, settings=settings)


def magnet_warmup(
    model: LiquidationModel, timeframe: str, windows: Sequence[str] = ()
) -> pd.Timedelta:
    """History to load before the first sample of :func:`magnet_study`: the longest window
    (the model's or one of ``windows``), the intensity lookback, and a day."""
    from liqsignals.features import DEFAULT_INTENSITY_LOOKBACK

    longest = max([model.window_td, *(parse_duration(w, "window") for w in windows)])
    lookback = timeframe_to_timedelta(timeframe) * DEFAULT_INTENSITY_LOOKBACK
    return longest + lookback + pd.Timedelta(days=1)


#: Per-pair columns of ``by_pair`` in :meth:`MagnetEvaluation.to_dict`.
BY_PAIR_KEYS: tuple[str, ...] = (
    "n", "hit_rate", "baseline_hit_rate", "lift", "lift_ci_low", "lift_ci_high",
)  # fmt: skip


@dataclass
class MagnetEvaluation:
    """The magnet test as ``liqsignals evaluate magnets`` reports it: a :class:`MagnetStudy`
    with the run's ``timeframe`` and ``timerange`` (text as given) and the ``report`` written.

    :meth:`to_dict` is the ``--json`` object: the headline (``n``, ``hit_rate``,
    ``baseline_hit_rate``, ``lift``, ``lift_ci_low``, ``lift_ci_high``, ``mirror_hit_rate``,
    ``lift_vs_mirror`` and its interval, ``window``, ``horizon``, ``band_pct``, ``rule``,
    ``step``, ``block``), then ``pairs``, ``timeframe``, ``timerange``, ``horizon_duration``,
    ``first_sample``, ``last_sample``, ``by_pair`` (several pairs) and ``report`` (if written).
    """

    study: MagnetStudy
    timeframe: str
    timerange: str | None = None
    report: str | None = None

    @property
    def pairs(self) -> list[str]:
        return list(self.study.settings["pairs"])

    @property
    def horizon(self) -> int:
        return int(self.study.settings["horizon"])

    @property
    def horizon_duration(self) -> str:
        return duration_text(self.horizon, self.timeframe)

    def by_pair(self) -> dict[str, dict[str, Any]] | None:
        """pair -> the :data:`BY_PAIR_KEYS` of its row (several pairs only)."""
        tab = self.study.tables.get("by_pair")
        if tab is None:
            return None
        out = {}
        for pair, row in tab.iterrows():
            d = {k: json_value(row[k]) for k in BY_PAIR_KEYS}
            d["n"] = int(row["n"])
            out[str(pair)] = d
        return out

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.study.headline)
        out.update(
            pairs=self.pairs, timeframe=self.timeframe, timerange=self.timerange,
            horizon_duration=self.horizon_duration,
            first_sample=self.study.settings["first_sample"],
            last_sample=self.study.settings["last_sample"],
        )  # fmt: skip
        by_pair = self.by_pair()
        if by_pair is not None:
            out["by_pair"] = by_pair
        if self.report is not None:
            out["report"] = self.report
        return json_safe(out)
