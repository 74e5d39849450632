"""Liquidation heatmaps (book over time x price) and liquidation maps (the book at one instant).

The engine runs once over the candles; at the chosen snapshot candles the kernel copies the
estimated liquidation mass of a fixed window of price bins into two matrices (long, short). Bin
``k`` of the model's log grid covers prices ``[B**k, B**(k+1))`` with ``B = 1 + bin_bp/1e4``;
pictures may sum neighbouring bins (``max_bins``) so one matrix row spans several fine bins.

Memory: a :class:`Heatmap` holds ``n_times x n_bins x 4 bytes x 2`` (two float32 matrices); for
2,000 snapshots and 1,000 price rows that is 16 MB. During the run the kernel also holds the
fine-resolution matrices of one chunk of candles at a time (at most a few thousand snapshots).

Snapshots are the book at the close of the snapshot candle; ``times`` are the candles' ``date``
values (freqtrade's bar open time), so a heatmap column lines up with its candle. Positions expire
after the model's window, so the book at a candle depends only on the last window of candles: the
engine starts one window before the first snapshot and the rest of the history is skipped. Columns
earlier than one window after the first candle show an incomplete book (a warning says so).

Pictures: the default price window is the shown candles' range widened on the side the picture
shows (:func:`view_margins`), and the model's few entry prices per candle leave thin empty rows
that :func:`smooth_along_price` removes for display (the matrices themselves stay raw).

Only numpy and pandas are imported here; pictures live in :mod:`liqsignals.plotting`.

Example
-------
>>> from liqsignals import sample
>>> from liqsignals.heatmap import liquidation_heatmap, liquidation_map, top_clusters
>>> df = sample.load_candles("BTC/USDT:USDT", "1h")
>>> hm = liquidation_heatmap(df, window="1w", start="2025-05-01", every=4, max_bins=400)
>>> hm.long.shape[0] == len(hm.times) and hm.long.shape[1] == len(hm.prices)
True
>>> lmap = liquidation_map(df, window="1w")
>>> bool((lmap.long > 0).any())
True
>>> list(top_clusters(lmap, n=2).columns)
['side', 'price', 'low', 'high', 'notional', 'distance_pct']
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from liqsignals._time import to_utc_ns, utc_index, utc_timestamp
from liqsignals.engine import LEVERAGE_BUCKETS, LiquidationEngine, LiquidationMap, Snapshots
from liqsignals.grid import PriceGrid
from liqsignals.inputs import prepare_inputs
from liqsignals.model import LiquidationModel, resolve_model

#: the per-leverage columns of :func:`map_buckets` (low, medium, high: engine.LEVERAGE_BUCKETS)
LEVERAGE_BUCKET_NAMES: tuple[str, ...] = tuple(LEVERAGE_BUCKETS)

__all__ = [
    "MODES",
    "Heatmap",
    "LiquidationMap",
    "combine_heatmaps",
    "combine_maps",
    "cumulative_levels",
    "cumulative_liquidations",
    "liquidation_heatmap",
    "liquidation_map",
    "map_buckets",
    "smooth_along_price",
    "top_clusters",
    "view_margins",
]

#: Sides a picture can show.
MODES: tuple[str, ...] = ("long", "short", "combined")

#: Refuse heatmaps whose matrices would exceed this many bytes (choose ``every``/``max_bins``).
_MAX_BYTES = 2 * 1024**3
#: Candles per engine call: progress granularity and the bound on fine-resolution snapshot memory.
_CHUNK_MIN = 2_048
_CHUNKS = 40

#: ``progress(done, total)``: candles processed so far and candles to process in all.
Progress = Callable[[int, int], Any]


# ----------------------------------------------------------------------------- helpers
def _warmup_start(dates: np.ndarray, first_ns: int, window_ns: int) -> int:
    """First candle the engine must see so the book at ``first_ns`` is complete.

    Cohorts opened a window or more before a snapshot have expired; the candle just before the
    window is kept so the first kept path starts at its close.
    """
    return max(int(np.searchsorted(dates, first_ns - window_ns, side="left")) - 1, 0)


def _check_warm(dates: np.ndarray, first_snap_ns: int, window_ns: int, what: str) -> None:
    if first_snap_ns < int(dates[0]) + window_ns:
        warnings.warn(
            f"{what} at {utc_timestamp(first_snap_ns)} is less than one window after the first candle "
            f"({utc_timestamp(dates[0])}): the book there is still filling (incomplete)",
            stacklevel=3,
        )


def _check_window(dates: np.ndarray, window_ns: int, m: LiquidationModel) -> None:
    """Refuse a window shorter than the candles: every position would expire in its own candle."""
    if len(dates) < 2:
        return
    step = int(np.median(np.diff(dates)))
    if window_ns < step:
        raise ValueError(
            f"window {m.to_dict().get('window')} is shorter than the candles "
            f"({pd.Timedelta(step, unit='ns')}): choose a window of at least one candle"
        )


def _chunks(a: int, b: int) -> list[tuple[int, int]]:
    n = b - a
    size = max(_CHUNK_MIN, math.ceil(n / _CHUNKS))
    return [(s, min(s + size, b)) for s in range(a, b, size)]


def _coarsen(mat: np.ndarray, factor: int) -> np.ndarray:
    if factor == 1:
        return mat
    n, w = mat.shape
    return mat.reshape(n, w // factor, factor).sum(axis=2, dtype=np.float32)


# ----------------------------------------------------------------------------- heatmap
@dataclass
class Heatmap:
    """Estimated liquidation mass over time and price (see :func:`liquidation_heatmap`).

    Attributes
    ----------
    times : DatetimeIndex (UTC)
        Snapshot candles' ``date`` (bar open time); the book is taken at the candle's close.
    prices : ndarray, shape (n_bins,)
        Geometric centre of each price row, ascending (quote currency).
    edges : ndarray, shape (n_bins + 1,)
        Price edges of the rows; row ``j`` covers ``[edges[j], edges[j + 1])``.
    long, short : ndarray float32, shape (n_times, n_bins)
        Estimated notional (quote currency) of longs / shorts liquidated if price reaches the row.
    open, high, low, close : ndarray, shape (n_times,)
        Candle of each column: ``high``/``low`` over the candles since the previous snapshot
        (so the path between columns is covered), ``close`` of the snapshot candle, ``open`` of
        the first candle of the interval. NaN where a column has no candle yet.
    model : LiquidationModel
        The model that produced the book.
    k_lo : int
        Absolute bin index of the first fine bin of row 0.
    bins_per_row : int
        Fine bins summed into one row (``max_bins`` coarsening), 1 at full resolution.
    every : int
        Candles between snapshots (0 when ``times`` were given explicitly).
    meta : dict
        Free-form labels for pictures (``pair``, ``timeframe``, ``exchange``, ...).
    """

    times: pd.DatetimeIndex
    prices: np.ndarray
    edges: np.ndarray
    long: np.ndarray
    short: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    model: LiquidationModel
    k_lo: int
    bins_per_row: int = 1
    every: int = 1
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def combined(self) -> np.ndarray:
        """Long plus short mass, float32 (n_times, n_bins)."""
        return self.long + self.short

    def matrix(self, mode: str = "combined") -> np.ndarray:
        """The matrix of one side: ``"long"``, ``"short"`` or ``"combined"``."""
        if mode == "long":
            return self.long
        if mode == "short":
            return self.short
        if mode == "combined":
            return self.combined
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_times, n_bins)``."""
        return (len(self.times), len(self.prices))

    @property
    def nbytes(self) -> int:
        """Bytes held by the two matrices."""
        return int(self.long.nbytes + self.short.nbytes)

    @property
    def row_bp(self) -> float:
        """Height of a price row in basis points of price."""
        return self.model.grid.span_bp(self.bins_per_row)

    def candles(self) -> pd.DataFrame:
        """One candle per column.

        Returns
        -------
        DataFrame
            ``date`` (UTC), ``open``, ``high``, ``low``, ``close`` (quote currency).
        """
        return pd.DataFrame(
            {
                "date": self.times,
                "open": self.open,
                "high": self.high,
                "low": self.low,
                "close": self.close,
            }
        )

    def to_frame(self, dropzero: bool = True) -> pd.DataFrame:
        """Long format, one row per (time, price row).

        Parameters
        ----------
        dropzero : bool
            Leave out cells where both sides are zero (default).

        Returns
        -------
        DataFrame
            ``date`` (UTC snapshot candle), ``price`` (row centre, quote), ``long`` and ``short``
            (estimated notional liquidated at that row, quote), ``combined`` (their sum).
        """
        n_t, n_b = self.shape
        long = self.long.reshape(-1)
        short = self.short.reshape(-1)
        frame = pd.DataFrame(
            {
                "date": np.repeat(self.times, n_b),
                "price": np.tile(self.prices, n_t),
                "long": long,
                "short": short,
                "combined": long + short,
            }
        )
        if dropzero:
            frame = frame.loc[frame["combined"] > 0].reset_index(drop=True)
        return frame


