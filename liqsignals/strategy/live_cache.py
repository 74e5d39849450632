"""The dry-run / live path: one :class:`~liqsignals.features.FeatureStream` per pair, fed only
the candles it has not seen.

A running bot hands the strategy its whole kline cache (~1,700 candles) on every new candle.
:class:`LiveFeatureCache` compares that frame with the one it saw last: when the frame continues
the same history (candles appended, old ones dropped at the front), only the new candles go to
the pair's stream; any other change (restart, gap, a candle replaced, an input column gained or
lost) rebuilds the stream from the whole frame.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from liqsignals.features import FeatureStream
from liqsignals.inputs import CHECKED_COLUMNS
from liqsignals.strategy.live_state import StateStore, StateStream
from liqsignals.strategy.signals import join_columns

__all__ = [
    "ENGINE_INPUTS",
    "LiqStreamStats",
    "LiveFeatureCache",
    "LiveJoin",
    "PairCache",
    "StateHooks",
    "ns_dates",
    "state_hooks",
    "unchanged_prefix",
]

logger = logging.getLogger(__name__)

#: the engine's input columns, in the order the live path reads them
ENGINE_INPUTS = tuple(c for c in CHECKED_COLUMNS if c != "date")


@dataclass
class LiqStreamStats:
    """How the strategy computed one pair's ``liq_*`` columns in dry-run / live.

    ``rebuilds`` counts full computations (the first frame, and every time the history changed:
    restart, gap, replaced candles), ``updates`` the calls that fed new candles to the existing
    engine, ``unchanged`` the calls with no new candle. ``candles_fed`` is the total number of
    candles given to the engine, ``last_fed`` the number in the latest call.
    """

    rebuilds: int = 0
    restored: int = 0
    history_used: int = 0
    updates: int = 0
    unchanged: int = 0
    candles_fed: int = 0
    last_fed: int = 0
    last_mode: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class StateHooks:
    """The pair state (:mod:`liqsignals.strategy.live_state`) for :meth:`LiveFeatureCache.features`:
    where the files live, how to make a fresh :class:`StateStream`, the pair's stored history
    (``history(pair)``: a candle frame or ``None``) and the candle length in nanoseconds."""

    store: StateStore
    build: Callable[[], StateStream]
    history: Callable[[str], pd.DataFrame | None]
    tf_ns: int


@dataclass
class PairCache:
    """One pair's stream and the frame it last saw."""

    stream: FeatureStream | StateStream
    features: np.ndarray  # feature rows of the inputs last seen, row for row
    names: list[str]  # feature column names
    dates: np.ndarray  # int64 ns dates of the inputs last seen
    values: np.ndarray  # their engine input values, to detect rewritten history
    columns: tuple[str, ...]  # names of those values
    # ``features`` is ``buffer[end - len(features) : end]`` when ``buffer`` is set: new rows
    # go into its spare rows instead of a copy of the whole block on every candle
    buffer: np.ndarray | None = None
    end: int = 0
    # a frame over the whole ``buffer`` (no copy), alive while the buffer is: every frame handed
    # out on its rows shares its copy-on-write references (LiveFeatureCache.feature_frame)
    owner: pd.DataFrame | None = None


#: spare rows of a pair's feature buffer (a copy of the block every this many candles)
SPARE_ROWS = 64


def _append_rows(cache: PairCache, start: int, added: np.ndarray) -> None:
    """``cache.features`` becomes its last ``start`` rows followed by ``added``."""
    feats, n_new = cache.features, added.shape[0]
    buf = cache.buffer
    if (
        buf is not None
        and cache.end + n_new <= buf.shape[0]
        and added.shape[1:] == buf.shape[1:]
        and start <= len(feats)
    ):
        buf[cache.end : cache.end + n_new] = added
        cache.end += n_new
        cache.features = buf[cache.end - start - n_new : cache.end]
        return
    total = start + n_new
    buf = np.empty((total + SPARE_ROWS, *added.shape[1:]), dtype=np.float64)
    buf[:start] = feats[len(feats) - start :]
    buf[start:total] = added
    cache.buffer, cache.end = buf, total
    cache.owner = shared_frame(buf)
    cache.features = buf[:total]


class _Anchor:
    """The memory of a shared frame (:func:`shared_frame`), seen read-only through
    ``__array_interface__``, and the frame itself: every array viewing that memory holds this
    object as its base, so the frame lives as long as any of them."""

    def __init__(self, a: np.ndarray) -> None:
        self.memory = a
        self.owner: pd.DataFrame | None = None
        self.__array_interface__ = {
            "shape": a.shape, "typestr": a.dtype.str, "descr": a.dtype.descr,
            "data": (a.ctypes.data, True), "strides": a.strides, "version": 3,
        }  # fmt: skip


