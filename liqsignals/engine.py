"""The cohort engine: where leveraged positions were opened and where they get liquidated.

Candles are processed in time order; at candle ``t`` (known at its close):

0. **Expire.** Positions opened a window or more before ``t`` leave the book.
1. **Consume.** Long mass at price levels ``>= low`` and short mass at levels ``<= high`` of the
   price path (the previous close and this candle's range) is liquidated: it leaves the book and is
   reported as the candle's estimated long / short liquidations, in quote currency. A bin is
   reached when its geometric centre lies inside the path. Exchanges liquidate on the *mark*
   price: with ``trigger="mark"`` (the model's default) and the optional ``mark_high`` /
   ``mark_low`` inputs known for the candle, the candle's range here is the mark range (joined
   with the previous close, which is last price: see :func:`liqsignals._kernels.trigger_range`);
   a candle without them (columns absent, or NaN) uses its last-price range, and
   ``trigger="last"`` always does. Only consumption reads the mark: entries, volume shares and
   every read-out use last prices.
2. **Close.** If open interest fell, every surviving position shrinks by the same share (owners
   closing). Without open interest, positions close at ``close_half_life`` (time based, so gaps in
   the data decay correctly).
3. **Open.** With open interest, the notional of the rise ``dOI * typical`` (OI in coins; a
   quote-valued ``open_interest_value`` is converted with the close); without it, ``participation``
   of the candle's quote volume. The long share is the taker buy share of volume when
   ``taker_buy_volume`` is given, else ``r/(1+r)`` for a long/short ratio ``r``, else
   ``0.5 + 0.5*direction_tilt*(close-open)/(high-low)``. Entry prices are ``entry_samples``
   equal-probability strata of a triangular distribution over ``[low, high]`` with its mode at the
   typical price ``(high+low+close)/3``; each entry is spread over the leverage mix and lands at
   its liquidation price (see :mod:`liqsignals.model`).

Treatments of imperfect data, all documented and tested:

* zero-volume candles (freqtrade's gap fillers) are "no trading": nothing is consumed or opened,
  but expiry and decay still run (time passes);
* gaps in time need no filling: expiry and decay are time-based, and the next candle's path
  starts at the last known close;
* NaN in ``mark_high`` / ``mark_low`` means "unknown": that candle liquidates by its last-price
  range; an engine with ``trigger="mark"`` whose first block has no mark value at all logs that
  once (logger ``liqsignals.engine``, INFO) and runs on last prices;
* NaN in ``open_interest`` means "unknown": the candle uses the candles-only rules, and the next
  known value becomes the new baseline; NaN in ``taker_buy_volume`` / ``long_short_ratio`` falls
  back to the next signal in the order above;
* missing columns, NaN prices or volume, ``high < low``, prices outside ``[low, high]``,
  non-positive prices, negative volume / open interest, unsorted or duplicate dates raise
  ``ValueError`` naming the column and row.

Significance has an absolute floor too: ``cluster_min_mass`` (quote currency). A cluster must hold
at least that much (besides its ``cluster_min_share``), a band total below it is reported as 0
(so ``liq_imbalance`` of two such bands is NaN) and a liquidity-gap bin must reach it: the
rounding dust an emptied book keeps (1e-9 quote and less) is not a liquidation level.

Outputs are NaN during warm-up: until one window has passed since the first candle (the book is
incomplete before that). Because positions expire after the window, the state at ``t`` depends
only on the candles of the last window, which is what lets freqtrade's ``recursive-analysis``
pass.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from liqsignals import inputs as _inputs
from liqsignals.columns import LEVEL_COLUMNS
from liqsignals.inputs import Inputs, SingleBuffers, SingleValues, single_values
from liqsignals.levelrow import LevelRow
from liqsignals.model import LiquidationModel, resolve_model

__all__ = [
    "LEVERAGE_BUCKETS",
    "LeverageMix",
    "LiquidationEngine",
    "LiquidationMap",
    "RunResult",
    "Snapshots",
    "liquidation_levels",
]

logger = logging.getLogger(__name__)

#: names that moved to another module: old name -> new home (importable here with a
#: DeprecationWarning for one release)
_MOVED = {"prepare_inputs": "liqsignals.inputs"}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        import warnings

        warnings.warn(
            f"liqsignals.engine.{name} moved to {_MOVED[name]}.{name}; import it from there "
            "(the old path goes away in the next release)",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(_inputs, name)
    raise AttributeError(f"module 'liqsignals.engine' has no attribute {name!r}")


#: leverage buckets of the ``liq_*_band_low/_mid/_high`` columns and the per-bucket books:
#: name -> (lowest, highest) leverage, inclusive (a leverage of 10.5x is medium)
LEVERAGE_BUCKETS: dict[str, tuple[float, float]] = {
    "low": (0.0, 10.0),
    "mid": (10.0 + 1e-9, 25.0),
    "high": (25.0 + 1e-9, math.inf),
}


def leverage_buckets(leverages: np.ndarray) -> np.ndarray:
    """Bucket index (0 low, 1 medium, 2 high; :data:`LEVERAGE_BUCKETS`) of each leverage."""
    lev = np.asarray(leverages, dtype=np.float64)
    return np.where(lev <= 10.0, 0, np.where(lev <= 25.0, 1, 2)).astype(np.int64)


# the kernel writes its outputs in the order of columns.LEVEL_COLUMNS (see _kernels.O_*)
_N_CORE = 6  # the first six need no summaries


def new_output(n: int, n_out: int, order: str) -> np.ndarray:
    """The kernel's output buffer for ``n`` candles. The kernel writes every cell of the rows it
    returns (all :data:`~liqsignals._kernels.N_OUT` columns with summaries, the first six
    without, and those are all a run hands out), so a long run starts from uninitialised memory
    (one pass over it less); a short one, whose spare cells a caller may copy along, starts
    from NaN."""
    if n > 2:
        return np.empty((n, n_out), order=order)  # type: ignore[call-overload]
    return np.full((n, n_out), np.nan, order=order)  # type: ignore[call-overload]


def _kernels() -> Any:
    from liqsignals import _kernels  # numba: imported on first use only

    return _kernels


# ----------------------------------------------------------------------------- run inputs/outputs
@dataclass(frozen=True)
class LeverageMix:
    """Liquidation-price factors per leverage and their weights.

    A position opened at ``entry`` with leverage ``j`` is liquidated at ``entry *
    long_factors[j]`` (longs) or ``entry * short_factors[j]`` (shorts); ``weights[j]`` is that
    leverage's share of new positions. :meth:`of` gives a model's own mix; a different mix (for
    example several exchanges, each with its own margin tiers: :mod:`liqsignals.multi`) is passed
    to :class:`LiquidationEngine` as ``mix=``.
    """

    long_factors: np.ndarray
    short_factors: np.ndarray
    weights: np.ndarray

    def __post_init__(self) -> None:
        fl = np.ascontiguousarray(self.long_factors, dtype=np.float64)
        fs = np.ascontiguousarray(self.short_factors, dtype=np.float64)
        w = np.ascontiguousarray(self.weights, dtype=np.float64)
        if fl.ndim != 1 or fl.shape != fs.shape or fl.shape != w.shape or fl.size == 0:
            raise ValueError(
                "LeverageMix: long_factors, short_factors and weights must be 1-d arrays of one "
                f"non-zero length, got shapes {fl.shape}, {fs.shape}, {w.shape}"
            )
        for name, arr in (("long_factors", fl), ("short_factors", fs)):
            if not (np.all(np.isfinite(arr)) and np.all(arr > 0)):
                raise ValueError(f"LeverageMix: {name} must be finite and > 0")
        if not (np.all(np.isfinite(w)) and np.all(w >= 0)):
            raise ValueError("LeverageMix: weights must be finite and >= 0")
        object.__setattr__(self, "long_factors", fl)
        object.__setattr__(self, "short_factors", fs)
        object.__setattr__(self, "weights", w)

    @classmethod
    def of(cls, model: LiquidationModel) -> LeverageMix:
        """The model's own mix (:meth:`LiquidationModel.liquidation_factors`)."""
        fl, fs, w = model.liquidation_factors()
        return cls(fl, fs, w)

    def __len__(self) -> int:
        return int(self.weights.shape[0])


