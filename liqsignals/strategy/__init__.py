"""freqtrade glue: ``liq_*`` columns in strategies, cluster-aware stops, sizing, leverage, plots.

Strategies stay thin: they subclass :class:`LiqStrategy` (an ``IStrategy``) and call
:meth:`LiqStrategy.liq_populate` in ``populate_indicators``. The pieces, each usable alone:

* :mod:`~liqsignals.strategy.base`: :class:`LiqStrategy`, class-attribute settings and freqtrade
  callbacks that delegate to the modules below;
* :mod:`~liqsignals.strategy.market_data`: open interest and funding from freqtrade's
  DataProvider (the datadir in backtests), and the run mode;
* :mod:`~liqsignals.strategy.live_cache`: in dry-run / live, one
  :class:`~liqsignals.features.FeatureStream` per pair fed only the new candles, rebuilt when
  the history changed (restart, gap, replaced candles);
* :mod:`~liqsignals.strategy.stops`, :mod:`~liqsignals.strategy.sizing`: the stop beyond the
  nearest adverse cluster plus an ATR buffer, smaller stakes near high-intensity zones, the
  leverage cap;
* :mod:`~liqsignals.strategy.signals`: numpy entry conditions, the ``liq_*`` block joined to the
  frame, the ``plot_config`` with magnet lines, zone bands and liquidation bars;
* :mod:`~liqsignals.strategy.settings`: the model, lookbacks and ``startup_candle_count`` the
  class settings imply.

Only strategies import this package (``import liqsignals`` does not), so it imports freqtrade.
"""

from __future__ import annotations

from liqsignals.strategy.base import LiqStrategy
from liqsignals.strategy.live_cache import LiqStreamStats, LiveFeatureCache
from liqsignals.strategy.settings import startup_candles
from liqsignals.strategy.signals import column_arrays, join_columns, liq_plot_config, set_signals
from liqsignals.strategy.sizing import stake_factor
from liqsignals.strategy.stops import cluster_stop_price, stop_beyond

__all__ = [
    "LiqStrategy",
    "LiqStreamStats",
    "LiveFeatureCache",
    "cluster_stop_price",
    "column_arrays",
    "join_columns",
    "liq_plot_config",
    "set_signals",
    "stake_factor",
    "startup_candles",
    "stop_beyond",
]