def shared_frame(a: np.ndarray, **kwargs: Any) -> pd.DataFrame:
    """A frame over ``a`` (no copy) for frames handed out on its memory (``a`` stays writable
    for its owner). Its memory is read-only: pandas' copy-on-write copies a block before a
    write while another frame shares it, but a write through ``Series.array`` goes straight
    into the memory, and on read-only memory it raises instead of changing the rows later
    candles get. Every view of the memory keeps this frame alive, so a pandas write into a
    frame kept for any number of candles still finds it sharing the block, and copies."""
    anchor = _Anchor(a)
    view = np.asarray(anchor)
    frame = pd.DataFrame(view, copy=False, **kwargs)
    anchor.owner = frame  # a cycle, collected once no view is left
    return frame


_NS_PER_UNIT = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
_NAT = int(np.iinfo(np.int64).min)  # NaT's int64 value


def ns_dates(dates: pd.Series) -> np.ndarray:
    """int64 nanoseconds UTC of a date column (freqtrade's are tz-aware; naive means UTC).
    A ``NaT`` raises ``ValueError`` naming the column."""
    if not (isinstance(dates.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(dates)):
        dates = pd.to_datetime(dates, utc=True)
    values = dates.array
    raw = np.asarray(values.asi8, dtype=np.int64)
    if raw.shape[0] and raw.min() == _NAT:
        raise ValueError("column 'date' has NaT")
    # the unit's integer scale, without pandas' per-call conversion machinery
    return raw * _NS_PER_UNIT[values.unit]


def _floats(column: Any) -> np.ndarray:
    """A column (Series or array) as float64 values."""
    if isinstance(column, pd.Series):
        return column.to_numpy(dtype=np.float64)
    return np.asarray(column, dtype=np.float64)


def unchanged_prefix(
    cache: PairCache, stamps: np.ndarray, values: np.ndarray, columns: tuple[str, ...]
) -> int:
    """Index of the first candle of the new frame the engine has not seen, or -1 when the frame
    does not continue the history the engine processed (a candle changed, went missing or was
    added before the newest one, the inputs gained or lost a column, or the frame jumped)."""
    old = cache.dates
    if columns != cache.columns or not len(old) or not len(stamps):
        return -1
    if stamps[0] < old[0]:
        return -1  # older candles than the engine started with: it cannot take them in
    first = int(np.searchsorted(old, stamps[0]))
    overlap = len(old) - first
    if overlap <= 0 or overlap > len(stamps):
        return -1  # no common candle, or the frame ends before the last processed candle
    if not np.array_equal(stamps[:overlap], old[first:]):
        return -1
    seen, kept = values[:overlap], cache.values[first:]
    # NaN (an input without a value) compares equal to NaN: checked only when plain equality
    # fails, which it does wherever a NaN is
    if not (np.array_equal(seen, kept) or np.array_equal(seen, kept, equal_nan=True)):
        return -1
    return overlap


class LiveFeatureCache:
    """Per-pair incremental ``liq_*`` features for a running bot.

    ``features(pair, inputs, build)`` returns the feature names and a rows x names array for the
    frame ``inputs`` (``date`` plus engine input columns); ``build()`` makes a fresh stream for the
    pair when one is needed. Counters per pair in :meth:`stats`.
    """

    def __init__(self) -> None:
        self.pairs: dict[str, PairCache] = {}
        self.counters: dict[str, LiqStreamStats] = {}

    def stats(self, pair: str) -> LiqStreamStats | None:
        """Counters of ``pair`` (``None`` before its first call)."""
        return self.counters.get(pair)

    def features(
        self,
        pair: str,
        inputs: pd.DataFrame | Mapping[str, Any],
        build: Callable[[], FeatureStream],
        *,
        candles_only: bool = False,
        state: StateHooks | None = None,
    ) -> tuple[list[str], np.ndarray]:
        """Feature names and values of ``inputs`` (a frame, or columns by name: ``date`` a
        Series, the others Series or arrays) for ``pair``. ``candles_only`` reads the candle
        columns alone (a strategy frame may hold columns named like other engine inputs). An
        invalid new candle raises (the engine's ``ValueError``) and drops the pair's stream, so
        the next call rebuilds. With ``state`` the pair's saved state is restored on the first
        call, rebuilds start from the datadir history, and the state is saved after each new
        candle."""
        cache = self._refresh(pair, inputs, build, candles_only=candles_only, state=state)
        # the caller gets a copy: the cache must not change when the caller's frame does
        return cache.names, cache.features.copy()

    def _refresh(
        self,
        pair: str,
        inputs: pd.DataFrame | Mapping[str, Any],
        build: Callable[[], FeatureStream],
        *,
        candles_only: bool,
        state: StateHooks | None,
    ) -> PairCache:
        """The pair's cache brought up to ``inputs``."""
        stats = self.counters.get(pair)
        if stats is None:  # not made (and dropped) on every call
            stats = self.counters[pair] = LiqStreamStats()
        stamps = ns_dates(inputs["date"])
        available = ENGINE_INPUTS[:5] if candles_only else ENGINE_INPUTS
        columns = tuple(c for c in available if c in inputs)
        # column-major: each input column is copied in one contiguous run and handed to the
        # stream as a contiguous slice
        values = np.empty((len(stamps), len(columns)), order="F")
        for j, c in enumerate(columns):
            values[:, j] = _floats(inputs[c])
        cache = self.pairs.get(pair)
        if cache is None and state is not None:
            cache = self._restore(pair, state, stats)
            start = -1 if cache is None else unchanged_prefix(cache, stamps, values, columns)
            if cache is not None and start < 0:
                logger.warning(
                    "liqsignals: saved state of %s (last candle %s) does not continue into the "
                    "bot's candles (%s .. %s): a gap or changed history; rebuilding it from the "
                    "datadir history",
                    pair,
                    pd.Timestamp(int(cache.dates[-1]), tz="UTC"),
                    pd.Timestamp(int(stamps[0]), tz="UTC"),
                    pd.Timestamp(int(stamps[-1]), tz="UTC"),
                )
                cache = None
            if cache is not None:  # kept: the next candle continues from memory
                self.pairs[pair] = cache
        else:
            start = 0 if cache is None else unchanged_prefix(cache, stamps, values, columns)
        if cache is not None and start < 0:
            logger.info("liqsignals: history of %s changed, rebuilding its engine", pair)
            cache = None
        if cache is None:
            self.pairs.pop(pair, None)
            if state is None:
                stream: FeatureStream | StateStream = build()
                feats = stream.update_arrays(
                    stamps, {c: values[:, j] for j, c in enumerate(columns)}
                )
                used = 0
            else:
                stream, feats, used = self._build_with_history(pair, state, stamps, values, columns)
            cache = PairCache(stream, feats, stream.columns, stamps, values, columns)
            self.pairs[pair] = cache
            stats.rebuilds += 1
            stats.history_used = used
            stats.last_mode, stats.last_fed = "rebuild", len(stamps)
            logger.info(
                "liqsignals: %s engine built from %d candles (%d from the datadir, %d live)",
                pair, used + len(stamps), used, len(stamps),
            )  # fmt: skip
        else:
            # rows of the new frame the engine has seen: the last ``start`` rows it kept
            kept = cache.features[len(cache.features) - start :]
            if start < len(stamps):
                try:
                    added = cache.stream.update_arrays(
                        stamps[start:], {c: values[start:, j] for j, c in enumerate(columns)}
                    )
                except Exception:
                    # an invalid new candle: the next analysis rebuilds from its whole frame
                    self.pairs.pop(pair, None)
                    raise
                _append_rows(cache, start, added)
                stats.updates += 1
                stats.last_mode, stats.last_fed = "update", len(stamps) - start
                logger.debug("liqsignals: %s engine fed %d new candle(s)", pair, stats.last_fed)
            else:
                cache.features = kept
                stats.unchanged += 1
                stats.last_mode, stats.last_fed = "unchanged", 0
        stats.candles_fed += stats.last_fed
        cache.dates, cache.values = stamps, values
        if state is not None and stats.last_fed and isinstance(cache.stream, StateStream):
            try:
                state.store.save(pair, cache.stream, cache.features, stamps, values, columns)
            except OSError as exc:  # the columns are right; only the restart would rebuild
                logger.warning("liqsignals: could not save the state of %s: %s", pair, exc)
        return cache

    def feature_frame(
        self,
        pair: str,
        inputs: pd.DataFrame | Mapping[str, Any],
        build: Callable[[], FeatureStream],
        *,
        index: pd.Index,
        candles_only: bool = False,
        state: StateHooks | None = None,
    ) -> tuple[list[str], pd.DataFrame]:
        """:meth:`features` as a frame labelled ``index`` (columns 0, 1, ...), without copying
        the feature rows: the frame views the pair's kept rows through a frame that owns the
        whole buffer (:attr:`PairCache.owner`), so pandas' copy-on-write copies the block
        before any write into it, by the caller or into any frame built on it, as long as
        the cache uses these rows. The kept rows themselves are never written again (new rows
        go into spare rows after them, or into a new buffer). The frame's memory is read-only
        (:func:`shared_frame`): a write that bypasses copy-on-write (``Series.array``) raises
        instead of reaching the rows later candles get, while pandas writes copy first, also
        into a frame kept for many candles."""
        cache = self._refresh(pair, inputs, build, candles_only=candles_only, state=state)
        if cache.owner is None:  # rows straight from a build or a restore: into a buffer
            _append_rows(cache, len(cache.features), cache.features[:0])
        assert cache.owner is not None
        part = cache.owner.iloc[cache.end - len(cache.features) : cache.end]
        part.index = index
        return cache.names, part

    def _restore(self, pair: str, state: StateHooks, stats: LiqStreamStats) -> PairCache | None:
        """The pair's saved state, or ``None`` (none yet, or unusable: logged with the reason)."""
        stream = state.build()
        try:
            saved = state.store.load(pair, stream)
        except FileNotFoundError:
            logger.info("liqsignals: no saved state for %s yet", pair)
            return None
        except (ValueError, OSError) as exc:
            logger.warning(
                "liqsignals: saved state of %s is unusable (%s); rebuilding it from the datadir "
                "history",
                pair,
                exc,
            )
            return None
        stats.restored += 1
        logger.info(
            "liqsignals: %s engine restored from saved state (%d candles processed, last %s)",
            pair,
            saved.stream.engine.candles_processed,
            pd.Timestamp(int(saved.dates[-1]), tz="UTC"),
        )
        return PairCache(
            saved.stream, saved.features, saved.stream.columns, saved.dates, saved.values,
            saved.columns,
        )  # fmt: skip

    @staticmethod
    def _build_with_history(
        pair: str,
        state: StateHooks,
        stamps: np.ndarray,
        values: np.ndarray,
        columns: tuple[str, ...],
    ) -> tuple[StateStream, np.ndarray, int]:
        """A fresh stream fed the datadir candles before the frame, then the frame; returns the
        stream, the frame's feature rows and the number of datadir candles used."""
        stream = state.build()
        history = state.history(pair)
        used = 0
        if history is not None and len(history) and len(stamps):
            if set(columns) - set(history.columns):
                logger.warning(
                    "liqsignals: the datadir history of %s lacks input(s) %s of the bot's "
                    "frame; building from the bot's candles only",
                    pair,
                    sorted(set(columns) - set(history.columns)),
                )
            else:
                hist_dates = ns_dates(history["date"])
                keep = hist_dates < stamps[0]
                if keep.any():
                    last = int(hist_dates[keep][-1])
                    if last + state.tf_ns != int(stamps[0]):
                        logger.warning(
                            "liqsignals: the datadir history of %s ends at %s, %d candle(s) "
                            "before the bot's first candle %s; building from the bot's "
                            "candles only (run freqtrade download-data to fill the gap)",
                            pair,
                            pd.Timestamp(last, tz="UTC"),
                            (int(stamps[0]) - last) // state.tf_ns - 1,
                            pd.Timestamp(int(stamps[0]), tz="UTC"),
                        )
                    else:
                        old = history.loc[keep]
                        stream.update_arrays(
                            hist_dates[keep],
                            {c: old[c].to_numpy(dtype=np.float64) for c in columns},
                        )
                        used = int(keep.sum())
        if used == 0:
            logger.info("liqsignals: no stored history used for %s", pair)
        feats = stream.update_arrays(stamps, {c: values[:, j] for j, c in enumerate(columns)})
        return stream, feats, used


class LiveJoin:
    """:func:`liqsignals.strategy.signals.join_columns` for the frames of a running bot: the
    same frame (labels, order, dtypes, values), built from one concat of blocks whose labels
    are set afterwards from a kept index. A bot hands the strategy frames with the same columns
    on every candle, so the labels (and the empty tag columns) are made once; a frame that
    already holds one of the new columns (or ``funding_rate``), with duplicated labels or of
    the wrong shape goes to ``join_columns`` itself."""

    _KEEP = 64  # label sets kept (one per column layout seen)
    _KEEP_TAGS = 8  # empty tag blocks kept (one per frame length seen)

    def __init__(self) -> None:
        self._labels: dict[tuple[Any, ...], tuple[pd.Index, tuple[str, ...]] | None] = {}
        self._tags: dict[tuple[int, int], pd.DataFrame] = {}
        # the layout of the latest call: (columns, names, funding, layout)
        self._last: tuple[pd.Index, list[str], bool, Any] | None = None

    def _layout(
        self, columns: pd.Index, names: list[str], funding: bool
    ) -> tuple[pd.Index, tuple[str, ...]] | None:
        last = self._last
        # the same columns as the latest frame (every pair's frame has them in a bot): compared
        # as an Index (no tuple of the labels to build and hash); same dtype, so equal labels
        # are the same labels
        if (
            last is not None
            and last[2] == funding
            and (last[1] is names or last[1] == names)
            and len(last[0]) == len(columns)
            and last[0].dtype == columns.dtype
            and last[0].equals(columns)
        ):
            return last[3]
        key = (tuple(columns), tuple(names), funding)
        if key in self._labels:
            self._last = (columns, list(names), funding, self._labels[key])
            return self._labels[key]
        existing = set(columns)
        clash = bool(existing & set(names)) or (funding and "funding_rate" in existing)
        layout = None
        if len(existing) == len(columns) and len(set(names)) == len(names) and not clash:
            tags = tuple(c for c in ("enter_tag", "exit_tag") if c not in existing)
            extra = ["funding_rate"] if funding else []
            labels = pd.Index([*columns, *names, *tags, *extra], dtype=object)
            layout = (labels, tags)
        if len(self._labels) >= self._KEEP:
            self._labels.clear()
        self._labels[key] = layout
        self._last = (columns, list(names), funding, layout)
        return layout

    def _empty_tags(self, index: pd.Index, n_tags: int) -> pd.DataFrame:
        rows = len(index)
        plain = isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1
        if not plain:
            empty = np.full((rows, n_tags), None, dtype=object)
            return pd.DataFrame(empty, index=index, dtype=object, copy=False)
        kept = self._tags.get((rows, n_tags))
        if kept is None:
            # shared between frames and pairs: copy-on-write copies it before a pandas write,
            # and its memory is read-only against writes that bypass that (Series.array); kept
            # alive (a few shapes) while frames built on it may be
            empty = np.full((rows, n_tags), None, dtype=object)
            kept = shared_frame(empty, index=index, dtype=object)
            if len(self._tags) >= self._KEEP_TAGS:
                self._tags.pop(next(iter(self._tags)))
            self._tags[(rows, n_tags)] = kept
        return kept

    def __call__(
        self,
        dataframe: pd.DataFrame,
        names: list[str],
        values: np.ndarray | pd.DataFrame,
        funding: pd.Series | np.ndarray | None = None,
    ) -> pd.DataFrame:
        """``join_columns(dataframe, names, values, funding)``; ``funding`` may be an array,
        ``values`` a frame labelled with ``dataframe``'s index (its column labels are
        replaced; :meth:`LiveFeatureCache.feature_frame`), taken without a copy."""
        layout = None
        if values.shape == (len(dataframe), len(names)):
            layout = self._layout(dataframe.columns, names, funding is not None)
        if layout is None:
            if funding is not None and not isinstance(funding, pd.Series):
                funding = pd.Series(funding, index=dataframe.index, copy=False)
            if isinstance(values, pd.DataFrame):
                values = values.to_numpy(dtype=np.float64, copy=True)
            return join_columns(dataframe, names, values, funding)
        labels, tags = layout
        index = dataframe.index
        block = values
        if not isinstance(block, pd.DataFrame):
            block = pd.DataFrame(values, index=index, copy=False)
        parts = [dataframe, block]
        if tags:
            parts.append(self._empty_tags(index, len(tags)))
        if funding is not None:
            rates = np.asarray(funding)
            parts.append(pd.DataFrame(rates.reshape(-1, 1), index=index, copy=False))
        out = pd.concat(parts, axis=1, ignore_index=True)
        out.columns = labels
        return out


def state_hooks(
    config: Mapping[str, Any], timeframe: str, build: Callable[[], StateStream]
) -> StateHooks:
    """The pair state of a bot: files under ``<user_data>/liqsignals_state/`` (the config's
    ``"liqsignals": {"state_dir": ...}`` overrides), history from the config's ``datadir``."""
    from liqsignals.features import timeframe_to_timedelta
    from liqsignals.strategy.live_state import datadir_history

    opts = config.get("liqsignals") or {}
    root = opts.get("state_dir") or Path(config.get("user_data_dir") or ".") / "liqsignals_state"
    candle_type = "futures" if config.get("trading_mode") == "futures" else "spot"
    datadir = config.get("datadir")

    def history(pair: str) -> pd.DataFrame | None:
        return datadir_history(datadir, pair, timeframe, candle_type)

    tf_ns = int(timeframe_to_timedelta(timeframe).value)
    return StateHooks(StateStore(root, timeframe), build, history, tf_ns)
