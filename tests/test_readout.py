"""ReadoutParams: one validated, JSON-serialisable object for the read-out."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import liqsignals
from liqsignals import sample
from liqsignals.features import FeatureStream
from liqsignals.model import LiquidationModel
from liqsignals.readout import BOOK_FIELDS, LOOKBACK_FIELDS, ReadoutParams, split_readout


def test_defaults_are_the_models_defaults():
    model_defaults = {f.name: f.default for f in dataclasses.fields(LiquidationModel)}
    r = ReadoutParams()
    for name in BOOK_FIELDS:
        assert getattr(r, name) == model_defaults[name], name
    assert r.lookbacks() == {"atr_period": 14, "intensity_lookback": 500, "drift_lookback": 12}


def test_json_round_trip(tmp_path):
    r = ReadoutParams(band_pct=3.0, cluster_min_share=0.1, atr_period=21, drift_lookback=4)
    path = tmp_path / "r.json"
    path.write_text(json.dumps(r.to_dict()))
    assert ReadoutParams.from_json(path) == r
    with pytest.raises(ValueError, match="unknown read-out parameter"):
        ReadoutParams.from_dict({"band_pct": 3.0, "window": "1w"})


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"atr_period": 0}, "atr_period must be a positive int"),
        ({"intensity_lookback": 2.5}, "intensity_lookback must be a positive int"),
        ({"drift_lookback": True}, "drift_lookback must be a positive int"),
        ({"band_pct": -1.0}, "band_pct"),
        ({"cluster_min_share": 2.0}, "cluster_min_share"),
    ],
)
def test_validation(changes, match):
    with pytest.raises(ValueError, match=match):
        ReadoutParams(**changes)


def test_numpy_integers_are_accepted_as_ints():
    r = ReadoutParams(atr_period=np.int64(7))
    assert r.atr_period == 7 and type(r.atr_period) is int
    assert r.context == 14  # max(7 + 1, 12 + 1) + 1


def test_apply_and_from_model():
    m = LiquidationModel(window="1d")
    r = ReadoutParams(band_pct=2.5, magnet_distance_power=2.0)
    m2 = r.apply(m)
    assert (m2.band_pct, m2.magnet_distance_power, m2.window) == (2.5, 2.0, m.window)
    assert ReadoutParams.from_model(m2, atr_period=5) == r.replace(atr_period=5)
    assert ReadoutParams().apply(m) is m


def test_split_readout_lookbacks_override():
    m = LiquidationModel(band_pct=4.0)
    model, r = split_readout(m, None, {"atr_period": 30})
    assert model is m and r.band_pct == 4.0 and r.atr_period == 30
    with pytest.raises(ValueError, match="unknown lookback"):
        split_readout(m, None, {"atr": 3})


def test_features_take_a_readout_like_keywords():
    df = sample.load_candles("BTC/USDT:USDT", "1h").iloc[:1500]
    r = ReadoutParams(band_pct=3.0, atr_period=21, drift_lookback=6)
    a = liqsignals.liquidation_features(df, window="1d", readout=r)
    b = liqsignals.liquidation_features(
        df, window="1d", band_pct=3.0, atr_period=21, drift_lookback=6
    )
    assert a.equals(b)
    c = liqsignals.liquidation_features(df, window="1d")
    assert not a["liq_long_band"].equals(c["liq_long_band"])  # the band really changed
    stream = FeatureStream(window="1d", readout=r)
    assert stream.readout == r and stream.context == r.context
    assert set(LOOKBACK_FIELDS) <= set(r.to_dict())
