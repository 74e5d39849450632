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
import time
from collections.abc import Mapping
from typing import Any

import pandas as pd

__all__ = ["FETCHED_KINDS", "BudgetSpent", "SeriesFetcher"]

logger = logging.getLogger(__name__)

#: the series liqsignals fetches itself (datadir kinds)
FETCHED_KINDS = ("open_interest", "taker_volume", "long_short_ratio")
#: how long a kind the venue served nothing of is left alone
IDLE_RETRY = pd.Timedelta(hours=1)


class BudgetSpent(TimeoutError):
    """The time a refresh may take is used up."""


class SeriesFetcher:
    """Keeps ``FETCHED_KINDS`` of each pair current in a datadir, once per new candle.

    ``config`` is the bot's freqtrade config: the exchange name and its ``ccxt_config`` (e.g.
    another URL) are used, never API keys. ``exchange`` may be given (tests). The bot waits for
    the fetch before it analyses the candle, so one refresh (all kinds of a pair) may take at
    most ``budget_s`` seconds, each request at most ``timeout_ms``: a slow or failing venue
    costs the bot that much per pair and candle, and the model runs without what was not
    fetched. A kind the venue served nothing of is asked again after ``idle_retry`` only.
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        exchange: Any = None,
        *,
        budget_s: float = 4.0,
        timeout_ms: int = 2000,
        idle_retry: pd.Timedelta = IDLE_RETRY,
    ) -> None:
        self.config = config
        self._exchange = exchange
        self.budget_s = budget_s
        self.timeout_ms = timeout_ms
        self.idle_retry = idle_retry
        self.last: dict[str, pd.Timestamp] = {}
        self.failed: set[tuple[str, str]] = set()
        #: (pair, kind) -> candle date from which a kind the venue does not serve is asked again
        self.idle: dict[tuple[str, str], pd.Timestamp] = {}

    def exchange(self) -> Any:
        if self._exchange is None:
            from liqsignals.data.download import make_exchange

            name = str((self.config.get("exchange") or {}).get("name") or "binance")
            self._exchange = make_exchange(name, self.config)
            self._exchange.timeout = self.timeout_ms
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

        deadline = time.monotonic() + self.budget_s

        def sleep(seconds: float) -> None:  # download's backoff, within the budget
            if time.monotonic() + seconds > deadline:
                raise BudgetSpent(f"the {self.budget_s:g} s fetch budget is spent")
            time.sleep(seconds)

        for kind in FETCHED_KINDS:
            if self.idle.get((pair, kind), last) > last:
                continue
            try:
                if time.monotonic() > deadline:
                    raise BudgetSpent(f"the {self.budget_s:g} s fetch budget is spent")
                got = download(
                    self.exchange(),
                    pair,
                    timeframe,
                    datadir,
                    kind,
                    timerange=TimeRange(pd.Timestamp(first), None),
                    progress=False,
                    sleep=sleep,
                )
                if got.last is None:  # nothing served at all: ask again later
                    self.idle[(pair, kind)] = last + self.idle_retry
                    logger.info(
                        "liqsignals: %s serves no %s for %s; asking again in %s",
                        self.exchange().id, kind, pair, self.idle_retry,
                    )  # fmt: skip
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
