"""Input ablation: what the mark price, open interest and the long/short ratio change.

The pre-registered cells, measures and decision rule are in ``docs/evaluation.md`` (section 5,
"Input ablation"). Each cell runs the same model twice on Binance 1h candles, once with one
market input and once without it, and reports the change of the evidence measures, paired on the
same bars or samples:

* ``R``  realised long-share Spearman on the busier half of the realised 4h bars (primary);
* ``R2`` realised Spearman of the bar totals (secondary);
* ``M``  the liquidation target's magnet lift (``liqsignals.analysis.competing``, primary);
* ``I``  the Clark-West adjusted Brier difference of the touch forecast
  (``liqsignals.analysis.information``, primary; mark cell only).

Holm's correction runs over the primary entries.

Research data: the realised liquidations, the aggregated open interest and the top-trader
long/short ratio are research-only files. This script reads them from the folder given as
``--research`` when it is run by hand for the docs figure; nothing is copied, and no test reads
them. Run from the project root::

    nice -n 10 .venv/bin/python scripts/ablation_inputs.py --datadir ../shared/data/binance \\
        --research ../shared/data/research --out OUT/ablation.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from liqsignals.align import align_level
from liqsignals.analysis.baselines import busier_half, long_share, spearman_difference
from liqsignals.analysis.common import spearman
from liqsignals.analysis.competing import CompetingOptions, competing_samples
from liqsignals.analysis.information import (
    clark_west_terms,
    liq_feature_frame,
    price_features,
    touch_labels,
    walk_forward,
)
from liqsignals.analysis.intervals import (
    Interval,
    block_resample_sums,
    holm,
    paired_block_bootstrap,
)
from liqsignals.analysis.realised import read_realised, realised_bars, realised_warmup
from liqsignals.engine import LiquidationEngine
from liqsignals.features import liquidation_features
from liqsignals.fileio import atomic_write_text
from liqsignals.model import LiquidationModel

PAIRS = {"BTC": "BTC/USDT:USDT", "ETH": "ETH/USDT:USDT"}
PRESETS = {"BTC": "binance_btc", "ETH": "binance_eth"}
TIMEFRAME = "1h"
HORIZON = 24  # candles: 1 day
STEP = HORIZON // 4
WEEK_SAMPLES = 7 * 24 // STEP  # 28
BAR_BLOCK = 12  # realised 4h bars: 2 days
RESAMPLES = 2000
SEED = 0
REALISED_START = pd.Timestamp("2024-11-13", tz="UTC")
SHORT_CELL_CANDLES = "20240901-"


# ----------------------------------------------------------------------------- pure statistics
def lift_difference(
    hit_a: np.ndarray,
    base_a: np.ndarray,
    hit_b: np.ndarray,
    base_b: np.ndarray,
    *,
    block: int,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    confidence: float = 0.95,
) -> tuple[Interval, float]:
    """``sum(hit_a)/sum(base_a) - sum(hit_b)/sum(base_b)`` over one sampling grid, with a
    circular moving-block bootstrap interval: the same blocks for the four sums (each
    :func:`block_resample_sums` call gets a generator with the same seed). Returns the interval
    (its ``p_value`` is that of ``difference <= 0``) and the p-value of ``difference >= 0``."""
    arrs = [np.asarray(v, dtype=np.float64) for v in (hit_a, base_a, hit_b, base_b)]
    n = arrs[0].shape[0]
    if any(a.shape != (n,) for a in arrs) or n == 0:
        raise ValueError("hit and base arrays must be 1-D, non-empty and of one length")
    if not all(np.all(np.isfinite(a)) for a in arrs):
        raise ValueError("hit and base arrays must be finite")
    if not (arrs[1].sum() > 0 and arrs[3].sum() > 0):
        raise ValueError("a baseline sums to zero: the lift is undefined")
    est = arrs[0].sum() / arrs[1].sum() - arrs[2].sum() / arrs[3].sum()
    sums = [block_resample_sums(a, block, resamples, np.random.default_rng(seed))[0]
            for a in arrs]  # fmt: skip
    with np.errstate(divide="ignore", invalid="ignore"):
        boot = sums[0] / sums[1] - sums[2] / sums[3]
    boot = boot[np.isfinite(boot)]
    alpha = 1.0 - confidence
    low, high = np.quantile(boot, [alpha / 2.0, 1.0 - alpha / 2.0])
    p_le = (1.0 + float(np.sum(boot <= 0.0))) / (1.0 + boot.size)
    p_ge = (1.0 + float(np.sum(boot >= 0.0))) / (1.0 + boot.size)
    iv = Interval(float(est), float(low), float(high), p_le, min(block, n), n, int(boot.size),
                  confidence, 0.0)  # fmt: skip
    return iv, p_ge


def two_sided(p_le: float, p_ge: float) -> float:
    """Two-sided bootstrap p-value from the two one-sided ones."""
    return float(min(1.0, 2.0 * min(p_le, p_ge)))


# ----------------------------------------------------------------------------- inputs
def coins_level(
    candles: pd.DataFrame, series: pd.DataFrame, column: str, *, usd: bool
) -> np.ndarray:
    """A 4h research series aligned to 1h candles by :func:`liqsignals.align.align_level` (a
    bar's value is used from its close on). With ``usd`` the value is divided by the close of the
    candle that ends at the bar's close (quote -> coins at that instant)."""
    dates = pd.to_datetime(series["date"], utc=True)
    vals = series[column].to_numpy(dtype=np.float64)
    if usd:
        cd = pd.to_datetime(candles["date"], utc=True)
        close_at = pd.Series(candles["close"].to_numpy(dtype=np.float64),
                             index=cd + pd.Timedelta(TIMEFRAME))  # fmt: skip
        close_at = close_at[~close_at.index.duplicated()]
        px = close_at.reindex(dates + pd.Timedelta("4h")).to_numpy()
        vals = vals / px
    got = align_level(candles["date"], TIMEFRAME, dates, {"v": vals}, "4h")
    return got["v"]


def read_research(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (pass --research, the research folder)")
    return pd.read_csv(path)


# ----------------------------------------------------------------------------- measures
@dataclass
class Entry:
    cell: str
    pair: str
    measure: str
    primary: bool
    n: int
    without: float
    with_: float
    iv: Interval
    p_ge: float

    def to_dict(self) -> dict[str, Any]:
        return {"cell": self.cell, "pair": self.pair, "measure": self.measure,
                "primary": self.primary, "n": self.n, "without": self.without,
                "with": self.with_, "difference": self.iv.estimate, "ci_low": self.iv.low,
                "ci_high": self.iv.high, "p_le": self.iv.p_value, "p_ge": self.p_ge,
                "p_two_sided": two_sided(self.iv.p_value, self.p_ge), "block": self.iv.block}  # fmt: skip


def realised_entries(
    cell: str, coin: str, with_df: pd.DataFrame, without_df: pd.DataFrame,
    models: tuple[LiquidationModel, LiquidationModel], realised: pd.DataFrame,
    start: pd.Timestamp,
) -> list[Entry]:  # fmt: skip
    """R and R2: estimates of both runs summed into the realised bars from ``start`` on."""
    bars = []
    for df, m in ((with_df, models[0]), (without_df, models[1])):
        est = LiquidationEngine(m, summaries=False).update_many(df)
        bars.append(realised_bars(df, realised, estimates=est, start=start))
    b1, b0 = bars
    j = b1.merge(b0, on="date", suffixes=("_1", "_0"))
    rl, rs = j["real_long_1"].to_numpy(), j["real_short_1"].to_numpy()
    busy = busier_half(rl, rs)
    share = long_share(rl, rs)[busy]
    s1 = long_share(j["est_long_1"].to_numpy(), j["est_short_1"].to_numpy())[busy]
    s0 = long_share(j["est_long_0"].to_numpy(), j["est_short_0"].to_numpy())[busy]
    out = []
    boot = {"block": BAR_BLOCK, "resamples": RESAMPLES, "seed": SEED}
    for name, target, a, b, primary in (
        ("R", share, s1, s0, True),
        ("R2", rl + rs, (j["est_long_1"] + j["est_short_1"]).to_numpy(),
         (j["est_long_0"] + j["est_short_0"]).to_numpy(), False),
    ):  # fmt: skip
        iv = spearman_difference(target, a, b, **boot)
        rev = spearman_difference(target, b, a, **boot)
        ok = np.isfinite(target) & np.isfinite(a) & np.isfinite(b)
        out.append(Entry(cell, coin, name, primary, int(ok.sum()),
                         spearman(b[ok], target[ok]), spearman(a[ok], target[ok]), iv,
                         rev.p_value))  # fmt: skip
    return out


def _grid_arrays(candles: pd.DataFrame, feats: pd.DataFrame, opts: CompetingOptions,
                 grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    s = competing_samples(candles, feats, "liq", opts).set_index("i")
    hit = np.zeros(grid.shape[0])
    base = np.zeros(grid.shape[0])
    pos = np.searchsorted(grid, s.index.to_numpy())
    keep = (pos < grid.shape[0]) & (grid[np.minimum(pos, grid.shape[0] - 1)] == s.index.to_numpy())
    h = s["hit"].to_numpy(dtype=float)[keep]
    m = s["mirror_hit"].to_numpy(dtype=float)[keep]
    hit[pos[keep]] = h
    base[pos[keep]] = (h + m) / 2.0
    return hit, base


def magnet_entry(cell: str, coin: str, candles: pd.DataFrame, f1: pd.DataFrame,
                 f0: pd.DataFrame, start: pd.Timestamp | None) -> Entry:  # fmt: skip
    """M: the lift of the liq target with minus without the input, paired on the sampling grid."""
    opts = CompetingOptions(horizon=HORIZON, band_pct=5.0)
    grid = np.arange(0, max(0, len(candles) - HORIZON), STEP)
    if start is not None:
        dates = pd.DatetimeIndex(pd.to_datetime(candles["date"], utc=True))
        grid = grid[np.asarray(dates[grid] >= start)]
    h1, b1 = _grid_arrays(candles, f1, opts, grid)
    h0, b0 = _grid_arrays(candles, f0, opts, grid)
    iv, p_ge = lift_difference(h1, b1, h0, b0, block=WEEK_SAMPLES)
    return Entry(cell, coin, "M", True, int(grid.shape[0]), float(h0.sum() / b0.sum()),
                 float(h1.sum() / b1.sum()), iv, p_ge)  # fmt: skip


def information_entry(cell: str, coin: str, candles: pd.DataFrame, f1: pd.DataFrame,
                      f0: pd.DataFrame, funding: pd.DataFrame | None) -> Entry:  # fmt: skip
    """I: Clark-West adjusted Brier of B with the input's ``liq_*`` minus B without, model A
    shared (the sampling of ``liqsignals.analysis.information``'s primary cell)."""
    vol_lookback = 168
    lab = touch_labels(candles, HORIZON, k=1.0, vol_lookback=vol_lookback)
    a = price_features(candles, vol_lookback=vol_lookback, funding=funding)
    warm = (f1["liq_long_total"].notna().to_numpy() & f0["liq_long_total"].notna().to_numpy()
            & a["sigma"].notna().to_numpy())  # fmt: skip
    i0 = int(np.argmax(warm))
    grid = np.arange(i0 + vol_lookback, len(candles), STEP)
    grid = grid[np.isfinite(lab["up"].to_numpy()[grid])]
    dates_all = pd.DatetimeIndex(pd.to_datetime(candles["date"], utc=True))
    dates = dates_all[grid]
    lend = dates_all[np.minimum(grid + HORIZON, len(candles) - 1)]
    y = np.column_stack([lab["up"].to_numpy()[grid], lab["down"].to_numpy()[grid]])
    xa = a.to_numpy(dtype=np.float64)[grid]
    bs = [liq_feature_frame(f.set_axis(candles.index), candles["close"], lab["d"])
          .to_numpy(dtype=np.float64)[grid] for f in (f1, f0)]  # fmt: skip
    pa, _, _, qa = walk_forward(xa, y, dates, lend, learner="logistic")
    cb = []
    for xb in bs:
        pb, _, _, qb = walk_forward(np.hstack([xa, xb]), y, dates, lend, learner="logistic")
        if not np.array_equal(pa, pb):
            raise AssertionError("A and B predicted different samples")
        ba, c = clark_west_terms(y[pa], qa, qb)
        cb.append(c)
    iv = paired_block_bootstrap(cb[1], cb[0], block=WEEK_SAMPLES, resamples=RESAMPLES, seed=SEED)
    rev = paired_block_bootstrap(cb[0], cb[1], block=WEEK_SAMPLES, resamples=RESAMPLES, seed=SEED)
    return Entry(cell, coin, "I", True, int(pa.shape[0]), float((ba - cb[1]).mean()),
                 float((ba - cb[0]).mean()), iv, rev.p_value)  # fmt: skip


# ----------------------------------------------------------------------------- cells
def touch_features(df: pd.DataFrame, pair: str, trigger: str) -> pd.DataFrame:
    return liquidation_features(df, LiquidationModel(window="1w", symbol=pair, trigger=trigger))


def run_cell(cell: str, coin: str, args: argparse.Namespace) -> list[Entry]:
    from liqsignals.data.datadir import attach_market_data, load_candles, load_funding_rate

    pair = PAIRS[coin]
    research = Path(args.research)
    realised = read_realised(research / f"binance_{coin}_liquidations_4h.csv")
    preset = LiquidationModel.preset(PRESETS[coin])
    if cell == "mark":
        candles = load_candles(args.datadir, pair, TIMEFRAME)
        with_df = attach_market_data(candles, args.datadir, pair, TIMEFRAME, kinds=["mark"])
        with_df = with_df.drop(columns=[c for c in with_df.columns if c not in
                                        (*candles.columns, "mark_high", "mark_low")])  # fmt: skip
        lo = REALISED_START - realised_warmup(preset) - pd.Timedelta(days=2)
        keep = pd.to_datetime(with_df["date"], utc=True) >= lo
        short = with_df.loc[keep].reset_index(drop=True)
        out = realised_entries(cell, coin, short, short,
                               (preset.replace(trigger="mark"), preset.replace(trigger="last")),
                               realised, REALISED_START)  # fmt: skip
        f1 = touch_features(with_df, pair, "mark")
        f0 = touch_features(with_df, pair, "last")
        out.append(magnet_entry(cell, coin, with_df, f1, f0, None))
        if not args.skip_information:
            try:
                funding = load_funding_rate(args.datadir, pair)
            except (FileNotFoundError, ValueError):
                funding = None
            out.append(information_entry(cell, coin, with_df, f1, f0, funding))
        return out
    candles = load_candles(args.datadir, pair, TIMEFRAME, timerange=SHORT_CELL_CANDLES)
    if cell == "open_interest":
        src = read_research(research / f"aggregated_{coin}_open_interest_usd_4h.csv")
        col, name, usd = "oi_usd_close", "open_interest", True
    else:
        src = read_research(research / f"binance_{coin}_top_trader_long_short_4h.csv")
        col, name, usd = "top_position_long_short_ratio", "long_short_ratio", False
    with_df = candles.copy()
    with_df[name] = coins_level(candles, src, col, usd=usd)
    first = pd.to_datetime(src["date"], utc=True).min()
    start = first + pd.Timedelta(days=8)  # one model window (1w) and a day
    m = preset.replace(trigger="last")
    out = realised_entries(cell, coin, with_df, candles, (m, m), realised, start)
    f1 = touch_features(with_df, pair, "last")
    f0 = touch_features(candles, pair, "last")
    out.append(magnet_entry(cell, coin, candles, f1, f0, start))
    return out


CELLS = (("mark", "BTC"), ("mark", "ETH"), ("open_interest", "BTC"), ("open_interest", "ETH"),
         ("long_short", "BTC"))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datadir", required=True, help="freqtrade datadir (exchange folder)")
    ap.add_argument("--research", required=True,
                    help="folder holding the research CSVs (read only, never copied)")  # fmt: skip
    ap.add_argument("--cells", nargs="*", default=None,
                    help="subset, e.g. mark:BTC open_interest:ETH (default: all)")  # fmt: skip
    ap.add_argument("--skip-information", action="store_true", help="leave out measure I")
    ap.add_argument("--out", default=None, help="write the JSON here (atomically)")
    args = ap.parse_args(argv)
    cells = CELLS if not args.cells else [tuple(c.split(":")) for c in args.cells]
    entries: list[Entry] = []
    timings: dict[str, float] = {}
    for cell, coin in cells:
        t0 = time.perf_counter()
        try:
            entries += run_cell(cell, coin, args)
        except (FileNotFoundError, ValueError) as exc:
            print(f"error: {cell} {coin}: {exc}", file=sys.stderr)
            return 2
        timings[f"{cell}:{coin}"] = round(time.perf_counter() - t0, 1)
        print(f"{cell} {coin}: {timings[f'{cell}:{coin}']} s", file=sys.stderr)
    rows = [e.to_dict() for e in entries]
    prim = [i for i, e in enumerate(entries) if e.primary]
    adj = holm([rows[i]["p_two_sided"] for i in prim]) if prim else np.array([])
    for i, a in zip(prim, adj, strict=True):
        rows[i]["p_holm"] = float(a)
    payload = {"rows": rows, "wall_time_s": timings, "n_primary": len(prim)}
    text = json.dumps(payload, indent=2, default=lambda v: None if v != v else v)
    if args.out:
        atomic_write_text(args.out, text + "\n")
    print(text)
    for r in rows:
        ph = r.get("p_holm")
        print(f"{r['cell']:>13} {r['pair']} {r['measure']:>2} n={r['n']:>6} "
              f"{r['without']:+.4f} -> {r['with']:+.4f}  diff {r['difference']:+.4f} "
              f"[{r['ci_low']:+.4f}, {r['ci_high']:+.4f}] p2={r['p_two_sided']:.4f}"
              + (f" holm={ph:.4f}" if ph is not None else ""), file=sys.stderr)  # fmt: skip
    return 0 if all(math.isfinite(r["difference"]) for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
