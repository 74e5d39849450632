"""The one table of output columns: name, unit, meaning.

Every ``liq_*`` column that :func:`liqsignals.liquidation_levels` or
:func:`liqsignals.liquidation_features` returns is listed here, and the tests check that the
functions return exactly these names. With several windows (``windows={"fast": "1d"}``) the
prefix ``liq_`` becomes ``liq_fast_``; the rest of the name is unchanged.

"quote" is the quote currency of the market (USDT for ``BTC/USDT:USDT``); "price" is a price in
quote currency; "%" is percent of the candle's close. All values are NaN during warm-up.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

__all__ = ["COLUMNS", "Column", "FEATURE_COLUMNS", "LEVEL_COLUMNS", "describe", "rename_prefix"]


@dataclass(frozen=True)
class Column:
    name: str
    unit: str
    meaning: str
    source: str  # "levels" (engine state) or "features" (derived from it, causally)


_TABLE: list[tuple[str, str, str, str]] = [
    # --- from the engine (liquidation_levels) ------------------------------------------------
    ("liq_long_liquidated", "quote", "estimated notional of long positions liquidated in this candle", "levels"),
    ("liq_short_liquidated", "quote", "estimated notional of short positions liquidated in this candle", "levels"),
    ("liq_long_total", "quote", "estimated long notional still open in the window (all prices)", "levels"),
    ("liq_short_total", "quote", "estimated short notional still open in the window (all prices)", "levels"),
    ("liq_long_opened", "quote", "long notional the model opened in this candle", "levels"),
    ("liq_short_opened", "quote", "short notional the model opened in this candle", "levels"),
    ("liq_long_band", "quote", "long liquidation mass between close*(1-band_pct) and the close", "levels"),
    ("liq_short_band", "quote", "short liquidation mass between the close and close*(1+band_pct)", "levels"),
    ("liq_long_cluster_price", "price", "mass-weighted centre of the nearest significant long cluster below the close", "levels"),
    ("liq_long_cluster_low", "price", "lower edge of that long cluster", "levels"),
    ("liq_long_cluster_high", "price", "upper edge of that long cluster", "levels"),
    ("liq_long_cluster_size", "quote", "long liquidation notional in that cluster", "levels"),
    ("liq_short_cluster_price", "price", "mass-weighted centre of the nearest significant short cluster above the close", "levels"),
    ("liq_short_cluster_low", "price", "lower edge of that short cluster", "levels"),
    ("liq_short_cluster_high", "price", "upper edge of that short cluster", "levels"),
    ("liq_short_cluster_size", "quote", "short liquidation notional in that cluster", "levels"),
    ("liq_magnet_price", "price", "centre of the magnet: the significant cluster (either side) with the highest score", "levels"),
    ("liq_magnet_side", "-1/+1", "-1: the magnet is long liquidations below; +1: short liquidations above", "levels"),
    ("liq_magnet_score", "1/%", "magnet score: cluster share of the mass in range / distance_pct**power", "levels"),
    ("liq_gap_above_pct", "%", "distance from the close up to the first meaningful liquidation mass (liquidity gap above)", "levels"),
    ("liq_gap_below_pct", "%", "distance from the close down to the first meaningful liquidation mass (liquidity gap below)", "levels"),
    # --- derived per candle (liquidation_features) -------------------------------------------
    ("liq_imbalance", "[-1, 1]", "(short_band - long_band) / (short_band + long_band): +1 all mass is shorts above (upside pull)", "features"),
    ("liq_atr", "price", "average true range over atr_period candles (simple mean, finite memory)", "features"),
    ("liq_long_cluster_dist_pct", "%", "distance from the close down to the nearest long cluster centre", "features"),
    ("liq_short_cluster_dist_pct", "%", "distance from the close up to the nearest short cluster centre", "features"),
    ("liq_long_cluster_dist_atr", "ATR", "the same distance in ATR units", "features"),
    ("liq_short_cluster_dist_atr", "ATR", "the same distance in ATR units", "features"),
    ("liq_magnet_dist_pct", "%", "signed distance from the close to the magnet (+ above, - below)", "features"),
    ("liq_magnet_drift", "%", "change of the magnet price over the last drift_lookback candles (temporal cluster evolution)", "features"),
    ("liq_intensity", "[0, 1]", "percentile of the nearest significant cluster's size among the last intensity_lookback candles", "features"),
    ("liq_intensity_bucket", "0-3", "0 low (<25th percentile), 1 medium (25-50), 2 high (50-75), 3 extreme (>75)", "features"),
    ("liq_sweep_long", "0/1", "low reached the centre of the previous candle's nearest long cluster and the close came back above its upper edge", "features"),
    ("liq_sweep_long_through", "0/1", "low reached that long cluster and the close stayed below its lower edge (sweep and continue)", "features"),
    ("liq_sweep_long_notional", "quote", "estimated long liquidations of the candle when it swept a long cluster, else 0", "features"),
    ("liq_sweep_long_low", "price", "lower (far) edge of the swept long cluster, NaN without a sweep", "features"),
    ("liq_sweep_short", "0/1", "high reached the centre of the previous candle's nearest short cluster and the close came back below its lower edge", "features"),
    ("liq_sweep_short_through", "0/1", "high reached that short cluster and the close stayed above its upper edge (sweep and continue)", "features"),
    ("liq_sweep_short_notional", "quote", "estimated short liquidations of the candle when it swept a short cluster, else 0", "features"),
    ("liq_sweep_short_high", "price", "upper (far) edge of the swept short cluster, NaN without a sweep", "features"),
]  # fmt: skip

COLUMNS: dict[str, Column] = {
    name: Column(name, unit, meaning, src) for name, unit, meaning, src in _TABLE
}
LEVEL_COLUMNS: tuple[str, ...] = tuple(c.name for c in COLUMNS.values() if c.source == "levels")
FEATURE_COLUMNS: tuple[str, ...] = tuple(COLUMNS)


def rename_prefix(name: str, prefix: str) -> str:
    """``liq_imbalance`` with prefix ``liq_fast_`` -> ``liq_fast_imbalance``."""
    if not name.startswith("liq_"):
        raise ValueError(f"{name!r} is not a liq_ column")
    return prefix + name[len("liq_") :]


def describe() -> pd.DataFrame:
    """The column table as a DataFrame (name, unit, meaning, source)."""
    return pd.DataFrame([c.__dict__ for c in COLUMNS.values()]).set_index("name")
