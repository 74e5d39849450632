"""Read-out parameters: how the book is read into ``liq_*`` columns.

One object, :class:`ReadoutParams`, holds every read-out setting: the book summaries the engine
computes at each close (band, cluster rule, gap, magnet) and the lookbacks of the derived columns
(ATR, intensity, drift). The position model (:class:`~liqsignals.LiquidationModel`: window,
leverage mix, tiers, flow, decay, entries) says where positions sit; the read-out says what a
trader is shown of them.

The book-summary fields also exist on :class:`~liqsignals.LiquidationModel` (the engine computes
them in its kernel, and saved models and presets carry them); :meth:`ReadoutParams.apply` puts
them on a model, :meth:`ReadoutParams.from_model` reads them back. Validation of those fields has
one owner, the model; the lookbacks are validated here.

>>> r = ReadoutParams(band_pct=3.0, atr_period=21)
>>> r.to_dict()["band_pct"], r.context
(3.0, 23)
"""

from __future__ import annotations

import dataclasses
import json
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from liqsignals.model import LiquidationModel

__all__ = ["BOOK_FIELDS", "LOOKBACK_FIELDS", "TRACK_FIELDS", "ReadoutParams", "split_readout"]

#: read-out fields the engine computes in its kernel (also fields of LiquidationModel)
BOOK_FIELDS: tuple[str, ...] = (
    "band_pct",
    "cluster_range_pct",
    "cluster_dense_factor",
    "cluster_max_gap_bins",
    "cluster_min_share",
    "gap_factor",
    "magnet_distance_power",
)
#: lookbacks of the derived columns, in candles
LOOKBACK_FIELDS: tuple[str, ...] = ("atr_period", "intensity_lookback", "drift_lookback")
#: settings of the cluster tracking (age, fresh flag), in candles
TRACK_FIELDS: tuple[str, ...] = ("age_cap", "fresh_age")


@dataclass(frozen=True)
class ReadoutParams:
    """Every read-out setting, validated on construction, serialisable to JSON.

    Parameters
    ----------
    band_pct : the band (in % of price) for ``liq_long_band`` / ``liq_short_band``.
    cluster_range_pct : how far from price (in %) clusters, magnets and gaps are searched.
    cluster_dense_factor : a bin is dense at this multiple of the side's mean bin mass in range.
    cluster_max_gap_bins : a cluster may bridge this many non-dense bins.
    cluster_min_share : a significant cluster holds at least this share of its side's mass.
    gap_factor : "meaningful mass" for the gap columns, as a multiple of the mean bin mass.
    magnet_distance_power : magnet score = cluster share / distance_pct ** power.
    atr_period : candles of the simple-mean ATR (``liq_atr`` and the ATR distances).
    intensity_lookback : candles the intensity percentile ranks the nearest cluster's size among.
    drift_lookback : candles back for ``liq_magnet_drift`` and the drifts of tracked clusters.
    age_cap : the age of a tracked cluster (``liq_long_cluster_age`` ...) counts up to this many
        candles (and never beyond ``intensity_lookback``), so that it, like every derived
        column, looks back a bounded number of candles.
    fresh_age : a tracked cluster younger than this many candles is "fresh"
        (``liq_long_cluster_fresh`` = 1).
    """

    band_pct: float = 5.0
    cluster_range_pct: float = 10.0
    cluster_dense_factor: float = 2.0
    cluster_max_gap_bins: int = 1
    cluster_min_share: float = 0.05
    gap_factor: float = 1.0
    magnet_distance_power: float = 1.0
    atr_period: int = 14
    intensity_lookback: int = 500
    drift_lookback: int = 12
    age_cap: int = 96
    fresh_age: int = 4

    def __post_init__(self) -> None:
        for name in (*LOOKBACK_FIELDS, *TRACK_FIELDS):
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
            object.__setattr__(self, name, int(value))
        LiquidationModel(**self.book())  # the model owns the rules of the book fields

    # ------------------------------------------------------------------ views
    def book(self) -> dict[str, Any]:
        """The book-summary fields (those the engine computes)."""
        return {name: getattr(self, name) for name in BOOK_FIELDS}

    def lookbacks(self) -> dict[str, int]:
        """The derived columns' lookbacks, in candles."""
        return {name: getattr(self, name) for name in LOOKBACK_FIELDS}

    @property
    def context(self) -> int:
        """Candles of context the short lookbacks need before a new candle (ATR: its window
        and the previous close; drift: the magnet ``drift_lookback`` candles ago; sweeps: one
        candle)."""
        return max(self.atr_period + 1, self.drift_lookback + 1) + 1

    @property
    def age_limit(self) -> int:
        """The largest age a tracked cluster reaches: ``min(age_cap, intensity_lookback)``."""
        return min(self.age_cap, self.intensity_lookback)

    # ------------------------------------------------------------------ with a model
    @classmethod
    def from_model(cls, model: LiquidationModel, **lookbacks: Any) -> ReadoutParams:
        """The read-out a model carries, with the given lookbacks (others default)."""
        return cls(**{n: getattr(model, n) for n in BOOK_FIELDS}, **lookbacks)

    def apply(self, model: LiquidationModel) -> LiquidationModel:
        """``model`` with this read-out's book fields."""
        changes = {n: v for n, v in self.book().items() if getattr(model, n) != v}
        return model.replace(**changes) if changes else model

    def replace(self, **changes: Any) -> ReadoutParams:
        return dataclasses.replace(self, **changes) if changes else self

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReadoutParams:
        unknown = sorted(set(data) - set(BOOK_FIELDS) - set(LOOKBACK_FIELDS) - set(TRACK_FIELDS))
        if unknown:
            raise ValueError(f"unknown read-out parameter(s) {unknown}")
        return cls(**dict(data))

    @classmethod
    def from_json(cls, path: str | Path) -> ReadoutParams:
        return cls.from_dict(json.loads(Path(path).read_text()))


def split_readout(
    model: LiquidationModel,
    readout: ReadoutParams | None,
    lookbacks: Mapping[str, Any],
) -> tuple[LiquidationModel, ReadoutParams]:
    """The model and read-out a features call works with: ``readout`` (default: the model's own
    book fields) with ``lookbacks`` (``atr_period=...``, as the functions have always taken them)
    overriding, and the model carrying the read-out's book fields."""
    unknown = sorted(set(lookbacks) - set(LOOKBACK_FIELDS))
    if unknown:
        raise ValueError(f"unknown lookback(s) {unknown}; known: {list(LOOKBACK_FIELDS)}")
    if readout is None:
        readout = ReadoutParams.from_model(model, **lookbacks)
    elif not isinstance(readout, ReadoutParams):
        raise ValueError(f"readout must be a ReadoutParams, got {type(readout).__name__}")
    else:
        readout = readout.replace(**lookbacks)
    return readout.apply(model), readout