def _snapshot_rows(
    dates: np.ndarray,
    start: Any,
    end: Any,
    every: int,
    max_times: int | None,
    window_ns: int,
) -> tuple[np.ndarray, int]:
    n = len(dates)
    if start is None:
        auto = int(dates[0]) + window_ns
        s_ns = auto if auto <= int(dates[-1]) else int(dates[0])
    else:
        s_ns = to_utc_ns(start, "start", what="parameter")
    e_ns = int(dates[-1]) if end is None else to_utc_ns(end, "end", what="parameter")
    if start is None and s_ns > e_ns:
        raise ValueError(
            f"end {utc_timestamp(e_ns)} is before {utc_timestamp(s_ns)}, where the default start puts the first "
            f"column: one window ({pd.Timedelta(window_ns, unit='ns')}) of warm-up after the "
            f"first candle {utc_timestamp(dates[0])}; give an end after it, or a start (the book is then "
            f"still filling)"
        )
    if s_ns > e_ns:
        raise ValueError(f"start {utc_timestamp(s_ns)} is after end {utc_timestamp(e_ns)}")
    i0 = int(np.searchsorted(dates, s_ns, side="left"))
    i1 = int(np.searchsorted(dates, e_ns, side="right")) - 1
    if i0 >= n or i1 < i0:
        raise ValueError(
            f"no candles between {utc_timestamp(s_ns)} and {utc_timestamp(e_ns)} "
            f"(the data span {utc_timestamp(dates[0])} .. {utc_timestamp(dates[-1])})"
        )
    if max_times is not None:
        if not isinstance(max_times, int) or max_times < 1:
            raise ValueError(f"max_times must be a positive int, got {max_times!r}")
        every = max(every, math.ceil((i1 - i0 + 1) / max_times))
    rows = np.arange(i1, i0 - 1, -every, dtype=np.int64)[::-1].copy()
    return rows, every


