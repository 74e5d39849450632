"""Import Binance public data dumps (data.binance.vision, USDT-M futures) into a datadir.

Three datasets are understood, as ``.zip`` (one CSV inside, as published) or plain ``.csv``:

* ``klines`` (``BTCUSDT-1h-2024-01.zip``): ``open_time, open, high, low, close, volume,
  close_time, quote_volume, count, taker_buy_volume, taker_buy_quote_volume, ignore``; older files
  have no header, newer ones do, and some give times in microseconds. Candles go to
  ``<pair>-<tf>-futures.feather``; ``taker_buy_volume`` and ``volume - taker_buy_volume`` go to the
  taker volume series.
* ``metrics`` (``BTCUSDT-metrics-2024-01-01.zip``): ``create_time, symbol, sum_open_interest,
  sum_open_interest_value, count_toptrader_long_short_ratio, sum_toptrader_long_short_ratio,
  count_long_short_ratio, sum_taker_long_short_vol_ratio`` every 5 minutes. Open interest (coins
  and USDT) goes to the 5m open interest file, ``count_long_short_ratio`` (all accounts) to the 5m
  long/short ratio series with ``long_account = r / (1 + r)`` and ``short_account = 1 / (1 + r)``.
  The taker ratio carries no volumes and is not imported.
* ``liquidationSnapshot`` (``BTCUSDT-liquidationSnapshot-2024-01-01.zip``): ``time, side,
  order_type, time_in_force, original_quantity, price, average_price, order_status,
  last_fill_quantity, accumulated_fill_quantity``, one row per forced order (``SELL`` = long
  liquidated). Rows repeated verbatim are stored once. Goes to the pair's liquidation events.

Rows already stored for the same dates are replaced by the imported ones.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from liqsignals._time import to_utc_datetime
from liqsignals.data.datadir import OHLCV_COLUMNS, append_frame, data_path
from liqsignals.data.liquidations import LONG, SHORT, events_frame, save_liquidation_events

__all__ = [
    "KLINE_COLUMNS",
    "LIQUIDATION_SNAPSHOT_COLUMNS",
    "METRICS_COLUMNS",
    "import_binance_dump",
    "parse_dump_name",
    "read_binance_klines",
    "read_binance_liquidation_snapshot",
    "read_binance_metrics",
    "symbol_to_pair",
]

KLINE_COLUMNS: tuple[str, ...] = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "count",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "ignore",
)
METRICS_COLUMNS: tuple[str, ...] = (
    "create_time",
    "symbol",
    "sum_open_interest",
    "sum_open_interest_value",
    "count_toptrader_long_short_ratio",
    "sum_toptrader_long_short_ratio",
    "count_long_short_ratio",
    "sum_taker_long_short_vol_ratio",
)
LIQUIDATION_SNAPSHOT_COLUMNS: tuple[str, ...] = (
    "time",
    "side",
    "order_type",
    "time_in_force",
    "original_quantity",
    "price",
    "average_price",
    "order_status",
    "last_fill_quantity",
    "accumulated_fill_quantity",
)

_NAME_RE = re.compile(
    r"^(?P<symbol>[A-Z0-9]+)-(?P<what>\d+[smhdwM]|metrics|liquidationSnapshot)-"
    r"(?P<date>\d{4}-\d{2}(?:-\d{2})?)\.(?:zip|csv)$"
)
_QUOTES = ("USDT", "USDC", "BUSD", "FDUSD")


def parse_dump_name(name: str) -> tuple[str, str, str | None]:
    """``(symbol id, dataset, timeframe)`` of a dump file name.

    >>> parse_dump_name("BTCUSDT-1h-2024-01.zip")
    ('BTCUSDT', 'klines', '1h')
    >>> parse_dump_name("ETHUSDT-metrics-2024-01-01.zip")
    ('ETHUSDT', 'metrics', None)
    """
    match = _NAME_RE.match(Path(name).name)
    if not match:
        raise ValueError(
            f"{name!r} is not a Binance dump file name (e.g. BTCUSDT-1h-2024-01.zip, "
            "BTCUSDT-metrics-2024-01-01.zip, BTCUSDT-liquidationSnapshot-2024-01-01.zip)"
        )
    what = match["what"]
    if what in ("metrics", "liquidationSnapshot"):
        return match["symbol"], what, None
    return match["symbol"], "klines", what


def symbol_to_pair(symbol_id: str) -> str:
    """``"BTCUSDT"`` -> ``"BTC/USDT:USDT"`` (USDT-M / USDC-M perpetuals)."""
    for quote in _QUOTES:
        if symbol_id.endswith(quote) and len(symbol_id) > len(quote):
            base = symbol_id[: -len(quote)]
            return f"{base}/{quote}:{quote}"
    raise ValueError(f"cannot tell the quote currency of {symbol_id!r}; pass the pair explicitly")


def _read_text(path: str | os.PathLike[str]) -> str:
    path = Path(path)
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            members = [n for n in zf.namelist() if n.endswith(".csv")]
            if len(members) != 1:
                raise ValueError(f"{path}: expected one CSV inside, found {members}")
            return zf.read(members[0]).decode("utf-8")
    return path.read_text(encoding="utf-8")


def _read_table(path: str | os.PathLike[str], columns: Sequence[str]) -> pd.DataFrame:
    text = _read_text(path)
    first = text.split("\n", 1)[0].strip()
    has_header = bool(first) and not re.match(r"^-?\d", first)
    df = pd.read_csv(
        io.StringIO(text),
        header=0 if has_header else None,
        names=None if has_header else list(columns),
        dtype=str,
        keep_default_na=False,
    )
    if has_header:
        df.columns = [str(c).strip() for c in df.columns]
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing} (found {list(df.columns)})")
    elif df.shape[1] != len(columns):
        raise ValueError(f"{path}: {df.shape[1]} columns, expected {len(columns)}")
    return df


def _epoch(values: pd.Series) -> pd.Series:
    ints = pd.to_numeric(values, errors="raise").astype("int64")
    unit = "us" if len(ints) and ints.iloc[0] >= 10**15 else "ms"
    return to_utc_datetime(ints, unit=unit).dt.as_unit("ms")


def _float(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values.replace({"": np.nan}), errors="coerce").astype("float64")


def read_binance_klines(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Kline dump as ``date, open, high, low, close, volume, taker_buy_volume`` (base units)."""
    raw = _read_table(path, KLINE_COLUMNS)
    out = pd.DataFrame({"date": _epoch(raw["open_time"])})
    for col in ("open", "high", "low", "close", "volume", "taker_buy_volume"):
        out[col] = _float(raw[col])
    return out


