"""The multi-exchange stream (MultiFeatureStream) equals the batch path bit for bit."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from synthetic import random_candles

from liqsignals import LiquidationModel
from liqsignals.multi import MultiFeatureStream, liquidation_features_multi

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _shared_or_fail() -> Path:
    if not (SHARED / "binance").is_dir() or not (SHARED / "bybit").is_dir():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"the shared market data ({SHARED}) is required under CI")
        pytest.skip("needs ../shared/data beside the repo")
    return SHARED


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.columns) == list(b.columns)
    x, y = a.to_numpy(dtype=np.float64), b.to_numpy(dtype=np.float64)
    assert x.shape == y.shape
    both_nan = np.isnan(x) & np.isnan(y)
    bad = ~((x == y) | both_nan)
    assert not bad.any(), f"{bad.sum()} values differ, first in {a.columns[bad.any(axis=0)][:5]}"


def _stream(stream: MultiFeatureStream, frames: dict, ref: str, sizes: list[int]) -> pd.DataFrame:
    """Feed the reference's candles in blocks of ``sizes`` (the rest one by one); each other
    venue gets a slice around the block (extra rows, as a poller's datadir would have)."""
    r = frames[ref]
    parts, i = [], 0
    while i < len(r):
        n = sizes.pop(0) if sizes else 1
        block = r.iloc[i : i + n]
        lo, hi = block["date"].iloc[0], block["date"].iloc[-1]
        others = {
            k: v[(v["date"] >= lo - pd.Timedelta("3h")) & (v["date"] <= hi + pd.Timedelta("2h"))]
            for k, v in frames.items()
            if k != ref
        }
        parts.append(stream.update_many({ref: block, **others}))
        i += n
    return pd.concat(parts)


def test_real_binance_and_bybit_stream_equals_batch_bit_for_bit():
    """Binance + Bybit BTC perpetual 1h candles around Bybit's first stored candle (2023-11-29):
    Bybit is absent for the first days (a venue with no candles), then present with three of its
    candles removed. Blocks of varying size, the last 40 candles one at a time."""
    from liqsignals.data.datadir import load_candles

    shared = _shared_or_fail()
    frames = {
        ex: load_candles(shared / ex, "BTC/USDT:USDT", "1h", timerange="20231120-20240210")
        for ex in ("binance", "bybit")
    }
    assert frames["bybit"]["date"].iloc[0] > frames["binance"]["date"].iloc[0]
    frames["bybit"] = frames["bybit"].drop(index=frames["bybit"].index[[50, 51, 700]])
    model = LiquidationModel(window="1w", symbol="BTC/USDT:USDT")
    bybit_model = model.replace(maintenance_margin_rate=0.006)
    batch = liquidation_features_multi(frames, model, models={"bybit": bybit_model})
    assert batch["liq_long_total"].notna().sum() > 1000  # the comparison covers a warm book
    stream = MultiFeatureStream(
        model, exchanges=["binance", "bybit"], models={"bybit": bybit_model}
    )
    n = len(frames["binance"])
    sizes = [300, 1, 7, 64, 65, 200, 3]
    sizes += [150] * ((n - 40 - sum(sizes)) // 150)
    sizes.append(n - 40 - sum(sizes))
    got = _stream(stream, frames, "binance", sizes)
    _same(got, batch[stream.columns])
    assert stream.last_date == frames["binance"]["date"].iloc[-1]
    # the stream's combined book really holds Bybit: Binance alone differs
    alone = liquidation_features_multi({"binance": frames["binance"]}, model)
    tot = "liq_long_total"
    assert not np.allclose(alone[tot].iloc[-1], batch[tot].iloc[-1])


def test_reference_other_than_the_first_and_single_candle_update():
    a = random_candles(5, 260, open_interest=True, taker=True)
    b = random_candles(6, 260, open_interest=True, taker=True)
    b["date"] = a["date"]
    b = b.drop(index=[10, 11, 200]).reset_index(drop=True)
    kw = {"window": "1d", "bin_bp": 20.0, "entry_samples": 3, "atr_period": 10}
    batch = liquidation_features_multi({"a": a, "b": b}, reference="b", **kw)
    stream = MultiFeatureStream(exchanges=["a", "b"], reference="b", **kw)
    assert stream.exchanges == ["b", "a"]
    first = stream.update_many({"a": a, "b": b.iloc[:150]})
    rows = [first]
    for i in range(150, len(b)):
        cand = b.iloc[i].to_dict()
        match = a[a["date"] == cand["date"]]
        other = match.iloc[0].to_dict() if len(match) else None
        rows.append(pd.DataFrame([stream.update({"b": cand, "a": other})], index=[i]))
    _same(pd.concat(rows), batch[stream.columns])


def test_errors_are_clear_and_spend_the_stream():
    a = random_candles(7, 60)
    stream = MultiFeatureStream(exchanges=["a", "b"], window="1d", bin_bp=20.0)
    with pytest.raises(ValueError, match="no candles given for exchange"):
        stream.update_many({"a": a})
    stream.update_many({"a": a.iloc[:30], "b": a.iloc[:0]})
    with pytest.raises(ValueError, match="not newer"):
        stream.update_many({"a": a.iloc[10:40], "b": a.iloc[:0]})
    with pytest.raises(RuntimeError, match="stopped at an invalid candle"):
        stream.update_many({"a": a.iloc[40:], "b": a.iloc[:0]})
    with pytest.raises(ValueError, match="reference exchange"):
        MultiFeatureStream(exchanges=["a"], reference="z")
    with pytest.raises(ValueError, match="distinct"):
        MultiFeatureStream(exchanges=["a", "a"])
