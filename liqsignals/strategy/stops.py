"""Stops beyond liquidation clusters, and the candle whose signal opened a trade."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pandas as pd
from freqtrade.strategy import stoploss_from_absolute

from liqsignals.features import timeframe_to_timedelta

__all__ = ["analyzed_frame", "cluster_stoploss", "cluster_stop_price", "signal_row", "stop_beyond"]


def stop_beyond(level: float, atr: float, side: str, buffer_atr: float) -> float:
    """A stop price beyond ``level`` by ``buffer_atr`` ATRs: below it for a long, above for a
    short. NaN in, NaN out (the caller keeps its current stop)."""
    if side == "long":
        return level - buffer_atr * atr
    if side == "short":
        return level + buffer_atr * atr
    raise ValueError(f"side must be 'long' or 'short', got {side!r}")


def cluster_stop_price(row: Mapping[str, Any], side: str, buffer_atr: float) -> float | None:
    """The stop price beyond the nearest adverse cluster of an analysed candle ``row``: the low
    edge of the long-liquidation cluster below a long, the high edge of the short-liquidation
    cluster above a short, plus ``buffer_atr`` ATRs. ``None`` when no cluster (or no ATR) is
    known or the price would not be positive."""
    if side not in ("long", "short"):
        raise ValueError(f"side must be 'long' or 'short', got {side!r}")
    edge = row.get("liq_long_cluster_low") if side == "long" else row.get("liq_short_cluster_high")
    stop = stop_beyond(
        math.nan if edge is None else float(edge),
        float(row.get("liq_atr", math.nan)),
        side,
        buffer_atr,
    )
    if not math.isfinite(stop) or stop <= 0:
        return None
    return stop


def signal_row(analyzed: pd.DataFrame, open_date: datetime, timeframe: str) -> pd.Series | None:
    """The candle whose signal opened a trade at ``open_date``: the last candle of ``analyzed``
    that opened at least one ``timeframe`` before the entry (so it had closed). ``None`` when the
    frame holds no such candle."""
    signal_time = pd.Timestamp(open_date) - timeframe_to_timedelta(timeframe)
    rows = analyzed[analyzed["date"] <= signal_time]
    return None if len(rows) == 0 else rows.iloc[-1]


def cluster_stoploss(
    row: Mapping[str, Any] | None, trade: Any, current_rate: float, buffer_atr: float
) -> float | None:
    """:func:`cluster_stop_price` for ``trade`` as a ``custom_stoploss`` return value (a share of
    ``current_rate`` at the trade's leverage); ``None`` (keep the current stop) without a row or
    a known cluster."""
    side = "short" if trade.is_short else "long"
    stop = None if row is None else cluster_stop_price(row, side, buffer_atr)
    if stop is None:
        return None
    return float(
        stoploss_from_absolute(stop, current_rate, is_short=trade.is_short, leverage=trade.leverage)
    )


def analyzed_frame(dp: Any, pair: str, timeframe: str) -> pd.DataFrame | None:
    """freqtrade's analysed frame of ``pair`` from the DataProvider ``dp`` (``None`` when there
    is no provider or the frame is empty)."""
    df = None if dp is None else dp.get_analyzed_dataframe(pair, timeframe)[0]
    return None if df is None or len(df) == 0 else df
