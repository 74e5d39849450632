"""The date helpers of liqsignals._time that the heatmaps and data modules share."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from liqsignals._time import to_utc_datetime, to_utc_ns, utc_dates, utc_index
from liqsignals.heatmap import liquidation_map
from liqsignals.sample import load_candles


def test_to_utc_ns_names_a_parameter() -> None:
    with pytest.raises(ValueError, match="parameter 'start' is not a date: 'soon'"):
        to_utc_ns("soon", "start", what="parameter")
    with pytest.raises(ValueError, match="column 'date' has NaT"):
        to_utc_ns(None)
    # 2024-01-01 00:00 UTC is 1_704_067_200 s
    assert to_utc_ns("2024-01-01 02:00+02:00", "at", what="parameter") == 1_704_067_200 * 10**9


def test_utc_index_and_dates() -> None:
    idx = utc_index(np.array([1_704_067_200 * 10**9, 1_704_070_800 * 10**9]))
    assert list(idx) == [
        pd.Timestamp("2024-01-01 00:00", tz="UTC"),
        pd.Timestamp("2024-01-01 01:00", tz="UTC"),
    ]
    s = to_utc_datetime(pd.Series([1_704_067_200_000]), unit="ms")
    assert s.iloc[0] == pd.Timestamp("2024-01-01", tz="UTC")
    naive = to_utc_datetime(pd.Series(pd.to_datetime(["2024-01-01 05:00"])))
    assert str(naive.dt.tz) == "UTC" and naive.iloc[0].hour == 5
    out = utc_dates(pd.Series(pd.to_datetime(["2024-01-01 05:00+01:00"])))
    assert out.dtype == np.dtype("datetime64[ns]")
    assert out[0] == np.datetime64("2024-01-01T04:00")


def test_map_rejects_a_bad_at_with_its_name() -> None:
    df = load_candles("BTC/USDT:USDT", "1h").iloc[:400]
    with pytest.raises(ValueError, match="parameter 'at' is not a date"):
        liquidation_map(df, window="1d", at="not a date")
