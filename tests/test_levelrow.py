"""``LiquidationEngine.update`` returns a :class:`~liqsignals.levelrow.LevelRow`: a read-only
mapping of the batch row, independent of later updates, usable wherever a ``dict`` of the row
was (lookup, ``in``, iteration in column order, ``==`` with a dict, ``dict()``, JSON through
``to_dict()``, pickle)."""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pandas as pd
import pytest
from synthetic import random_candles

from liqsignals import LiquidationEngine, liquidation_levels
from liqsignals.columns import LEVEL_COLUMNS
from liqsignals.levelrow import LevelRow

SMALL = {"window": "1d", "bin_bp": 20.0, "entry_samples": 3}


@pytest.fixture(scope="module")
def rows() -> tuple[pd.DataFrame, list[LevelRow]]:
    df = random_candles(11, 400)
    eng = LiquidationEngine(**SMALL)
    eng.update_many(df.iloc[:300])
    out = [eng.update(r) for r in df.iloc[300:].to_dict("records")]
    return liquidation_levels(df, **SMALL).iloc[300:], out


def test_rows_equal_the_batch_rows_bit_for_bit(rows) -> None:
    batch, got = rows
    assert all(isinstance(r, LevelRow) for r in got)
    assert all(list(r) == list(LEVEL_COLUMNS) for r in got)
    frame = pd.DataFrame([r.to_dict() for r in got], index=batch.index)
    np.testing.assert_array_equal(frame.to_numpy(), batch.to_numpy())
    # the same through dict() and through pandas' own conversion of mappings
    np.testing.assert_array_equal(pd.DataFrame([dict(r) for r in got]).to_numpy(), frame.to_numpy())
    np.testing.assert_array_equal(pd.DataFrame(got).to_numpy(), frame.to_numpy())
    last = got[-1]
    for name in LEVEL_COLUMNS:
        value = last[name]
        assert type(value) is float
        want = float(batch[name].iloc[-1])
        assert (math.isnan(value) and math.isnan(want)) or value == want, name


def test_a_row_does_not_change_with_later_updates() -> None:
    df = random_candles(3, 300)
    eng = LiquidationEngine(**SMALL)
    eng.update_many(df.iloc[:250])
    recs = df.iloc[250:].to_dict("records")
    first = eng.update(recs[0])
    kept = first.to_array()
    later = [eng.update(r) for r in recs[1:]]
    np.testing.assert_array_equal(first.to_array(), kept)
    # the engine's buffer did move on (the check above could have failed)
    assert not np.array_equal(later[-1].to_array(), kept, equal_nan=True)


def test_mapping_behaviour() -> None:
    names = ("a", "b", "c")
    row = LevelRow.from_values(names, [1.5, float("nan"), -2.0])
    assert len(row) == 3 and list(row) == ["a", "b", "c"] and list(row.keys()) == ["a", "b", "c"]
    assert row["a"] == 1.5 and row.get("c") == -2.0 and row.get("z", 7.0) == 7.0
    assert "b" in row and "z" not in row
    with pytest.raises(KeyError):
        row["z"]
    with pytest.raises(TypeError):
        row["a"] = 3.0  # type: ignore[index]
    assert math.isnan(row["b"])
    same = LevelRow.from_values(names, [1.5, 0.0, -2.0])
    assert same == {"a": 1.5, "b": 0.0, "c": -2.0}
    assert same != {"a": 1.5, "b": 0.0, "c": -2.5}
    assert same != {"a": 1.5, "b": 0.0}
    assert same == LevelRow.from_values(names, [1.5, 0.0, -2.0])
    assert same != LevelRow.from_values(names, [1.5, 0.0, 2.0])
    assert list(same.items()) == [("a", 1.5), ("b", 0.0), ("c", -2.0)]
    assert json.loads(json.dumps(same.to_dict())) == {"a": 1.5, "b": 0.0, "c": -2.0}
    again = pickle.loads(pickle.dumps(same))
    assert isinstance(again, LevelRow) and again == same
    assert "LevelRow({'a': 1.5" in repr(same)
    with pytest.raises(TypeError):
        hash(same)


def test_values_past_the_names_are_ignored() -> None:
    """The engine hands over its whole kernel row; only the named columns are the row's."""
    row = LevelRow(("a", "b"), {"a": 0, "b": 1}, np.array([1.0, 2.0, 99.0]))
    assert len(row) == 2 and row.to_dict() == {"a": 1.0, "b": 2.0}
    assert row.to_array().tolist() == [1.0, 2.0]
    assert row == {"a": 1.0, "b": 2.0}
    assert row == LevelRow(("a", "b"), {"a": 0, "b": 1}, np.array([1.0, 2.0, -5.0]))


@pytest.mark.parametrize("values", [[1.0], [1.0, 2.0, 3.0], [[1.0, 2.0]]])
def test_from_values_checks_the_shape(values) -> None:
    with pytest.raises(ValueError, match="one row of 2 values"):
        LevelRow.from_values(("a", "b"), values)


def test_feature_stream_rows_are_level_rows_equal_to_the_batch() -> None:
    from liqsignals.columns import FEATURE_COLUMNS
    from liqsignals.features import FeatureStream, liquidation_features

    df = random_candles(5, 300)
    stream = FeatureStream(**SMALL)
    stream.update_many(df.iloc[:240])
    got = [stream.update(r) for r in df.iloc[240:].to_dict("records")]
    assert all(isinstance(r, LevelRow) and list(r) == list(FEATURE_COLUMNS) for r in got)
    want = liquidation_features(df, **SMALL).iloc[240:][list(FEATURE_COLUMNS)]
    np.testing.assert_array_equal(np.array([r.to_array() for r in got]), want.to_numpy())
    # each row is its own copy (the stream's buffer is reused by the next candle)
    assert not np.array_equal(got[0].to_array(), got[-1].to_array(), equal_nan=True)


def test_rows_with_nan_equal_themselves_their_copies_and_a_dict_of_them() -> None:
    import copy

    nan = float("nan")
    row = LevelRow.from_values(("a", "b"), [nan, 2.0])
    assert row == row
    assert row == copy.deepcopy(row) and row == copy.copy(row)
    assert row == pickle.loads(pickle.dumps(row))
    assert row == {"a": nan, "b": 2.0} and row == {"b": 2.0, "a": float("nan")}
    assert row != {"a": 1.0, "b": 2.0} and row != {"a": nan, "c": 2.0}
    assert row != LevelRow.from_values(("a", "b"), [0.0, 2.0])
    assert row != LevelRow.from_values(("b", "a"), [2.0, nan])  # the column order is the row's
    # the engine's own warm-up rows (all NaN) too
    eng = LiquidationEngine(**SMALL)
    first = eng.update(random_candles(1, 2).iloc[0].to_dict())
    assert math.isnan(first["liq_long_band"]) and first == pickle.loads(pickle.dumps(first))
