"""Open interest and funding for the engine, from freqtrade's DataProvider, and the run mode;
realised liquidations from a collector's file as ``liq_realised_*`` columns.

In backtests freqtrade's DataProvider reads the datadir files (``open_interest`` candle type,
``funding_rate`` at 1h); in dry-run / live it only holds the informative pairs a strategy declared
(see :meth:`liqsignals.strategy.LiqStrategy.informative_pairs`). Every lookup that finds nothing
leaves the candles alone: the engine then runs on candles only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from freqtrade.enums import RunMode

__all__ = [
    "CANDLE_COLUMNS",
    "REALISED",
    "attach_funding",
    "attach_open_interest",
    "attach_realised",
    "candle_inputs",
    "informative_frame",
    "is_trading",
    "live_market_data",
    "market_inputs",
    "realised_columns",
    "runmode",
]

logger = logging.getLogger(__name__)

#: the columns of freqtrade's candle frame the engine reads
CANDLE_COLUMNS = ("date", "open", "high", "low", "close", "volume")
#: realised-liquidation columns (see :data:`liqsignals.columns.REALISED_COLUMNS`)
REALISED = ("liq_realised_long", "liq_realised_short")


def runmode(dp: Any, config: Mapping[str, Any]) -> RunMode:
    """freqtrade's run mode: ``dp.runmode`` when the strategy has a DataProvider (freqtrade sets
    one in every mode), else the config's ``runmode`` read as a :class:`RunMode` (a strategy
    built outside a bot). Unknown values raise ``ValueError``."""
    if dp is not None:
        return RunMode(dp.runmode)
    return RunMode(config.get("runmode", RunMode.OTHER))


def is_trading(dp: Any, config: Mapping[str, Any]) -> bool:
    """Whether the strategy runs in dry-run or live (a bot analysing new candles)."""
    return runmode(dp, config) in (RunMode.LIVE, RunMode.DRY_RUN)


def live_market_data(config: Mapping[str, Any]) -> bool:
    """The opt-in ``"liqsignals": {"live_open_interest": true}`` of the config."""
    settings = config.get("liqsignals", {}) or {}
    return bool(settings.get("live_open_interest"))


def candle_inputs(dataframe: pd.DataFrame) -> pd.DataFrame:
    """A copy of the candle columns of freqtrade's frame (the strategy's own columns left out)."""
    missing = [c for c in CANDLE_COLUMNS if c not in dataframe.columns]
    if missing:
        raise ValueError(f"candle frame has no column(s) {missing}")
    return dataframe[list(CANDLE_COLUMNS)].copy()


def attach_open_interest(inputs: pd.DataFrame, oi: pd.DataFrame | None) -> pd.DataFrame:
    """Add freqtrade's open interest (``open_interest_amount`` as ``open_interest``, or else
    ``open_interest_value``) to ``inputs`` in place, matched by candle date; candles without a
    value get NaN. Rows of ``oi`` without either value are ignored; ``None`` or an empty frame
    changes nothing. Returns ``inputs``."""
    if oi is None:
        return inputs
    cols = [c for c in ("open_interest_amount", "open_interest_value") if c in oi.columns]
    oi = oi[["date", *cols]].dropna(how="all", subset=cols)
    if not len(oi):
        return inputs
    merged = inputs[["date"]].merge(oi, on="date", how="left")
    if "open_interest_amount" in merged and merged["open_interest_amount"].notna().any():
        inputs["open_interest"] = merged["open_interest_amount"].to_numpy()
    elif "open_interest_value" in merged:
        inputs["open_interest_value"] = merged["open_interest_value"].to_numpy()
    return inputs


def attach_funding(inputs: pd.DataFrame, fr: pd.DataFrame | None) -> pd.DataFrame:
    """Add ``funding_rate`` to ``inputs`` in place: per candle the latest funding event at or
    before the candle's open (a funding event is known from its timestamp on, never a later
    one). freqtrade's funding frames hold the rate in ``open`` (or ``funding_rate``). ``None`` or
    a frame without rates changes nothing. Returns ``inputs``."""
    if fr is None:
        return inputs
    col = "funding_rate" if "funding_rate" in fr.columns else "open"
    fr = fr[["date", col]].rename(columns={col: "funding_rate"}).dropna().sort_values("date")
    if not len(fr):
        return inputs
    merged = pd.merge_asof(
        inputs[["date"]].sort_values("date"), fr, on="date", direction="backward"
    )
    inputs["funding_rate"] = merged["funding_rate"].to_numpy()
    return inputs


def informative_frame(
    dp: Any, pair: str, timeframe: str, candle_type: str, warned: set[tuple[str, str]]
) -> pd.DataFrame | None:
    """``dp.get_pair_dataframe(pair, timeframe, candle_type=...)``, or ``None`` when it is empty
    or the lookup fails (e.g. an exchange without this candle type: logged once per pair and
    candle type, remembered in ``warned``)."""
    try:
        df = dp.get_pair_dataframe(pair, timeframe, candle_type=candle_type)
    except Exception as exc:
        if (pair, candle_type) not in warned:
            warned.add((pair, candle_type))
            logger.warning(
                "liqsignals: no %s data for %s (%s); using candles alone", candle_type, pair, exc
            )
        return None
    if df is None or len(df) == 0:
        return None
    return df


def market_inputs(
    dataframe: pd.DataFrame, dp: Any, pair: str, timeframe: str, warned: set[tuple[str, str]]
) -> pd.DataFrame:
    """The engine's inputs for ``pair``: a copy of the candles plus open interest (at the
    strategy's ``timeframe``) and ``funding_rate`` (1h) where ``dp`` has them."""
    inputs = candle_inputs(dataframe)
    oi = informative_frame(dp, pair, timeframe, "open_interest", warned)
    attach_open_interest(inputs, oi)
    attach_funding(inputs, informative_frame(dp, pair, "1h", "funding_rate", warned))
    return inputs