def _price_window(
    model: LiquidationModel,
    lo: float,
    hi: float,
    price_range: tuple[float, float] | None,
    margins: tuple[float, float],
    max_bins: int | None,
) -> tuple[int, int, int]:
    """``(k_lo, fine_width, bins_per_row)``; ``fine_width`` is a multiple of ``bins_per_row``."""
    if price_range is not None:
        try:
            p_lo, p_hi = (float(x) for x in price_range)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"price_range must be (low, high), got {price_range!r}") from exc
        if not (0 < p_lo < p_hi) or not math.isfinite(p_hi):
            raise ValueError(f"price_range must satisfy 0 < low < high, got {price_range!r}")
    else:
        p_lo, p_hi = lo * (1 - margins[0]), hi * (1 + margins[1])
    k_lo = int(model.price_to_bin(p_lo))
    k_hi = int(model.price_to_bin(p_hi))
    width = k_hi - k_lo + 1
    factor = 1
    if max_bins is not None:
        if not isinstance(max_bins, int) or max_bins < 1:
            raise ValueError(f"max_bins must be a positive int, got {max_bins!r}")
        factor = max(1, math.ceil(width / max_bins))
    width = math.ceil(width / factor) * factor
    return k_lo, width, factor


def _interval_ohlc(
    inp: Any, rows: np.ndarray, valid: np.ndarray, every: int
) -> tuple[np.ndarray, ...]:
    n_t = len(rows)
    o, h, lo, c = (np.full(n_t, np.nan) for _ in range(4))
    prev = -1
    for j in range(n_t):
        r = int(rows[j])
        if not valid[j]:
            continue
        a = r - max(every, 1) + 1 if prev < 0 else prev + 1
        a = min(max(a, 0), r)
        o[j] = inp.open[a]
        h[j] = inp.high[a : r + 1].max()
        lo[j] = inp.low[a : r + 1].min()
        c[j] = inp.close[r]
        prev = r
    return o, h, lo, c


#: the view options of :func:`liquidation_heatmap` (price window, resolution) and their defaults;
#: every other keyword is a model parameter
VIEW_OPTIONS: dict[str, Any] = {
    "price_range": None,
    "margin": None,
    "side": "combined",
    "max_bins": None,
    "max_times": None,
}

#: automatic margin: half the candles' relative span, at least 2 % and at most 15 % of price
_MARGIN_MIN, _MARGIN_MAX, _MARGIN_SPAN = 0.02, 0.15, 0.5
#: with ``side="long"`` (``"short"``) the other side of the candles keeps this share of the margin
_OTHER_SIDE = 0.15


def view_margins(lo: float, hi: float, margin: float | None, side: str) -> tuple[float, float]:
    """Fractions of price added below ``lo`` and above ``hi`` for the price window of a picture.

    ``margin=None`` chooses half the candles' relative span ``hi / lo - 1``, clamped to
    [2 %, 15 %]. Longs are liquidated below price and shorts above, so ``side="long"`` keeps the
    full margin below the candles and only 15 % of it above (``"short"`` the mirror image);
    ``"combined"`` pads both sides equally.
    """
    if side not in MODES:
        raise ValueError(f"side must be one of {MODES}, got {side!r}")
    if margin is None:
        span = hi / lo - 1 if lo > 0 else 0.0
        margin = min(max(_MARGIN_SPAN * span, _MARGIN_MIN), _MARGIN_MAX)
    elif not (isinstance(margin, int | float) and 0 <= margin < 1):
        raise ValueError(f"margin must be in [0, 1), got {margin!r}")
    below = margin * (_OTHER_SIDE if side == "short" else 1.0)
    above = margin * (_OTHER_SIDE if side == "long" else 1.0)
    return float(below), float(above)


