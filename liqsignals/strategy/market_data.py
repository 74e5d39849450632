"""Open interest and funding for the engine, from freqtrade's DataProvider, and the run mode;
realised liquidations from a collector's file as ``liq_realised_*`` columns.

In backtests freqtrade's DataProvider reads the datadir files (``open_interest`` candle type,
``funding_rate`` at 1h); in dry-run / live it only holds the informative pairs a strategy declared
(see :meth:`liqsignals.strategy.LiqStrategy.informative_pairs`). Every lookup that finds nothing
leaves the candles alone: the engine then runs on candles only.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from freqtrade.enums import RunMode

from liqsignals.align import Refused, align_events, align_extremes, align_level
from liqsignals.model import timeframe_to_timedelta

__all__ = [
    "CANDLE_COLUMNS",
    "REALISED",
    "INPUT_COLUMNS",
    "attach_funding",
    "attach_mark",
    "attach_open_interest",
    "attach_realised",
    "candle_inputs",
    "deprecated_settings",
    "has_exchange",
    "informative_frame",
    "is_trading",
    "live_market_data",
    "market_arrays",
    "market_inputs",
    "realised_columns",
    "runmode",
]

logger = logging.getLogger(__name__)

#: the columns of freqtrade's candle frame the engine reads
CANDLE_COLUMNS = ("date", "open", "high", "low", "close", "volume")
#: realised-liquidation columns (see :data:`liqsignals.columns.REALISED_COLUMNS`)
REALISED = ("liq_realised_long", "liq_realised_short")
#: NaT as an int64 (a datetime column's missing value)
_NAT = np.iinfo(np.int64).min


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
    """The old opt-in ``"liqsignals": {"live_open_interest": true}`` of the config. Every input
    is now read in every run mode; the setting is accepted and does nothing
    (:func:`deprecated_settings` logs it)."""
    settings = config.get("liqsignals", {}) or {}
    return bool(settings.get("live_open_interest"))


def deprecated_settings(config: Mapping[str, Any]) -> list[str]:
    """Deprecation messages for ``config``'s liqsignals settings that no longer do anything."""
    settings = config.get("liqsignals", {}) or {}
    if "live_open_interest" in settings:
        return [
            'liqsignals: the setting "live_open_interest" is deprecated and does nothing: '
            "open interest, funding, mark, taker volume and long/short ratio are read in every "
            "run mode wherever they exist; remove it from the config"
        ]
    return []


def has_exchange(dp: Any, pair: str) -> bool:
    """Whether ``dp`` belongs to a bot connected to an exchange (``dp.market`` answers): only
    then does the strategy fetch series itself. A DataProvider built without an exchange (a
    strategy driven by hand, a test) raises there."""
    try:
        dp.market(pair)
    except Exception:
        return False
    return True


def candle_inputs(dataframe: pd.DataFrame) -> pd.DataFrame:
    """A copy of the candle columns of freqtrade's frame (the strategy's own columns left out)."""
    missing = [c for c in CANDLE_COLUMNS if c not in dataframe.columns]
    if missing:
        raise ValueError(f"candle frame has no column(s) {missing}")
    return dataframe[list(CANDLE_COLUMNS)].copy()


def _candle_timeframe(dates: pd.Series) -> pd.Timedelta:
    """The candles' timeframe: the smallest step between consecutive dates (one candle: 1 ms,
    so a same-date series still aligns 1:1)."""
    when = pd.to_datetime(dates, utc=True)
    steps = when.diff().dropna()
    steps = steps[steps > pd.Timedelta(0)]
    return steps.min() if len(steps) else pd.Timedelta(milliseconds=1)


def _period(dates: pd.Series, timeframe: str | pd.Timedelta | None) -> pd.Timedelta:
    if timeframe is None:
        return _candle_timeframe(dates)
    return timeframe if isinstance(timeframe, pd.Timedelta) else timeframe_to_timedelta(timeframe)


