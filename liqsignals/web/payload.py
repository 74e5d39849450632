"""What the web view draws, as data: the heatmap and map payloads (no web framework needed).

The heatmap travels as one JSON document whose matrix is a base64 string of ``uint8`` colour
intensities (price rows top = highest, time left to right) at the resolution of the canvas, plus
one candle per column: a year of 15m candles at 1,400 x 600 is about 1.2 MB. The server keeps the
float32 matrix it computed and answers a hovered cell's exact notional from it (``/api/cell``);
the static export (:mod:`liqsignals.web.export`) carries that matrix inline instead, gzip-packed.

Intensity ``q`` of a cell of notional ``v`` (``vmax`` the ``clip`` percentile of the non-empty
cells): ``sqrt``: ``round(255 * sqrt(min(v / vmax, 1)))`` (the server's scale); ``linear``:
``round(255 * min(v / vmax, 1))``; ``log``: ``round(255 * (log v - log vmin) / (log vmax -
log vmin))`` clipped to 0..255, 0 for empty cells.
"""

from __future__ import annotations

import base64
import gzip
import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from liqsignals.engine import LiquidationEngine
from liqsignals.heatmap import (
    Heatmap,
    combine_heatmaps,
    combine_maps,
    liquidation_heatmap,
    map_buckets,
    top_clusters,
)
from liqsignals.model import LiquidationModel

__all__ = [
    "SCALES",
    "compute_heatmap",
    "encode_heatmap",
    "heatmap_payload",
    "map_payload",
    "pack_values",
    "quantise",
    "rows_top_first",
]

SCALES: tuple[str, ...] = ("sqrt", "log", "linear")
_LOG_DECADES = 3.0


