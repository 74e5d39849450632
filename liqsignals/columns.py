"""The one table of output columns: name, unit, meaning.

Every ``liq_*`` column that :func:`liqsignals.liquidation_levels` or
:func:`liqsignals.liquidation_features` returns is listed here, and the tests check that the
functions return exactly these names. With several windows (``windows={"fast": "1d"}``) the
prefix ``liq_`` becomes ``liq_fast_``; the rest of the name is unchanged.

"quote" is the quote currency of the market (USDT for ``BTC/USDT:USDT``); "price" is a price in
quote currency; "%" is percent of the candle's close. All values are NaN during warm-up.

When a column may be NaN is machine-readable: ``Column.nan_when`` is a ``|``-joined set of
these reasons (:data:`NAN_REASONS`), and the column is NaN only for one of them (given valid
inputs; a NaN optional input means "unknown" and never makes an output NaN by itself):

- ``warmup``: during warm-up (the first ``window`` of candles; there ``liq_long_total`` is NaN).
- ``warmup_prev``: during warm-up and on the first candle after it (the column compares the
  candle with the previous candle's readout).
- ``no_cluster``: that side (long below / short above the close) has no significant cluster.
- ``no_magnet``: neither side has a significant cluster (so there is no magnet, and no
  "nearest cluster" to rank).
- ``no_gap``: that side has no bin of meaningful mass within ``cluster_range_pct``.
- ``no_band_mass``: both bands (``liq_long_band``, ``liq_short_band``) are empty.
- ``no_sweep``: the candle swept no cluster of that side.
- ``short_history``: fewer candles since the start (or since the end of warm-up, for a value
  compared with an older readout) than the column's lookback (``atr_period``,
  ``drift_lookback``, ``intensity_lookback`` / 4).
- ``zero_atr``: the ATR is 0 (flat candles).
- ``not_recorded``: no collector was listening for the whole candle (realised columns only).
- ``few_clusters``: that side has fewer than two (``cluster2``) or three (``cluster3``)
  significant clusters.
- ``no_wall``: no significant cluster of that side has its centre within the band
  (``band_pct`` of the close).
- ``untracked``: the tracked cluster has not existed for ``drift_lookback`` candles yet, or
  (magnet columns) the magnet is none of the tracked clusters of its side.

Tracked clusters: a cluster of a candle is the same cluster as the first cluster of the previous
candle, on the same side and in the order nearest, second, third, wall, whose span
``[low, high]`` overlaps its own; otherwise it is new (age 0). Ages count up to
``ReadoutParams.age_cap`` candles (at most ``intensity_lookback``).

A column whose ``nan_when`` is exactly ``"warmup"`` is never NaN after warm-up.

Margin mode: every level assumes **isolated margin** (a position's margin is its own initial
margin; tiers per venue: :mod:`liqsignals.tiers`). A cross-margin position draws on the whole
account, so it is liquidated beyond the price these columns give for its entry and leverage
(how far depends on the account, which no public data shows): read cluster, magnet, band and
gap columns as the isolated part of the book. See the README, "Isolated margin is an
assumption".
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

__all__ = [
    "COLUMNS",
    "Column",
    "FEATURE_COLUMNS",
    "LEVEL_COLUMNS",
    "NAN_REASONS",
    "REALISED_COLUMNS",
    "describe",
    "nan_reasons",
    "rename_prefix",
]

#: The vocabulary of ``Column.nan_when`` (see the module docstring).
NAN_REASONS: tuple[str, ...] = (
    "warmup",
    "warmup_prev",
    "no_cluster",
    "no_magnet",
    "no_gap",
    "no_band_mass",
    "no_sweep",
    "short_history",
    "zero_atr",
    "not_recorded",
    "untracked",
    "few_clusters",
    "no_wall",
)


@dataclass(frozen=True)
class Column:
    name: str
    unit: str
    meaning: str
    source: str  # "levels" (engine state) or "features" (derived from it, causally)
    nan_when: str  # "|"-joined reasons from NAN_REASONS: when the value may be NaN

    def __post_init__(self) -> None:
        bad = [r for r in self.nan_when.split("|") if r not in NAN_REASONS]
        if bad:
            raise ValueError(f"{self.name}: unknown nan_when reason(s) {bad}")


_TABLE: list[tuple[str, str, str, str, str]] = [
    # --- from the engine (liquidation_levels) ------------------------------------------------
    ("liq_long_liquidated", "quote", "estimated notional of long positions liquidated in this candle", "levels", "warmup"),
    ("liq_short_liquidated", "quote", "estimated notional of short positions liquidated in this candle", "levels", "warmup"),
    ("liq_long_total", "quote", "estimated long notional still open in the window (all prices)", "levels", "warmup"),
    ("liq_short_total", "quote", "estimated short notional still open in the window (all prices)", "levels", "warmup"),
    ("liq_long_opened", "quote", "long notional the model opened in this candle", "levels", "warmup"),
    ("liq_short_opened", "quote", "short notional the model opened in this candle", "levels", "warmup"),
    ("liq_long_band", "quote", "long liquidation mass between close*(1-band_pct) and the close", "levels", "warmup"),
    ("liq_short_band", "quote", "short liquidation mass between the close and close*(1+band_pct)", "levels", "warmup"),
    ("liq_long_cluster_price", "price", "mass-weighted centre of the nearest significant long cluster below the close", "levels", "warmup|no_cluster"),
    ("liq_long_cluster_low", "price", "lower edge of that long cluster", "levels", "warmup|no_cluster"),
    ("liq_long_cluster_high", "price", "upper edge of that long cluster", "levels", "warmup|no_cluster"),
    ("liq_long_cluster_size", "quote", "long liquidation notional in that cluster", "levels", "warmup|no_cluster"),
    ("liq_short_cluster_price", "price", "mass-weighted centre of the nearest significant short cluster above the close", "levels", "warmup|no_cluster"),
    ("liq_short_cluster_low", "price", "lower edge of that short cluster", "levels", "warmup|no_cluster"),
    ("liq_short_cluster_high", "price", "upper edge of that short cluster", "levels", "warmup|no_cluster"),
    ("liq_short_cluster_size", "quote", "short liquidation notional in that cluster", "levels", "warmup|no_cluster"),
    ("liq_magnet_price", "price", "centre of the magnet: the significant cluster (either side) with the highest score", "levels", "warmup|no_magnet"),
    ("liq_magnet_side", "-1/+1", "-1: the magnet is long liquidations below; +1: short liquidations above", "levels", "warmup|no_magnet"),
    ("liq_magnet_score", "1/%", "magnet score: cluster share of the mass in range / distance_pct**power", "levels", "warmup|no_magnet"),
    ("liq_gap_above_pct", "%", "distance from the close up to the first meaningful liquidation mass (liquidity gap above)", "levels", "warmup|no_gap"),
    ("liq_gap_below_pct", "%", "distance from the close down to the first meaningful liquidation mass (liquidity gap below)", "levels", "warmup|no_gap"),
    # --- richer read-outs: more clusters, the wall, the mean magnet, gap widths
    ("liq_long_cluster2_price", "price", "mass-weighted centre of the second nearest significant long cluster below the close", "levels", "warmup|few_clusters"),
    ("liq_long_cluster2_low", "price", "lower edge of that long cluster", "levels", "warmup|few_clusters"),
    ("liq_long_cluster2_high", "price", "upper edge of that long cluster", "levels", "warmup|few_clusters"),
    ("liq_long_cluster2_size", "quote", "long liquidation notional in that cluster", "levels", "warmup|few_clusters"),
    ("liq_long_cluster3_price", "price", "mass-weighted centre of the third nearest significant long cluster below the close", "levels", "warmup|few_clusters"),
    ("liq_long_cluster3_low", "price", "lower edge of that long cluster", "levels", "warmup|few_clusters"),
    ("liq_long_cluster3_high", "price", "upper edge of that long cluster", "levels", "warmup|few_clusters"),
    ("liq_long_cluster3_size", "quote", "long liquidation notional in that cluster", "levels", "warmup|few_clusters"),
    ("liq_short_cluster2_price", "price", "mass-weighted centre of the second nearest significant short cluster above the close", "levels", "warmup|few_clusters"),
    ("liq_short_cluster2_low", "price", "lower edge of that short cluster", "levels", "warmup|few_clusters"),
    ("liq_short_cluster2_high", "price", "upper edge of that short cluster", "levels", "warmup|few_clusters"),
    ("liq_short_cluster2_size", "quote", "short liquidation notional in that cluster", "levels", "warmup|few_clusters"),
    ("liq_short_cluster3_price", "price", "mass-weighted centre of the third nearest significant short cluster above the close", "levels", "warmup|few_clusters"),
    ("liq_short_cluster3_low", "price", "lower edge of that short cluster", "levels", "warmup|few_clusters"),
    ("liq_short_cluster3_high", "price", "upper edge of that short cluster", "levels", "warmup|few_clusters"),
    ("liq_short_cluster3_size", "quote", "short liquidation notional in that cluster", "levels", "warmup|few_clusters"),
    ("liq_long_wall_price", "price", "the long wall: centre of the largest significant long cluster with its centre within band_pct of the close (may be the nearest)", "levels", "warmup|no_wall"),
    ("liq_long_wall_low", "price", "lower edge of the long wall", "levels", "warmup|no_wall"),
    ("liq_long_wall_high", "price", "upper edge of the long wall", "levels", "warmup|no_wall"),
    ("liq_long_wall_size", "quote", "long liquidation notional in the wall", "levels", "warmup|no_wall"),
    ("liq_short_wall_price", "price", "the short wall: centre of the largest significant short cluster with its centre within band_pct of the close (may be the nearest)", "levels", "warmup|no_wall"),
    ("liq_short_wall_low", "price", "lower edge of the short wall", "levels", "warmup|no_wall"),
    ("liq_short_wall_high", "price", "upper edge of the short wall", "levels", "warmup|no_wall"),
    ("liq_short_wall_size", "quote", "short liquidation notional in the wall", "levels", "warmup|no_wall"),
    ("liq_magnet_mean_price", "price", "magnet over all candidates: mean centre of every significant cluster (both sides) weighted by its magnet score", "levels", "warmup|no_magnet"),
    ("liq_magnet_pull", "[-1, 1]", "(sum of short clusters' scores - sum of long clusters' scores) / sum of all scores: +1 all pull upward", "levels", "warmup|no_magnet"),
    ("liq_gap_above_width_pct", "%", "width (% of the close) of the first liquidity gap above: from the close to the first meaningful mass, or, when meaningful mass touches the close's bin, the run of thin bins behind it up to the next meaningful mass", "levels", "warmup|no_gap"),
    ("liq_gap_below_width_pct", "%", "the same below the close", "levels", "warmup|no_gap"),
    # --- band totals per leverage bucket (low <= 10x, mid 11-25x, high > 25x; engine.LEVERAGE_BUCKETS)
    ("liq_long_band_low", "quote", "part of liq_long_band opened at low leverage (<= 10x); the three buckets sum to liq_long_band", "levels", "warmup"),
    ("liq_long_band_mid", "quote", "part of liq_long_band opened at medium leverage (above 10x, <= 25x)", "levels", "warmup"),
    ("liq_long_band_high", "quote", "part of liq_long_band opened at high leverage (> 25x)", "levels", "warmup"),
    ("liq_short_band_low", "quote", "part of liq_short_band opened at low leverage (<= 10x); the three buckets sum to liq_short_band", "levels", "warmup"),
    ("liq_short_band_mid", "quote", "part of liq_short_band opened at medium leverage (above 10x, <= 25x)", "levels", "warmup"),
    ("liq_short_band_high", "quote", "part of liq_short_band opened at high leverage (> 25x)", "levels", "warmup"),
    # --- derived per candle (liquidation_features) -------------------------------------------
    ("liq_imbalance", "[-1, 1]", "(short_band - long_band) / (short_band + long_band): +1 all mass is shorts above (upside pull)", "features", "warmup|no_band_mass"),
    ("liq_atr", "price", "average true range over atr_period candles (simple mean, finite memory)", "features", "warmup|short_history"),
    ("liq_long_cluster_dist_pct", "%", "distance from the close down to the nearest long cluster centre", "features", "warmup|no_cluster"),
    ("liq_short_cluster_dist_pct", "%", "distance from the close up to the nearest short cluster centre", "features", "warmup|no_cluster"),
    ("liq_long_cluster_dist_atr", "ATR", "the same distance in ATR units", "features", "warmup|no_cluster|short_history|zero_atr"),
    ("liq_short_cluster_dist_atr", "ATR", "the same distance in ATR units", "features", "warmup|no_cluster|short_history|zero_atr"),
    ("liq_magnet_dist_pct", "%", "signed distance from the close to the magnet (+ above, - below)", "features", "warmup|no_magnet"),
    ("liq_magnet_drift", "%", "change of the magnet price over the last drift_lookback candles (temporal cluster evolution)", "features", "warmup|no_magnet|short_history"),
    ("liq_intensity", "[0, 1]", "percentile of the nearest significant cluster's size among the last intensity_lookback candles", "features", "warmup|no_magnet|short_history"),
    ("liq_intensity_bucket", "0-3", "0 low (<25th percentile), 1 medium (25-50), 2 high (50-75), 3 extreme (>75)", "features", "warmup|no_magnet|short_history"),
    ("liq_sweep_long", "0/1", "low reached the centre of the previous candle's nearest long cluster and the close came back above its upper edge", "features", "warmup_prev"),
    ("liq_sweep_long_through", "0/1", "low reached that long cluster and the close stayed below its lower edge (sweep and continue)", "features", "warmup_prev"),
    ("liq_sweep_long_notional", "quote", "estimated long liquidations of the candle when it swept a long cluster, else 0", "features", "warmup_prev"),
    ("liq_sweep_long_low", "price", "lower (far) edge of the swept long cluster, NaN without a sweep", "features", "warmup_prev|no_sweep"),
    ("liq_sweep_short", "0/1", "high reached the centre of the previous candle's nearest short cluster and the close came back below its lower edge", "features", "warmup_prev"),
    ("liq_sweep_short_through", "0/1", "high reached that short cluster and the close stayed above its upper edge (sweep and continue)", "features", "warmup_prev"),
    ("liq_sweep_short_notional", "quote", "estimated short liquidations of the candle when it swept a short cluster, else 0", "features", "warmup_prev"),
    ("liq_sweep_short_high", "price", "upper (far) edge of the swept short cluster, NaN without a sweep", "features", "warmup_prev|no_sweep"),
    # --- tracked clusters (identity across candles, see above) -------------------------------
    ("liq_long_cluster_age", "candles", "candles since the nearest long cluster became significant (tracked; capped at age_cap)", "features", "warmup|no_cluster"),
    ("liq_long_cluster_fresh", "0/1", "1 when the nearest long cluster is younger than fresh_age candles, 0 when older", "features", "warmup|no_cluster"),
    ("liq_long_cluster_same", "0/1", "1 when the nearest long cluster is the previous candle's nearest long cluster, 0 when it is another one", "features", "warmup|no_cluster"),
    ("liq_long_cluster_drift_pct", "%", "change of the nearest long cluster's centre over the last drift_lookback candles, on that same tracked cluster", "features", "warmup|no_cluster|untracked"),
    ("liq_short_cluster_age", "candles", "candles since the nearest short cluster became significant (tracked; capped at age_cap)", "features", "warmup|no_cluster"),
    ("liq_short_cluster_fresh", "0/1", "1 when the nearest short cluster is younger than fresh_age candles, 0 when older", "features", "warmup|no_cluster"),
    ("liq_short_cluster_same", "0/1", "1 when the nearest short cluster is the previous candle's nearest short cluster, 0 when it is another one", "features", "warmup|no_cluster"),
    ("liq_short_cluster_drift_pct", "%", "change of the nearest short cluster's centre over the last drift_lookback candles, on that same tracked cluster", "features", "warmup|no_cluster|untracked"),
    ("liq_magnet_age", "candles", "age of the magnet's cluster (tracked, as liq_long_cluster_age), also across a switch of the magnet", "features", "warmup|no_magnet|untracked"),
    ("liq_magnet_tracked_drift", "%", "change of the magnet cluster's own centre over the last drift_lookback candles (unlike liq_magnet_drift, no jump when the magnet switches cluster or side)", "features", "warmup|no_magnet|untracked"),
    ("liq_long_cluster2_dist_pct", "%", "distance from the close down to the centre of liq_long_cluster2_price", "features", "warmup|few_clusters"),
    ("liq_long_cluster2_dist_atr", "ATR", "the same distance in ATR units", "features", "warmup|few_clusters|short_history|zero_atr"),
    ("liq_long_cluster3_dist_pct", "%", "distance from the close down to the centre of liq_long_cluster3_price", "features", "warmup|few_clusters"),
    ("liq_long_cluster3_dist_atr", "ATR", "the same distance in ATR units", "features", "warmup|few_clusters|short_history|zero_atr"),
    ("liq_long_wall_dist_pct", "%", "distance from the close down to the centre of liq_long_wall_price", "features", "warmup|no_wall"),
    ("liq_long_wall_dist_atr", "ATR", "the same distance in ATR units", "features", "warmup|no_wall|short_history|zero_atr"),
    ("liq_long_wall_age", "candles", "candles since the long wall's cluster became significant (tracked)", "features", "warmup|no_wall"),
    ("liq_short_cluster2_dist_pct", "%", "distance from the close up to the centre of liq_short_cluster2_price", "features", "warmup|few_clusters"),
    ("liq_short_cluster2_dist_atr", "ATR", "the same distance in ATR units", "features", "warmup|few_clusters|short_history|zero_atr"),
    ("liq_short_cluster3_dist_pct", "%", "distance from the close up to the centre of liq_short_cluster3_price", "features", "warmup|few_clusters"),
    ("liq_short_cluster3_dist_atr", "ATR", "the same distance in ATR units", "features", "warmup|few_clusters|short_history|zero_atr"),
    ("liq_short_wall_dist_pct", "%", "distance from the close up to the centre of liq_short_wall_price", "features", "warmup|no_wall"),
    ("liq_short_wall_dist_atr", "ATR", "the same distance in ATR units", "features", "warmup|no_wall|short_history|zero_atr"),
    ("liq_short_wall_age", "candles", "candles since the short wall's cluster became significant (tracked)", "features", "warmup|no_wall"),
    ("liq_magnet_mean_dist_pct", "%", "signed distance from the close to liq_magnet_mean_price (+ above, - below)", "features", "warmup|no_magnet"),
]  # fmt: skip

COLUMNS: dict[str, Column] = {
    name: Column(name, unit, meaning, src, nan) for name, unit, meaning, src, nan in _TABLE
}
LEVEL_COLUMNS: tuple[str, ...] = tuple(c.name for c in COLUMNS.values() if c.source == "levels")

#: Columns of what happened rather than what the model estimates: realised liquidations from a
#: collector's event file (``liqsignals collect`` / ``collect-liquidations``), added by the
#: strategy helpers (:func:`liqsignals.strategy.market_data.attach_realised`) when the file exists.
#: Not part of :func:`liqsignals.liquidation_features`' output, hence a table of their own.
_REALISED_TABLE: list[tuple[str, str, str, str, str]] = [
    ("liq_realised_long", "quote", "realised long liquidations (forced sells) recorded inside this candle's own interval", "realised", "not_recorded"),
    ("liq_realised_short", "quote", "realised short liquidations (forced buys) recorded inside this candle's own interval", "realised", "not_recorded"),
]  # fmt: skip
REALISED_COLUMNS: dict[str, Column] = {
    name: Column(name, unit, meaning, src, nan) for name, unit, meaning, src, nan in _REALISED_TABLE
}
FEATURE_COLUMNS: tuple[str, ...] = tuple(COLUMNS)


def rename_prefix(name: str, prefix: str) -> str:
    """``liq_imbalance`` with prefix ``liq_fast_`` -> ``liq_fast_imbalance``."""
    if not name.startswith("liq_"):
        raise ValueError(f"{name!r} is not a liq_ column")
    return prefix + name[len("liq_") :]


def nan_reasons(name: str) -> frozenset[str]:
    """The reasons for which column ``name`` may be NaN (prefixed names such as
    ``liq_fast_atr`` work too); ``KeyError`` for an unknown column."""
    if name not in COLUMNS and name.startswith("liq_"):
        # a prefixed name: the column with the longest matching tail
        tails = [c for c in COLUMNS if name.endswith("_" + c[len("liq_") :])]
        if tails:
            name = max(tails, key=len)
    return frozenset(COLUMNS[name].nan_when.split("|"))


def describe() -> pd.DataFrame:
    """The column table as a DataFrame (name, unit, meaning, source, nan_when)."""
    return pd.DataFrame([c.__dict__ for c in COLUMNS.values()]).set_index("name")
