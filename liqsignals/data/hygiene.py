"""Input hygiene for candle frames: fillers, gaps, duplicates, ordering and impossible values.

Treatments, all explicit:

* **unsorted rows** are sorted by date (stable); nothing is lost.
* **exact duplicates** (same date, same values) are dropped.
* **conflicting duplicates** (same date, different values) raise ``ValueError``: which row is
  right cannot be known.
* **zero-volume filler candles** (volume 0 and open = high = low = close: freqtrade's gap
  fillers and exchange outages) are kept by default, as freqtrade hands them to strategies;
  ``filler_mask`` finds them so callers can treat them as "no trading"; ``fillers="drop"``
  removes them.
* **gaps** (missing bars on the timeframe's grid) are reported by ``find_gaps`` and left alone
  unless ``fill_gaps=True``, which inserts freqtrade-style fillers (previous close, volume 0).
* **impossible values** raise ``ValueError`` naming the column and the first offending date:
  missing or non-finite prices, prices <= 0, negative volume, high below open/close or low above
  open/close, and (with a timeframe) dates off the timeframe's grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from liqsignals._time import to_utc_datetime
from liqsignals.data.datadir import OHLCV_COLUMNS, timeframe_to_timedelta

__all__ = ["CandleReport", "check_candles", "clean_candles", "filler_mask", "find_gaps"]

_PRICES = ("open", "high", "low", "close")


def filler_mask(df: pd.DataFrame) -> pd.Series:
    """True for zero-volume filler candles: ``volume == 0`` and ``open == high == low == close``."""
    return (
        (df["volume"] == 0)
        & (df["open"] == df["high"])
        & (df["high"] == df["low"])
        & (df["low"] == df["close"])
    )


def find_gaps(df: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    """Missing bars between consecutive dates of a sorted frame.

    Returns
    -------
    DataFrame
        One row per gap: ``start`` (first missing bar's date, UTC), ``stop`` (last missing bar's
        date) and ``missing`` (number of bars).
    """
    tf = timeframe_to_timedelta(timeframe)
    dates = to_utc_datetime(df["date"]).reset_index(drop=True)
    step = dates.diff()
    after = step > tf
    before = after.shift(-1, fill_value=False)
    return pd.DataFrame(
        {
            "start": (dates[before] + tf).reset_index(drop=True),
            "stop": (dates[after] - tf).reset_index(drop=True),
            "missing": (step[after] // tf - 1).astype("int64").reset_index(drop=True),
        }
    )


@dataclass(frozen=True)
class CandleReport:
    """What ``check_candles`` found. ``problems`` lists what ``clean_candles`` would refuse."""

    rows: int
    unsorted: bool
    exact_duplicates: int
    conflicting_duplicates: int
    fillers: int
    gaps: pd.DataFrame
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the frame is sorted, unique, gap-free and has no problems (fillers allowed)."""
        return (
            not self.unsorted
            and self.exact_duplicates == 0
            and self.conflicting_duplicates == 0
            and self.gaps.empty
            and not self.problems
        )


def _first_date(df: pd.DataFrame, mask: pd.Series) -> str:
    return str(df.loc[mask.to_numpy(), "date"].iloc[0])


def _problems(df: pd.DataFrame, timeframe: str | None) -> list[str]:
    out: list[str] = []
    if df["date"].isna().any():
        out.append(f"'date' is missing at row {int(np.flatnonzero(df['date'].isna())[0])}")
        return out
    for col in _PRICES:
        bad = ~np.isfinite(df[col].to_numpy(dtype="float64"))
        if bad.any():
            out.append(f"'{col}' is missing or not finite at {_first_date(df, pd.Series(bad))}")
        elif (df[col] <= 0).any():
            out.append(f"'{col}' is <= 0 at {_first_date(df, df[col] <= 0)}")
    vol = df["volume"].to_numpy(dtype="float64")
    if (~np.isfinite(vol)).any():
        out.append(
            f"'volume' is missing or not finite at {_first_date(df, pd.Series(~np.isfinite(vol)))}"
        )
    elif (vol < 0).any():
        out.append(f"'volume' is negative at {_first_date(df, pd.Series(vol < 0))}")
    if not out:
        high_bad = df["high"] < df[["open", "close"]].max(axis=1)
        low_bad = df["low"] > df[["open", "close"]].min(axis=1)
        if high_bad.any():
            out.append(f"'high' is below open or close at {_first_date(df, high_bad)}")
        if low_bad.any():
            out.append(f"'low' is above open or close at {_first_date(df, low_bad)}")
    if timeframe is not None:
        tf = timeframe_to_timedelta(timeframe)
        if tf < pd.Timedelta(days=7):  # weekly bars start on Mondays, not on the epoch grid
            off = df["date"].dt.floor(tf) != df["date"]
            if off.any():
                out.append(f"'date' is not on the {timeframe} grid at {_first_date(df, off)}")
    return out


