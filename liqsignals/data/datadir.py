"""Read and write freqtrade datadir files without importing freqtrade.

Path rules follow freqtrade's feather data handler: futures data lives in
``<datadir>/futures/<BASE>_<QUOTE>_<SETTLE>-<timeframe>-<candle_type>.feather`` and spot candles in
``<datadir>/<BASE>_<QUOTE>-<timeframe>.feather``. Files are feather with lz4 compression, as
freqtrade writes them, with a ``date`` column (UTC, start of the bar).

Series freqtrade does not know (long/short ratio, taker volume, realised liquidations) are kept in
``<datadir>/futures/liqsignals/`` under the same naming scheme: freqtrade lists every
``*.feather`` in ``futures/`` and stops with an error on a candle type it does not know, which
would break ``freqtrade backtesting``, ``download-data`` and ``list-data`` on that datadir.

Example
-------
>>> from liqsignals.data import load_candles, parse_timerange
>>> df = load_candles("user_data/data/binance", "BTC/USDT:USDT", "1h")  # doctest: +SKIP
>>> parse_timerange("20240101-")
TimeRange(start=Timestamp('2024-01-01 00:00:00+0000', tz='UTC'), stop=None)
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import glob
import logging
import os
import re
import stat
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from liqsignals._time import to_utc_datetime, utc_timestamp
from liqsignals.align import align_events, align_extremes, align_flow, align_level
from liqsignals.fileio import atomic_path
from liqsignals.model import timeframe_to_timedelta

logger = logging.getLogger(__name__)

__all__ = [
    "ATTACHED_COLUMNS",
    "EXTRA_KINDS",
    "FRESH_SECONDS",
    "FREQTRADE_CANDLE_TYPES",
    "LAYOUTS",
    "LOCK_TIMEOUT",
    "OHLCV_COLUMNS",
    "FileBusyError",
    "ReadCache",
    "TimeRange",
    "append_frame",
    "attach_market_data",
    "data_path",
    "dates_in_order",
    "file_lock",
    "filename_to_pair",
    "list_data",
    "load_candles",
    "load_funding_rate",
    "load_liquidation_bars",
    "load_long_short_ratio",
    "load_open_interest",
    "load_series",
    "load_taker_volume",
    "lock_path",
    "market_columns",
    "pair_to_filename",
    "parse_timerange",
    "pick_timeframe",
    "read_frame",
    "save_candles",
    "save_series",
    "timeframe_to_timedelta",
    "write_frame",
]

OHLCV_COLUMNS: tuple[str, ...] = ("date", "open", "high", "low", "close", "volume")

# Columns on disk, per candle type / series kind. The first column is always "date".
LAYOUTS: dict[str, tuple[str, ...]] = {
    "spot": OHLCV_COLUMNS,
    "futures": OHLCV_COLUMNS,
    "mark": OHLCV_COLUMNS,
    "index": OHLCV_COLUMNS,
    "premiumIndex": OHLCV_COLUMNS,
    "funding_rate": ("date", "funding_rate"),
    "open_interest": ("date", "open_interest_amount", "open_interest_value"),
    "long_short_ratio": ("date", "long_short_ratio", "long_account", "short_account"),
    "taker_volume": ("date", "taker_buy_volume", "taker_sell_volume"),
    "liquidations": ("date", "long_liquidation_usd", "short_liquidation_usd"),
}

# candle types freqtrade itself reads and writes (``freqtrade.enums.CandleType``)
FREQTRADE_CANDLE_TYPES = frozenset(
    {"spot", "futures", "mark", "index", "premiumIndex", "funding_rate", "open_interest"}
)
# series only liqsignals reads; stored in ``futures/liqsignals/`` (see the module docstring)
EXTRA_KINDS = frozenset({"long_short_ratio", "taker_volume", "liquidations"})
_EXTRA_DIR = "liqsignals"

_KNOWN_EXCHANGES = (
    "binance",
    "binanceusdm",
    "bybit",
    "okx",
    "bitget",
    "gate",
    "kraken",
    "hyperliquid",
)
_FILENAME_RE = re.compile(r"^(?P<pair>[\w-]+?)-(?P<tf>\d+[a-zA-Z]{1,2})(?:-(?P<kind>[A-Za-z_]+))?$")


# --------------------------------------------------------------------------------------------
# names and paths


def pair_to_filename(pair: str) -> str:
    """File stem of a pair, as freqtrade builds it: ``"BTC/USDT:USDT"`` -> ``"BTC_USDT_USDT"``."""
    for ch in ("/", " ", ".", "@", "$", "+", ":"):
        pair = pair.replace(ch, "_")
    return pair


def filename_to_pair(stem: str) -> str:
    """Pair of a file stem: the first ``_`` becomes ``/``, the second ``:`` (freqtrade's rule)."""
    return stem.replace("_", "/", 1).replace("_", ":", 1)


def data_path(
    datadir: str | os.PathLike[str],
    pair: str,
    timeframe: str,
    candle_type: str = "futures",
) -> Path:
    """Path of one pair's file in a freqtrade datadir.

    ``candle_type`` is a freqtrade candle type (``futures``, ``mark``, ``funding_rate``,
    ``open_interest``, ``spot``, ...) or one of ``EXTRA_KINDS``.
    """
    if candle_type not in LAYOUTS:
        raise ValueError(f"unknown candle type {candle_type!r}; expected one of {sorted(LAYOUTS)}")
    root = Path(datadir)
    tf = timeframe.replace("M", "Mo") if timeframe.endswith("M") else timeframe
    stem = pair_to_filename(pair)
    if candle_type == "spot":
        return root / f"{stem}-{tf}.feather"
    folder = root / "futures"
    if candle_type in EXTRA_KINDS:
        folder = folder / _EXTRA_DIR
    return folder / f"{stem}-{tf}-{candle_type}.feather"


def _data_folders(root: Path) -> tuple[tuple[Path, str | None], ...]:
    """The folders :func:`list_data` scans, each with the kind of a file named without one."""
    return ((root, "spot"), (root / "futures", None), (root / "futures" / _EXTRA_DIR, None))


def _folder_data(names: Iterable[str], default: str | None) -> set[tuple[str, str, str]]:
    """``(pair, timeframe, candle_type)`` of the data files among the file ``names`` of one
    folder."""
    found: set[tuple[str, str, str]] = set()
    for name in names:
        if not name.endswith(".feather"):
            continue
        match = _FILENAME_RE.match(name[: -len(".feather")])
        if not match:
            continue
        kind = match["kind"] or default
        if kind not in LAYOUTS:
            continue
        tf = match["tf"].replace("Mo", "M")
        found.add((filename_to_pair(match["pair"]), tf, kind))
    return found


def list_data(datadir: str | os.PathLike[str]) -> list[tuple[str, str, str]]:
    """Sorted ``(pair, timeframe, candle_type)`` of every data file found in ``datadir``."""
    found: set[tuple[str, str, str]] = set()
    for folder, default in _data_folders(Path(datadir)):
        if not folder.is_dir():
            continue
        found |= _folder_data((path.name for path in folder.glob("*.feather")), default)
    return sorted(found)


# --------------------------------------------------------------------------------------------
# time ranges


class TimeRange(NamedTuple):
    """A closed UTC interval; ``None`` leaves that end open. Both ends are inclusive."""

    start: pd.Timestamp | None
    stop: pd.Timestamp | None


def _parse_timerange_part(text: str) -> pd.Timestamp | None:
    if not text:
        return None
    for pattern, fmt in (
        (r"\d{8}", "%Y%m%d"),
        (r"\d{8}T\d{4}", "%Y%m%dT%H%M"),
        (r"\d{8}T\d{6}", "%Y%m%dT%H%M%S"),
    ):
        if re.fullmatch(pattern, text):
            return pd.to_datetime(text, format=fmt, utc=True)
    if re.fullmatch(r"\d{10}", text):
        return pd.Timestamp(int(text), unit="s", tz="UTC")
    if re.fullmatch(r"\d{13}", text):
        return pd.Timestamp(int(text), unit="ms", tz="UTC")
    raise ValueError(f"invalid timerange value {text!r}")


def parse_timerange(text: str | TimeRange | tuple | None) -> TimeRange:
    """Parse freqtrade's ``--timerange`` syntax.

    ``"20240101-20240301"``, ``"20240101-"`` and ``"-20240301"`` (either end may be left open);
    each end may also be ``YYYYMMDDTHHMM[SS]`` or a Unix time in seconds (10 digits) or
    milliseconds (13 digits). As in freqtrade, rows dated ``start <= date <= stop`` are kept.
    ``None`` or ``""`` gives an unbounded range. A ``TimeRange`` or a ``(start, stop)`` tuple of
    anything ``pd.Timestamp`` accepts is returned normalised to UTC.
    """
    if text is None or text == "":
        return TimeRange(None, None)
    if isinstance(text, tuple):
        start, stop = (None if v is None else utc_timestamp(v) for v in text)
    else:
        parts = str(text).split("-")
        if len(parts) != 2 or not any(parts):
            raise ValueError(
                f"invalid timerange {text!r}: expected YYYYMMDD-YYYYMMDD (either end may be empty)"
            )
        try:
            start, stop = _parse_timerange_part(parts[0]), _parse_timerange_part(parts[1])
        except ValueError as exc:
            raise ValueError(f"invalid timerange {text!r}: {exc}") from None
    if start is not None and stop is not None and start > stop:
        raise ValueError(f"invalid timerange {text!r}: start is after stop")
    return TimeRange(start, stop)


def _trim(df: pd.DataFrame, timerange: str | TimeRange | tuple | None) -> pd.DataFrame:
    tr = parse_timerange(timerange)
    if tr.start is not None:
        df = df.loc[df["date"] >= tr.start]
    if tr.stop is not None:
        df = df.loc[df["date"] <= tr.stop]
    return df.reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# raw frames


def _normalise_dates(df: pd.DataFrame, path: Path | str) -> pd.DataFrame:
    if "date" not in df.columns:
        raise ValueError(f"{path}: no 'date' column (columns: {list(df.columns)})")
    date = df["date"]
    if pd.api.types.is_numeric_dtype(date):
        date = to_utc_datetime(date, unit="ms")
    elif not isinstance(date.dtype, pd.DatetimeTZDtype):
        date = to_utc_datetime(date)
    df = df.copy()
    df["date"] = date.dt.tz_convert("UTC").dt.as_unit("ms")
    return df


def read_frame(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read one feather file as stored, with ``date`` as UTC ``datetime64[ms]``."""
    path = Path(path)
    return _normalise_dates(pd.read_feather(path), path)


class FileBusyError(RuntimeError):
    """Another process (or thread) held a data file's lock for longer than the wait allowed."""


LOCK_TIMEOUT = 600.0  # seconds a writer waits for another writer of the same file
_HELD = threading.local()  # lock paths this thread holds, with their depth (re-entrant)


def lock_path(path: str | os.PathLike[str]) -> Path:
    """The lock file of a data file: ``.<name>.lock`` beside it, present only while held."""
    target = Path(path)
    return target.with_name(f".{target.name}.lock")


def _remove_stale_temporaries(target: Path) -> None:
    # every writer of ``target`` holds its lock while its temporary file exists
    # (``liqsignals.fileio`` names them ``.<name>.<random>.tmp``), so under the lock any such file
    # was left by a writer that was killed mid-write
    for stale in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()


@contextlib.contextmanager
def file_lock(path: str | os.PathLike[str], *, timeout: float | None = None) -> Iterator[Path]:
    """Hold the exclusive lock of the data file ``path`` (``fcntl.flock`` on ``lock_path(path)``).

    Every write to a data file in this package (``write_frame``, ``append_frame``,
    ``save_series``, download bookkeeping) runs under it, so concurrent writers in other
    processes or threads wait for each other instead of overwriting each other's rows. The lock
    is re-entrant within a thread. A second writer waits up to ``timeout`` seconds (default
    ``LOCK_TIMEOUT``) and then raises ``FileBusyError`` naming the file.
    While held, temporary files a killed writer left beside ``path`` are removed. The lock file
    is deleted on release; one left by a killed process is simply reused.
    """
    target = Path(path)
    lock = lock_path(target)
    key = os.path.abspath(lock)
    held: dict[str, int] = _HELD.__dict__.setdefault("locks", {})
    if key in held:
        held[key] += 1
        try:
            yield lock
        finally:
            held[key] -= 1
        return
    wait = LOCK_TIMEOUT if timeout is None else timeout
    deadline = time.monotonic() + wait
    lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if time.monotonic() >= deadline:
                raise FileBusyError(
                    f"{target} is being written by another process or thread (lock {lock} held "
                    f"for more than {wait:g}s); retry when it has finished"
                ) from None
            time.sleep(0.02)
            continue
        try:
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the holder before us deleted that lock file: take a fresh one
    held[key] = 1
    try:
        _remove_stale_temporaries(target)
        yield lock
    finally:
        del held[key]
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def write_frame(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``df`` to ``path`` as freqtrade does (feather, lz4, level 9), atomically.

    Under the file's lock (``file_lock``) the frame goes through ``liqsignals.fileio.atomic_path``:
    a unique temporary file in the same folder, fsynced, given the existing file's mode and
    renamed over ``path``. An interrupted write leaves the previous file intact and no temporary
    file behind.
    """
    path = Path(path)
    with file_lock(path), atomic_path(path) as tmp:
        df.reset_index(drop=True).to_feather(tmp, compression="lz4", compression_level=9)
    return path


def append_frame(
    df: pd.DataFrame, path: str | os.PathLike[str], *, key: str | Iterable[str] = "date"
) -> tuple[Path, int]:
    """Merge ``df`` into the file at ``path`` (created when missing) and rewrite it atomically.

    Rows are deduplicated on ``key`` (later rows win, so re-fetched rows replace stored ones) and
    sorted by ``date``. Reading, merging and writing happen under the file's lock, so concurrent
    merges into one file keep every row. Returns the path and the number of rows that were not
    stored before.
    """
    path = Path(path)
    keys = [key] if isinstance(key, str) else list(key)
    new = _normalise_dates(df, path) if "date" in df.columns else df
    with file_lock(path):
        if path.exists():
            old = read_frame(path)
            merged = pd.concat([old, new], ignore_index=True) if len(old) else new
            before = old.drop_duplicates(keys)
        else:
            merged, before = new, new.iloc[:0]
        merged = merged.drop_duplicates(keys, keep="last")
        merged = merged.sort_values(
            keys if "date" not in keys else ["date", *[k for k in keys if k != "date"]],
            kind="stable",
        ).reset_index(drop=True)
        added = len(merged) - len(before)
        write_frame(merged, path)
    return path, added


# --------------------------------------------------------------------------------------------
# candles


def _guess_exchange(datadir: Path) -> str:
    name = datadir.resolve().name.lower()
    return name if name in _KNOWN_EXCHANGES else "<exchange>"


def _missing_file(
    path: Path,
    datadir: Path,
    pair: str,
    timeframe: str,
    candle_type: str,
    timerange: str | TimeRange | tuple | None,
    exchange: str | None,
) -> FileNotFoundError:
    exchange = exchange or _guess_exchange(datadir)
    tr = f" --timerange {timerange}" if isinstance(timerange, str) and timerange else ""
    if candle_type in FREQTRADE_CANDLE_TYPES:
        types = "" if candle_type in ("futures", "spot") else f" --candle-types {candle_type}"
        mode = "spot" if candle_type == "spot" else "futures"
        tf = timeframe if candle_type != "funding_rate" else timeframe
        command = (
            f"freqtrade download-data --exchange {exchange} --pairs {pair} --timeframes {tf}"
            f" --trading-mode {mode}{types} --datadir {datadir}{tr}"
        )
    else:
        what = {
            "long_short_ratio": "long-short",
            "taker_volume": "taker-volume",
            "liquidations": "liquidations",
        }[candle_type]
        command = (
            f"liqsignals download {what} --exchange {exchange} --pairs {pair} --timeframes {timeframe}"
            f" --datadir {datadir}{tr}"
        )
    return FileNotFoundError(
        f"no {candle_type} data for {pair} {timeframe}: {path} does not exist. Fetch it with:\n    {command}"
    )


def load_candles(
    datadir: str | os.PathLike[str],
    pair: str,
    timeframe: str,
    candle_type: str = "futures",
    timerange: str | TimeRange | tuple | None = None,
    *,
    exchange: str | None = None,
) -> pd.DataFrame:
    """Load OHLCV candles from a freqtrade datadir.

    Parameters
    ----------
    datadir : path
        The exchange's data folder (freqtrade's ``--datadir``, e.g. ``user_data/data/binance``).
    pair : str
        ccxt symbol, e.g. ``"BTC/USDT:USDT"``.
    timeframe : str
        e.g. ``"1h"``.
    candle_type : str
        ``"futures"`` (default), ``"mark"``, ``"index"``, ``"premiumIndex"`` or ``"spot"``.
    timerange : str or TimeRange, optional
        freqtrade syntax, e.g. ``"20240101-20240301"``; both ends inclusive.
    exchange : str, optional
        Only used in the error message; guessed from the datadir's name when omitted.

    Returns
    -------
    DataFrame
        ``date`` (UTC, bar open time), ``open``, ``high``, ``low``, ``close`` (quote currency) and
        ``volume`` (base currency), sorted by date, as stored (no gap filling).

    Raises
    ------
    FileNotFoundError
        naming the missing file and the ``freqtrade download-data`` command that fetches it.
    """
    if LAYOUTS.get(candle_type) != OHLCV_COLUMNS:
        raise ValueError(f"{candle_type!r} is not an OHLCV candle type; use load_series()")
    return load_series(datadir, pair, timeframe, candle_type, timerange, exchange=exchange)


def save_candles(
    df: pd.DataFrame,
    datadir: str | os.PathLike[str],
    pair: str,
    timeframe: str,
    candle_type: str = "futures",
) -> Path:
    """Store candles (or any kind in ``LAYOUTS``) at freqtrade's path for them, atomically."""
    return save_series(df, datadir, pair, timeframe, candle_type)


def _project(df: pd.DataFrame, kind: str, path: Path | str) -> pd.DataFrame:
    columns = list(LAYOUTS[kind])
    if kind == "funding_rate" and "funding_rate" not in df.columns and "open" in df.columns:
        df = df.rename(columns={"open": "funding_rate"})  # freqtrade's legacy OHLCV layout
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(
            f"{path}: missing column(s) {missing} for {kind} (found {list(df.columns)})"
        )
    out = df.loc[:, columns].copy()
    for col in columns[1:]:
        out[col] = pd.to_numeric(out[col], errors="raise").astype("float64")
    return out


def _series_path(datadir: Path, pair: str, timeframe: str, kind: str) -> Path:
    """The file :func:`load_series` reads (it may not exist): freqtrade's path, or for
    ``EXTRA_KINDS`` also a file written next to the candles."""
    path = data_path(datadir, pair, timeframe, kind)
    if not path.exists() and kind in EXTRA_KINDS:
        flat = datadir / "futures" / path.name  # also accept files written next to the candles
        path = flat if flat.exists() else path
    return path


def _series_frame(raw: pd.DataFrame, kind: str, path: Path) -> pd.DataFrame:
    """A stored frame with the canonical columns of ``kind``, sorted, one row per date (the
    last stored)."""
    df = _project(_normalise_dates(raw, path), kind, path)
    if not df["date"].is_monotonic_increasing or df["date"].duplicated().any():
        df = df.drop_duplicates("date", keep="last").sort_values("date", kind="stable")
    return df


def load_series(
    datadir: str | os.PathLike[str],
    pair: str,
    timeframe: str,
    kind: str,
    timerange: str | TimeRange | tuple | None = None,
    *,
    exchange: str | None = None,
) -> pd.DataFrame:
    """Load any series in ``LAYOUTS`` with its canonical columns, sorted by date.

    Duplicated dates keep the last stored row.
    """
    datadir = Path(datadir)
    path = _series_path(datadir, pair, timeframe, kind)
    if not path.exists():
        raise _missing_file(path, datadir, pair, timeframe, kind, timerange, exchange)
    return _trim(_series_frame(pd.read_feather(path), kind, path), timerange)


def save_series(
    df: pd.DataFrame,
    datadir: str | os.PathLike[str],
    pair: str,
    timeframe: str,
    kind: str,
) -> Path:
    """Store a series with its canonical columns (``LAYOUTS[kind]``), atomically."""
    path = data_path(datadir, pair, timeframe, kind)
    out = _project(_normalise_dates(df, path), kind, path)
    return write_frame(out.sort_values("date", kind="stable"), path)  # under the file's lock


def load_open_interest(
    datadir: str | os.PathLike[str],
    pair: str,
    timeframe: str,
    timerange: str | TimeRange | tuple | None = None,
) -> pd.DataFrame:
    """Open interest as freqtrade stores it (``--candle-types open_interest``).

    Returns
    -------
    DataFrame
        ``date`` (UTC), ``open_interest_amount`` (base currency, e.g. BTC; NaN when the exchange
        reports only the value) and ``open_interest_value`` (quote currency; NaN when only the amount
        is reported).
    """
    return load_series(datadir, pair, timeframe, "open_interest", timerange)


def load_funding_rate(
    datadir: str | os.PathLike[str],
    pair: str,
    timeframe: str = "1h",
    timerange: str | TimeRange | tuple | None = None,
) -> pd.DataFrame:
    """Funding rates, from the current (``funding_rate``) or legacy (rate in ``open``) layout.

    Returns
    -------
    DataFrame
        ``date`` (UTC, funding time) and ``funding_rate`` (fraction per funding interval).
    """
    df = load_series(datadir, pair, timeframe, "funding_rate", timerange)
    df["date"] = df["date"].dt.floor("s")  # some exchanges stamp funding a few ms late
    return df


def load_long_short_ratio(
    datadir: str | os.PathLike[str],
    pair: str,
    timeframe: str,
    timerange: str | TimeRange | tuple | None = None,
) -> pd.DataFrame:
    """Account long/short ratio.

    Returns
    -------
    DataFrame
        ``date`` (UTC), ``long_short_ratio`` (long accounts / short accounts), ``long_account`` and
        ``short_account`` (fractions of accounts, summing to 1; NaN when not reported).
    """
    return load_series(datadir, pair, timeframe, "long_short_ratio", timerange)


def load_taker_volume(
    datadir: str | os.PathLike[str],
    pair: str,
    timeframe: str,
    timerange: str | TimeRange | tuple | None = None,
) -> pd.DataFrame:
    """Taker volume per bar.

    Returns
    -------
    DataFrame
        ``date`` (UTC, bar open time), ``taker_buy_volume`` and ``taker_sell_volume`` (base
        currency traded by aggressive buyers / sellers during the bar).
    """
    return load_series(datadir, pair, timeframe, "taker_volume", timerange)


def load_liquidation_bars(
    datadir: str | os.PathLike[str],
    pair: str,
    timeframe: str,
    timerange: str | TimeRange | tuple | None = None,
) -> pd.DataFrame:
    """Realised liquidations per bar.

    Returns
    -------
    DataFrame
        ``date`` (UTC, bar open time), ``long_liquidation_usd`` (longs liquidated: forced sells) and
        ``short_liquidation_usd`` (shorts liquidated: forced buys), in quote currency.
    """
    return load_series(datadir, pair, timeframe, "liquidations", timerange)


# --------------------------------------------------------------------------------------------
# attaching optional inputs to candles

# kind -> (stored column -> output column), and whether it is a level ("last") or a flow ("sum")
_ATTACH: dict[str, tuple[dict[str, str], str]] = {
    "open_interest": (
        {"open_interest_amount": "open_interest", "open_interest_value": "open_interest_value"},
        "last",
    ),
    "long_short_ratio": ({"long_short_ratio": "long_short_ratio"}, "last"),
    "taker_volume": ({"taker_buy_volume": "taker_buy_volume"}, "sum"),
    "liquidations": (
        {
            "long_liquidation_usd": "long_liquidation_usd",
            "short_liquidation_usd": "short_liquidation_usd",
        },
        "sum",
    ),
    # mark-price high / low over the candle's span: same or finer timeframe only
    "mark": ({"high": "mark_high", "low": "mark_low"}, "extremes"),
    # point events, known from their timestamp
    "funding_rate": ({"funding_rate": "funding_rate"}, "events"),
}
ATTACHED_COLUMNS: tuple[str, ...] = tuple(c for cols, _ in _ATTACH.values() for c in cols.values())


#: timeframe strings read once (a running bot asks for the same few on every candle)
_timedelta = functools.lru_cache(maxsize=256)(timeframe_to_timedelta)


def pick_timeframe(available: Iterable[str], timeframe: str, how: str) -> str | None:
    """The stored timeframe of a series to attach to ``timeframe`` candles, ``how`` being
    ``"last"`` (levels), ``"sum"`` (flows), ``"extremes"`` (mark) or ``"events"`` (funding). Same timeframe first, then the coarsest finer one, then (levels only) the finest coarser;
    events (funding) take any file, the finest first. Flows and extremes (mark) never take a
    coarser file (:mod:`liqsignals.align`)."""
    tf = _timedelta(timeframe)
    options = []
    for cand in available:
        try:
            options.append((_timedelta(cand), cand))
        except ValueError:
            continue
    same = [c for d, c in options if d == tf]
    if same:
        return same[0]
    finer = sorted((d, c) for d, c in options if d < tf and tf % d == pd.Timedelta(0))
    if finer:
        return finer[-1][1]
    if how == "events" and options:
        return min(options)[1]  # events carry their own timestamps: any file will do
    if how == "last":
        coarser = sorted((d, c) for d, c in options if d > tf)
        if coarser:
            return coarser[0][1]
    return None


def _attach_level(
    dates: pd.Series,
    tf: pd.Timedelta,
    series: pd.DataFrame,
    period: pd.Timedelta,
    columns: Mapping[str, str],
) -> pd.DataFrame:
    # the bar rule of liqsignals.align: a row dated s is known at s + period
    got = align_level(dates, tf, series["date"], {c: series[c] for c in columns}, period)
    return pd.DataFrame({dst: got[src] for src, dst in columns.items()})


def _attach_flow(
    dates: pd.Series,
    tf: pd.Timedelta,
    series: pd.DataFrame,
    period: pd.Timedelta,
    columns: Mapping[str, str],
) -> pd.DataFrame:
    # sum of the bars [s, s + period) inside the candle [d, d + tf); NaN unless every one is there
    got = align_flow(dates, tf, series["date"], {c: series[c] for c in columns}, period)
    return pd.DataFrame({dst: got[src] for src, dst in columns.items()})


def attach_market_data(
    candles: pd.DataFrame,
    datadir: str | os.PathLike[str],
    pair: str,
    timeframe: str,
    *,
    kinds: Iterable[str] | None = None,
    cache: ReadCache | None = None,
) -> pd.DataFrame:
    """Return ``candles`` with the optional market data found in ``datadir`` merged on, causally.

    Each row gets only what was known when its candle closed. A stored row dated ``s`` at the
    series' timeframe ``p`` counts as known at ``s + p`` (the bar ``[s, s + p)`` is complete): for
    snapshots this reading may be one period late, never early.

    * Levels (open interest, long/short ratio): the latest row known by the candle's close, if it is
      less than ``max(p, timeframe)`` old, otherwise NaN (a stale value is never carried on). When
      the exchange reported only the amount (or only the value) of open interest, the other is
      derived with the candle's close.
    * Flows (taker volume, realised liquidations): the sum over the series' bars inside the candle,
      only when the series' timeframe divides the candle's and every bar is present; otherwise NaN.
    * Mark candles: ``mark_high`` / ``mark_low`` over the candle's span from mark candles of the
      same or a finer timeframe (complete spans only); a coarser mark file is never used.
    * Funding (point events): the latest event at or before the candle's open.

    The rules live in :mod:`liqsignals.align`.

    For each kind, the stored timeframe equal to ``timeframe`` is used when present, else the
    coarsest finer one (levels may also use a coarser one). Missing kinds are skipped; columns of a
    kind that was found but has no value for a row are NaN (never back-filled).

    Returns
    -------
    DataFrame
        ``candles`` plus, where available: ``open_interest`` (base currency), ``open_interest_value``
        (quote currency), ``long_short_ratio`` (long / short accounts), ``taker_buy_volume`` (base
        currency), ``long_liquidation_usd`` and ``short_liquidation_usd`` (quote currency),
        ``mark_high`` / ``mark_low`` (quote currency) and ``funding_rate`` (per funding period).
    """
    if "date" not in candles.columns:
        raise ValueError("candles have no 'date' column")
    got = market_columns(candles["date"], datadir, pair, timeframe, kinds=kinds, cache=cache)
    out = candles.copy()
    for col, values in got.items():
        out[col] = values
    if "open_interest" in got and "close" in out.columns:
        close = out["close"].astype("float64")
        amount, value = out["open_interest"], out["open_interest_value"]
        out["open_interest"] = amount.fillna(value / close)
        out["open_interest_value"] = value.fillna(amount * close)
    return out


def _ms_dates(dates: pd.Series) -> pd.Series:
    """Candle dates as UTC datetimes in milliseconds, index reset; unsorted ones refused."""
    out = to_utc_datetime(dates).dt.as_unit("ms").reset_index(drop=True)
    if not out.is_monotonic_increasing:
        raise ValueError("candles must be sorted by date before attaching market data")
    return out


_NAT = int(np.iinfo(np.int64).min)  # NaT's int64 value


def _increasing(dates: pd.Series) -> bool:
    """``dates.is_monotonic_increasing`` of a datetime Series (``NaT`` anywhere: ``False``),
    on its int64 values (pandas' check builds an index first)."""
    raw = np.asarray(dates.array.asi8)
    if not raw.shape[0]:
        return True
    return bool(raw[0] != _NAT and (raw[1:] >= raw[:-1]).all())


def dates_in_order(dates: object) -> bool:
    """Whether ``dates`` is a datetime Series in order without ``NaT`` (repeated dates allowed):
    :func:`market_columns` takes such dates as they are, and converts (or refuses, when
    unsorted) any other dates before it attaches a series."""
    dtype = getattr(dates, "dtype", None)
    return (
        (isinstance(dtype, pd.DatetimeTZDtype) or getattr(dtype, "kind", "") == "M")
        and isinstance(dates, pd.Series)
        and _increasing(dates)
    )


def market_columns(
    dates: pd.Series,
    datadir: str | os.PathLike[str],
    pair: str,
    timeframe: str,
    *,
    kinds: Iterable[str] | None = None,
    cache: ReadCache | None = None,
) -> dict[str, np.ndarray]:
    """The columns :func:`attach_market_data` adds to candles dated ``dates``, as arrays row
    for row with them, before its open-interest completion from the close (open interest
    comes as stored: amount and value, NaN where the exchange reported the other one).
    ``cache`` (a :class:`ReadCache`) keeps the listing and the files between calls."""
    tf = _timedelta(timeframe)
    wanted = list(_ATTACH) if kinds is None else list(kinds)
    unknown = [k for k in wanted if k not in _ATTACH]
    if unknown:
        raise ValueError(f"cannot attach {unknown}; known kinds: {sorted(_ATTACH)}")
    raw = dates
    # datetime dates in order stay in order at millisecond resolution: converted only when a
    # series is attached; any other dates are read (and refused) first, as always
    ordered = dates_in_order(raw)
    converted: pd.Series | None = None
    if not ordered:
        converted = _ms_dates(raw)
    available = list_data(datadir) if cache is None else cache.pair_data(datadir, pair)
    out: dict[str, np.ndarray] = {}
    for kind in wanted:
        columns, how = _ATTACH[kind]
        tfs = [t for p, t, k in available if p == pair and k == kind]
        chosen = pick_timeframe(tfs, timeframe, how)
        if chosen is None:
            if tfs and how in ("extremes", "sum"):
                logger.debug(
                    "liqsignals: %s %s of %s not attached to %s candles: only %s stored, "
                    "coarser or not dividing the candles (liqsignals.align)",
                    pair, kind, datadir, timeframe, ", ".join(sorted(tfs)),
                )  # fmt: skip
            continue
        if converted is None:
            converted = _ms_dates(raw)
        dates = converted
        if cache is None:
            series = load_series(datadir, pair, chosen, kind)
        else:
            series = cache.load_series(datadir, pair, chosen, kind)
        period = _timedelta(chosen)
        if how == "extremes":
            hi, lo = align_extremes(
                dates, tf, series["date"], series["high"], series["low"], period
            )
            frame = pd.DataFrame({"mark_high": hi, "mark_low": lo})
        elif how == "events":
            got = align_events(dates, series["date"], {"funding_rate": series["funding_rate"]})
            frame = pd.DataFrame(got)
        else:
            attach = _attach_level if how == "last" else _attach_flow
            frame = attach(dates, tf, series, period, columns)
        for col in frame.columns:
            out[col] = frame[col].to_numpy()
    return out


# --------------------------------------------------------------------------------------------
# repeated reads in a running bot

#: seconds within which a file's modification time may not yet show a later change to it
#: (file systems stamp times in ticks): a file modified this recently is read again next time
FRESH_SECONDS = 2.0


def _file_key(st: os.stat_result) -> tuple[int, int, int, int, int]:
    # the change time too: a rewrite in place that puts the modification time back (cp -p,
    # rsync -t --inplace) still moves it, and no user can set it
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)


#: errors of a stat that mean "no such file here", as ``Path.exists`` reads them
_ABSENT = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP})


