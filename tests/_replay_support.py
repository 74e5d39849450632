"""Shared pieces of the replay-exchange tests: a small datadir cut from the bundled sample."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from liqsignals import sample
from liqsignals.data.datadir import save_series

PAIRS = ("BTC/USDT:USDT", "ETH/USDT:USDT")
START = pd.Timestamp("2025-03-20", tz="UTC")
END = pd.Timestamp("2025-05-01", tz="UTC")


def make_datadir(root: Path, *, start: pd.Timestamp = START, end: pd.Timestamp = END) -> Path:
    """Copy ``[start, end)`` of the bundled files into ``root/binance/futures`` unchanged.

    ETH's funding file is rewritten in the newer layout (``funding_rate`` column); BTC's keeps
    the legacy layout (rate in ``open``), so both are served. Returns ``root/binance``.
    """
    src = sample.datadir() / "futures"
    dst = root / "binance" / "futures"
    dst.mkdir(parents=True, exist_ok=True)
    for path in sorted(src.glob("*.feather")):
        df = pd.read_feather(path)
        df = df[(df["date"] >= start) & (df["date"] < end)].reset_index(drop=True)
        if path.name.startswith("ETH") and path.name.endswith("funding_rate.feather"):
            save_series(
                df[["date", "open"]].rename(columns={"open": "funding_rate"}),
                root / "binance",
                "ETH/USDT:USDT",
                "1h",
                "funding_rate",
            )
            continue
        df.to_feather(dst / path.name, compression="lz4")
    return root / "binance"


def add_metric_files(datadir: Path) -> None:
    """Write BTC open interest (5m), long/short ratio (1h) and taker volume (5m) test series.

    The values are made up for the endpoint tests (no such data is bundled); they are smooth
    functions of time so a test can recompute any row.
    """
    candles = pd.read_feather(datadir / "futures" / "BTC_USDT_USDT-5m-futures.feather")
    dates = candles["date"]
    x = np.arange(len(dates), dtype="float64")
    oi = 80_000.0 + 1000.0 * np.sin(x / 50.0)
    save_series(
        pd.DataFrame(
            {
                "date": dates,
                "open_interest_amount": oi,
                "open_interest_value": oi * candles["close"].to_numpy(),
            }
        ),
        datadir,
        "BTC/USDT:USDT",
        "5m",
        "open_interest",
    )
    save_series(
        pd.DataFrame(
            {
                "date": dates,
                "taker_buy_volume": candles["volume"].to_numpy() * 0.55,
                "taker_sell_volume": candles["volume"].to_numpy() * 0.45,
            }
        ),
        datadir,
        "BTC/USDT:USDT",
        "5m",
        "taker_volume",
    )
    hourly = dates[dates.dt.minute == 0].reset_index(drop=True)
    h = np.arange(len(hourly), dtype="float64")
    long_acc = 0.5 + 0.1 * np.sin(h / 10.0)
    save_series(
        pd.DataFrame(
            {
                "date": hourly,
                "long_short_ratio": long_acc / (1 - long_acc),
                "long_account": long_acc,
                "short_account": 1 - long_acc,
            }
        ),
        datadir,
        "BTC/USDT:USDT",
        "1h",
        "long_short_ratio",
    )


def ms(ts: str | pd.Timestamp) -> int:
    """Epoch milliseconds of a timestamp (naive means UTC)."""
    t = pd.Timestamp(ts)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return int(t.value // 1_000_000)


def http_get(url: str, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """GET ``url``: ``(status, headers, body)`` for success and HTTP errors alike."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers.items()), err.read()


def json_get(url: str) -> tuple[int, Any]:
    status, _, body = http_get(url)
    return status, json.loads(body)