def _prepare(df: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in OHLCV_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"candles lack column(s) {missing} (found {list(df.columns)})")
    out = df.copy()
    out["date"] = to_utc_datetime(out["date"])
    return out


def check_candles(df: pd.DataFrame, timeframe: str | None = None) -> CandleReport:
    """Inspect a candle frame without changing it (see the module docstring for the rules)."""
    df = _prepare(df)
    unsorted = not df["date"].is_monotonic_increasing
    ordered = df.sort_values("date", kind="stable")
    dup_dates = ordered["date"].duplicated(keep=False)
    exact = int(ordered.duplicated(list(OHLCV_COLUMNS)).sum())
    conflicting = int(
        ordered.loc[dup_dates].drop_duplicates(list(OHLCV_COLUMNS))["date"].duplicated().sum()
    )
    problems = _problems(ordered, timeframe)
    if conflicting:
        first = ordered.loc[dup_dates].drop_duplicates(list(OHLCV_COLUMNS))
        when = first.loc[first["date"].duplicated(), "date"].iloc[0]
        problems.insert(0, f"{conflicting} date(s) appear with different values, first at {when}")
    unique = ordered.drop_duplicates("date")
    gaps = (
        find_gaps(unique, timeframe) if timeframe is not None else find_gaps(unique.iloc[:0], "1m")
    )
    return CandleReport(
        rows=len(df),
        unsorted=unsorted,
        exact_duplicates=exact,
        conflicting_duplicates=conflicting,
        fillers=int(filler_mask(df).sum()),
        gaps=gaps,
        problems=problems,
    )


def clean_candles(
    df: pd.DataFrame,
    timeframe: str | None = None,
    *,
    fillers: Literal["keep", "drop"] = "keep",
    fill_gaps: bool = False,
) -> pd.DataFrame:
    """Apply the documented treatments and return a sorted, unique candle frame.

    Parameters
    ----------
    df : DataFrame
        ``date, open, high, low, close, volume``; extra columns are kept.
    timeframe : str, optional
        Enables the grid check and ``fill_gaps``.
    fillers : {"keep", "drop"}
        What to do with zero-volume filler candles.
    fill_gaps : bool
        Insert freqtrade-style filler candles (previous close, volume 0) for missing bars.

    Raises
    ------
    ValueError
        naming the problem (column and first date) when the frame cannot be fixed safely.
    """
    report = check_candles(df, timeframe)
    if report.problems:
        raise ValueError("bad candles: " + "; ".join(report.problems))
    if fillers not in ("keep", "drop"):
        raise ValueError(f"fillers must be 'keep' or 'drop', not {fillers!r}")
    out = _prepare(df).sort_values("date", kind="stable")
    out = out.drop_duplicates("date").reset_index(drop=True)
    if fillers == "drop":
        out = out.loc[~filler_mask(out)].reset_index(drop=True)
    if fill_gaps:
        if timeframe is None:
            raise ValueError("fill_gaps needs a timeframe")
        tf = timeframe_to_timedelta(timeframe)
        if len(out) and fillers == "keep":
            grid = pd.date_range(out["date"].iloc[0], out["date"].iloc[-1], freq=tf)
            out = out.set_index("date").reindex(grid)
            out.index.name = "date"
            close = out["close"].ffill()
            for col in _PRICES:
                out[col] = out[col].fillna(close)
            out["volume"] = out["volume"].fillna(0.0)
            out = out.reset_index()
        elif fillers == "drop":
            raise ValueError("fill_gaps=True with fillers='drop' would undo itself")
    out["date"] = out["date"].dt.as_unit("ms")
    return out
