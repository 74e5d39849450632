"""LiqSweepReversal: trade the reversal after a sweep of a liquidation cluster.

Traders read a wick through a dense cluster of estimated liquidations that closes back inside as
"liquidity taken, move done": the forced orders are filled and price tends to reverse toward the
opposite cluster. This strategy

* enters long after a sweep of a significant long-liquidation cluster below price that closed
  back above it (``liq_sweep_long``), short mirrored, optionally confirmed by RSI and volume;
* puts the stop beyond the swept cluster's far edge plus an ATR buffer (``custom_stoploss``; the
  stop only ever tightens, and later follows the nearest adverse cluster);
* targets the nearest significant opposite cluster (the magnet) with ``custom_exit``, with a
  ROI table as fallback.

The logic that is not freqtrade glue lives in ``liqsignals`` (``liq_*`` columns,
:class:`liqsignals.strategy.LiqStrategy`). ``LiqSweepReversalFixedStop`` is the same strategy
with a fixed percentage stop, so the value of cluster-based stops is measured, not assumed.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import numpy as np
from freqtrade.persistence import Trade
from freqtrade.strategy import DecimalParameter, IntParameter, stoploss_from_absolute
from pandas import DataFrame

from liqsignals.indicators import rolling_mean, rsi
from liqsignals.strategy import (
    LiqStrategy,
    column_arrays,
    liq_plot_config,
    set_signals,
    stop_beyond,
)


class LiqSweepReversal(LiqStrategy):
    INTERFACE_VERSION = 3

    timeframe = "15m"
    can_short = True
    process_only_new_candles = True

    # startup_candle_count follows from the window (LiqStrategy)
    liq_window = "1w"
    # sweep entries follow a liquidation wick: backtest slippage (when configured, default 0 bp)
    # is wick_slippage_factor times larger on them (liqsignals.strategy.costs)
    liq_wick_entry_tags = ("sweep_long", "sweep_short")

    # stop beyond the swept cluster (custom_stoploss); the static value is the hard cap
    # (a share of the margin: 3x leverage -> at most ~8 % price move)
    stoploss = -0.25
    use_custom_stoploss = True
    # fallback when the magnet is never reached
    minimal_roi = {"0": 0.12, "720": 0.04, "1440": 0.01, "2880": 0.0}
    # freqtrade calls custom_exit (the magnet target) only with exit signals enabled;
    # populate_exit_trend itself sets no exit signal
    use_exit_signal = True

    order_types = {
        "entry": "limit",
        "exit": "limit",
        "stoploss": "market",
        "stoploss_on_exchange": False,
    }

    # hyperoptable: entry confirmation
    rsi_long_max = IntParameter(25, 70, default=55, space="buy")
    rsi_short_min = IntParameter(30, 75, default=45, space="buy")
    volume_factor = DecimalParameter(0.0, 3.0, default=1.0, decimals=1, space="buy")
    # hyperoptable: stop buffer and how far toward the opposite cluster to take profit
    stop_buffer_atr = DecimalParameter(0.0, 3.0, default=1.0, decimals=1, space="sell")
    target_fraction = DecimalParameter(0.3, 1.0, default=0.8, decimals=2, space="sell")

    plot_config = liq_plot_config({"subplots": {"RSI": {"rsi": {"color": "purple"}}}})

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe = self.liq_populate(dataframe, metadata)
        # ta's RSIIndicator and pandas' rolling mean, in compiled loops: the same values, a
        # fraction of the cost a live bot pays on every candle (liqsignals.indicators)
        dataframe["rsi"] = rsi(dataframe["close"], 14)
        dataframe["volume_mean"] = rolling_mean(dataframe["volume"], 48)
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        # plain numpy on the columns: the same conditions as Series expressions, without a
        # pandas object per operator (a live bot evaluates them on every candle)
        col = column_arrays(dataframe, "volume", "volume_mean", "rsi", "liq_sweep_long",
                      "liq_sweep_short", "liq_long_cluster_price", "liq_short_cluster_price")  # fmt: skip
        with np.errstate(invalid="ignore"):
            loud = (col.volume > 0) & (col.volume >= self.volume_factor.value * col.volume_mean)
            long_cond = (
                loud
                & (col.liq_sweep_long == 1)
                & (col.rsi <= self.rsi_long_max.value)
                & ~np.isnan(col.liq_short_cluster_price)
            )
            short_cond = (
                loud
                & (col.liq_sweep_short == 1)
                & (col.rsi >= self.rsi_short_min.value)
                & ~np.isnan(col.liq_long_cluster_price)
            )
        set_signals(dataframe, long_cond, short_cond, "sweep_long", "sweep_short")
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        # no exit signal (the magnet target is custom_exit); the columns are written anyway:
        # without them freqtrade copies the whole frame on every candle to rename a legacy
        # "sell" column
        no_exit = np.zeros(len(dataframe), dtype=np.int64)
        dataframe["exit_long"] = no_exit
        dataframe["exit_short"] = no_exit
        return dataframe

    # ------------------------------------------------------------------ stops and targets
    def _swept_stop(self, pair: str, trade: Trade) -> float:
        row = self.liq_signal_row(pair, trade)
        if row is None:
            return math.nan
        if trade.is_short:
            return stop_beyond(float(row["liq_sweep_short_high"]), float(row["liq_atr"]), "short",
                               self.stop_buffer_atr.value)  # fmt: skip
        return stop_beyond(float(row["liq_sweep_long_low"]), float(row["liq_atr"]), "long",
                           self.stop_buffer_atr.value)  # fmt: skip

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
        candidates = []
        swept = self._swept_stop(pair, trade)
        if math.isfinite(swept) and swept > 0:
            candidates.append(
                stoploss_from_absolute(swept, current_rate, trade.is_short, trade.leverage)
            )
        follow = self.liq_cluster_stop(
            pair, trade, current_rate, buffer_atr=self.stop_buffer_atr.value
        )
        if follow is not None and follow > 0:
            candidates.append(follow)
        if not candidates:
            return None
        # the tightest candidate; freqtrade never moves a stop back
        return min(candidates)

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
        entry = trade.open_rate
        if trade.is_short:
            magnet = float(row["liq_long_cluster_price"])
            target = entry - self.target_fraction.value * (entry - magnet)
            hit = current_rate <= target
        else:
            magnet = float(row["liq_short_cluster_price"])
            target = entry + self.target_fraction.value * (magnet - entry)
            hit = current_rate >= target
        if math.isfinite(magnet) and hit:
            return "magnet_target"
        return None


class LiqSweepReversalFixedStop(LiqSweepReversal):
    """Baseline: the same entries and targets with a fixed stop instead of the cluster stop
    (-6 % of the margin: about 2 % of price at the 3x leverage cap)."""

    use_custom_stoploss = False
    stoploss = -0.06
