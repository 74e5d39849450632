"""Competing magnets: is a liquidation cluster touched more often than other candidate levels?

Every target is read at the close of candle ``t`` from data ``<= t`` and gives at most one level
per sample, only when its centre lies within ``band_pct`` of the close (rules fixed in
``docs/preregistration.md``):

* ``liq``: the larger (by notional) of the nearest long cluster below and short cluster above;
* ``swing``: the nearer of the prior ``swing_lookback``-candle high (above) and low (below);
* ``round``: the nearest multiple of ``10 ** (floor(log10(close)) - 1)`` (BTC at 20,000-99,999:
  1,000; ETH at 1,000-9,999: 100), either side, not within 0.05 % of the close;
* ``volume``: the highest-volume 0.5 % log-price bin of the prior ``profile_lookback`` candles'
  typical prices, excluding the bin of the close;
* ``placebo``: the ``liq`` target's side and relative distance from ``placebo_offset`` candles
  earlier, applied to today's close (a cluster shifted by a fixed offset in time).

A target is *hit* when price touches it within ``horizon`` candles; the *mirror* is the level at
the same log distance on the other side. ``lift = sum(hit) / sum((hit + mirror_hit) / 2)``: the
baseline is the mean of the two touches, which a driftless market makes equal in expectation,
without coin noise. Intervals: circular moving-block bootstrap (1-day and 1-week blocks).
:func:`head_to_head`: on samples where the ``liq`` and ``swing`` targets lie on different sides,
the share of "only liq hit" among "exactly one hit" (0.5: no preference).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from liqsignals.analysis.common import candle_dates, future_extremes
from liqsignals.analysis.intervals import Interval, block_bootstrap_ratio, paired_block_bootstrap

__all__ = [
    "TARGETS",
    "CompetingOptions",
    "CompetingResult",
    "HeadToHead",
    "competing_samples",
    "competing_test",
    "head_to_head",
    "main",
    "target_levels",
]

TARGETS: tuple[str, ...] = ("liq", "swing", "round", "volume", "placebo")


@dataclass(frozen=True)
class CompetingOptions:
    """horizon (candles), band_pct (%), sampling step (None: horizon // 4), lookbacks of the
    swing and volume targets (candles), placebo_offset (candles), round_exclude_pct (%),
    profile_bin_pct (%), resamples and seed of the bootstrap, blocks (samples; None: 1 day and
    1 week from ``spacing``)."""

    horizon: int = 24
    band_pct: float = 5.0
    step: int | None = None
    swing_lookback: int = 72
    profile_lookback: int = 168
    placebo_offset: int = 672
    round_exclude_pct: float = 0.05
    profile_bin_pct: float = 0.5
    resamples: int = 2000
    seed: int = 0


def _liq(close: np.ndarray, feats: pd.DataFrame, band: float) -> tuple[np.ndarray, np.ndarray]:
    need = ("liq_long_cluster_price", "liq_long_cluster_size", "liq_short_cluster_price",
            "liq_short_cluster_size")  # fmt: skip
    miss = [c for c in need if c not in feats.columns]
    if miss:
        raise ValueError(f"features lack column(s) {miss}; pass liquidation_features(...) output")
    lc = feats["liq_long_cluster_price"].to_numpy(dtype=np.float64)
    ls = feats["liq_long_cluster_size"].to_numpy(dtype=np.float64)
    sc = feats["liq_short_cluster_price"].to_numpy(dtype=np.float64)
    ss = feats["liq_short_cluster_size"].to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore"):
        dl = (close - lc) / close * 100.0
        ds = (sc - close) / close * 100.0
        in_l = np.isfinite(lc) & (dl > 0) & (dl <= band)
        in_s = np.isfinite(sc) & (ds > 0) & (ds <= band)
        pick_s = in_s & (~in_l | (ss > ls) | ((ss == ls) & (ds < dl)))
    pick_l = in_l & ~pick_s
    side = np.where(pick_s, 1.0, np.where(pick_l, -1.0, 0.0))
    return side, np.where(pick_s, sc, np.where(pick_l, lc, np.nan))


def _nearer(close: np.ndarray, above: np.ndarray, below: np.ndarray, band: float
            ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    with np.errstate(invalid="ignore"):
        da = np.log(above / close)
        db = np.log(close / below)
        ok_a = np.isfinite(da) & (da > 0) & ((above / close - 1) * 100 <= band)
        ok_b = np.isfinite(db) & (db > 0) & ((1 - below / close) * 100 <= band)
        up = ok_a & (~ok_b | (da <= db))
    dn = ok_b & ~up
    return np.where(up, 1.0, np.where(dn, -1.0, 0.0)), np.where(
        up, above, np.where(dn, below, np.nan)
    )


def _volume_node(candles: pd.DataFrame, lookback: int, bin_pct: float) -> np.ndarray:
    tp = ((candles["high"] + candles["low"] + candles["close"]) / 3.0).to_numpy(dtype=np.float64)
    vol = candles["volume"].to_numpy(dtype=np.float64)
    close = candles["close"].to_numpy(dtype=np.float64)
    width = math.log1p(bin_pct / 100.0)
    bins = np.floor(np.log(tp) / width).astype(np.int64)
    cbin = np.floor(np.log(close) / width).astype(np.int64)
    out = np.full(close.shape[0], np.nan)
    for t in range(lookback - 1, close.shape[0]):
        b = bins[t - lookback + 1 : t + 1]
        v = vol[t - lookback + 1 : t + 1]
        lo = b.min()
        prof = np.bincount(b - lo, weights=v)
        own = cbin[t] - lo
        if 0 <= own < prof.shape[0]:
            prof[own] = 0.0
        if not prof.max() > 0:
            continue
        node = int(np.argmax(prof)) + lo
        out[t] = math.exp((node + 0.5) * width)
    return out


def target_levels(
    candles: pd.DataFrame, features: pd.DataFrame, target: str, options: CompetingOptions
) -> tuple[np.ndarray, np.ndarray]:
    """Per candle: side (+1 above, -1 below, 0 none) and level of ``target``."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    close = candles["close"].to_numpy(dtype=np.float64)
    band = float(options.band_pct)
    if target == "liq":
        return _liq(close, features, band)
    if target == "placebo":
        side, level = _liq(close, features, band)
        off = int(options.placebo_offset)
        rel = level / close
        ps, pr = np.zeros_like(side), np.full_like(rel, np.nan)
        ps[off:], pr[off:] = side[:-off], rel[:-off]
        return ps, np.where(ps != 0, close * pr, np.nan)
    if target == "swing":
        w = int(options.swing_lookback)
        hi = candles["high"].rolling(w, min_periods=w).max().to_numpy(dtype=np.float64)
        lo = candles["low"].rolling(w, min_periods=w).min().to_numpy(dtype=np.float64)
        return _nearer(close, hi, lo, band)
    if target == "round":
        unit = 10.0 ** (np.floor(np.log10(close)) - 1.0)
        below = np.floor(close / unit) * unit
        above = below + unit
        ex = options.round_exclude_pct / 100.0
        below = np.where(below >= close * (1 - ex), below - unit, below)
        above = np.where(above <= close * (1 + ex), above + unit, above)
        return _nearer(close, above, below, band)
    node = _volume_node(candles, int(options.profile_lookback), float(options.profile_bin_pct))
    with np.errstate(invalid="ignore"):
        up = node > close
    above = np.where(up, node, np.nan)
    below = np.where(~up & np.isfinite(node), node, np.nan)
    return _nearer(close, above, below, band)


def competing_samples(
    candles: pd.DataFrame, features: pd.DataFrame, target: str, options: CompetingOptions
) -> pd.DataFrame:
    """One row per sampled candle with a ``target`` level: ``i, date, side, level, dist_pct,
    hit, mirror_hit`` (touches within the horizon)."""
    if len(features) != len(candles):
        raise ValueError("features and candles must have the same length")
    h = int(options.horizon)
    if h < 1:
        raise ValueError(f"horizon must be >= 1 candle, got {options.horizon!r}")
    step = max(1, h // 4) if options.step is None else int(options.step)
    close = candles["close"].to_numpy(dtype=np.float64)
    fmax, fmin = future_extremes(candles["high"].to_numpy(dtype=np.float64),
                                 candles["low"].to_numpy(dtype=np.float64), h)  # fmt: skip
    side, level = target_levels(candles, features, target, options)
    grid = np.arange(0, max(0, close.shape[0] - h), step)
    t = grid[side[grid] != 0]
    s, lv, c = side[t], level[t], close[t]
    mirror = c * c / lv
    hit = np.where(s > 0, fmax[t] >= lv, fmin[t] <= lv)
    mhit = np.where(s > 0, fmin[t] <= mirror, fmax[t] >= mirror)
    dates = pd.DatetimeIndex(candle_dates(candles)).tz_localize("UTC")
    return pd.DataFrame({"i": t, "grid": t // step, "date": dates[t], "side": s.astype(np.int64),
                         "level": lv, "dist_pct": np.abs(lv / c - 1) * 100, "hit": hit,
                         "mirror_hit": mhit})  # fmt: skip


@dataclass
class CompetingResult:
    """Lift of one target: hit rate over ``(hit + mirror_hit) / 2``, with 1-day and 1-week
    block intervals."""

    target: str
    n: int
    hit_rate: float
    mirror_rate: float
    baseline_rate: float
    median_dist_pct: float
    lift_day: Interval
    lift_week: Interval

    @property
    def lift(self) -> float:
        return self.lift_week.estimate

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "n": self.n, "hit_rate": self.hit_rate,
                "mirror_rate": self.mirror_rate, "baseline_rate": self.baseline_rate,
                "median_dist_pct": self.median_dist_pct, "lift": self.lift,
                "lift_ci_low": self.lift_week.low, "lift_ci_high": self.lift_week.high,
                "lift_p_value": self.lift_week.p_value, "lift_ci_day": self.lift_day.to_dict(),
                "lift_ci_week": self.lift_week.to_dict()}  # fmt: skip


def _blocks(step: int, spacing: pd.Timedelta) -> tuple[int, int]:
    per = spacing * step
    return (max(1, int(round(pd.Timedelta(days=1) / per))),
            max(1, int(round(pd.Timedelta(days=7) / per))))  # fmt: skip


def _spacing(candles: pd.DataFrame) -> pd.Timedelta:
    d = pd.DatetimeIndex(candle_dates(candles))
    return pd.Timedelta(np.median(np.diff(d.asi8))) if len(d) > 1 else pd.Timedelta("1h")


def competing_test(
    candles: pd.DataFrame, features: pd.DataFrame, target: str,
    options: CompetingOptions | None = None,
) -> CompetingResult:  # fmt: skip
    """The lift of ``target`` with its block-bootstrap intervals (null 1)."""
    opts = options or CompetingOptions()
    s = competing_samples(candles, features, target, opts)
    if s.empty:
        raise ValueError(
            f"target {target!r} has no level within band_pct={opts.band_pct} of the close"
        )
    step = max(1, opts.horizon // 4) if opts.step is None else int(opts.step)
    bd, bw = _blocks(step, _spacing(candles))
    hit = s["hit"].to_numpy(dtype=float)
    base = (hit + s["mirror_hit"].to_numpy(dtype=float)) / 2.0
    if not base.sum() > 0:
        raise ValueError(f"target {target!r}: neither the level nor its mirror was ever touched")
    rs, sd = opts.resamples, opts.seed
    return CompetingResult(
        target=target, n=int(hit.shape[0]), hit_rate=float(hit.mean()),
        mirror_rate=float(s["mirror_hit"].mean()), baseline_rate=float(base.mean()),
        median_dist_pct=float(s["dist_pct"].median()),
        lift_day=block_bootstrap_ratio(hit, base, block=bd, resamples=rs, seed=sd),
        lift_week=block_bootstrap_ratio(hit, base, block=bw, resamples=rs, seed=sd),
    )  # fmt: skip


@dataclass
class HeadToHead:
    """Samples where the ``liq`` and ``swing`` targets lie on different sides: ``n`` of them,
    ``decided`` (exactly one hit), ``share_liq`` (only-liq among decided, with interval; 0.5 =
    no preference), median distances of both targets (%)."""

    n: int
    decided: int
    share_liq: Interval
    median_dist_liq_pct: float
    median_dist_swing_pct: float

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "decided": self.decided, "share_liq": self.share_liq.estimate,
                "share_liq_ci_low": self.share_liq.low, "share_liq_ci_high": self.share_liq.high,
                "p_value": self.share_liq.p_value,
                "median_dist_liq_pct": self.median_dist_liq_pct,
                "median_dist_swing_pct": self.median_dist_swing_pct}  # fmt: skip


def head_to_head(
    candles: pd.DataFrame, features: pd.DataFrame, options: CompetingOptions | None = None
) -> HeadToHead:
    """Liquidation target against the swing target where they lie on different sides."""
    opts = options or CompetingOptions()
    a = competing_samples(candles, features, "liq", opts).set_index("i")
    b = competing_samples(candles, features, "swing", opts).set_index("i")
    j = a.merge(b, left_index=True, right_index=True, suffixes=("_liq", "_swing"))
    j = j[j["side_liq"] != j["side_swing"]]
    only_liq = j["hit_liq"] & ~j["hit_swing"]
    only_sw = j["hit_swing"] & ~j["hit_liq"]
    dec = (only_liq | only_sw).to_numpy()
    if not dec.any():
        raise ValueError("no head-to-head sample where exactly one of the two targets was hit")
    step = max(1, opts.horizon // 4) if opts.step is None else int(opts.step)
    _, bw = _blocks(step, _spacing(candles))
    x = only_liq.to_numpy(dtype=float)[dec]
    ci = paired_block_bootstrap(x, block=bw, resamples=opts.resamples, seed=opts.seed, null=0.5)
    return HeadToHead(n=int(len(j)), decided=int(dec.sum()), share_liq=ci,
                      median_dist_liq_pct=float(j["dist_pct_liq"].median()),
                      median_dist_swing_pct=float(j["dist_pct_swing"].median()))  # fmt: skip


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m liqsignals.analysis.competing",
        description="Lift of liquidation, swing, round, volume-node and placebo targets.",
    )
    ap.add_argument("--datadir", required=True, help="freqtrade datadir (exchange folder)")
    ap.add_argument("--pairs", nargs="+", required=True, help="ccxt symbols, e.g. BTC/USDT:USDT")
    ap.add_argument("--timeframe", default="1h")
    ap.add_argument("--timerange", default=None, help="freqtrade syntax, e.g. 20230101-")
    ap.add_argument("--horizon", default="1d", help="duration; lookbacks scale with it")
    ap.add_argument("--band", type=float, default=5.0, help="band_pct (%%)")
    ap.add_argument("--window", default="1w", help="model window of the liq_* columns")
    ap.add_argument("--targets", nargs="+", default=list(TARGETS), choices=TARGETS)
    ap.add_argument("--resamples", type=int, default=2000)
    ap.add_argument("--json", action="store_true", help="print JSON")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m liqsignals.analysis.competing``: one JSON object per pair (``--json``).

    Pair-agnostic settings: the horizon is a duration; the swing lookback is 3 horizons of 1 day
    (72 candles at 1h), the volume profile one week, the placebo offset 4 weeks, all in candles
    of the timeframe.
    """
    from liqsignals.data.datadir import load_candles
    from liqsignals.features import liquidation_features, timeframe_to_timedelta
    from liqsignals.model import parse_duration

    args = _parser().parse_args(argv)
    try:
        spacing = timeframe_to_timedelta(args.timeframe)
        h = max(1, int(round(parse_duration(args.horizon, "horizon") / spacing)))
        per_day = max(1, int(round(pd.Timedelta(days=1) / spacing)))
        opts = CompetingOptions(horizon=h, band_pct=args.band, swing_lookback=3 * per_day,
                                profile_lookback=7 * per_day, placebo_offset=28 * per_day,
                                resamples=args.resamples)  # fmt: skip
        out: dict[str, Any] = {}
        for pair in args.pairs:
            df = load_candles(args.datadir, pair, args.timeframe, timerange=args.timerange)
            feats = liquidation_features(df, window=args.window, symbol=pair)
            cell: dict[str, Any] = {"pair": pair, "timeframe": args.timeframe, "horizon": h,
                                    "band_pct": args.band}  # fmt: skip
            cell["targets"] = {
                t: competing_test(df, feats, t, opts).to_dict() for t in args.targets
            }
            cell["head_to_head"] = head_to_head(df, feats, opts).to_dict()
            out[pair] = cell
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(out, indent=2, default=str))
        return 0
    for pair, cell in out.items():
        print(f"{pair} {cell['timeframe']} H={cell['horizon']} band={cell['band_pct']}%")
        for t, r in cell["targets"].items():
            print(f"  {t:8s} n={r['n']:6d} hit={r['hit_rate']:.3f} mirror={r['mirror_rate']:.3f} "
                  f"lift={r['lift']:.4f} [{r['lift_ci_low']:.4f}, {r['lift_ci_high']:.4f}] "
                  f"p={r['lift_p_value']:.4f}")  # fmt: skip
        hh = cell["head_to_head"]
        print(
            f"  head-to-head liq vs swing: n={hh['n']} decided={hh['decided']} share_liq="
            f"{hh['share_liq']:.3f} [{hh['share_liq_ci_low']:.3f}, {hh['share_liq_ci_high']:.3f}]"
            f" dist liq {hh['median_dist_liq_pct']:.2f}% swing {hh['median_dist_swing_pct']:.2f}%"
        )
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
