"""LiqFreqAIExample: FreqAI with ``liq_*`` features, predicting the 4h signed excursion.

A FreqAI strategy (freqtrade's machine-learning framework, model ``LightGBMRegressor``):
the model learns, on a sliding training window that FreqAI retrains as the backtest walks
forward, the signed excursion of the next 4 hours (the rise of the highest high plus the fall
of the lowest low, as fractions of the close). The strategy goes long when the prediction is a
quarter of the training labels' standard deviation above their mean, short when as far below,
leaves when the prediction crosses the mean or after 4 hours, and stops out four ATRs beyond
the entry.

Features: price and volume (both twins) and the liquidation book estimated by liqsignals, for
a 1-day and a 1-week model window: imbalance, cluster and magnet distances, gaps, intensity,
sweeps, crowding and liquidated shares, and their trailing means and sums. FreqAI expands them
over ``include_timeframes``, ``include_corr_pairlist``, ``indicator_periods_candles`` and
``include_shifted_candles`` (config/futures-freqai-liq.json).

``LiqFreqAIPriceOnly`` (strategies/LiqFreqAIPriceOnly.py) is the same strategy without the
liq features: the measured difference between the twins is what the liq features add.

Run: ``freqtrade backtesting -c config/futures.json -c config/futures-freqai-liq.json``.
"""

from __future__ import annotations

from typing import Any

from pandas import DataFrame

from liqsignals.strategy.freqai import (
    LiqFreqAIStrategy,
    liq_expand_all,
    liq_expand_basic,
    price_expand_all,
    price_expand_basic,
)


class LiqFreqAIExample(LiqFreqAIStrategy):
    INTERFACE_VERSION = 3
    timeframe = "15m"

    # one liquidation model per window: %-liq_1d_* and %-liq_1w_* features
    liq_windows = ("1d", "1w")

    def feature_engineering_expand_all(
        self, dataframe: DataFrame, period: int, metadata: dict[str, Any], **kwargs: Any
    ) -> DataFrame:
        # expanded over indicator_periods_candles, include_timeframes, include_corr_pairlist
        dataframe = price_expand_all(dataframe, period)
        return liq_expand_all(dataframe, period, metadata, windows=self.liq_windows, strategy=self)

    def feature_engineering_expand_basic(
        self, dataframe: DataFrame, metadata: dict[str, Any], **kwargs: Any
    ) -> DataFrame:
        # expanded over include_timeframes, include_corr_pairlist, include_shifted_candles
        dataframe = price_expand_basic(dataframe)
        return liq_expand_basic(dataframe, metadata, windows=self.liq_windows, strategy=self)

    # feature_engineering_standard (hour, weekday), set_freqai_targets (the 4h signed
    # excursion), entries, exits and the ATR stop: LiqFreqAIStrategy, shared with the twin