def attach_open_interest(
    inputs: pd.DataFrame,
    oi: pd.DataFrame | None,
    timeframe: str | pd.Timedelta | None = None,
    period: str | pd.Timedelta | None = None,
) -> pd.DataFrame:
    """Add freqtrade's open interest (``open_interest_amount`` as ``open_interest``, or else
    ``open_interest_value``) to ``inputs`` in place, by the bar rule of
    :func:`liqsignals.align.align_level`: a bar of ``period`` (default: the candles'
    ``timeframe``, itself inferred from the dates when not given) is used from its close on, so
    a bar of the candles' own timeframe aligns 1:1 by date; candles without a value get NaN.
    Rows of ``oi`` without either value are ignored; ``None`` or an empty frame changes nothing.
    Returns ``inputs``."""
    for name, values in _open_interest_columns(inputs["date"], oi, timeframe, period).items():
        inputs[name] = values
    return inputs


def _open_interest_columns(
    dates: pd.Series,
    oi: pd.DataFrame | None,
    timeframe: str | pd.Timedelta | None,
    period: str | pd.Timedelta | None,
) -> dict[str, np.ndarray]:
    """The column :func:`attach_open_interest` adds, by name (none: empty)."""
    if oi is None:
        return {}
    cols = [c for c in ("open_interest_amount", "open_interest_value") if c in oi.columns]
    oi = oi[["date", *cols]].dropna(how="all", subset=cols)
    if not len(oi):
        return {}
    tf = _period(dates, timeframe)
    got = align_level(
        dates, tf, oi["date"], {c: oi[c] for c in cols}, tf if period is None else period
    )
    amount = got.get("open_interest_amount")
    if amount is not None and np.isfinite(amount).any():
        return {"open_interest": amount}
    if "open_interest_value" in got:
        return {"open_interest_value": got["open_interest_value"]}
    return {}


def attach_funding(inputs: pd.DataFrame, fr: pd.DataFrame | None) -> pd.DataFrame:
    """Add ``funding_rate`` to ``inputs`` in place: per candle the latest funding event at or
    before the candle's open (:func:`liqsignals.align.align_events`: a funding event is a point
    event, known from its timestamp on, never a later one). freqtrade's funding frames hold the
    rate in ``open`` (or ``funding_rate``). ``None`` or a frame without rates changes nothing.
    Returns ``inputs``."""
    for name, values in _funding_columns(inputs["date"], fr).items():
        inputs[name] = values
    return inputs


def _funding_columns(dates: pd.Series, fr: pd.DataFrame | None) -> dict[str, np.ndarray]:
    """The column :func:`attach_funding` adds, by name (none: empty)."""
    if fr is None:
        return {}
    col = "funding_rate" if "funding_rate" in fr.columns else "open"
    rows = _dated_floats(fr, col)
    if rows is None:  # not the common columns: through pandas (and its errors)
        fr = fr[["date", col]].dropna()
        when, rate = fr["date"], fr[col]
    else:
        when, rate = rows
    if not len(when):
        return {}
    return {"funding_rate": align_events(dates, when, {"r": rate})["r"]}


def _dated_floats(frame: pd.DataFrame, col: str) -> tuple[Any, np.ndarray] | None:
    """``frame[["date", col]].dropna()``'s two columns as a ``DatetimeArray`` (or the date
    column itself when no row is dropped) and a float64 array, for the common frames: unique
    column labels, datetime dates (naive or timezone-aware), float64 values. ``None`` for any
    other frame (``dropna`` then reads it)."""
    cols = frame.columns
    if type(cols) is not pd.Index or not cols.is_unique or "date" not in cols or col not in cols:
        return None
    when, values = frame["date"], frame[col]
    dates = when.array
    if not isinstance(dates, pd.arrays.DatetimeArray):
        return None
    dtype = values.dtype
    if not isinstance(dtype, np.dtype) or dtype != np.float64:
        return None
    rate = values.to_numpy()
    keep = (dates.asi8 != _NAT) & ~np.isnan(rate)  # dropna: NaT dates, NaN values
    if keep.all():
        return when, rate
    return dates[keep], rate[keep]


def attach_mark(
    inputs: pd.DataFrame,
    mark: pd.DataFrame | None,
    timeframe: str | pd.Timedelta | None = None,
    period: str | pd.Timedelta | None = None,
) -> pd.DataFrame:
    """Add ``mark_high`` / ``mark_low`` (mark-price high and low over each candle's span) to
    ``inputs`` in place, from mark candles of ``period`` (default: the candles' timeframe):
    the same timeframe 1:1, a finer one aggregated over complete spans
    (:func:`liqsignals.align.align_extremes`). Mark candles coarser than the candles raise
    :class:`liqsignals.align.Refused` (their high / low hold later prices) and change nothing.
    ``None`` or an empty frame changes nothing. Returns ``inputs``."""
    for name, values in _mark_columns(inputs["date"], mark, timeframe, period).items():
        inputs[name] = values
    return inputs