def liquidation_heatmap(
    df: pd.DataFrame,
    model: LiquidationModel | None = None,
    *,
    start: Any = None,
    end: Any = None,
    every: int = 1,
    times: Sequence[Any] | pd.DatetimeIndex | None = None,
    like: Heatmap | None = None,
    progress: Progress | None = None,
    **params: Any,
) -> Heatmap:
    """Estimated liquidation mass per price row at candles between ``start`` and ``end``.

    Parameters
    ----------
    df : DataFrame
        Candles as for :func:`~liqsignals.liquidation_levels`, including the history before
        ``start`` (one window of it is used to fill the book).
    model : LiquidationModel, optional
        ``**params`` override its fields (e.g. ``window="1w"``, ``leverage="high"``).
    start, end : date string or Timestamp, optional
        Inclusive range of snapshot candles. ``start`` defaults to one window after the first
        candle (the first complete book), ``end`` to the last candle.
    every : int
        Snapshot every ``every`` candles, counted back from ``end`` (so the last candle is in).
    price_range : (low, high), optional
        Price window of the picture; default the lowest low and highest high of the candles in
        ``[start, end]`` widened by ``margin`` on the side(s) ``side`` shows
        (see :func:`view_margins`).
    max_bins : int, optional
        Sum neighbouring bins so there are at most this many price rows.
    max_times : int, optional
        Raise ``every`` so there are at most this many columns.
    times : sequence of dates, optional
        Explicit snapshot instants instead of ``start``/``end``/``every``: each column is the book
        at the close of the last candle dated at or before the instant (zeros and NaN candles
        before the first candle).
    like : Heatmap, optional
        Use the columns (``times``) and price rows of another heatmap, which must come from a
        model with the same ``bin_bp``: one heatmap per exchange on a common grid, summed with
        :func:`combine_heatmaps`.
    margin : float, optional
        Fraction of price added below the low / above the high (0.1: 10 %); default half the
        candles' relative span, clamped to [0.02, 0.15].
    side : ``"long"``, ``"short"`` or ``"combined"``
        The side the picture will show: longs are liquidated below price, so ``"long"`` puts the
        margin below the candles (and 15 % of it above), ``"short"`` above. The matrices hold
        both sides whatever ``side`` is.
    progress : callable, optional
        ``progress(done, total)`` after each chunk of candles (for a progress bar).

    Returns
    -------
    Heatmap
        ``times``, ``prices`` (row centres), ``edges``, ``long`` / ``short`` float32 matrices
        (n_times x n_bins, quote notional), ``open``/``high``/``low``/``close`` per column,
        ``model``, ``k_lo``, ``bins_per_row``, ``every``. ``combined`` is ``long + short``.
    """
    price_range, margin, side, max_bins, max_times = (
        params.pop(k, v) for k, v in VIEW_OPTIONS.items()
    )
    m = resolve_model(model, params)
    if not isinstance(every, int) or every < 1:
        raise ValueError(f"every must be a positive int, got {every!r}")
    inp = prepare_inputs(df)
    if len(inp) == 0:
        raise ValueError("no candles")
    dates = inp.dates
    window_ns = int(m.window_td.value)
    _check_window(dates, window_ns, m)
    if like is not None:
        if like.model.bin_bp != m.bin_bp:
            raise ValueError(f"like= has bin_bp {like.model.bin_bp}, this model {m.bin_bp}")
        times = like.times

    if times is not None:
        t_ns = np.array([to_utc_ns(t, "times", what="parameter") for t in times], dtype=np.int64)
        if t_ns.size == 0:
            raise ValueError("times is empty")
        if np.any(np.diff(t_ns) < 0):
            raise ValueError("times must be sorted ascending")
        rows = np.searchsorted(dates, t_ns, side="right").astype(np.int64) - 1
        valid = rows >= 0
        if not valid.any():
            raise ValueError(
                f"every time in times is before the first candle {utc_timestamp(dates[0])}"
            )
        every_out = 0
        out_times = utc_index(t_ns)
    else:
        rows, every_out = _snapshot_rows(dates, start, end, every, max_times, window_ns)
        valid = np.ones(len(rows), dtype=bool)
        out_times = utc_index(dates[rows])

    vrows = rows[valid]
    r0, r1 = int(vrows[0]), int(vrows[-1])
    if like is not None:
        k_lo, factor = like.k_lo, like.bins_per_row
        width = factor * len(like.prices)
    else:
        if price_range is None:
            lo, hi = float(inp.low[r0 : r1 + 1].min()), float(inp.high[r0 : r1 + 1].max())
        else:
            lo = hi = math.nan
        margins = view_margins(lo, hi, margin, side) if price_range is None else (0.0, 0.0)
        k_lo, width, factor = _price_window(m, lo, hi, price_range, margins, max_bins)
    n_bins = width // factor
    n_t = len(rows)
    if n_t * n_bins * 8 > _MAX_BYTES:
        raise ValueError(
            f"a {n_t} x {n_bins} heatmap needs {n_t * n_bins * 8 / 1e9:.1f} GB; "
            f"raise every / max_times or lower max_bins / the price range"
        )

    _check_warm(dates, int(dates[r0]), window_ns, "the first heatmap column")
    long = np.zeros((n_t, n_bins), dtype=np.float32)
    short = np.zeros((n_t, n_bins), dtype=np.float32)
    # unique rows are computed once; repeated rows (explicit times) are copied afterwards
    uniq, first_pos = np.unique(vrows, return_index=True)
    vpos = np.flatnonzero(valid)
    eng = LiquidationEngine(m, summaries=False)
    a = _warmup_start(dates, int(dates[r0]), window_ns)
    filled = 0
    total = r1 + 1 - a
    for c0, c1 in _chunks(a, r1 + 1):
        sel = uniq[(uniq >= c0) & (uniq < c1)]
        res = eng.run(inp.slice(c0, c1), snapshots=Snapshots(sel - c0, k_lo, width), order="F")
        sl, ss = res.snap_long, res.snap_short
        dest = vpos[first_pos[filled : filled + len(sel)]]
        long[dest] = _coarsen(sl, factor)
        short[dest] = _coarsen(ss, factor)
        filled += len(sel)
        if progress is not None:
            progress(c1 - a, total)
    if len(uniq) != len(vrows):  # explicit times mapping several columns to one candle
        for j in vpos:
            src = vpos[first_pos[np.searchsorted(uniq, rows[j])]]
            if src != j:
                long[j] = long[src]
                short[j] = short[src]

    o, h, low, c = _interval_ohlc(inp, rows, valid, every_out or 1)
    edges = m.grid.edges(k_lo, n_bins, factor)
    prices = m.grid.centres(k_lo, n_bins, factor)
    return Heatmap(
        times=out_times,
        prices=prices,
        edges=edges,
        long=long,
        short=short,
        open=o,
        high=h,
        low=low,
        close=c,
        model=m,
        k_lo=k_lo,
        bins_per_row=factor,
        every=every_out,
        meta={"entry_spacing_bp": _entry_spacing_bp(inp, a, r1, m)},
    )


