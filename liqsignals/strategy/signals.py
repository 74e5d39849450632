"""Entry signals, the ``liq_*`` block joined to freqtrade's frame, and the plot configuration.

A live bot runs these on every candle, so they avoid what costs pandas milliseconds there: one
Series object per operator, multi-column ``.loc`` writes, column-by-column inserts, Arrow-backed
``str`` column labels.
"""

from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from liqsignals.columns import FEATURE_COLUMNS

__all__ = ["column_arrays", "join_columns", "liq_plot_config", "set_signals"]


def column_arrays(dataframe: pd.DataFrame, *names: str) -> SimpleNamespace:
    """The named columns as float numpy arrays, as attributes: ``col = column_arrays(df, "rsi",
    "volume")`` then ``col.rsi <= 30``. numpy expressions on these cost microseconds where the
    same Series expressions cost tens of microseconds per operator, paid by a live bot on every
    candle. A missing column raises ``KeyError`` naming it."""
    missing = [n for n in names if n not in dataframe.columns]
    if missing:
        raise KeyError(f"dataframe has no column(s) {missing}")
    return SimpleNamespace(**{n: dataframe[n].to_numpy(dtype=np.float64) for n in names})


def set_signals(
    dataframe: pd.DataFrame,
    long_cond: pd.Series | np.ndarray,
    short_cond: pd.Series | np.ndarray,
    long_tag: str,
    short_tag: str,
) -> None:
    """Write freqtrade's ``enter_long`` / ``enter_short`` / ``enter_tag`` columns from boolean
    conditions (Series or arrays; NaN counts as false), column by column (with pandas 3 a
    multi-column ``.loc[mask, [a, b]] = (1, tag)`` costs milliseconds per call, paid on every
    candle by a live bot). A candle meeting both conditions is tagged long, as freqtrade would
    enter it long."""
    longs = _bool_array(long_cond, len(dataframe))
    shorts = _bool_array(short_cond, len(dataframe))
    dataframe["enter_long"] = longs.astype(np.int64)
    dataframe["enter_short"] = shorts.astype(np.int64)
    tag = np.full(len(dataframe), None, dtype=object)
    tag[shorts] = short_tag
    tag[longs] = long_tag
    dataframe["enter_tag"] = pd.Series(tag, index=dataframe.index, dtype=object)


def _bool_array(cond: pd.Series | np.ndarray, length: int) -> np.ndarray:
    if isinstance(cond, pd.Series):
        out = cond.fillna(False).to_numpy(dtype=bool)
    else:
        arr = np.asarray(cond)
        out = arr.astype(bool) if arr.dtype == bool else np.nan_to_num(arr, nan=0.0) != 0
    if out.shape != (length,):
        raise ValueError(f"a signal condition has shape {out.shape}, the frame {length} rows")
    return out


@functools.cache
def _feature_index() -> pd.Index:
    return pd.Index(list(FEATURE_COLUMNS), dtype=object)


@functools.cache
def _tag_index(tags: tuple[str, ...]) -> pd.Index:
    return pd.Index(list(tags), dtype=object)


def _column_index(names: list[str]) -> pd.Index:
    """The column labels of the ``liq_*`` block, built once (pandas takes ~0.1 ms to build an
    index of ~40 strings, paid on every candle otherwise). Plain ``object`` labels: with them
    the joined frame's column lookups cost about half of what pandas' default ``str`` labels
    cost, on every column a strategy and freqtrade read or write afterwards."""
    if tuple(names) == FEATURE_COLUMNS:
        return _feature_index()
    return pd.Index(names, dtype=object)


def join_columns(
    dataframe: pd.DataFrame,
    names: list[str],
    values: np.ndarray,
    funding: pd.Series | None = None,
) -> pd.DataFrame:
    """``dataframe`` with the columns ``names`` set to ``values`` (rows x names, row for row),
    replacing columns of the same names, plus empty ``enter_tag`` / ``exit_tag`` columns when
    absent and ``funding_rate`` when ``funding`` is given (its values, row for row). Column
    labels come out as plain ``object``. A ``values`` block of the wrong shape raises
    ``ValueError``."""
    if values.shape != (len(dataframe), len(names)):
        raise ValueError(
            f"values have shape {values.shape}, the frame {len(dataframe)} rows and "
            f"{len(names)} column names"
        )
    # one block, one concat: inserting ~40 columns one by one costs pandas a copy of its
    # column index each time, more than the engine update itself in a live bot
    block = pd.DataFrame(values, index=dataframe.index, columns=_column_index(names), copy=False)
    existing = set(dataframe.columns)
    present = [c for c in names if c in existing]
    parts = [dataframe.drop(columns=present) if present else dataframe, block]
    # freqtrade writes "" to both tag columns before populate_entry_trend /
    # populate_exit_trend; into an existing object column that costs a third of what
    # creating the column costs, on every candle of a live bot
    tags = [c for c in ("enter_tag", "exit_tag") if c not in existing]
    if tags:
        empty = np.full((len(dataframe), len(tags)), None, dtype=object)
        parts.append(pd.DataFrame(empty, index=dataframe.index, columns=_tag_index(tuple(tags))))
    out = pd.concat(parts, axis=1)
    if out.columns.dtype != object:
        # pandas 3 labels columns with its Arrow-backed "str" dtype; every later lookup or
        # insert by name (the strategy's and freqtrade's) costs about twice as much as with
        # plain object labels
        out.columns = out.columns.astype(object)
    if funding is not None:
        out["funding_rate"] = funding.to_numpy()
    return out


def liq_plot_config(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """freqtrade ``plot_config`` showing magnet lines, the nearest cluster zones as bands and the
    estimated liquidations as bars (``freqtrade plot-dataframe``). ``extra`` adds entries to
    ``main_plot`` and ``subplots``."""
    config: dict[str, Any] = {
        "main_plot": {
            "liq_magnet_price": {"color": "gold", "type": "scatter"},
            "liq_long_cluster_high": {
                "color": "rgba(0,200,83,0.6)",
                "fill_to": "liq_long_cluster_low",
                "fill_label": "long liquidation zone",
                "fill_color": "rgba(0,200,83,0.15)",
            },
            "liq_long_cluster_low": {"color": "rgba(0,200,83,0.6)"},
            "liq_short_cluster_low": {
                "color": "rgba(255,82,82,0.6)",
                "fill_to": "liq_short_cluster_high",
                "fill_label": "short liquidation zone",
                "fill_color": "rgba(255,82,82,0.15)",
            },
            "liq_short_cluster_high": {"color": "rgba(255,82,82,0.6)"},
        },
        "subplots": {
            "Estimated liquidations": {
                "liq_long_liquidated": {"type": "bar", "color": "green"},
                "liq_short_liquidated": {"type": "bar", "color": "red"},
            },
            "Imbalance": {"liq_imbalance": {"color": "blue"}},
        },
    }
    if extra:
        for key in ("main_plot", "subplots"):
            config[key].update(extra.get(key, {}))
    return config
