"""Freqtrade datadir I/O, market-data downloads and exchange dump importers.

Reading and writing needs only pandas and pyarrow; downloads and collectors import ccxt when they
run. See ``liqsignals.data.datadir`` for the path rules and ``liqsignals.data.hygiene`` for how bad
candles are treated.
"""

from __future__ import annotations

from liqsignals.data.datadir import (
    ATTACHED_COLUMNS,
    EXTRA_KINDS,
    FREQTRADE_CANDLE_TYPES,
    LAYOUTS,
    OHLCV_COLUMNS,
    TimeRange,
    append_frame,
    attach_market_data,
    data_path,
    filename_to_pair,
    list_data,
    load_candles,
    load_funding_rate,
    load_liquidation_bars,
    load_long_short_ratio,
    load_open_interest,
    load_series,
    load_taker_volume,
    pair_to_filename,
    parse_timerange,
    read_frame,
    save_candles,
    save_series,
    timeframe_to_timedelta,
    write_frame,
)
from liqsignals.data.hygiene import (
    CandleReport,
    check_candles,
    clean_candles,
    filler_mask,
    find_gaps,
)

__all__ = [
    "ATTACHED_COLUMNS",
    "EXTRA_KINDS",
    "FREQTRADE_CANDLE_TYPES",
    "LAYOUTS",
    "OHLCV_COLUMNS",
    "CandleReport",
    "TimeRange",
    "append_frame",
    "attach_market_data",
    "check_candles",
    "clean_candles",
    "data_path",
    "filename_to_pair",
    "filler_mask",
    "find_gaps",
    "list_data",
    "load_candles",
    "load_funding_rate",
    "load_liquidation_bars",
    "load_long_short_ratio",
    "load_open_interest",
    "load_series",
    "load_taker_volume",
    "pair_to_filename",
    "parse_timerange",
    "read_frame",
    "save_candles",
    "save_series",
    "timeframe_to_timedelta",
    "write_frame",
]