def _entry_spacing_bp(inp: Any, a: int, b: int, m: LiquidationModel) -> float:
    """Typical distance between the entry prices the model samples in one candle, in bp.

    The model places ``entry_samples`` entries inside each candle's range, so a candle of range
    ``R`` bp leaves its liquidation levels about ``R / entry_samples`` bp apart: the 75th
    percentile of the candle ranges in ``[a, b]`` over ``entry_samples``.
    """
    high, low, close = inp.high[a : b + 1], inp.low[a : b + 1], inp.close[a : b + 1]
    ok = np.isfinite(high) & np.isfinite(low) & (close > 0)
    if not ok.any():
        return float(m.bin_bp)
    rng = (high[ok] - low[ok]) / close[ok] * 1e4
    return float(np.percentile(rng, 75) / m.entry_samples)


def smooth_along_price(hm: Heatmap, sigma_bp: float | None = None) -> Heatmap:
    """A copy of ``hm`` with both matrices smoothed along price, for display.

    The model samples a few entry prices per candle, so the levels of one candle are a comb
    with teeth ``range / entry_samples`` apart; where the teeth are wider than a row, single
    empty rows show as thin dark stripes. A Gaussian along price (per column, zero outside the
    window, total mass kept to within the mass it pushes past the window's edges) of standard
    deviation ``sigma_bp`` removes them. ``None`` takes the larger of the model's bin width and
    the entry spacing of the candles (``hm.meta["entry_spacing_bp"]``, see
    :func:`liquidation_heatmap`). ``hm.meta["smooth_bp"]`` records the value used; 0 returns
    ``hm`` unchanged.
    """
    if sigma_bp is None:
        spacing = float(hm.meta.get("entry_spacing_bp", hm.model.bin_bp))
        sigma_bp = max(float(hm.model.bin_bp), spacing if math.isfinite(spacing) else 0.0)
    if not (isinstance(sigma_bp, int | float) and math.isfinite(sigma_bp) and sigma_bp >= 0):
        raise ValueError(f"sigma_bp must be a finite number >= 0, got {sigma_bp!r}")
    if sigma_bp == 0:
        return hm
    sigma = float(sigma_bp) / hm.row_bp
    r = max(1, math.ceil(3 * sigma))
    kernel = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    kernel /= kernel.sum()

    def conv(z: np.ndarray) -> np.ndarray:
        n = z.shape[1]
        padded = np.pad(z.astype(np.float64), ((0, 0), (r, r)))
        out = np.zeros(z.shape, dtype=np.float64)
        for i, w in enumerate(kernel):
            out += w * padded[:, i : i + n]
        return out.astype(np.float32)

    return replace(
        hm,
        long=conv(hm.long),
        short=conv(hm.short),
        meta={**hm.meta, "smooth_bp": float(sigma_bp)},
    )