class ReadCache:
    """The datadir listings and series reads a running bot repeats on every candle, kept while
    the file (or folder) is unchanged.

    Every lookup stats the file or folder again (a stat costs microseconds; reading a feather
    file and re-projecting it costs milliseconds). A kept read is used only when the
    ``(device, inode, mtime_ns, ctime_ns, size)`` of the stat equals what the file had when it
    was read and the file had then been unmodified for ``fresh_s`` seconds: a write within the same
    time-stamp tick as the read would leave the stat unchanged, so such a read is not trusted
    and is repeated next time. A new, replaced (atomic rename: a new inode), rewritten or
    deleted file is therefore seen on the next lookup, and so is a rewrite in place that puts
    the old modification time back (``cp -p``): its change time moves. Errors (a missing or corrupt file) are
    raised as by :func:`load_series` and never kept.

    Frames returned by :meth:`load_series` are shared between calls: read them, do not modify
    them.
    """

    def __init__(self, fresh_s: float = FRESH_SECONDS) -> None:
        self.fresh_ns = int(fresh_s * 1e9)
        self._series: dict[tuple[str, str], tuple[tuple[int, ...], bool, pd.DataFrame]] = {}
        self._folders: dict[str, tuple[tuple[int, ...], bool, frozenset]] = {}
        self._listing: dict[str, tuple[tuple[object, ...], list[tuple[str, str, str]]]] = {}
        self._by_pair: dict[str, tuple[list, dict[str, list[tuple[str, str, str]]]]] = {}
        self._roots: dict[str, tuple[tuple[Path, str | None], ...]] = {}
        self._paths: dict[tuple[str, str, str, str], tuple[Path, Path | None]] = {}
        self.reads = 0  # files read (not served from the cache)
        self.listings = 0  # folders listed

    def _trusted(self, st: os.stat_result) -> bool:
        return time.time_ns() - st.st_mtime_ns > self.fresh_ns

    def _folder(self, folder: Path, default: str | None) -> frozenset | None:
        """The data files of ``folder`` (``None`` when it is not a folder)."""
        name = str(folder)
        try:
            st = os.stat(name)
        except OSError:
            self._folders.pop(name, None)
            return None
        if not stat.S_ISDIR(st.st_mode):
            return None
        key = _file_key(st)
        kept = self._folders.get(name)
        if kept is not None and kept[0] == key and kept[1]:
            return kept[2]
        trusted = self._trusted(st)  # before the listing: a change during it is seen next time
        with os.scandir(name) as entries:
            found = frozenset(_folder_data((e.name for e in entries), default))
        self.listings += 1
        self._folders[name] = (key, trusted, found)
        return found

    def list_data(self, datadir: str | os.PathLike[str]) -> list[tuple[str, str, str]]:
        """:func:`list_data` of ``datadir``, each folder listed again only when it changed."""
        name = os.fspath(datadir)
        folders = self._roots.get(name)
        if folders is None:
            folders = self._roots[name] = _data_folders(Path(datadir))
        parts = [self._folder(folder, default) for folder, default in folders]
        kept = self._listing.get(name)
        if (
            kept is not None
            and len(kept[0]) == len(parts)
            and all(a is b for a, b in zip(kept[0], parts, strict=True))
        ):
            return kept[1]
        found: set[tuple[str, str, str]] = set()
        for part in parts:
            if part is not None:
                found |= part
        listing = sorted(found)
        self._listing[name] = (tuple(parts), listing)
        return listing

    def pair_data(self, datadir: str | os.PathLike[str], pair: str) -> list[tuple[str, str, str]]:
        """The entries of :meth:`list_data` for ``pair`` alone (in the same order)."""
        listing = self.list_data(datadir)
        name = os.fspath(datadir)
        kept = self._by_pair.get(name)
        if kept is None or kept[0] is not listing:
            index: dict[str, list[tuple[str, str, str]]] = {}
            for entry in listing:
                index.setdefault(entry[0], []).append(entry)
            kept = (listing, index)
            self._by_pair[name] = kept
        return kept[1].get(pair, [])

    def load_series(
        self, datadir: str | os.PathLike[str], pair: str, timeframe: str, kind: str
    ) -> pd.DataFrame:
        """:func:`load_series` (no time range), read again only when the file changed. The
        frame is shared: do not modify it."""
        key = (os.fspath(datadir), pair, timeframe, kind)
        paths = self._paths.get(key)
        if paths is None:
            primary = data_path(datadir, pair, timeframe, kind)
            flat = Path(datadir) / "futures" / primary.name if kind in EXTRA_KINDS else None
            paths = self._paths[key] = (primary, flat)
        path = None
        for candidate in paths:  # freqtrade's path first, then (extra kinds) the flat one
            if candidate is None:
                continue
            try:
                st = os.stat(candidate)
            except OSError as exc:
                if exc.errno not in _ABSENT:
                    raise
                self._series.pop((str(candidate), kind), None)
                continue
            path = candidate
            break
        if path is None:
            raise _missing_file(paths[0], Path(datadir), pair, timeframe, kind, None, None)
        name = str(path)
        kept = self._series.get((name, kind))
        if kept is not None and kept[0] == _file_key(st) and kept[1]:
            return kept[2]
        self._series.pop((name, kind), None)
        with open(name, "rb") as fh:
            st = os.fstat(fh.fileno())  # the file read, whatever replaced the path since
            trusted = self._trusted(st)
            raw = pd.read_feather(fh)
        frame = _trim(_series_frame(raw, kind, path), None)
        self.reads += 1
        self._series[(name, kind)] = (_file_key(st), trusted, frame)
        return frame
