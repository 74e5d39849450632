"""Cost-aware event study: trade toward a target level, exit at the touch or after the horizon.

At every ``step``-th candle ``t`` where a rule gives a level (read at the close of ``t`` from
data ``<= t``; rules fixed in ``docs/preregistration.md``, Question 4):

* ``liq``: the larger of the nearest long cluster below and short cluster above within
  ``band_pct`` (:func:`liqsignals.analysis.competing.target_levels`);
* ``mirror``: the level at the same log distance on the other side of the close, on the ``liq``
  samples (the same trade pointed the other way);
* ``swing``: the nearer of the prior ``swing_lookback``-candle high and low;

a trade goes toward the level (long when it lies above the close), enters at the open of
``t + 1`` and exits at the level on the first candle of ``t+1 .. t+H`` that touches it (at that
candle's open when it opens beyond the level), else at the close of ``t + H``.

Per trade, in basis points of the entry notional (:func:`event_trades`):
``gross_bp = side x (exit / entry - 1) x 1e4``; ``fee_bp = fee x (1 + exit / entry)`` (both
sides); ``slippage_bp`` = ``slippage`` on the entry (``x wick_factor`` on a wick entry: the
signal candle's range at least ``wick_range_mult`` times the mean range of the prior
``wick_lookback`` candles) plus ``slippage x exit / entry`` on a time exit (a touch exit is a
resting limit order at the level: no slippage); ``funding_bp = side x sum(rates) x 1e4`` over the
funding times after the entry candle opens up to the exit candle's close; and
``net_bp = gross_bp - fee_bp - slippage_bp - funding_bp``.

:func:`trade_summary`: the mean net trade with a circular moving-block bootstrap interval
(:func:`liqsignals.analysis.intervals.paired_block_bootstrap`, blocks of one week of samples),
the same for the gross trade, and the break-even cost ``mean(gross_bp - funding_bp)``: the
round-trip fee plus slippage at which the mean net trade is 0.
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

from liqsignals.analysis.common import candle_dates, candle_spacing, json_safe, utc_datetime64
from liqsignals.analysis.competing import CompetingOptions, target_levels
from liqsignals.analysis.intervals import Interval, paired_block_bootstrap

__all__ = [
    "RULES",
    "TradeCosts",
    "TradeSummary",
    "event_trades",
    "main",
    "paired_difference",
    "rule_levels",
    "trade_summary",
    "week_block",
    "wick_candles",
]

RULES: tuple[str, ...] = ("liq", "mirror", "swing")

#: Columns of :func:`event_trades`.
TRADE_COLUMNS: tuple[str, ...] = (
    "i", "date", "side", "level", "entry", "exit", "touch", "wick", "gross_bp", "fee_bp",
    "slippage_bp", "funding_bp", "net_bp",
)  # fmt: skip


@dataclass(frozen=True)
class TradeCosts:
    """Costs of the event study: ``fee_bp`` per side, ``slippage_bp`` per market fill,
    ``wick_factor`` (entry slippage multiplier on wick entries), ``wick_range_mult`` and
    ``wick_lookback`` (a wick entry: the signal candle's range at least ``wick_range_mult`` times
    the mean range of the prior ``wick_lookback`` candles)."""

    fee_bp: float = 5.0
    slippage_bp: float = 2.0
    wick_factor: float = 3.0
    wick_range_mult: float = 2.0
    wick_lookback: int = 24

    def __post_init__(self) -> None:
        for name in ("fee_bp", "slippage_bp", "wick_factor", "wick_range_mult"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if self.wick_factor < 1:
            raise ValueError(f"wick_factor must be >= 1, got {self.wick_factor!r}")
        if int(self.wick_lookback) < 1:
            raise ValueError(f"wick_lookback must be >= 1 candle, got {self.wick_lookback!r}")


def wick_candles(candles: pd.DataFrame, costs: TradeCosts) -> np.ndarray:
    """Per candle: its range is at least ``wick_range_mult`` times the mean range of the prior
    ``wick_lookback`` candles (False during the first ``wick_lookback`` candles)."""
    rng = (candles["high"] - candles["low"]).astype(np.float64)
    prior = rng.shift(1).rolling(int(costs.wick_lookback), min_periods=int(costs.wick_lookback))
    mean = prior.mean().to_numpy()
    with np.errstate(invalid="ignore"):
        return np.asarray(
            np.isfinite(mean) & (rng.to_numpy() >= costs.wick_range_mult * mean) & (mean > 0)
        )


def rule_levels(
    candles: pd.DataFrame,
    features: pd.DataFrame | None,
    rule: str,
    options: CompetingOptions,
) -> tuple[np.ndarray, np.ndarray]:
    """Per candle: side (+1 level above, -1 below, 0 none) and level of ``rule``."""
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    if rule == "swing":
        return target_levels(candles, candles, "swing", options)
    if features is None:
        raise ValueError(f"rule {rule!r} needs the liq_* features")
    side, level = target_levels(candles, features, "liq", options)
    if rule == "mirror":
        close = candles["close"].to_numpy(dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            level = np.where(side != 0, close * close / level, np.nan)
        side = -side
    return side, level


def _funding_sums(
    funding: pd.DataFrame | None, start: np.ndarray, stop: np.ndarray
) -> np.ndarray:  # fmt: skip
    """Sum of the funding rates stamped in ``(start, stop]`` per trade (0 without funding)."""
    if funding is None or len(funding) == 0:
        return np.zeros(start.shape[0])
    if "date" not in funding.columns or "funding_rate" not in funding.columns:
        raise ValueError("funding must have columns 'date' and 'funding_rate'")
    f = funding.sort_values("date")
    fd = candle_dates(f)
    rate = f["funding_rate"].to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(rate)):
        raise ValueError("funding_rate has non-finite values")
    cs = np.concatenate([[0.0], np.cumsum(rate)])
    return np.asarray(
        cs[np.searchsorted(fd, stop, side="right")] - cs[np.searchsorted(fd, start, side="right")]
    )


def event_trades(
    candles: pd.DataFrame,
    side: np.ndarray,
    level: np.ndarray,
    *,
    horizon: int,
    step: int | None = None,
    costs: TradeCosts | None = None,
    funding: pd.DataFrame | None = None,
    first: int = 0,
) -> pd.DataFrame:
    """One trade per sampled candle ``t`` (every ``step`` candles from ``first``; default
    ``horizon // 4``) where ``side != 0``, with ``t + horizon`` inside the data and volume at
    ``t``; columns :data:`TRADE_COLUMNS` (``touch``: exited at the level; ``wick``: a wick
    entry; the ``*_bp`` columns as in the module docstring).

    Raises ``ValueError`` on misaligned input, a horizon below 1 candle or a level on the wrong
    side of the close.
    """
    c = costs or TradeCosts()
    h = int(horizon)
    if h < 1:
        raise ValueError(f"horizon must be >= 1 candle, got {horizon!r}")
    st = max(1, h // 4) if step is None else int(step)
    if st < 1:
        raise ValueError(f"step must be >= 1 candle, got {step!r}")
    o, hi, lo, cl, vol = (candles[k].to_numpy(dtype=np.float64)
                          for k in ("open", "high", "low", "close", "volume"))  # fmt: skip
    n = cl.shape[0]
    sd, lv = np.asarray(side, dtype=np.float64), np.asarray(level, dtype=np.float64)
    if sd.shape != (n,) or lv.shape != (n,):
        raise ValueError(f"side and level must have one value per candle ({n})")
    grid = np.arange(max(0, int(first)), max(0, n - h), st)
    t = grid[(sd[grid] != 0) & np.isfinite(lv[grid]) & (vol[grid] > 0)]
    s, lvl = sd[t], lv[t]
    wrong = (s > 0) & (lvl <= cl[t]) | (s < 0) & (lvl >= cl[t])
    if wrong.any():
        k = int(t[np.argmax(wrong)])
        raise ValueError(f"level {lv[k]!r} at candle {k} is not on its side of the close")
    # candles t+1 .. t+h of every trade
    win = t[:, None] + 1 + np.arange(h)[None, :]
    up = s[:, None] > 0
    wo = o[win]
    gap = np.where(up, wo >= lvl[:, None], wo <= lvl[:, None])
    reach = np.where(up, hi[win] >= lvl[:, None], lo[win] <= lvl[:, None])
    touched = reach | gap
    touch = touched.any(axis=1)
    j = np.where(touch, np.argmax(touched, axis=1), h - 1)
    rows = np.arange(t.shape[0])
    gap_first = gap[rows, j]
    entry = o[t + 1]
    exit_ = np.where(touch, np.where(gap_first, wo[rows, j], lvl), cl[t + h])
    ratio = exit_ / entry
    gross = s * (ratio - 1.0) * 1e4
    wick = wick_candles(candles, c)[t]
    fee = c.fee_bp * (1.0 + ratio)
    slip = c.slippage_bp * np.where(wick, c.wick_factor, 1.0) + np.where(
        touch, 0.0, c.slippage_bp * ratio
    )
    dates = candle_dates(candles)
    tf = candle_spacing(dates).to_timedelta64()
    fund = s * _funding_sums(funding, dates[t + 1], dates[t + 1 + j] + tf) * 1e4
    net = gross - fee - slip - fund
    return pd.DataFrame(
        {
            "i": t, "date": pd.DatetimeIndex(dates[t]).tz_localize("UTC"),
            "side": s.astype(np.int64), "level": lvl, "entry": entry, "exit": exit_,
            "touch": touch, "wick": wick, "gross_bp": gross, "fee_bp": fee,
            "slippage_bp": slip, "funding_bp": fund, "net_bp": net,
        }
    )  # fmt: skip


def week_block(step: int, spacing: pd.Timedelta) -> int:
    """One week of samples taken every ``step`` candles of ``spacing`` (at least 1)."""
    return max(1, int(round(pd.Timedelta(days=7) / (spacing * step))))


@dataclass
class TradeSummary:
    """Mean trade of one rule: ``net`` and ``gross`` intervals (bp per trade), the mean costs,
    ``break_even_cost_bp``, ``touch_rate`` and ``wick_share``; ``settings`` are added to
    :meth:`to_dict` (the ``--json`` object: ``mean_trade_bp`` and ``mean_trade_bp_ci_low/high``
    are the net trade)."""

    n: int
    net: Interval
    gross: Interval
    mean_fee_bp: float
    mean_slippage_bp: float
    mean_funding_bp: float
    break_even_cost_bp: float
    touch_rate: float
    wick_share: float
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "n_trades": self.n,
            "mean_trade_bp": self.net.estimate,
            "mean_trade_bp_ci_low": self.net.low,
            "mean_trade_bp_ci_high": self.net.high,
            "mean_trade_bp_p": self.net.p_value,
            "gross_mean_trade_bp": self.gross.estimate,
            "gross_mean_trade_bp_ci_low": self.gross.low,
            "gross_mean_trade_bp_ci_high": self.gross.high,
            "gross_mean_trade_bp_p": self.gross.p_value,
            "mean_fee_bp": self.mean_fee_bp,
            "mean_slippage_bp": self.mean_slippage_bp,
            "mean_funding_bp": self.mean_funding_bp,
            "break_even_cost_bp": self.break_even_cost_bp,
            "touch_rate": self.touch_rate,
            "wick_share": self.wick_share,
            "block": self.net.block,
            "resamples": self.net.resamples,
        }
        out.update(self.settings)
        return dict(json_safe(out))


def trade_summary(
    trades: pd.DataFrame, *, block: int, resamples: int = 2000, seed: int = 0
) -> TradeSummary:
    """Mean net and gross trade with moving-block bootstrap intervals (trades in time order)."""
    if trades.empty:
        raise ValueError("no trades: no sample had a level")
    net = trades["net_bp"].to_numpy(dtype=np.float64)
    gross = trades["gross_bp"].to_numpy(dtype=np.float64)
    fund = trades["funding_bp"].to_numpy(dtype=np.float64)
    b, r, sd = int(block), int(resamples), int(seed)
    return TradeSummary(
        n=int(net.shape[0]),
        net=paired_block_bootstrap(net, block=b, resamples=r, seed=sd),
        gross=paired_block_bootstrap(gross, block=b, resamples=r, seed=sd),
        mean_fee_bp=float(trades["fee_bp"].mean()),
        mean_slippage_bp=float(trades["slippage_bp"].mean()),
        mean_funding_bp=float(fund.mean()),
        break_even_cost_bp=float(np.mean(gross - fund)),
        touch_rate=float(trades["touch"].mean()),
        wick_share=float(trades["wick"].mean()),
    )


def paired_difference(
    a: pd.DataFrame, b: pd.DataFrame, *, block: int, resamples: int = 2000, seed: int = 0
) -> dict[str, Any]:
    """Mean gross difference of two rules' trades on the samples both traded (the same
    candles ``i``), paired moving-block bootstrap interval: keys ``vs_mirror_gross_bp``,
    ``vs_mirror_gross_bp_ci_low``, ``vs_mirror_gross_bp_ci_high``, ``vs_mirror_n``."""
    j = a[["i", "gross_bp"]].merge(b[["i", "gross_bp"]], on="i", suffixes=("_a", "_b"))
    if j.empty:
        raise ValueError("the two rules share no sample")
    iv = paired_block_bootstrap(j["gross_bp_a"].to_numpy(), j["gross_bp_b"].to_numpy(),
                                block=block, resamples=resamples, seed=seed)  # fmt: skip
    return {"vs_mirror_gross_bp": iv.estimate, "vs_mirror_gross_bp_ci_low": iv.low,
            "vs_mirror_gross_bp_ci_high": iv.high, "vs_mirror_n": iv.n}  # fmt: skip


# ----------------------------------------------------------------------------- command
def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="liqsignals evaluate trades",
        description="Cost-aware event study: enter toward the target at the next open, exit at "
        "the touch or after the horizon, with fees, slippage and funding; mean trade with a "
        "block-bootstrap interval and the break-even cost, for the liq, mirror and swing rules.",
    )
    ap.add_argument("--datadir", required=True, help="freqtrade datadir (exchange folder)")
    ap.add_argument("--pairs", nargs="+", required=True, help="ccxt symbols, e.g. BTC/USDT:USDT")
    ap.add_argument("--timeframe", default="1h")
    ap.add_argument("--timerange", default=None, help="sampled period, e.g. 20230101-20250601")
    ap.add_argument("--horizon", default="1d", help="duration (1d, 4h) or candles")
    ap.add_argument("--band", type=float, default=5.0, help="band_pct of the targets (%%)")
    ap.add_argument("--window", default="1w", help="model window of the liq_* columns")
    ap.add_argument("--rules", nargs="+", default=list(RULES), choices=RULES)
    ap.add_argument("--fee-bp", type=float, default=5.0, help="fee per side, bp (5 = 0.05 %%)")
    ap.add_argument("--slippage-bp", type=float, default=2.0, help="per market fill, bp (2)")
    ap.add_argument("--wick-factor", type=float, default=3.0, help="entry slippage x on wicks")
    ap.add_argument("--no-funding", action="store_true", help="ignore the funding-rate files")
    ap.add_argument("--resamples", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    return ap


def _load(args: argparse.Namespace, pair: str) -> tuple[pd.DataFrame, pd.DataFrame | None, int]:
    from liqsignals.data.datadir import TimeRange, load_candles, load_funding_rate, parse_timerange
    from liqsignals.model import parse_duration

    tr = parse_timerange(args.timerange)
    pad = parse_duration(args.window, "--window") + pd.Timedelta(days=2)
    lo = None if tr.start is None else tr.start - pad
    df = load_candles(args.datadir, pair, args.timeframe, timerange=TimeRange(lo, tr.stop))
    first = 0
    if tr.start is not None:
        first = int(np.searchsorted(candle_dates(df), utc_datetime64(tr.start)))
    funding = None
    if not args.no_funding:
        try:
            funding = load_funding_rate(args.datadir, pair, "1h")
        except (FileNotFoundError, ValueError):
            funding = None
    return df, funding, first


def main(argv: Sequence[str] | None = None) -> int:
    """``liqsignals evaluate trades``: per pair and rule the :class:`TradeSummary`; ``--json``
    prints one object: the first pair's first rule at the top level (the primary cell) and every
    cell in ``cells``."""
    from liqsignals.analysis.common import horizon_candles
    from liqsignals.features import liquidation_features

    args = _parser().parse_args(argv)
    cells: list[dict[str, Any]] = []
    try:
        costs = TradeCosts(args.fee_bp, args.slippage_bp, args.wick_factor)
        if args.resamples < 1:
            raise ValueError("--resamples must be >= 1")
        for pair in args.pairs:
            df, funding, first = _load(args, pair)
            h = horizon_candles(args.horizon, args.timeframe)
            per_day = max(1, int(round(pd.Timedelta(days=1) / candle_spacing(candle_dates(df)))))
            opts = CompetingOptions(horizon=h, band_pct=args.band, swing_lookback=3 * per_day)
            step = max(1, h // 4)
            block = week_block(step, candle_spacing(candle_dates(df)))
            feats = None
            gross: dict[str, pd.DataFrame] = {}
            if any(r != "swing" for r in args.rules):
                print(f"{pair}: liq_* features on {len(df)} candles ...", file=sys.stderr)
                feats = liquidation_features(df, window=args.window, symbol=pair)
            for rule in args.rules:
                side, level = rule_levels(df, feats, rule, opts)
                tr = event_trades(df, side, level, horizon=h, step=step, costs=costs,
                                  funding=funding, first=first)  # fmt: skip
                summ = trade_summary(tr, block=block, resamples=args.resamples, seed=args.seed)
                cell = {"pair": pair, "rule": rule, "timeframe": args.timeframe, "horizon": h,
                        "step": step, "band_pct": args.band, "timerange": args.timerange,
                        "fee_bp": costs.fee_bp, "slippage_bp": costs.slippage_bp,
                        "wick_factor": costs.wick_factor, "funding": funding is not None,
                        "first_trade": str(tr["date"].iloc[0]),
                        "last_trade": str(tr["date"].iloc[-1])}  # fmt: skip
                summ.settings = cell
                cells.append(summ.to_dict())
                gross[rule] = tr
            if "liq" in gross and "mirror" in gross:
                diff = paired_difference(gross["liq"], gross["mirror"], block=block,
                                         resamples=args.resamples, seed=args.seed)  # fmt: skip
                liq_cell = next(x for x in cells if x["pair"] == pair and x["rule"] == "liq")
                liq_cell.update(diff)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        out = dict(cells[0])
        out["cells"] = cells
        print(json.dumps(json_safe(out), allow_nan=False))
        return 0
    for r in cells:
        print(f"{r['pair']} {r['timeframe']} H={r['horizon']} {r['rule']:6s} n={r['n_trades']} "
              f"net {r['mean_trade_bp']:+.1f} bp [{r['mean_trade_bp_ci_low']:+.1f}, "
              f"{r['mean_trade_bp_ci_high']:+.1f}] gross {r['gross_mean_trade_bp']:+.1f} "
              f"[{r['gross_mean_trade_bp_ci_low']:+.1f}, {r['gross_mean_trade_bp_ci_high']:+.1f}] "
              f"break-even {r['break_even_cost_bp']:.1f} bp touch {r['touch_rate']:.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