def combine_heatmaps(heatmaps: Sequence[Heatmap]) -> Heatmap:
    """Sum heatmaps computed on the same columns and price rows (e.g. one per exchange).

    Compute the first one, then the others with ``like=first``; the candles of the result are
    those of the first heatmap.

    Returns
    -------
    Heatmap
        Same fields as the inputs, ``long``/``short`` summed; ``meta["parts"]`` counts the inputs.
    """
    if not heatmaps:
        raise ValueError("no heatmaps to combine")
    first = heatmaps[0]
    for i, hm in enumerate(heatmaps[1:], start=1):
        if not first.times.equals(hm.times):
            raise ValueError(f"heatmap {i} has other columns (times) than heatmap 0")
        if (
            hm.k_lo != first.k_lo
            or hm.bins_per_row != first.bins_per_row
            or hm.model.bin_bp != first.model.bin_bp
            or hm.shape != first.shape
        ):
            raise ValueError(f"heatmap {i} has other price rows than heatmap 0")
    long = np.zeros_like(first.long)
    short = np.zeros_like(first.short)
    for hm in heatmaps:
        long += hm.long
        short += hm.short
    meta = {**first.meta, "parts": len(heatmaps)}
    return Heatmap(
        times=first.times,
        prices=first.prices,
        edges=first.edges,
        long=long,
        short=short,
        open=first.open,
        high=first.high,
        low=first.low,
        close=first.close,
        model=first.model,
        k_lo=first.k_lo,
        bins_per_row=first.bins_per_row,
        every=first.every,
        meta=meta,
    )


# ----------------------------------------------------------------------------- liquidation map
def liquidation_map(
    df: pd.DataFrame,
    model: LiquidationModel | None = None,
    at: Any = None,
    *,
    progress: Progress | None = None,
    **params: Any,
) -> LiquidationMap:
    """The estimated liquidation book at the close of one candle.

    Parameters
    ----------
    df : DataFrame
        Candles (see :func:`~liqsignals.liquidation_levels`).
    model : LiquidationModel, optional
        ``**params`` override its fields.
    at : date string or Timestamp, optional
        The book at the last candle dated at or before ``at`` (default: the last candle).
    progress : callable, optional
        ``progress(done, total)`` after each chunk of candles.

    Returns
    -------
    LiquidationMap
        ``time`` (the candle's date), ``price`` (its close), ``prices`` (bin centres, ascending),
        ``long`` / ``short`` (estimated quote notional liquidated if price reaches the bin; longs
        sit below price, shorts above), ``bin_bp``.
    """
    m = resolve_model(model, params)
    inp = prepare_inputs(df)
    if len(inp) == 0:
        raise ValueError("no candles")
    dates = inp.dates
    if at is None:
        last = len(inp) - 1
    else:
        at_ns = to_utc_ns(at, "at", what="parameter")
        last = int(np.searchsorted(dates, at_ns, side="right")) - 1
        if last < 0:
            raise ValueError(
                f"at={utc_timestamp(at_ns)} is before the first candle {utc_timestamp(dates[0])}"
            )
        step = int(np.median(np.diff(dates))) if len(dates) > 1 else 0
        if at_ns > int(dates[-1]) + step:
            raise ValueError(
                f"at={utc_timestamp(at_ns)} is after the data: the candles span {utc_timestamp(dates[0])} .. "
                f"{utc_timestamp(int(dates[-1]) + step)} (close of the last candle)"
            )
    window_ns = int(m.window_td.value)
    _check_window(dates, window_ns, m)
    _check_warm(dates, int(dates[last]), window_ns, "the map")
    a = _warmup_start(dates, int(dates[last]), window_ns)
    frame = df.iloc[a : last + 1]
    eng = LiquidationEngine(m, summaries=False)
    for c0, c1 in _chunks(0, len(frame)):
        eng.update_many(frame.iloc[c0:c1])
        if progress is not None:
            progress(c1, len(frame))
    return eng.snapshot()


def _map_bins(lmap: LiquidationMap) -> np.ndarray:
    return PriceGrid(lmap.bin_bp).centre_to_bin(lmap.prices)


def combine_maps(maps: Sequence[LiquidationMap]) -> LiquidationMap:
    """Sum liquidation maps on their common (absolute) bin grid, e.g. one per exchange.

    All maps need the same ``bin_bp``; ``time`` and ``price`` are the first map's.

    Returns
    -------
    LiquidationMap
        Bins from the lowest to the highest bin of any map; ``long`` / ``short`` summed.
    """
    if not maps:
        raise ValueError("no maps to combine")
    bp = maps[0].bin_bp
    if any(mp.bin_bp != bp for mp in maps):
        raise ValueError("maps have different bin_bp; they are not on a common grid")
    bins = [_map_bins(mp) for mp in maps]
    nonempty = [b for b in bins if b.size]
    if not nonempty:
        return maps[0]
    k0 = min(int(b[0]) for b in nonempty)
    k1 = max(int(b[-1]) for b in nonempty)
    long = np.zeros(k1 - k0 + 1)
    short = np.zeros(k1 - k0 + 1)
    split = all(mp.long_buckets is not None and mp.short_buckets is not None for mp in maps)
    long_b = np.zeros((3, k1 - k0 + 1)) if split else None
    short_b = np.zeros((3, k1 - k0 + 1)) if split else None
    for mp, b in zip(maps, bins, strict=True):
        np.add.at(long, b - k0, mp.long)
        np.add.at(short, b - k0, mp.short)
        if long_b is not None and short_b is not None:
            for j in range(3):
                np.add.at(long_b[j], b - k0, mp.long_buckets[j])  # type: ignore[index]
                np.add.at(short_b[j], b - k0, mp.short_buckets[j])  # type: ignore[index]
    return LiquidationMap(
        time=maps[0].time,
        price=maps[0].price,
        prices=PriceGrid(bp).bin_to_price(np.arange(k0, k1 + 1)),
        long=long,
        short=short,
        bin_bp=bp,
        long_buckets=long_b,
        short_buckets=short_b,
    )


