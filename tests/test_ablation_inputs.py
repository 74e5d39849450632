"""The pure helpers of scripts/ablation_inputs.py on hand-made data (no research files)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

_PATH = Path(__file__).resolve().parents[1] / "scripts" / "ablation_inputs.py"


@pytest.fixture(scope="module")
def ablation():
    spec = importlib.util.spec_from_file_location("ablation_inputs", _PATH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["ablation_inputs"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_lift_difference_estimate_and_identical_runs(ablation):
    hit_a = np.array([1, 0, 1, 1, 0, 0, 1, 0], float)
    base_a = np.array([0.5, 0.5, 1, 0.5, 0, 0.5, 1, 0], float)  # sum 4 -> lift 4/4 = 1.0
    hit_b = np.array([1, 0, 0, 0, 0, 0, 1, 0], float)
    base_b = np.array([1, 0.5, 0.5, 0, 0, 0.5, 1, 0.5], float)  # sum 4 -> lift 2/4 = 0.5
    iv, p_ge = ablation.lift_difference(hit_a, base_a, hit_b, base_b, block=2, resamples=500)
    assert iv.estimate == pytest.approx(0.5)
    assert iv.low <= 0.5 <= iv.high
    # the same run on both sides: every resample differs by exactly 0
    same, p_ge0 = ablation.lift_difference(hit_a, base_a, hit_a, base_a, block=2, resamples=200)
    assert same.estimate == 0.0 and same.low == 0.0 and same.high == 0.0
    assert same.p_value == 1.0 and p_ge0 == 1.0
    assert ablation.two_sided(same.p_value, p_ge0) == 1.0
    with pytest.raises(ValueError, match="baseline sums to zero"):
        ablation.lift_difference(hit_a, np.zeros(8), hit_b, base_b, block=2)
    with pytest.raises(ValueError, match="one length"):
        ablation.lift_difference(hit_a[:4], base_a, hit_b, base_b, block=2)


def test_two_sided(ablation):
    assert ablation.two_sided(0.01, 0.995) == pytest.approx(0.02)
    assert ablation.two_sided(0.7, 0.4) == pytest.approx(0.8)
    assert ablation.two_sided(0.9, 0.6) == 1.0


def test_coins_level_uses_a_bar_from_its_close_and_the_close_price_then(ablation):
    dates = pd.date_range("2024-01-01", periods=12, freq="1h", tz="UTC")
    close = np.arange(1.0, 13.0) * 10.0  # candle i closes at 10 * (i + 1)
    candles = pd.DataFrame({"date": dates, "close": close})
    series = pd.DataFrame(
        {"date": pd.to_datetime(["2024-01-01 00:00", "2024-01-01 04:00"], utc=True),
         "oi_usd_close": [400.0, 1600.0]}
    )  # fmt: skip
    got = ablation.coins_level(candles, series, "oi_usd_close", usd=True)
    # bar [00:00, 04:00) is known at 04:00: first used by the candle opening 03:00, divided by
    # that candle's close (40); bar [04:00, 08:00) from the candle opening 07:00 (close 80);
    # the last 4h bar is not given, so candles from 11:00 are NaN (never carried on).
    want = [np.nan] * 3 + [10.0] * 4 + [20.0] * 4 + [np.nan]
    np.testing.assert_allclose(got, want)
    raw = ablation.coins_level(candles, series, "oi_usd_close", usd=False)
    np.testing.assert_allclose(raw, [np.nan] * 3 + [400.0] * 4 + [1600.0] * 4 + [np.nan])
