"""Series freqtrade cannot serve a running bot, fetched by liqsignals itself.

freqtrade's DataProvider serves candles, mark candles and funding in every run mode; taker buy
volume (Binance ``/futures/data/takerlongshortRatio``) and the account long/short ratio
(``/futures/data/globalLongShortAccountRatio``, or the venue's own) it does not serve at all, and
open interest it serves a running bot one bar late: freqtrade drops the newest row of every
response as an incomplete candle (``ohlcv_partial_candle``), while a backtest reads that row from
the file, so bot and backtest would differ on the newest candle. A bot
(dry-run / live) keeps them current in its datadir with :class:`SeriesFetcher`: on each new
candle of a pair the missing rows since the bot's first candle are fetched with
:func:`liqsignals.data.download.download` (the same code as ``liqsignals download``: gaps are
repaired, spans the venue does not serve are recorded and not asked again) into the files a
backtest reads (``<datadir>/futures/liqsignals/<PAIR>-<tf>-<kind>.feather``). The strategy then
reads them from the datadir in every run mode (:mod:`liqsignals.strategy.market_data`).

A failure (network, a venue without the series) is logged once per pair and series and never
stops the bot: the model runs without that input.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pandas as pd

__all__ = ["FETCHED_KINDS", "SeriesFetcher"]

logger = logging.getLogger(__name__)

#: the series liqsignals fetches itself (datadir kinds)
FETCHED_KINDS = ("open_interest", "taker_volume", "long_short_ratio")


class SeriesFetcher:
    """Keeps ``FETCHED_KINDS`` of each pair current in a datadir, once per new candle.

    ``config`` is the bot's freqtrade config: the exchange name and its ``ccxt_config`` (e.g.
    another URL) are used, never API keys. ``exchange`` may be given (tests).
    """

    def __init__(self, config: Mapping[str, Any], exchange: Any = None) -> None:
        self.config = config
        self._exchange = exchange
        self.last: dict[str, pd.Timestamp] = {}
        self.failed: set[tuple[str, str]] = set()

    def exchange(self) -> Any:
        if self._exchange is None:
            from liqsignals.data.download import make_exchange

            name = str((self.config.get("exchange") or {}).get("name") or "binance")
            self._exchange = make_exchange(name, self.config)
        return self._exchange

    def refresh(
        self, pair: str, timeframe: str, datadir: Any, first: pd.Timestamp, last: pd.Timestamp
    ) -> None:
        """Fetch what is missing of each series for the candles ``first .. last`` (the bot's
        frame), unless ``last`` was refreshed already."""
        if datadir is None or self.last.get(pair) == last:
            return
        self.last[pair] = last
        from liqsignals.data.datadir import TimeRange
        from liqsignals.data.download import download

        for kind in FETCHED_KINDS:
            try:
                download(
                    self.exchange(),
                    pair,
                    timeframe,
                    datadir,
                    kind,
                    timerange=TimeRange(pd.Timestamp(first), None),
                    progress=False,
                )
            except Exception as exc:
                if (pair, kind) not in self.failed:
                    self.failed.add((pair, kind))
                    logger.warning(
                        "liqsignals: could not fetch %s for %s (%s: %s); the model runs "
                        "without it until a fetch succeeds",
                        kind, pair, type(exc).__name__, exc,
                    )  # fmt: skip
            else:
                self.failed.discard((pair, kind))