def _has_columns(frame: pd.DataFrame, names: tuple[str, ...]) -> bool:
    """Whether every one of ``names`` is among ``frame``'s column labels (``set(names) <=
    set(frame.columns)``, looked up in a plain ``Index`` without building the set)."""
    cols = frame.columns
    if type(cols) is pd.Index:
        return all(name in cols for name in names)
    return set(names) <= set(cols)


def _mark_columns(
    dates: pd.Series,
    mark: pd.DataFrame | None,
    timeframe: str | pd.Timedelta | None,
    period: str | pd.Timedelta | None,
) -> dict[str, np.ndarray]:
    """The columns :func:`attach_mark` adds, by name (none: empty); ``Refused`` as there."""
    if mark is None or not len(mark) or not _has_columns(mark, ("high", "low")):
        return {}
    tf = _period(dates, timeframe)
    hi, lo = align_extremes(
        dates, tf, mark["date"], mark["high"], mark["low"], tf if period is None else period
    )
    if np.isfinite(hi).any():
        return {"mark_high": hi, "mark_low": lo}
    return {}


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


#: every input the strategies attach, in the order of the logged input set
INPUT_COLUMNS = (
    "open_interest",
    "open_interest_value",
    "funding_rate",
    "mark_high",
    "mark_low",
    "taker_buy_volume",
    "long_short_ratio",
)
#: per series: (column(s) it gives, what the model does without it)
_FALLBACK = {
    "open_interest": "the model sizes new positions from volume alone",
    "funding_rate": "no funding_rate column (funding filters pass)",
    "mark": "liquidations trigger on the last-price high / low",
    "taker_volume": "the model splits new positions by the candle's direction",
    "long_short_ratio": "the model splits new positions without the account ratio",
}


def _missing(warned: set[tuple[str, str]], pair: str, series: str, why: str) -> None:
    """Log once per pair and series that ``series`` is not attached, why, and the fallback."""
    if (pair, series) in warned:
        return
    warned.add((pair, series))
    logger.info("liqsignals: no %s for %s (%s); %s", series, pair, why, _FALLBACK[series])


def _listing(datadir: Any, pair: str, cache: Any) -> list[tuple[str, str, str]]:
    """The datadir's data files (with ``cache``: only those of ``pair``)."""
    from liqsignals.data.datadir import list_data

    return list_data(datadir) if cache is None else cache.pair_data(datadir, pair)


def _coarser_mark(datadir: Any, pair: str, timeframe: str, cache: Any = None) -> list[str]:
    """Mark timeframes stored for ``pair`` in ``datadir`` (none usable at ``timeframe``)."""
    if not datadir:
        return []
    try:
        return [
            tf for p, tf, kind in _listing(datadir, pair, cache) if p == pair and kind == "mark"
        ]
    except OSError:
        return []


def _datadir_open_interest(
    datadir: Any, pair: str, timeframe: str, cache: Any = None
) -> tuple[pd.DataFrame | None, str]:
    """The datadir's open interest of ``pair`` (freqtrade's file, kept current in a bot by
    :class:`liqsignals.live.series.SeriesFetcher`) at the timeframe
    :func:`liqsignals.data.datadir.pick_timeframe` chooses, or ``(None, timeframe)``."""
    if not datadir:
        return None, timeframe
    from liqsignals.data.datadir import load_open_interest, pick_timeframe

    try:
        tfs = [
            tf
            for p, tf, kind in _listing(datadir, pair, cache)
            if p == pair and kind == "open_interest"
        ]
        chosen = pick_timeframe(tfs, timeframe, "last")
        if chosen is None:
            return None, timeframe
        if cache is None:
            return load_open_interest(datadir, pair, chosen), chosen
        return cache.load_series(datadir, pair, chosen, "open_interest"), chosen
    except (OSError, ValueError) as exc:
        logger.warning("liqsignals: open interest of %s not read from %s: %s", pair, datadir, exc)
        return None, timeframe