def cumulative_liquidations(lmap: LiquidationMap) -> pd.DataFrame:
    """How much would be liquidated if price moved from ``lmap.price`` to each level.

    A bin is reached when price trades through its centre, so a fall to ``p`` liquidates every
    long at or above ``p`` and a rise to ``p`` every short at or below ``p``.

    Returns
    -------
    DataFrame
        ``price`` (bin centre, quote), ``long`` / ``short`` (mass in the bin, quote),
        ``long_cum`` (longs liquidated by a fall to ``price``; NaN above the current price),
        ``short_cum`` (shorts liquidated by a rise to ``price``; NaN below the current price).
    """
    prices = np.asarray(lmap.prices, dtype=np.float64)
    long = np.asarray(lmap.long, dtype=np.float64)
    short = np.asarray(lmap.short, dtype=np.float64)
    long_cum = long[::-1].cumsum()[::-1]
    short_cum = short.cumsum()
    long_cum = np.where(prices <= lmap.price, long_cum, np.nan)
    short_cum = np.where(prices >= lmap.price, short_cum, np.nan)
    return pd.DataFrame(
        {
            "price": prices,
            "long": long,
            "short": short,
            "long_cum": long_cum,
            "short_cum": short_cum,
        }
    )


def cumulative_levels(
    lmap: LiquidationMap,
    band_pct: float = 5.0,
    shares: Sequence[float] = (0.25, 0.5, 0.75),
) -> pd.DataFrame:
    """How far price must move to liquidate a share of one side's band: per side and share,
    the first bin (centre), moving away from ``lmap.price``, at which the cumulative
    liquidations of the move reach ``share`` of that side's band total (longs with their centre
    in ``[price * (1 - band_pct / 100), price)``, shorts in ``(price, price * (1 + band_pct /
    100)]``).

    Returns
    -------
    DataFrame
        ``side`` ("long" / "short"), ``share``, ``price`` (bin centre, quote; NaN when the band
        holds nothing), ``cum`` (liquidations of the move to that price, quote), ``band_total``
        (quote), one row per side and share, longs first.
    """
    if not 0 < band_pct < 100:
        raise ValueError(f"band_pct must be in (0, 100), got {band_pct!r}")
    bad = [q for q in shares if not 0 < q <= 1]
    if bad:
        raise ValueError(f"shares must be in (0, 1], got {bad}")
    prices = np.asarray(lmap.prices, dtype=np.float64)
    rows = []
    for side in ("long", "short"):
        mass = np.asarray(getattr(lmap, side), dtype=np.float64)
        if side == "long":
            inside = (prices < lmap.price) & (prices >= lmap.price * (1 - band_pct / 100))
            order = np.flatnonzero(inside)[::-1]  # from the price downward
        else:
            inside = (prices > lmap.price) & (prices <= lmap.price * (1 + band_pct / 100))
            order = np.flatnonzero(inside)
        cum = np.cumsum(mass[order])
        total = float(cum[-1]) if cum.size else 0.0
        for q in shares:
            price = level = math.nan
            if total > 0:
                i = int(np.searchsorted(cum, q * total * (1 - 1e-12)))
                i = min(i, cum.size - 1)
                price, level = float(prices[order[i]]), float(cum[i])
            rows.append({"side": side, "share": float(q), "price": price, "cum": level,
                         "band_total": total})  # fmt: skip
    return pd.DataFrame(rows, columns=["side", "share", "price", "cum", "band_total"])


