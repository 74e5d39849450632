"""The column table's ``nan_when`` vocabulary."""

from __future__ import annotations

import pytest

from liqsignals.columns import COLUMNS, NAN_REASONS, Column, describe, nan_reasons


def test_every_column_has_nan_when_from_the_vocabulary():
    for col in COLUMNS.values():
        reasons = col.nan_when.split("|")
        assert reasons and set(reasons) <= set(NAN_REASONS), col.name
        assert ("warmup" in reasons) != ("warmup_prev" in reasons), col.name


def test_nan_when_of_known_columns():
    assert COLUMNS["liq_long_total"].nan_when == "warmup"
    assert COLUMNS["liq_short_cluster_size"].nan_when == "warmup|no_cluster"
    assert COLUMNS["liq_magnet_price"].nan_when == "warmup|no_magnet"
    assert COLUMNS["liq_sweep_long_low"].nan_when == "warmup_prev|no_sweep"
    assert COLUMNS["liq_sweep_short"].nan_when == "warmup_prev"


def test_describe_shows_nan_when_and_prefixed_names_resolve():
    table = describe()
    assert table.loc["liq_gap_above_pct", "nan_when"] == "warmup|no_gap"
    assert nan_reasons("liq_fast_long_cluster_dist_atr") == {
        "warmup", "no_cluster", "short_history", "zero_atr"
    }  # fmt: skip
    assert nan_reasons("liq_fast_atr") == {"warmup", "short_history"}


def test_unknown_reason_is_rejected():
    with pytest.raises(ValueError, match="unknown nan_when"):
        Column("liq_x", "-", "x", "levels", "warmup|sometimes")