def read_binance_metrics(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Metrics dump with ``date`` (``create_time`` as UTC) and the numeric columns as floats."""
    raw = _read_table(path, METRICS_COLUMNS)
    out = pd.DataFrame({"date": to_utc_datetime(raw["create_time"]).dt.as_unit("ms")})
    for col in METRICS_COLUMNS[2:]:
        out[col] = _float(raw[col])
    out["symbol"] = raw["symbol"].to_numpy()
    return out


def read_binance_liquidation_snapshot(
    path: str | os.PathLike[str], pair: str, *, exchange: str = "binance"
) -> pd.DataFrame:
    """``liquidationSnapshot`` dump as normalised liquidation events (see ``liquidations``)."""
    raw = _read_table(path, LIQUIDATION_SNAPSHOT_COLUMNS).drop_duplicates()
    average = _float(raw["average_price"])
    price = average.where(average > 0, _float(raw["price"]))
    amount = _float(raw["accumulated_fill_quantity"])
    side = raw["side"].str.upper().map({"SELL": LONG, "BUY": SHORT})
    if side.isna().any():
        raise ValueError(f"{path}: unknown side {raw.loc[side.isna(), 'side'].iloc[0]!r}")
    rows = pd.DataFrame(
        {
            "date": _epoch(raw["time"]),
            "exchange": exchange,
            "symbol": pair,
            "side": side,
            "price": price,
            "amount": amount,
            "value": price * amount,
        }
    ).dropna(subset=["price", "amount"])
    return events_frame(rows.to_dict("records"))


def import_binance_dump(
    paths: Iterable[str | os.PathLike[str]],
    datadir: str | os.PathLike[str],
    *,
    pair: str | None = None,
) -> list[tuple[Path, int]]:
    """Import dump files into ``datadir``; returns ``(file written, rows added)`` per output.

    The dataset, symbol and timeframe come from each file name; ``pair`` overrides the pair
    derived from the symbol.
    """
    written: dict[Path, int] = {}

    def note(result: tuple[Path, int]) -> None:
        written[result[0]] = written.get(result[0], 0) + result[1]

    for path in sorted(Path(p) for p in paths):
        symbol_id, dataset, timeframe = parse_dump_name(path.name)
        target = pair or symbol_to_pair(symbol_id)
        if dataset == "klines":
            assert timeframe is not None
            kl = read_binance_klines(path)
            note(
                append_frame(kl.loc[:, list(OHLCV_COLUMNS)], data_path(datadir, target, timeframe))
            )
            taker = pd.DataFrame(
                {
                    "date": kl["date"],
                    "taker_buy_volume": kl["taker_buy_volume"],
                    "taker_sell_volume": kl["volume"] - kl["taker_buy_volume"],
                }
            )
            note(append_frame(taker, data_path(datadir, target, timeframe, "taker_volume")))
        elif dataset == "metrics":
            m = read_binance_metrics(path)
            oi = pd.DataFrame(
                {
                    "date": m["date"],
                    "open_interest_amount": m["sum_open_interest"],
                    "open_interest_value": m["sum_open_interest_value"],
                }
            )
            note(append_frame(oi, data_path(datadir, target, "5m", "open_interest")))
            ratio = m["count_long_short_ratio"]
            ls = pd.DataFrame(
                {
                    "date": m["date"],
                    "long_short_ratio": ratio,
                    "long_account": ratio / (1 + ratio),
                    "short_account": 1 / (1 + ratio),
                }
            ).dropna(subset=["long_short_ratio"])
            note(append_frame(ls, data_path(datadir, target, "5m", "long_short_ratio")))
        else:
            note(
                save_liquidation_events(
                    read_binance_liquidation_snapshot(path, target), datadir, target
                )
            )
    return list(written.items())
