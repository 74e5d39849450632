"""Real Binance USDT-M futures candles bundled with the package, for examples, docs and tests.

The files sit in a freqtrade datadir (``sample_data/binance``), so they can be handed to freqtrade
directly: ``freqtrade backtesting --datadir "$(python -c 'import liqsignals.sample as s;
print(s.datadir())')" ...``. See ``sample_data/README.md`` for sources and ranges.

Example
-------
>>> from liqsignals import sample
>>> df = sample.load_candles("BTC/USDT:USDT", "1h")
>>> list(df.columns)
['date', 'open', 'high', 'low', 'close', 'volume']
>>> str(df["date"].iloc[0])
'2024-06-01 00:00:00+00:00'
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from liqsignals.data.datadir import TimeRange, list_data
from liqsignals.data.datadir import load_candles as _load_candles

__all__ = ["datadir", "load_candles", "pairs", "timeframes"]

_ROOT = Path(__file__).resolve().parent / "sample_data"


def datadir(exchange: str = "binance") -> Path:
    """The bundled freqtrade datadir for ``exchange`` (pass it as ``--datadir``)."""
    path = _ROOT / exchange
    if not (path / "futures").is_dir():
        available = sorted(p.name for p in _ROOT.iterdir() if (p / "futures").is_dir())
        raise ValueError(f"no sample data for {exchange!r}; available: {available}")
    return path


def load_candles(
    pair: str = "BTC/USDT:USDT",
    timeframe: str = "15m",
    candle_type: str = "futures",
    timerange: str | TimeRange | tuple | None = None,
    *,
    exchange: str = "binance",
) -> pd.DataFrame:
    """Bundled candles in freqtrade's columns.

    Returns
    -------
    DataFrame
        ``date`` (UTC, bar open time), ``open``, ``high``, ``low``, ``close`` (USDT) and ``volume``
        (base currency). ``candle_type="mark"`` gives mark-price candles (volume 0).
    """
    return _load_candles(
        datadir(exchange), pair, timeframe, candle_type, timerange, exchange=exchange
    )


def pairs(exchange: str = "binance") -> list[str]:
    """Pairs with bundled futures candles, e.g. ``["BTC/USDT:USDT", "ETH/USDT:USDT"]``."""
    return sorted({p for p, _, kind in list_data(datadir(exchange)) if kind == "futures"})


def timeframes(pair: str = "BTC/USDT:USDT", exchange: str = "binance") -> list[str]:
    """Timeframes with bundled futures candles for ``pair``, shortest first."""
    from liqsignals.data.datadir import timeframe_to_timedelta

    found = {t for p, t, kind in list_data(datadir(exchange)) if p == pair and kind == "futures"}
    return sorted(found, key=timeframe_to_timedelta)