def _datadir_series(
    dates: pd.Series, datadir: Any, pair: str, timeframe: str, kinds: list[str], cache: Any
) -> dict[str, np.ndarray]:
    """:func:`liqsignals.data.datadir.market_columns` of ``kinds`` on the candle ``dates``
    (nothing without a datadir)."""
    from liqsignals.data.datadir import market_columns

    if not datadir:
        return {}
    if isinstance(cache, _OneListing) and cache.lacks(kinds) and cache.in_order(dates):
        # no file of these kinds for the pair and dates market_columns takes as they are: it
        # would attach nothing (dates it would convert or refuse still go to it)
        return {}
    return market_columns(dates, datadir, pair, timeframe, kinds=kinds, cache=cache)


def _any_finite(values: np.ndarray | None) -> bool:
    return values is not None and bool(np.isfinite(np.asarray(values, dtype=np.float64)).any())


def market_inputs(
    dataframe: pd.DataFrame,
    dp: Any,
    pair: str,
    timeframe: str,
    warned: set[tuple[str, str]],
    *,
    datadir: Any = None,
    cache: Any = None,
) -> pd.DataFrame:
    """The engine's inputs for ``pair``: a copy of the candles plus every slower series found,
    aligned by :mod:`liqsignals.align`:

    * from freqtrade's DataProvider (backtest: the datadir files; dry-run / live: what the bot
      fetched for :meth:`~liqsignals.strategy.LiqStrategy.informative_pairs`): ``funding_rate``
      (1h) and mark candles (``timeframe``) as ``mark_high`` / ``mark_low``;
    * from ``datadir`` (a bot keeps them current with
      :class:`liqsignals.live.series.SeriesFetcher`): open interest (freqtrade's file; the
      DataProvider's frame when there is none), ``taker_buy_volume``, ``long_short_ratio``, and
      mark candles of a finer timeframe when the DataProvider has none at ``timeframe``.

    A series not found is logged once per pair and series (which one, why, the fallback); mark
    candles coarser than the candles are refused (logged with the reason). The set of inputs is
    logged once per pair and whenever it changes. ``cache`` (a
    :class:`liqsignals.data.datadir.ReadCache`) keeps the datadir's listing and files between
    calls (a running bot); the values are the same with or without it.
    """
    inputs = candle_inputs(dataframe)
    for name, values in market_arrays(
        dataframe, dp, pair, timeframe, warned, datadir=datadir, cache=cache
    ).items():
        if name not in CANDLE_COLUMNS:
            inputs[name] = values
    return inputs


class _OneListing:
    """A :class:`liqsignals.data.datadir.ReadCache` whose listing of one pair's files is read
    once, for the lookups of one :func:`market_arrays` call (each listing stats every folder)."""

    def __init__(self, cache: Any, datadir: Any, pair: str) -> None:
        self.cache, self.datadir, self.pair = cache, datadir, pair
        self.entries = cache.pair_data(datadir, pair)
        self.kinds = {kind for _, _, kind in self.entries}
        self.ordered: tuple[Any, bool] | None = None

    def lacks(self, kinds: list[str]) -> bool:
        """Whether the pair has no file of any of ``kinds``."""
        return self.kinds.isdisjoint(kinds)

    def in_order(self, dates: Any) -> bool:
        """:func:`liqsignals.data.datadir.dates_in_order` of ``dates``, checked once."""
        from liqsignals.data.datadir import dates_in_order

        if self.ordered is None or self.ordered[0] is not dates:
            self.ordered = (dates, dates_in_order(dates))
        return self.ordered[1]

    def pair_data(self, datadir: Any, pair: str) -> list[tuple[str, str, str]]:
        if datadir is self.datadir and pair == self.pair:
            return self.entries
        return self.cache.pair_data(datadir, pair)

    def load_series(self, datadir: Any, pair: str, timeframe: str, kind: str) -> pd.DataFrame:
        return self.cache.load_series(datadir, pair, timeframe, kind)


