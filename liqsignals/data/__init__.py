"""Freqtrade datadir I/O, market-data downloads and exchange dump importers.

Reading and writing needs only pandas and pyarrow; downloads and collectors import ccxt when they
run. See ``liqsignals.data.datadir`` for the path rules and ``liqsignals.data.hygiene`` for how bad
candles are treated. Every write to a data file runs under that file's lock (``file_lock``) and
goes through ``liqsignals.fileio.atomic_path``.
"""

from __future__ import annotations

from liqsignals.data.datadir import (
    ATTACHED_COLUMNS,
    EXTRA_KINDS,
    FREQTRADE_CANDLE_TYPES,
    LAYOUTS,
    LOCK_TIMEOUT,
    OHLCV_COLUMNS,
    FileBusyError,
    TimeRange,
    append_frame,
    attach_market_data,
    data_path,
    file_lock,
    filename_to_pair,
    list_data,
    load_candles,
    load_funding_rate,
    load_liquidation_bars,
    load_long_short_ratio,
    load_open_interest,
    load_series,
    load_taker_volume,
    lock_path,
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
    "LOCK_TIMEOUT",
    "OHLCV_COLUMNS",
    "CandleReport",
    "FileBusyError",
    "TimeRange",
    "append_frame",
    "attach_market_data",
    "check_candles",
    "clean_candles",
    "data_path",
    "file_lock",
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
    "lock_path",
    "pair_to_filename",
    "parse_timerange",
    "read_frame",
    "save_candles",
    "save_series",
    "timeframe_to_timedelta",
    "write_frame",
]