@dataclass(frozen=True)
class Snapshots:
    """Which candles' books :meth:`LiquidationEngine.run` copies out (for heatmaps).

    ``rows``: sorted candle indices into the run's inputs (repeats allowed); the books cover the
    absolute price bins ``k_lo .. k_lo + width - 1`` (see :meth:`LiquidationModel.bin_to_price`).
    """

    rows: np.ndarray
    k_lo: int
    width: int

    def __post_init__(self) -> None:
        rows = np.ascontiguousarray(self.rows, dtype=np.int64)
        if rows.ndim != 1:
            raise ValueError(f"Snapshots.rows must be 1-d, got shape {rows.shape}")
        if rows.size and np.any(np.diff(rows) < 0):
            raise ValueError("Snapshots.rows must be sorted")
        if int(self.width) < 0:
            raise ValueError(f"Snapshots.width must be >= 0, got {self.width}")
        object.__setattr__(self, "rows", rows)
        object.__setattr__(self, "k_lo", int(self.k_lo))
        object.__setattr__(self, "width", int(self.width))


@dataclass
class RunResult:
    """Output of :meth:`LiquidationEngine.run`.

    ``values``: one row per input candle, one column per name in ``columns`` (NaN during
    warm-up); ``snap_long`` / ``snap_short``: one row per :class:`Snapshots` row, the real mass
    (quote) per bin as float32 (empty ``(0, 0)`` arrays without snapshots).
    """

    values: np.ndarray
    columns: tuple[str, ...]
    snap_long: np.ndarray
    snap_short: np.ndarray

    def to_frame(self, index: pd.Index) -> pd.DataFrame:
        """``values`` as a DataFrame on ``index`` (one entry per candle)."""
        if len(index) != self.values.shape[0]:
            raise ValueError(
                f"index has {len(index)} entries for {self.values.shape[0]} result rows"
            )
        return pd.DataFrame(self.values, index=index, columns=list(self.columns))


