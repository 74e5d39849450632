"""LiqFreqAIPriceOnly: the twin of LiqFreqAIExample without the ``liq_*`` features.

Same FreqAI model, target (the 4h signed excursion), entries, exits, ATR stop and FreqAI
expansion settings (config/futures-freqai-priceonly.json, its own ``identifier`` so the twins
never share a model folder); the features are price and volume only.

Run: ``freqtrade backtesting -c config/futures.json -c config/futures-freqai-priceonly.json``.
"""

from __future__ import annotations

from liqsignals.strategy.freqai import LiqFreqAIStrategy


class LiqFreqAIPriceOnly(LiqFreqAIStrategy):
    INTERFACE_VERSION = 3
    timeframe = "15m"

    liq_windows = ()  # no liq features: price_expand_all / price_expand_basic only
