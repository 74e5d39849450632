"""LiqMagnetTrend: trade toward a dominant liquidation magnet across a liquidity gap.

When the estimated liquidation book is lopsided (``liq_imbalance``: far more short liquidations
above price than long liquidations below, or the reverse), the magnet (the cluster with the best
size-over-distance score) sits on the heavy side and the price between here and there is thin (a
liquidity gap), traders expect price to travel to the magnet. This strategy

* enters long when the imbalance is strongly positive, the magnet is above at a tradeable
  distance, and the gap above reaches a good part of the way to it; short mirrored; longs are
  skipped when funding is very positive (crowded longs) and shorts when it is very negative;
* exits at the magnet (``custom_exit``) or when the imbalance flips;
* puts the stop beyond the nearest cluster on the adverse side plus an ATR buffer.

``LiqMagnetTrendFixedStop`` is the same with a fixed percentage stop.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import numpy as np
from freqtrade.persistence import Trade
from freqtrade.strategy import DecimalParameter
from pandas import DataFrame

from liqsignals.strategy import (
    LiqStrategy,
    column_arrays,
    liq_plot_config,
    set_signals,
)


class LiqMagnetTrend(LiqStrategy):
    INTERFACE_VERSION = 3

    timeframe = "15m"
    can_short = True
    process_only_new_candles = True

    # startup_candle_count follows from the window (LiqStrategy)
    liq_window = "1w"

    stoploss = -0.25
    use_custom_stoploss = True
    minimal_roi = {"0": 0.12, "1440": 0.02, "2880": 0.0}
    use_exit_signal = True

    order_types = {
        "entry": "limit",
        "exit": "limit",
        "stoploss": "market",
        "stoploss_on_exchange": False,
    }

    imbalance_min = DecimalParameter(0.1, 0.8, default=0.35, decimals=2, space="buy")
    magnet_min_pct = DecimalParameter(0.2, 2.0, default=0.6, decimals=1, space="buy")
    magnet_max_pct = DecimalParameter(2.0, 8.0, default=5.0, decimals=1, space="buy")
    gap_share = DecimalParameter(0.0, 1.0, default=0.3, decimals=2, space="buy")
    funding_max = DecimalParameter(0.0001, 0.002, default=0.0005, decimals=4, space="buy")
    stop_buffer_atr = DecimalParameter(0.0, 3.0, default=1.0, decimals=1, space="sell")

    plot_config = liq_plot_config()

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        return self.liq_populate(dataframe, metadata)

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        # plain numpy on the columns (a live bot evaluates these on every candle)
        col = column_arrays(dataframe, "volume", "liq_magnet_dist_pct", "liq_imbalance",
                            "liq_magnet_side", "liq_gap_above_pct", "liq_gap_below_pct")  # fmt: skip
        dist, imb = col.liq_magnet_dist_pct, col.liq_imbalance
        lo, hi = self.magnet_min_pct.value, self.magnet_max_pct.value
        with np.errstate(invalid="ignore"):
            long_cond = (
                (col.volume > 0)
                & (imb >= self.imbalance_min.value)
                & (col.liq_magnet_side == 1)
                & (dist >= lo)
                & (dist <= hi)
                & (col.liq_gap_above_pct >= self.gap_share.value * dist)
            )
            short_cond = (
                (col.volume > 0)
                & (imb <= -self.imbalance_min.value)
                & (col.liq_magnet_side == -1)
                & (-dist >= lo)
                & (-dist <= hi)
                & (col.liq_gap_below_pct >= self.gap_share.value * -dist)
            )
            if "funding_rate" in dataframe.columns:
                # crowded side: no longs on very positive funding, no shorts on very negative
                funding = dataframe["funding_rate"].to_numpy(dtype=np.float64)
                long_cond &= ~(funding > self.funding_max.value)
                short_cond &= ~(funding < -self.funding_max.value)
        set_signals(dataframe, long_cond, short_cond, "magnet_up", "magnet_down")
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        imb = dataframe["liq_imbalance"].to_numpy(dtype=np.float64)
        with np.errstate(invalid="ignore"):
            dataframe["exit_long"] = (imb <= -self.imbalance_min.value).astype(np.int64)
            dataframe["exit_short"] = (imb >= self.imbalance_min.value).astype(np.int64)
        return dataframe

    def custom_stoploss(
        self,
        pair: str,
        trade: Trade,
        current_time: datetime,
        current_rate: float,
        current_profit: float,
        after_fill: bool,
        **kwargs: Any,
    ) -> float | None:
        return self.liq_cluster_stop(
            pair, trade, current_rate, buffer_atr=self.stop_buffer_atr.value
        )

    def custom_exit(
        self,
        pair: str,
        trade: Trade,
        current_time: datetime,
        current_rate: float,
        current_profit: float,
        **kwargs: Any,
    ) -> str | None:
        row = self.liq_signal_row(pair, trade)
        if row is None:
            return None
        magnet = float(row["liq_magnet_price"])
        if not math.isfinite(magnet):
            return None
        if (trade.is_short and current_rate <= magnet) or (
            not trade.is_short and current_rate >= magnet
        ):
            return "magnet_reached"
        return None


class LiqMagnetTrendFixedStop(LiqMagnetTrend):
    """Baseline: the same entries and exits with a fixed stop (-6 % of the margin)."""

    use_custom_stoploss = False
    stoploss = -0.06