def quantise(
    z: np.ndarray,
    scale: str = "sqrt",
    clip: float = 99.5,
    limits: tuple[float, float] | None = None,
) -> tuple[bytes, float, float]:
    """uint8 intensities of ``z`` (times x rows), price rows top = highest; ``(raw, vmin, vmax)``.

    ``vmax`` is the ``clip`` percentile of the non-empty cells (0 when there are none); ``vmin``
    is 0, except for ``log``: the median non-empty cell, kept 1 to 3 decades below ``vmax``.
    ``limits``: ``(vmin, vmax)`` given instead (the PNG's, :func:`liqsignals.plotting.color_limits`).
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    if not 0 < clip <= 100:
        raise ValueError(f"clip must be in (0, 100], got {clip!r}")
    nz = z[z > 0]
    if limits is not None:
        vmin, vmax = float(limits[0]), float(limits[1])
    else:
        vmin, vmax = 0.0, float(np.percentile(nz, clip)) if nz.size else 0.0
    if vmax <= 0 or not nz.size:
        return np.zeros(z.T.shape, dtype=np.uint8).tobytes(), 0.0, 0.0
    if scale == "sqrt":
        f = np.sqrt(np.minimum(z / vmax, 1.0))
    elif scale == "linear":
        f = np.minimum(z / vmax, 1.0)
    else:
        if limits is None or vmin <= 0:
            med = float(np.median(nz))
            vmin = min(max(med, vmax / 10**_LOG_DECADES), vmax / 10)
        with np.errstate(divide="ignore", invalid="ignore"):
            f = (np.log(np.maximum(z, vmin)) - math.log(vmin)) / (math.log(vmax) - math.log(vmin))
        f = np.where(z > 0, np.clip(f, 0.0, 1.0), 0.0)
    q = np.rint(255.0 * f).astype(np.uint8)
    return np.ascontiguousarray(q.T[::-1]).tobytes(), vmin, vmax


def _round(values: np.ndarray) -> list[float | None]:
    return [None if not math.isfinite(v) else float(f"{v:.6g}") for v in values.tolist()]


def _ms(t: Any) -> int:
    return int(pd.Timestamp(t).value // 1_000_000)


def rows_top_first(hm: Heatmap, mode: str) -> np.ndarray:
    """The float32 matrix of ``mode`` as the page indexes it: ``[row, col]``, row 0 = highest."""
    return np.ascontiguousarray(hm.matrix(mode).T[::-1], dtype=np.float32)


def pack_values(values: np.ndarray) -> str:
    """base64 of the gzip of ``values`` as little-endian float32 (the export's exact cells)."""
    raw = np.ascontiguousarray(values, dtype="<f4").tobytes()
    return base64.b64encode(gzip.compress(raw, compresslevel=6, mtime=0)).decode("ascii")


def encode_heatmap(
    hm: Heatmap,
    mode: str,
    *,
    scale: str = "sqrt",
    clip: float = 99.5,
    limits: tuple[float, float] | None = None,
    first: Any = None,
    last: Any = None,
) -> dict[str, Any]:
    """The payload of a computed heatmap (see :func:`heatmap_payload` for the keys).

    ``first`` / ``last``: dates of the data's first and last candle (default: the columns');
    ``scale``, ``clip``, ``limits``: see :func:`quantise`.
    """
    raw, vmin, vmax = quantise(hm.matrix(mode), scale, clip, limits)
    return {
        "times": (hm.times.asi8 // 1_000_000).tolist(),
        "edges_lo": float(hm.edges[0]),
        "edges_hi": float(hm.edges[-1]),
        "rows": int(hm.shape[1]),
        "cols": int(hm.shape[0]),
        "scale": scale,
        "vmin": vmin,
        "vmax": vmax,
        "matrix": base64.b64encode(raw).decode("ascii"),
        "open": _round(hm.open),
        "high": _round(hm.high),
        "low": _round(hm.low),
        "close": _round(hm.close),
        "row_bp": hm.row_bp,
        "first": _ms(hm.times[0] if first is None else first),
        "last": _ms(hm.times[-1] if last is None else last),
        "mode": mode,
    }


def compute_heatmap(
    frames: list[pd.DataFrame],
    model: LiquidationModel,
    mode: str,
    view: Mapping[str, Any],
) -> tuple[dict[str, Any], np.ndarray]:
    """:func:`heatmap_payload` and the float32 matrix behind it (``[row, col]``, row 0 highest)."""
    opts: dict[str, Any] = {"max_times": int(view["width"]), "max_bins": int(view["height"])}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = liquidation_heatmap(frames[0], model, start=view["start"], end=view["end"], **opts)
        parts = [first]
        for df in frames[1:]:
            parts.append(liquidation_heatmap(df, model, like=first))
    hm = combine_heatmaps(parts) if len(parts) > 1 else first
    dates = frames[0]["date"]
    payload = encode_heatmap(hm, mode, first=dates.iloc[0], last=dates.iloc[-1])
    return payload, rows_top_first(hm, mode)


def heatmap_payload(
    frames: list[pd.DataFrame],
    model: LiquidationModel,
    mode: str,
    view: Mapping[str, Any],
) -> dict[str, Any]:
    """The heatmap of ``frames`` (one candle frame per exchange, summed) as the page draws it.

    ``view``: ``start``, ``end`` (Timestamps or None), ``width``, ``height`` (columns, rows).

    Returns
    -------
    dict
        ``times`` (ms, column candle dates), ``edges_lo``/``edges_hi`` (price of the bottom edge
        of the lowest row and the top edge of the highest), ``rows``, ``cols``, ``scale``,
        ``vmin``, ``vmax`` (the colour scale: intensity 255 is ``vmax``), ``matrix`` (base64
        uint8, ``rows`` x ``cols``, top row = highest price), ``open``/``high``/``low``/``close``
        per column, ``row_bp``, ``first``/``last`` (ms of the data's first and last candle),
        ``mode``.
    """
    return compute_heatmap(frames, model, mode, view)[0]


def _clean(row: Mapping[str, Any]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for k, v in row.items():
        f = float(v)
        out[str(k)] = f if math.isfinite(f) else None
    return out


def map_payload(frames: list[pd.DataFrame], model: LiquidationModel, at: Any) -> dict[str, Any]:
    """The liquidation map at the candle dated at or before ``at`` (None: the last candle).

    Returns
    -------
    dict
        ``time`` (ms), ``price`` (close), ``buckets`` (``price``, ``low``, ``high``, ``long``,
        ``short`` lists, 0.25 % buckets within 20 % of price), ``clusters`` (largest per side),
        ``readout`` (the ``liq_*`` columns of the first exchange at that candle).

    Raises
    ------
    ValueError
        ``at`` before the first candle.
    """
    maps = []
    readout: dict[str, float | None] = {}
    window_ns = int(model.window_td.value)
    for i, df in enumerate(frames):
        dates = df["date"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
        last = len(df) - 1
        if at is not None:
            last = int(np.searchsorted(dates, int(pd.Timestamp(at).value), side="right")) - 1
            if last < 0:
                raise ValueError(f"at={at} is before the first candle")
        a = max(int(np.searchsorted(dates, int(dates[last]) - window_ns, side="left")) - 1, 0)
        eng = LiquidationEngine(model)
        rows = eng.update_many(df.iloc[a : last + 1])
        if i == 0:
            readout = _clean(rows.iloc[-1].to_dict())
        maps.append(eng.snapshot())
    lmap = combine_maps(maps) if len(maps) > 1 else maps[0]
    rng = (lmap.price * 0.8, lmap.price * 1.2)
    b = map_buckets(lmap, 0.25, price_range=rng)
    cl = top_clusters(lmap, n=3) if len(lmap.prices) else pd.DataFrame()
    t = lmap.time
    return {
        "time": None if t is None else _ms(t),
        "price": float(lmap.price),
        "buckets": {c: _round(b[c].to_numpy(dtype=float)) for c in b.columns},
        "clusters": cl.to_dict(orient="records"),
        "readout": readout,
    }