def market_arrays(
    dataframe: pd.DataFrame,
    dp: Any,
    pair: str,
    timeframe: str,
    warned: set[tuple[str, str]],
    *,
    datadir: Any = None,
    cache: Any = None,
) -> dict[str, Any]:
    """What :func:`market_inputs` returns, without copying the candles: the candle columns
    (the frame's own Series: read them, do not modify them), then every input found as an
    array, in the order :func:`market_inputs` adds them."""
    missing = [c for c in CANDLE_COLUMNS if c not in dataframe.columns]
    if missing:
        raise ValueError(f"candle frame has no column(s) {missing}")
    if cache is not None and datadir:
        cache = _OneListing(cache, datadir, pair)
    dates = dataframe["date"]
    cols: dict[str, Any] = {"date": dates}
    for c in CANDLE_COLUMNS[1:]:
        cols[c] = dataframe[c]
    oi, period = _datadir_open_interest(datadir, pair, timeframe, cache)
    if oi is None:  # not in the datadir: what freqtrade has (one bar late in a running bot)
        oi, period = informative_frame(dp, pair, timeframe, "open_interest", warned), timeframe
    cols.update(_open_interest_columns(dates, oi, timeframe, period))
    if "open_interest" not in cols and "open_interest_value" not in cols:
        _missing(warned, pair, "open_interest", "freqtrade's DataProvider has none")
    cols.update(_funding_columns(dates, informative_frame(dp, pair, "1h", "funding_rate", warned)))
    if "funding_rate" not in cols:
        _missing(warned, pair, "funding_rate", "freqtrade's DataProvider has none")
    mark = informative_frame(dp, pair, timeframe, "mark", warned)
    try:
        cols.update(_mark_columns(dates, mark, timeframe, None))
    except Refused as exc:  # a DataProvider frame at another timeframe than asked
        _missing(warned, pair, "mark", str(exc))
    extra = _datadir_series(
        dates, datadir, pair, timeframe, ["taker_volume", "long_short_ratio"], cache
    )
    for col in ("taker_buy_volume", "long_short_ratio"):
        if _any_finite(extra.get(col)):
            cols[col] = np.asarray(extra[col], dtype=np.float64)
        else:
            series = "taker_volume" if col == "taker_buy_volume" else col
            _missing(warned, pair, series, f"no {series} file in the datadir")
    if "mark_high" not in cols:
        finer = _datadir_series(dates, datadir, pair, timeframe, ["mark"], cache)
        if _any_finite(finer.get("mark_high")):
            cols["mark_high"] = np.asarray(finer["mark_high"], dtype=np.float64)
            cols["mark_low"] = np.asarray(finer["mark_low"], dtype=np.float64)
        else:
            stored = _coarser_mark(datadir, pair, timeframe, cache)
            why = (
                f"only {', '.join(sorted(stored))} mark candles, coarser than the {timeframe} "
                "candles: their high / low hold prices from after the candle's close, refused"
                if stored
                else f"no {timeframe} mark candles"
            )
            _missing(warned, pair, "mark", why)
    used = [c for c in INPUT_COLUMNS if c in cols]
    key = (pair, "inputs:" + ",".join(used))
    if key not in warned:
        warned.difference_update({k for k in warned if k[0] == pair and k[1].startswith("inputs:")})
        warned.add(key)
        logger.info(
            "liqsignals inputs for %s: %s", pair, ", ".join(used) if used else "candles only"
        )
    return cols


@functools.lru_cache(maxsize=4096)
def _events_file(datadir: str, pair: str) -> Any:
    """The pair's liquidation event file (a path; built once per datadir and pair)."""
    from liqsignals.data.liquidations import events_path

    return events_path(datadir, pair)


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
    from liqsignals.data.liquidations import load_coverage, recorded_bars
    from liqsignals.data.liquidations import load_liquidation_events as load_events

    if datadir is None or not _events_file(os.fspath(datadir), pair).exists() or not len(dates):
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
    datadir = config.get("datadir")
    if datadir is None or not _events_file(os.fspath(datadir), pair).exists():
        return dataframe  # no event file: realised_columns gives None (checked before the dates)
    try:
        cols = realised_columns(dataframe["date"], timeframe, datadir, pair)
    except (OSError, ValueError) as exc:
        logger.warning("liqsignals: realised liquidations of %s not read: %s", pair, exc)
        return dataframe
    if cols is None:
        return dataframe
    for name, values in cols.items():
        dataframe[name] = values
    return dataframe
