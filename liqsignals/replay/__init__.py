"""A loopback exchange that speaks Binance USDT-M futures REST from a freqtrade datadir.

freqtrade and ccxt talk to it exactly as to Binance (``config/replay.json`` points every Binance
URL at it), so backtests, ``lookahead-analysis``, plotting and dry runs work with no network.

* :class:`ReplayExchange`: the server (context manager, free port by default, loopback only);
  :class:`ServerLimits`: its worker pool, connection cap, listen queue and timeouts.
* :mod:`~liqsignals.replay.clock`: what "now" is: :class:`HistoricalClock` (fixed instant) or
  :class:`LiveClock` (history shifted to the wall clock, optionally accelerated).
* :class:`FaultConfig`: fault injection (5xx, 429 with ``Retry-After``, timeouts, malformed
  JSON, missing or duplicated candles).
* :func:`freqtrade_overlay`: the freqtrade config overlay for a port.
* :func:`run_offline`: run a command (e.g. ``freqtrade backtesting``) with the exchange alive and
  ``{overlay}`` replaced by the overlay file's path.

Command line: ``liqsignals replay --datadir DIR [--port PORT]``, ``liqsignals replay
--print-config [--port PORT]`` and ``liqsignals offline --datadir DIR -- freqtrade ... -c
{overlay} ...``.

Example
-------
>>> from liqsignals.replay import ReplayExchange
>>> with ReplayExchange("user_data/data/binance") as ex:           # doctest: +SKIP
...     print(ex.url)
http://127.0.0.1:40123
"""

from __future__ import annotations

from liqsignals.replay.api import METRIC_ENDPOINTS, BinanceError, ReplayAPI
from liqsignals.replay.clock import Clock, HistoricalClock, LiveClock
from liqsignals.replay.config import DEFAULT_PORT, ccxt_config, freqtrade_overlay, write_overlay
from liqsignals.replay.faults import FaultConfig, FaultInjector
from liqsignals.replay.offline import OfflineResult, run_offline
from liqsignals.replay.server import NotLoopbackError, ReplayExchange, ServerLimits
from liqsignals.replay.store import DataStore, MarketSpec

__all__ = [
    "DEFAULT_PORT",
    "METRIC_ENDPOINTS",
    "BinanceError",
    "Clock",
    "DataStore",
    "FaultConfig",
    "FaultInjector",
    "HistoricalClock",
    "LiveClock",
    "MarketSpec",
    "NotLoopbackError",
    "OfflineResult",
    "ReplayAPI",
    "ReplayExchange",
    "ServerLimits",
    "ccxt_config",
    "freqtrade_overlay",
    "run_offline",
    "write_overlay",
]