def map_buckets(
    lmap: LiquidationMap,
    bucket_pct: float = 0.25,
    price_range: tuple[float, float] | None = None,
) -> pd.DataFrame:
    """The map summed into price buckets of about ``bucket_pct`` percent (for bar charts).

    Buckets are whole groups of the model's bins on its absolute grid, so two maps with the same
    ``bin_bp`` and ``bucket_pct`` have the same buckets.

    Parameters
    ----------
    lmap : LiquidationMap
    bucket_pct : float
        Approximate bucket width in percent of price (at least one bin).
    price_range : (low, high), optional
        Keep buckets whose centre lies in this range.

    Returns
    -------
    DataFrame
        ``price`` (bucket centre), ``low``, ``high`` (bucket edges), ``long`` (long notional in the
        bucket, counted only below the current price), ``short`` (short notional, only above),
        all in quote currency; ascending by price. A map with per-leverage books
        (``lmap.long_buckets``) adds ``long_low``, ``long_mid``, ``long_high`` and ``short_*``
        (the same sums per leverage bucket; they add up to ``long`` / ``short``).
    """
    if not bucket_pct > 0:
        raise ValueError(f"bucket_pct must be > 0, got {bucket_pct!r}")
    grid = PriceGrid(lmap.bin_bp)
    factor = max(1, round(math.log1p(bucket_pct / 100) / grid.log_base))
    cols = ["price", "low", "high", "long", "short"]
    if len(lmap.prices) == 0:
        return pd.DataFrame({c: np.zeros(0) for c in cols})
    bins = _map_bins(lmap)
    prices = np.asarray(lmap.prices, dtype=np.float64)
    long = np.where(prices < lmap.price, lmap.long, 0.0)
    short = np.where(prices > lmap.price, lmap.short, 0.0)
    group = np.floor_divide(bins, factor)
    g0 = int(group[0])
    n = int(group[-1]) - g0 + 1
    gl = np.bincount(group - g0, weights=long, minlength=n)
    gs = np.bincount(group - g0, weights=short, minlength=n)
    edges = grid.edges(g0 * factor, n, factor)
    out = pd.DataFrame(
        {
            "price": grid.centres(g0 * factor, n, factor),
            "low": edges[:-1],
            "high": edges[1:],
            "long": gl,
            "short": gs,
        }
    )
    if lmap.long_buckets is not None and lmap.short_buckets is not None:
        for side, books, keep in (
            ("long", lmap.long_buckets, prices < lmap.price),
            ("short", lmap.short_buckets, prices > lmap.price),
        ):
            for j, name in enumerate(LEVERAGE_BUCKET_NAMES):
                w = np.where(keep, np.asarray(books[j], dtype=np.float64), 0.0)
                out[f"{side}_{name}"] = np.bincount(group - g0, weights=w, minlength=n)
    if price_range is not None:
        lo, hi = price_range
        out = out.loc[(out["price"] >= lo) & (out["price"] <= hi)].reset_index(drop=True)
    return out


def top_clusters(
    lmap: LiquidationMap,
    n: int = 3,
    bucket_pct: float = 0.5,
    side: str = "both",
    min_gap_pct: float = 1.0,
) -> pd.DataFrame:
    """The ``n`` largest buckets of long mass below price and of short mass above it.

    Buckets are taken largest first, skipping any closer than ``min_gap_pct`` (in % of the
    current price) to one already taken, so neighbouring buckets of one cluster count once.

    Parameters
    ----------
    lmap : LiquidationMap
    n : int
        Clusters per side.
    bucket_pct : float
        Bucket width in percent of price (see :func:`map_buckets`).
    side : ``"long"``, ``"short"`` or ``"both"``
    min_gap_pct : float
        Minimum distance between two reported clusters of one side, in % of price.

    Returns
    -------
    DataFrame
        ``side`` (``"long"``/``"short"``), ``price`` (mass-weighted centre of the bucket's bins),
        ``low``, ``high`` (bucket edges), ``notional`` (quote), ``distance_pct`` (signed distance
        from the current price, in %); per side ordered by notional, largest first.
    """
    if side not in ("long", "short", "both"):
        raise ValueError(f"side must be 'long', 'short' or 'both', got {side!r}")
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if not min_gap_pct >= 0:
        raise ValueError(f"min_gap_pct must be >= 0, got {min_gap_pct!r}")
    buckets = map_buckets(lmap, bucket_pct)
    prices = np.asarray(lmap.prices, dtype=np.float64)
    rows: list[dict[str, Any]] = []
    gap = lmap.price * min_gap_pct / 100
    for name in ("long", "short") if side == "both" else (side,):
        ranked = buckets.loc[buckets[name] > 0].sort_values(name, ascending=False, kind="stable")
        taken: list[float] = []
        picked = []
        for _, b in ranked.iterrows():
            if all(abs(b["price"] - p) >= gap for p in taken):
                taken.append(float(b["price"]))
                picked.append(b)
                if len(picked) == n:
                    break
        mass = np.where(prices < lmap.price, lmap.long, 0.0)
        if name == "short":
            mass = np.where(prices > lmap.price, lmap.short, 0.0)
        for b in picked:
            inside = (prices >= b["low"]) & (prices < b["high"])
            w = mass[inside]
            centre = float(np.average(prices[inside], weights=w)) if w.sum() > 0 else b["price"]
            rows.append(
                {
                    "side": name,
                    "price": centre,
                    "low": float(b["low"]),
                    "high": float(b["high"]),
                    "notional": float(b[name]),
                    "distance_pct": (centre / lmap.price - 1) * 100,
                }
            )
    cols = ["side", "price", "low", "high", "notional", "distance_pct"]
    return pd.DataFrame(rows, columns=cols)