# ----------------------------------------------------------------------------- the engine
@dataclass
class LiquidationMap:
    """Estimated liquidation mass per price bin at one instant (see :meth:`snapshot`).

    ``prices`` are bin centres, ``long`` / ``short`` the quote notional liquidated if price reaches
    the bin, ``price`` the close of the candle at ``time``. ``long_buckets`` / ``short_buckets``
    (``(3, len(prices))`` or ``None``): the same books split by leverage bucket (rows low,
    medium, high: :data:`LEVERAGE_BUCKETS`); each column sums to ``long`` / ``short``.
    """

    time: pd.Timestamp | None
    price: float
    prices: np.ndarray
    long: np.ndarray
    short: np.ndarray
    bin_bp: float
    long_buckets: np.ndarray | None = None
    short_buckets: np.ndarray | None = None

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"price": self.prices, "long": self.long, "short": self.short})


class LiquidationEngine:
    """Incremental cohort engine for live bots: one instance per market.

    ``update(candle)`` processes one closed candle and returns its row (the same values, bit for
    bit, as :func:`liquidation_levels` on the whole history); ``update_many(df)`` processes a block;
    ``snapshot()`` gives the current book; ``state_dict()`` / ``from_state()`` and ``save()`` /
    ``load()`` persist it so a restarted bot resumes without recomputing history; pickling and
    ``copy.deepcopy`` go through ``state_dict()``. One engine serves one thread at a time (its
    candles come in order); give each thread its own, or a lock.

    >>> eng = LiquidationEngine(LiquidationModel(window="1d"))                # doctest: +SKIP
    >>> row = eng.update({"date": "2025-01-01 00:00", "open": 1, "high": 1.01, "low": 0.99,
    ...                   "close": 1.0, "volume": 1000})                        # doctest: +SKIP
    """

    def __init__(
        self,
        model: LiquidationModel | None = None,
        *,
        summaries: bool = True,
        mix: LeverageMix | None = None,
        **params: Any,
    ) -> None:
        self.model = resolve_model(model, params)
        self.summaries = summaries
        # mix: liquidation-price factors and weights of a leverage mix other than the model's
        # own (several exchanges, each with its own margin tiers: liqsignals.multi)
        self.mix = mix if mix is not None else LeverageMix.of(self.model)
        self._k = _kernels()
        self._set_mix(np.log(self.mix.long_factors), np.log(self.mix.short_factors))
        self._logb = self.model.bin_log_width()
        # the price range a candle's steps may touch, as factors of its low and high
        # (deposits at the extreme leverages, the readout's band and cluster range)
        reach = max(self.model.cluster_range_pct, self.model.band_pct) / 100.0
        self._reach_lo = min(float(self.mix.long_factors.min()), 1 - reach)
        self._reach_hi = max(float(self.mix.short_factors.max()), 1 + reach)
        self._prm = self._params()
        self._window_ns = int(self.model.window_td.value)
        self._cols: tuple[str, ...] = LEVEL_COLUMNS if summaries else LEVEL_COLUMNS[:_N_CORE]
        self._col_index = {name: i for i, name in enumerate(self._cols)}
        self._out1 = np.empty((1, self._k.N_OUT))
        self._no_rows = np.zeros(0, dtype=np.int64)
        self._no_snap = self._k.Snap(
            self._no_rows, 0, np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32)
        )
        self._one = SingleBuffers()
        self._one_cd = self._candles(self._one.inputs)
        self._first_date: int | None = None
        self._state = self._k.new_state()
        self._long = self._side(self._k.LONG, np.zeros(0), np.zeros(0, np.int64))
        self._short = self._side(self._k.SHORT, np.zeros(0), np.zeros(0, np.int64))
        self._coh = self._cohorts(0)
        self._work = self._k.new_work(0, int(self.model.entry_samples))
        self._last_close = math.nan
        self._run_one: Any = None  # see _table
        # run_one's address table and the objects it points into (see _table)
        self._tab: np.ndarray | None = None
        self._tab_of: tuple[Any, ...] = ()
        self._state_tab: np.ndarray | None = None  # see _state_table
        self._state_tab_of: tuple[Any, ...] = ()
        self._prm_values = np.array(self._prm, dtype=np.float64)

    # ------------------------------------------------------------------ internals
    def _set_mix(self, f_long_log: np.ndarray, f_short_log: np.ndarray) -> None:
        """The kernel's leverage mix: logs of the liquidation factors, the weights as one row,
        each leverage's bucket and empty per-bucket books."""
        empty = np.zeros((self._k.N_BUCKETS, 0))
        self._kmix = self._k.Mix(
            np.ascontiguousarray(f_long_log, dtype=np.float64),
            np.ascontiguousarray(f_short_log, dtype=np.float64),
            np.ascontiguousarray(self.mix.weights[None, :]),
            int(self.model.entry_samples),
            self._mix_buckets(),
            empty,
            empty.copy(),
        )

    def _mix_buckets(self) -> np.ndarray:
        """Each leverage's bucket: the model's leverages when the mix is the model's own, else
        the leverage implied by the long factor and the model's maintenance margin rate
        (``factor = 1 - 1/L + mmr``), rounded to a tenth."""
        own = self.model.liquidation_factors()[0]
        fl = self.mix.long_factors
        if self.model.leverages is not None and own.shape == fl.shape and np.allclose(own, fl):
            return leverage_buckets(np.asarray(self.model.leverages, dtype=np.float64))
        mmr = float(self.model.maintenance_margin_rate)
        with np.errstate(divide="ignore"):
            lev = np.round(1.0 / np.maximum(1.0 - fl + mmr, 1e-12), 1)
        return leverage_buckets(lev)

    def _side(self, sign: int, book: np.ndarray, wipe: np.ndarray, acc: Any = None) -> Any:
        acc = self._k.new_side_acc(sign) if acc is None else acc
        return self._k.Side(book, wipe, acc, sign)

    def _cohorts(self, cap: int) -> Any:
        z = np.zeros
        return self._k.Cohorts(
            z(cap, np.int64), z(cap, np.int64), z((cap, int(self.model.entry_samples))),
            z((cap, 2 * len(self.mix))), z(cap, np.int64),
        )  # fmt: skip

    @staticmethod
    def _candles(inp: Inputs) -> Any:
        """The kernel's candle arrays (contiguous, of its dtypes: copies only of arrays that
        are not, as in an :class:`Inputs` built by hand from a matrix's columns)."""
        f64 = np.float64
        return _kernels().Candles(
            np.ascontiguousarray(inp.dates, dtype=np.int64),
            *(np.ascontiguousarray(a, dtype=f64) for a in (
                inp.open, inp.high, inp.low, inp.close, inp.volume, inp.oi, inp.taker_buy,
                inp.ls_ratio, inp.mark_high, inp.mark_low,
            )),
        )  # fmt: skip

    def _params(self) -> Any:
        m = self.model
        hl = m.half_life_td
        return self._k.Params(
            inv_logb=1.0 / self._logb,
            logb=self._logb,
            window_ns=float(m.window_td.value),
            half_life_ns=float(hl.value) if hl is not None else 0.0,
            participation=float(m.participation),
            tilt=float(m.direction_tilt),
            decay_with_oi=1.0 if m.decay_with_open_interest else 0.0,
            band=m.band_pct / 100.0,
            range=m.cluster_range_pct / 100.0,
            dense=float(m.cluster_dense_factor),
            min_share=float(m.cluster_min_share),
            gap_factor=float(m.gap_factor),
            mag_power=float(m.magnet_distance_power),
            max_gap_bins=float(m.cluster_max_gap_bins),
            min_mass=float(m.cluster_min_mass),
            summaries=1.0 if self.summaries else 0.0,
            reach_lo=self._reach_lo,
            reach_hi=self._reach_hi,
            mark=1.0 if m.trigger == "mark" else 0.0,
        )

    @property
    def _st(self) -> Any:
        return self._state[0]

    def _needed_bins(self, inp: Inputs) -> tuple[int, int]:
        """Absolute bin range every step over ``inp`` may touch (deposits, consumption, scans)."""
        lo_price = float(inp.low.min()) * self._reach_lo
        hi_price = float(inp.high.max()) * self._reach_hi
        if not math.isnan(self._last_close):
            lo_price = min(lo_price, self._last_close)
            hi_price = max(hi_price, self._last_close)
        return (
            math.floor(math.log(lo_price) / self._logb) - 2,
            math.floor(math.log(hi_price) / self._logb) + 2,
        )

    def _ensure_book(self, k_lo: int, k_hi: int) -> None:
        nb = self._long.book.shape[0]
        k0 = int(self._st["k0"])
        if nb and k0 <= k_lo and k_hi < k0 + nb:
            return
        if nb:
            k_lo = min(k_lo, k0)
            k_hi = max(k_hi, k0 + nb - 1)
        margin = max(16, (k_hi - k_lo) // 4) if self._first_date is not None else 2
        new_k0 = k_lo - margin
        new_nb = k_hi - k_lo + 1 + 2 * margin
        sides = []
        for side in (self._long, self._short):
            book = np.zeros(new_nb)
            wipe = np.full(new_nb, -1, dtype=np.int64)
            if nb:
                off = k0 - new_k0
                book[off : off + nb] = side.book
                wipe[off : off + nb] = side.wipe
            sides.append(self._side(side.sign, book, wipe, side.acc))
        self._long, self._short = sides
        books = []
        for old in (self._kmix.bk_long, self._kmix.bk_short):
            new = np.zeros((self._k.N_BUCKETS, new_nb))
            if nb:
                off = k0 - new_k0
                new[:, off : off + nb] = old
            books.append(new)
        self._kmix = self._kmix._replace(bk_long=books[0], bk_short=books[1])
        self._state[0]["k0"] = new_k0
        self._work = self._k.new_work(new_nb, int(self.model.entry_samples))

    def _live_slots(self) -> np.ndarray:
        cap = self._coh.date.shape[0]
        size = int(self._st["size"])
        return (int(self._st["head"]) + np.arange(size)) % max(cap, 1)

    def _ensure_cohorts(self, dates: np.ndarray) -> None:
        window = int(self.model.window_td.value)
        live = self._coh.date[self._live_slots()]
        all_dates = np.concatenate([live, dates])
        first_new = live.shape[0]
        start = np.searchsorted(all_dates, all_dates[first_new:] - window, side="right")
        need = (
            int(np.max(np.arange(first_new, all_dates.shape[0]) - start + 1)) if len(dates) else 0
        )
        cap = self._coh.date.shape[0]
        # one spare slot: a candle is added before the next update's expiry runs; the kernel
        # asks for it before the first candle's expiry too (a full ring must grow)
        if need + 1 <= cap and first_new + 1 <= cap:
            return
        idx = self._live_slots()
        grown = self._cohorts(max(need + 1, 2 * cap, 8))
        for new, old in zip(grown, self._coh, strict=True):
            new[: idx.size] = old[idx]
        self._coh = grown
        self._state[0]["head"] = 0

    def _call(self, cd: Any, mix: Any, out: np.ndarray, snap: Any) -> None:
        k = self._k
        tab = self._state_table().copy()
        # the arrays the table points into stay alive through the call (with cd, mix.weights
        # and snap, held here), even if another thread replaced them on the engine meanwhile
        keep = self._state_tab_of
        k.fill_run(tab, cd, mix, None, snap)
        done = k.run_candles(tab, out)
        del keep
        if done != cd.dates.shape[0]:  # the arrays were sized for these candles beforehand
            raise RuntimeError(f"engine arrays too small after {done} of {cd.dates.shape[0]}")

    # ------------------------------------------------------------------ running
    def run(
        self,
        inputs: Inputs,
        *,
        snapshots: Snapshots | None = None,
        weights: np.ndarray | None = None,
        order: str = "C",
    ) -> RunResult:
        """Process validated inputs (:func:`~liqsignals.inputs.prepare_inputs`), newer than any
        candle already processed.

        ``snapshots`` selects candles whose books are copied out; ``weights`` (``(n, n_lev)``,
        one row per candle) replaces the mix's leverage weights candle by candle (several
        exchanges weighted by their share of each candle's volume). ``order``: the memory
        layout of ``values``, ``"C"`` (row-major) or ``"F"`` (column-major: what a DataFrame
        holds, so one can wrap it without a copy); the values are the same.
        """
        if order not in ("C", "F"):
            raise ValueError(f"order must be 'C' or 'F', got {order!r}")
        out, snap_long, snap_short = self._advance(inputs, snapshots, weights, order)
        return RunResult(
            values=out[:, : len(self._cols)],
            columns=self._cols,
            snap_long=snap_long,
            snap_short=snap_short,
        )

    def _check_order(self, first_date: int) -> None:
        st = self._st
        if st["has_prev"] and first_date <= st["prev_date"]:
            raise ValueError(
                f"candle {pd.Timestamp(int(first_date), tz='UTC')} is not newer than the last "
                f"processed candle {pd.Timestamp(int(st['prev_date']), tz='UTC')}"
            )

    def _advance(
        self,
        inp: Inputs,
        snapshots: Snapshots | None,
        weights: np.ndarray | None,
        order: str = "C",
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        k = self._k
        n = len(inp)
        mix = self._kmix
        n_lev = len(self.mix)
        if weights is not None:
            if weights.shape != (n, n_lev):
                raise ValueError(f"weights must have shape {(n, n_lev)}, got {weights.shape}")
            mix = mix._replace(weights=np.ascontiguousarray(weights, dtype=np.float64))
        if n:
            self._check_order(int(inp.dates[0]))
        # F: at least two rows, as numba types a one-row array as row-major, and one layout
        # (one compiled kernel) serves every column-major call; the kernel fills rows 0..n-1
        buf = new_output(max(n, 2) if order == "F" else n, k.N_OUT, order)
        out = buf[:n]
        if snapshots is None:
            snapshots = Snapshots(self._no_rows, 0, 0)
        rows = snapshots.rows
        if rows.size and (rows[0] < 0 or rows[-1] >= n):
            raise ValueError(f"Snapshots.rows must lie in [0, {n}), the run's candles")
        snap_long = np.zeros((rows.shape[0], snapshots.width), dtype=np.float32)
        snap_short = np.zeros_like(snap_long)
        if n == 0:
            return out, snap_long, snap_short
        self._ensure_book(*self._needed_bins(inp))
        if n > 1 or int(self._st["size"]) + 1 > self._coh.date.shape[0]:
            self._ensure_cohorts(inp.dates)
        snap = k.Snap(rows, snapshots.k_lo, snap_long, snap_short)
        # the bucket books of the mix as grown by _ensure_book (weights as chosen above)
        mix = self._kmix if weights is None else self._kmix._replace(weights=mix.weights)
        self._call(self._candles(inp), mix, buf, snap)
        if self._first_date is None:  # once the first candles are in (a failed call: still None)
            self._first_date = int(inp.dates[0])
            self._note_trigger(inp)
        self._last_close = float(inp.close[-1])
        warm = inp.dates < self._first_date + self._window_ns
        out[warm] = np.nan
        return out, snap_long, snap_short

    def _note_trigger(self, inp: Inputs) -> None:
        """Log once (the engine's first block) when the model asks for mark-price triggers but
        the inputs carry no mark price: the engine then liquidates on last prices."""
        if self.model.trigger != "mark":
            return
        if not (np.isfinite(inp.mark_low).any() and np.isfinite(inp.mark_high).any()):
            logger.info(
                "trigger='mark' but the candles carry no mark price (mark_high/mark_low absent "
                "or NaN from %s): liquidations trigger on last-price highs/lows",
                pd.Timestamp(int(inp.dates[0]), tz="UTC"),
            )

    # ------------------------------------------------------------------ public API
    @property
    def columns(self) -> tuple[str, ...]:
        """Names of the output columns, in the order of :attr:`RunResult.values` and
        :meth:`update_row` (all of :data:`~liqsignals.columns.LEVEL_COLUMNS`, or only the first
        six with ``summaries=False``)."""
        return self._cols

    def update_many(self, df: pd.DataFrame) -> pd.DataFrame:
        """Process a block of new candles (after any already processed); one row per candle."""
        # column-major rows: the frame takes them as its block without copying them
        values = self.run(_inputs.prepare_inputs(df), order="F").values
        if values.shape[1] < self._k.N_OUT or values.shape[0] < 2:
            # a view of part of the kernel's buffer: keep only these rows and columns
            values = values.copy(order="F")
        return pd.DataFrame(values, index=df.index, columns=list(self._cols), copy=False)

    def update(self, candle: Mapping[str, Any] | pd.Series) -> LevelRow:
        """Process one closed candle; returns ``{column: value}`` as in the batch output, as a
        read-only :class:`~liqsignals.levelrow.LevelRow` mapping (``row[name]``, ``dict(row)``,
        ``row.to_dict()``; it keeps its own copy of the row).

        ``candle`` maps ``date, open, high, low, close, volume`` (and optionally the extra input
        columns) to values; a Series named by its date works too. Validation is the same as for
        frames.
        """
        # the kernel's row holds every column; the first len(self._cols) are this engine's
        return LevelRow(self._cols, self._col_index, self._row_values(single_values(candle)).copy())

    def update_row(self, candle: Mapping[str, Any] | pd.Series) -> np.ndarray:
        """:meth:`update` returning the row as an array in :attr:`columns` order.

        This is the live-bot path, kept lean (a few microseconds of Python around the kernel).
        The array is a view of a buffer reused by the next call: copy it to keep it."""
        return self._row(candle)[: len(self._cols)]

    def _row(self, candle: Mapping[str, Any] | pd.Series) -> np.ndarray:
        return self._row_values(single_values(candle))

    def update_values(self, values: SingleValues) -> np.ndarray:
        """:meth:`update_row` for a candle validated by :func:`liqsignals.inputs.single_values`
        (``FeatureStream`` validates once and hands the tuple on)."""
        return self._row_values(values)[: len(self._cols)]

    def _row_values(self, vals: SingleValues) -> np.ndarray:
        fd = self._first_date
        if fd is not None:
            # the kernel checks order and room itself (a few Python checks less per candle)
            tab = self._tab
            of = self._tab_of
            if (
                tab is None
                or of[0] is not self._state
                or of[1] is not self._long
                or of[2] is not self._short
                or of[3] is not self._coh
                or of[4] is not self._work
                or of[5] is not self._kmix
            ):
                tab = self._table()
            done = self._run_one(tab, vals[0], vals[1:], fd + self._window_ns)
            if done == 1:
                self._last_close = vals[4]
                return self._out1[0]
        inp = self._one.inputs
        inp.dates[0] = vals[0]
        for arr, v in zip(
            (inp.open, inp.high, inp.low, inp.close, inp.volume, inp.oi, inp.taker_buy),
            vals[1:8],
            strict=True,
        ):
            arr[0] = v
        inp.ls_ratio[0] = vals[8]
        inp.mark_high[0] = vals[9]
        inp.mark_low[0] = vals[10]
        # the first candle, or one the arrays must grow for, or one not newer (this raises)
        # column-major like the one-candle kernel (one compiled layout), copied into one row
        return self._advance(inp, None, None, "F")[0][0].copy()

    def _state_table(self) -> np.ndarray:
        """The state's part of the kernel's address table (:func:`_kernels.make_table`) for the
        current arrays; kept with the objects it points into, so they live as long as it does,
        and a replaced one (grown arrays, a restored state) is noticed by identity."""
        of = (self._state, self._long, self._short, self._coh, self._work, self._kmix)
        kept = self._state_tab_of
        if (
            self._state_tab is None
            or kept[0] is not of[0]
            or kept[1] is not of[1]
            or kept[2] is not of[2]
            or kept[3] is not of[3]
            or kept[4] is not of[4]
            or kept[5] is not of[5]
        ):
            tab = np.zeros(self._k.N_TABLE, dtype=np.int64)
            self._k.fill_table(tab, *of[:4], self._prm_values, self._kmix, self._work)
            self._state_tab, self._state_tab_of = tab, of
        return self._state_tab

    def _table(self) -> np.ndarray:
        """The address table of :func:`_kernels.run_one`: the state's part and the one-candle
        buffers (see :meth:`_state_table`)."""
        k = self._k
        of = (self._state, self._long, self._short, self._coh, self._work, self._kmix)
        tab = self._state_table().copy()
        k.fill_run(tab, self._one_cd, self._kmix, self._out1, self._no_snap)
        if self._run_one is None:
            run = k.run_one
            args = (tab, 0, (1.0,) * 10, 0)
            from numba import typeof

            sig = tuple(typeof(a) for a in args)
            if sig not in run.overloads:
                run.compile(sig)
            # the compiled entry point: the dispatcher's typing of every call is skipped
            self._run_one = run.overloads[sig].entry_point
        self._tab, self._tab_of = tab, of
        return tab

    @property
    def state_nbytes(self) -> int:
        """Bytes held by the state arrays (book, wipe marks, cohort ring, scalar records)."""
        arrays = [self._state, *self._long[:3], *self._short[:3], *self._coh]
        arrays += [self._kmix.bk_long, self._kmix.bk_short]
        return int(sum(a.nbytes for a in arrays))

    @property
    def last_date(self) -> pd.Timestamp | None:
        """Date of the last processed candle (``None`` before the first)."""
        st = self._st
        if not st["has_prev"]:
            return None
        return pd.Timestamp(int(st["prev_date"]), tz="UTC")

    @property
    def candles_processed(self) -> int:
        return int(self._st["seq"])

    def totals(self) -> dict[str, float]:
        """Cumulative mass accounting in quote currency (for checks): opened, liquidated,
        closed, expired and surviving, per side. ``opened = surviving + liquidated + closed +
        expired`` up to floating-point rounding."""
        s = float(self._st["scale"])
        out: dict[str, float] = {}
        for name, side in (("long", self._long), ("short", self._short)):
            acc = side.acc[0]
            for key in ("opened", "liquidated", "closed", "expired"):
                out[f"{key}_{name}"] = float(acc[key])
            out[f"surviving_{name}"] = float(side.book.sum() * s)
        return out

    def snapshot(self) -> LiquidationMap:
        """Current estimated liquidation mass per price bin (only bins that hold mass, plus the
        bins between them)."""
        s = float(self._st["scale"])
        book_long, book_short = self._long.book, self._short.book
        nz = np.flatnonzero(book_long + book_short > 0)
        k0 = int(self._st["k0"])
        if nz.size:
            a, b = int(nz[0]), int(nz[-1]) + 1
        else:
            a = b = 0
        bins = np.arange(k0 + a, k0 + b)
        return LiquidationMap(
            time=self.last_date,
            price=self._last_close,
            prices=self.model.bin_to_price(bins),
            long=book_long[a:b] * s,
            short=book_short[a:b] * s,
            bin_bp=self.model.bin_bp,
            long_buckets=self._kmix.bk_long[:, a:b] * s,
            short_buckets=self._kmix.bk_short[:, a:b] * s,
        )

    # ------------------------------------------------------------------ persistence
    def state_arrays(self) -> dict[str, np.ndarray]:
        """The state arrays by name (views, not copies; see :meth:`state_dict`)."""
        out = {"state": self._state}
        for name, side in (("long", self._long), ("short", self._short)):
            out[f"{name}_book"] = side.book
            out[f"{name}_wipe"] = side.wipe
            out[f"{name}_acc"] = side.acc
        for name, arr in zip(self._coh._fields, self._coh, strict=True):
            out[f"coh_{name}"] = arr
        out["long_buckets"] = self._kmix.bk_long
        out["short_buckets"] = self._kmix.bk_short
        return out

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: model parameters, the leverage mix as used (logs of
        the liquidation factors, weights) and the state arrays (copies)."""
        state: dict[str, Any] = {k: v.copy() for k, v in self.state_arrays().items()}
        state["model"] = self.model.to_dict()
        state["summaries"] = self.summaries
        mix = self._kmix
        state["factors"] = np.stack([mix.f_long_log, mix.f_short_log, mix.weights[0]])
        state["first_date"] = self._first_date
        state["last_close"] = self._last_close
        return state

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any]]]:
        """Pickling and ``copy.deepcopy`` go through :meth:`state_dict`: the copy is an engine
        of its own (its own arrays, and a kernel table pointing into them), resuming where this
        one stands."""
        return (type(self).from_state, (self.state_dict(),))

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> LiquidationEngine:
        """Rebuild an engine from :meth:`state_dict` output."""
        params = dict(state["model"])
        for key in ("leverages", "leverage_weights"):
            if params.get(key) is not None:
                params[key] = tuple(params[key])
        logs_long, logs_short, weights = np.asarray(state["factors"], dtype=np.float64)
        mix = LeverageMix(np.exp(logs_long), np.exp(logs_short), weights)
        eng = cls(LiquidationModel(**params), summaries=bool(state["summaries"]), mix=mix)
        eng._set_mix(logs_long, logs_short)  # the logs as used, bit for bit
        arr = {k: np.array(state[k], copy=True) for k in eng.state_arrays()}
        eng._state = arr["state"]
        k = eng._k
        eng._long = eng._side(k.LONG, arr["long_book"], arr["long_wipe"], arr["long_acc"])
        eng._short = eng._side(k.SHORT, arr["short_book"], arr["short_wipe"], arr["short_acc"])
        eng._coh = k.Cohorts(*(arr[f"coh_{name}"] for name in k.Cohorts._fields))
        eng._kmix = eng._kmix._replace(bk_long=arr["long_buckets"], bk_short=arr["short_buckets"])
        eng._work = k.new_work(eng._long.book.shape[0], int(eng.model.entry_samples))
        fd = state.get("first_date")
        eng._first_date = None if fd is None else int(fd)
        eng._last_close = float(state.get("last_close", math.nan))
        return eng

    def save(self, path: str | Path) -> None:
        """Save the state to an ``.npz`` file, written atomically (unique temporary name,
        fsync, replace; see :mod:`liqsignals.persist`)."""
        from liqsignals.persist import save_engine

        save_engine(self, path)

    @classmethod
    def load(
        cls,
        path: str | Path,
        model: LiquidationModel | None = None,
        *,
        mix: LeverageMix | None = None,
    ) -> LiquidationEngine:
        """Load a state saved by :meth:`save`.

        With ``model`` (and ``mix`` for an engine built with one) the file must come from an
        engine with that model and leverage mix, else ``ValueError``. Without ``model`` the
        file's own model and mix are used, whatever they are. A corrupt, truncated or
        hand-edited file raises ``ValueError`` (see :mod:`liqsignals.persist`).
        """
        from liqsignals.persist import load_engine

        return load_engine(path, model, mix)


def liquidation_levels(
    df: pd.DataFrame, model: LiquidationModel | None = None, **params: Any
) -> pd.DataFrame:
    """Estimated liquidations per candle and a summary of the liquidation book.

    Parameters
    ----------
    df : candles with ``date, open, high, low, close, volume``; optional ``open_interest`` (coins)
        or ``open_interest_value`` (quote), ``taker_buy_volume``, ``long_short_ratio``,
        ``mark_high`` and ``mark_low`` (mark-price range of each candle: see ``trigger``).
    model : a :class:`~liqsignals.LiquidationModel`; ``**params`` override its fields.

    Returns
    -------
    DataFrame aligned to ``df.index``; NaN during warm-up (the first window). Columns (see
    :data:`liqsignals.COLUMNS` for the full table):

    liq_long_liquidated, liq_short_liquidated : quote
        estimated notional of longs / shorts liquidated in the candle.
    liq_long_total, liq_short_total : quote
        estimated long / short notional still open in the window.
    liq_long_opened, liq_short_opened : quote
        notional the model opened in the candle.
    liq_long_band, liq_short_band : quote
        long liquidation mass below price / short above, within ``band_pct``.
    liq_long_cluster_* , liq_short_cluster_* : price / quote
        nearest significant cluster below (longs) / above (shorts): ``price`` (mass-weighted
        centre), ``low``, ``high`` (edges), ``size``.
    liq_magnet_price, liq_magnet_side, liq_magnet_score : price, -1/+1, 1/%
        the cluster with the highest share-over-distance score; side -1 = longs below.
    liq_gap_above_pct, liq_gap_below_pct : %
        distance from the close to the first meaningful mass above / below.
    liq_long_band_low / _mid / _high, liq_short_band_* : quote
        the band totals split by the leverage the positions were opened with (low <= 10x,
        medium above 10x up to 25x, high above 25x: :data:`LEVERAGE_BUCKETS`); they sum to the
        band.

    Example
    -------
    >>> levels = liquidation_levels(candles, window="1w")               # doctest: +SKIP
    >>> levels[["liq_long_liquidated", "liq_short_liquidated"]].sum()   # doctest: +SKIP
    """
    engine = LiquidationEngine(resolve_model(model, params))
    return engine.update_many(df)
