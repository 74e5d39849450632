"""Checks of the model against the market: do clusters attract price, do estimates match reality?

Two questions, each answered with a baseline that needs no liquidation model at all:

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

**Estimated vs realised liquidations** (:func:`read_realised`, :func:`realised_bars`,
:func:`compare_realised`). Per-candle estimates (``liq_long_liquidated``, ``liq_short_liquidated``)
are summed into the coarser bars of a realised series (candles whose open time falls in
``[bar, bar + bar_length)``; only bars whose candles are all present and past warm-up). Reported:
Spearman rank correlation per side, side accuracy on the largest bars, and the same for a naive
baseline, ``|return| x quote volume`` put on the long side for falling bars and on the short side for
rising bars.

The statistics live in :mod:`liqsignals.analysis` (:mod:`~liqsignals.analysis.magnets`,
:mod:`~liqsignals.analysis.realised`, :mod:`~liqsignals.analysis.common`); this module gathers
their public names, as before.

Example
-------
>>> from liqsignals import sample, evaluate
>>> df = sample.load_candles("BTC/USDT:USDT", "1h")                        # doctest: +SKIP
>>> evaluate.magnet_test(df, window="1w", horizon=24, band_pct=5.0)        # doctest: +SKIP
{'n': ..., 'hit_rate': ..., 'baseline_hit_rate': ..., 'lift': ..., ...}
"""

from __future__ import annotations

from liqsignals.analysis.baselines import (
    BaselineComparison,
    LogLinearBaseline,
    compare_baselines,
    fit_log_linear,
    long_share,
)
from liqsignals.analysis.common import (
    candle_dates,
    candle_spacing,
    duration_text,
    format_timedelta,
    future_extremes,
    horizon_candles,
    json_safe,
    json_value,
    spearman,
    utc_dates,
    utc_datetime64,
    utc_timestamp,
)
from liqsignals.analysis.magnets import (
    BY_PAIR_KEYS,
    DISTANCE_EDGES,
    GUIDE_MOVES,
    INTENSITY_LABELS,
    RULES,
    Bootstrap,
    MagnetEvaluation,
    MagnetGrid,
    MagnetOptions,
    MagnetStudy,
    intensity_impact,
    magnet_samples,
    magnet_study,
    magnet_summary,
    magnet_test,
    magnet_warmup,
)
from liqsignals.analysis.realised import (
    POOLED_KEYS,
    REALISED_COLUMNS,
    RealisedEvaluation,
    compare_realised,
    evaluate_realised,
    evaluate_realised_pairs,
    read_realised,
    realised_bars,
    realised_warmup,
)

__all__ = [
    "BY_PAIR_KEYS",
    "DISTANCE_EDGES",
    "GUIDE_MOVES",
    "INTENSITY_LABELS",
    "POOLED_KEYS",
    "REALISED_COLUMNS",
    "RULES",
    "Bootstrap",
    "BaselineComparison",
    "LogLinearBaseline",
    "MagnetEvaluation",
    "MagnetGrid",
    "MagnetOptions",
    "MagnetStudy",
    "RealisedEvaluation",
    "candle_dates",
    "candle_spacing",
    "compare_baselines",
    "compare_realised",
    "duration_text",
    "evaluate_realised",
    "evaluate_realised_pairs",
    "fit_log_linear",
    "format_timedelta",
    "future_extremes",
    "horizon_candles",
    "intensity_impact",
    "json_safe",
    "json_value",
    "long_share",
    "magnet_samples",
    "magnet_study",
    "magnet_summary",
    "magnet_test",
    "magnet_warmup",
    "read_realised",
    "realised_bars",
    "realised_warmup",
    "spearman",
    "utc_dates",
    "utc_datetime64",
    "utc_timestamp",
]