def realised_columns(
    dates: pd.Series, timeframe: str, datadir: Any, pair: str
) -> dict[str, np.ndarray] | None:
    """``liq_realised_long`` / ``liq_realised_short`` per candle from the pair's liquidation
    event file (``<datadir>/futures/liqsignals/<PAIR>-liquidation_events.feather``), or
    ``None`` when there is no such file.

    A candle's value sums the events inside its own interval ``[open, open + timeframe)``
    (quote currency; known at the candle's close, so causal); a candle the collector did not
    listen to for its whole length is NaN (see
    :func:`liqsignals.data.liquidations.recorded_bars`). In a live bot the newest candle holds
    what the collector had flushed by the time the candle was analysed.
    """
    from liqsignals.data.liquidations import events_path, load_coverage, recorded_bars
    from liqsignals.data.liquidations import load_liquidation_events as load_events

    if datadir is None or not events_path(datadir, pair).exists() or not len(dates):
        return None
    when = pd.to_datetime(dates, utc=True)
    bars = recorded_bars(
        load_events(datadir, pair),
        load_coverage(datadir, pair),
        timeframe,
        start=when.min(),
        stop=when.max(),
    )
    merged = pd.DataFrame({"date": when.dt.as_unit("ms")}).merge(
        bars.rename(
            columns={"long_liquidation_usd": REALISED[0], "short_liquidation_usd": REALISED[1]}
        ),
        on="date",
        how="left",
    )
    return {c: merged[c].to_numpy(dtype=np.float64) for c in REALISED}


def attach_realised(
    dataframe: pd.DataFrame, config: Mapping[str, Any], pair: str, timeframe: str
) -> pd.DataFrame:
    """``dataframe`` with the ``liq_realised_*`` columns (:func:`realised_columns`) when the
    config's ``datadir`` holds the pair's liquidation event file; unchanged otherwise. A file
    that cannot be read is logged and left out (the strategy keeps running)."""
    try:
        cols = realised_columns(dataframe["date"], timeframe, config.get("datadir"), pair)
    except (OSError, ValueError) as exc:
        logger.warning("liqsignals: realised liquidations of %s not read: %s", pair, exc)
        return dataframe
    if cols is None:
        return dataframe
    for name, values in cols.items():
        dataframe[name] = values
    return dataframe
