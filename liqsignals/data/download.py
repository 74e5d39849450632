"""Download open interest, funding, long/short ratio and taker volume history through ccxt.

Covers Binance USDT-M, Bybit linear and OKX swaps. Every function takes a ccxt exchange object
(``make_exchange`` builds one), so tests and the replay exchange can point ``exchange.urls`` at a
loopback server. Downloads are

* **gap-filling**: the stored dates are compared with the timeframe's grid over the requested
  range (by default from the first stored row to now) and every missing span is fetched, inside
  the file as well as before and after it, so a rerun repairs an interrupted back-fill and reports
  the rows it added;
* **resumable**: each page is merged into the file (atomically) as soon as it arrives, so an
  interrupted download keeps what it fetched and the next run fills in the rest;
* **safe to run concurrently**: every merge reads, merges and writes under the file's lock
  (``liqsignals.data.datadir.file_lock``), so two runs into one file, with the same or different
  ranges, keep the union of their rows; the second waits for each merge of the first (at most
  ``LOCK_TIMEOUT`` seconds, then ``FileBusyError``);
* **honest about holes**: spans the exchange does not serve (older than its retention, or
  answered with no rows) are recorded in a small JSON sidecar beside the file
  (``unavailable_path``), reported once (a warning and ``DownloadResult.unavailable``) and
  skipped by later runs; delete the sidecar to retry them;
* **rate-limit friendly**: ccxt's ``enableRateLimit`` is switched on; network errors,
  ``RateLimitExceeded`` and ``DDoSProtection`` are retried with exponential backoff, waiting at
  least as long as a ``Retry-After`` header asks.

What ``freqtrade download-data`` already does is not repeated here: candles, mark candles and
funding rates (``--trading-mode futures`` fetches all three) and open interest
(``--candle-types open_interest``) land in the same files. ``download_open_interest`` exists for
OKX, whose history counts contracts (freqtrade stores them as they come; this module multiplies by
the contract size), and so that one command fetches every input; ``download_funding_rate`` is
kept for datadirs freqtrade does not manage. Long/short ratio and taker volume are not known to
freqtrade and are stored in ``futures/liqsignals/`` (see ``liqsignals.data.datadir``).

Exchange limits worth knowing: Binance keeps only the last 30 days of open interest, long/short
ratio and taker volume history (older spans are recorded as unavailable, with a warning, once);
taker volume is published by Binance only.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from liqsignals._time import to_utc_datetime
from liqsignals.data.datadir import (
    TimeRange,
    append_frame,
    data_path,
    file_lock,
    parse_timerange,
    read_frame,
    timeframe_to_timedelta,
)
from liqsignals.fileio import atomic_write_text

__all__ = [
    "DownloadResult",
    "Unavailable",
    "download",
    "download_funding_rate",
    "download_long_short_ratio",
    "download_open_interest",
    "download_taker_volume",
    "load_unavailable",
    "make_exchange",
    "missing_spans",
    "unavailable_path",
]

logger = logging.getLogger(__name__)

# exchange id -> how far back its statistics endpoints reach (open interest, ratios, taker volume)
_RETENTION: dict[str, pd.Timedelta] = {
    "binance": pd.Timedelta(days=30),
    "binanceusdm": pd.Timedelta(days=30),
}
_DEFAULT_SPAN = pd.Timedelta(days=30)
_MAX_RETRIES = 6


@dataclass(frozen=True)
class DownloadResult:
    """Outcome of one download: the file, rows added, the stored range afterwards, and the
    spans newly found unavailable."""

    path: Path
    added: int
    first: pd.Timestamp | None
    last: pd.Timestamp | None
    #: spans found unavailable in this run (reported once: later runs skip them silently)
    unavailable: tuple[Unavailable, ...] = ()


def make_exchange(name: str, config: Mapping[str, Any] | None = None, *, pro: bool = False) -> Any:
    """A ccxt exchange for USDT-margined perpetuals (``binance``, ``bybit``, ``okx``, ...).

    ``config`` may be a freqtrade config: its ``exchange.ccxt_config`` (and
    ``ccxt_sync_config`` / ``ccxt_async_config``) are applied; API keys are never passed, every
    endpoint used here is public. ``pro=True`` returns the ccxt.pro (websocket) class.
    """
    import ccxt

    module: Any = ccxt
    if pro:
        import ccxt.pro

        module = ccxt.pro
    if not hasattr(module, name):
        raise ValueError(f"unknown ccxt exchange {name!r}")
    settings: dict[str, Any] = {"enableRateLimit": True, "options": {"defaultType": "swap"}}
    exchange_conf = dict((config or {}).get("exchange", {}))
    for key in ("ccxt_config", "ccxt_async_config" if pro else "ccxt_sync_config"):
        extra = dict(exchange_conf.get(key) or {})
        options = {**settings["options"], **dict(extra.pop("options", {}) or {})}
        settings.update(extra)
        settings["options"] = options
    for secret in ("apiKey", "secret", "password", "uid", "privateKey", "walletAddress"):
        settings.pop(secret, None)
    exchange = getattr(module, name)(settings)
    exchange.enableRateLimit = True
    return exchange


# ------------------------------------------------------------------------------------ retries


def _retry_after(exchange: Any) -> float | None:
    headers = getattr(exchange, "last_response_headers", None) or {}
    for key, value in dict(headers).items():
        if str(key).lower() == "retry-after":
            try:
                return float(value)
            except (TypeError, ValueError):
                return None
    return None


def _call(
    exchange: Any,
    fn: Callable[[], Any],
    *,
    sleep: Callable[[float], None] = time.sleep,
    retries: int = _MAX_RETRIES,
) -> Any:
    """Run ``fn``; retry what ccxt calls transient (``OperationFailed``: network errors, rate
    limits, 5xx answers, malformed payloads) with backoff, honouring Retry-After. Anything else
    (bad symbol, permissions, ...) is raised at once."""
    import ccxt

    delay = 1.0
    for attempt in range(retries + 1):
        try:
            return fn()
        except ccxt.OperationFailed as exc:
            if attempt == retries:
                raise
            wait = delay
            if isinstance(exc, ccxt.RateLimitExceeded | ccxt.DDoSProtection):
                wait = max(wait, _retry_after(exchange) or 0.0)
            logger.warning("%s: %s; retrying in %.1fs", exchange.id, type(exc).__name__, wait)
            sleep(wait)
            delay = min(delay * 2, 60.0)
    raise AssertionError("unreachable")  # pragma: no cover


# ------------------------------------------------------------------------------ row fetchers

# each returns a list of row dicts with "date" (ms) and the kind's columns


def _contract_size(exchange: Any, symbol: str) -> float:
    market = exchange.market(symbol)
    if market.get("inverse"):
        raise ValueError(f"{symbol} is an inverse contract; only linear contracts are supported")
    size = market.get("contractSize")
    return float(size) if size else 1.0


def _rows_open_interest(
    exchange: Any, symbol: str, timeframe: str, since: int, until: int, limit: int
) -> list[dict[str, Any]]:
    size = _contract_size(exchange, symbol)
    data = exchange.fetch_open_interest_history(
        symbol, timeframe, since=since, limit=limit, params={"until": until}
    )
    rows = []
    for item in data:
        amount = item.get("openInterestAmount")
        value = item.get("openInterestValue")
        rows.append(
            {
                "date": item["timestamp"],
                # ccxt reports contracts: coins = contracts x contract size (1 on Binance/Bybit)
                "open_interest_amount": None if amount is None else float(amount) * size,
                "open_interest_value": None if value is None else float(value),
            }
        )
    return rows


def _rows_funding(
    exchange: Any, symbol: str, timeframe: str, since: int, until: int, limit: int
) -> list[dict[str, Any]]:
    data = exchange.fetch_funding_rate_history(
        symbol, since=since, limit=limit, params={"until": until}
    )
    return [{"date": x["timestamp"], "funding_rate": x["fundingRate"]} for x in data]


def _rows_long_short(
    exchange: Any, symbol: str, timeframe: str, since: int, until: int, limit: int
) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"until": until}
    if exchange.id == "bybit":  # ccxt passes neither since nor until to Bybit's account-ratio
        params = {"startTime": since, "endTime": until}
    data = exchange.fetch_long_short_ratio_history(
        symbol, timeframe, since=since, limit=limit, params=params
    )
    rows = []
    for item in data:
        info = item.get("info") or {}
        long_acc = info.get("longAccount", info.get("buyRatio")) if isinstance(info, dict) else None
        short_acc = (
            info.get("shortAccount", info.get("sellRatio")) if isinstance(info, dict) else None
        )
        rows.append(
            {
                "date": item["timestamp"],
                "long_short_ratio": item.get("longShortRatio"),
                "long_account": None if long_acc is None else float(long_acc),
                "short_account": None if short_acc is None else float(short_acc),
            }
        )
    return rows


def _rows_taker_volume(
    exchange: Any, symbol: str, timeframe: str, since: int, until: int, limit: int
) -> list[dict[str, Any]]:
    if exchange.id not in ("binance", "binanceusdm"):
        raise ValueError(
            f"taker volume history is published by Binance only, not {exchange.id}; "
            "import Binance kline dumps (liqsignals import binance-dump) for other ranges"
        )
    market = exchange.market(symbol)
    request = {
        "symbol": market["id"],
        "period": timeframe,
        "startTime": since,
        "endTime": until,
        "limit": limit,
    }
    data = exchange.fapiDataGetTakerlongshortRatio(request)
    return [
        {
            "date": int(x["timestamp"]),
            "taker_buy_volume": float(x["buyVol"]),
            "taker_sell_volume": float(x["sellVol"]),
        }
        for x in data
    ]


_Fetcher = Callable[[Any, str, str, int, int, int], list[dict[str, Any]]]


def _checked_rows(fetch: _Fetcher, exchange: Any, *args: Any) -> list[dict[str, Any]]:
    """Run a row fetcher and reject a malformed payload as ccxt's ``BadResponse`` (retried).

    For a body that is not valid JSON, ccxt hands the raw text to its parsers, which turn it into
    entries without timestamps (or, filtered by ``since``, into an empty page); taking that as
    "no data" would silently lose a whole page of history.
    """
    import json

    import ccxt

    if hasattr(exchange, "last_http_response"):
        exchange.last_http_response = None
    try:
        rows = fetch(exchange, *args)
    except (TypeError, KeyError, AttributeError) as exc:  # a payload of the wrong shape
        raise ccxt.BadResponse(f"{exchange.id}: malformed payload ({exc!r})") from exc
    # ccxt keeps the raw body; when it is not JSON, ccxt's parsers saw garbage and, with a
    # ``since`` filter, return an empty list that looks like "no data in this window"
    body = getattr(exchange, "last_http_response", None)
    if isinstance(body, str) and body.strip():
        try:
            json.loads(body)
        except ValueError as exc:
            raise ccxt.BadResponse(
                f"{exchange.id}: malformed payload (not JSON: {body[:60]!r})"
            ) from exc
    if not isinstance(rows, list):
        raise ccxt.BadResponse(f"{exchange.id}: malformed payload (not a list)")
    for row in rows:
        date = row.get("date")
        if date is None or isinstance(date, str) or not float(date) == float(date):
            raise ccxt.BadResponse(
                f"{exchange.id}: malformed payload (an entry without a timestamp: {row!r:.120})"
            )
    return rows


# kind -> (fetcher, rows per request, per exchange id override)
_SPECS: dict[str, tuple[_Fetcher, int, dict[str, int]]] = {
    "open_interest": (_rows_open_interest, 500, {"bybit": 200, "okx": 100}),
    "funding_rate": (_rows_funding, 1000, {"bybit": 200, "okx": 100}),
    "long_short_ratio": (_rows_long_short, 500, {"bybit": 500, "okx": 100}),
    "taker_volume": (_rows_taker_volume, 500, {}),
}


# ------------------------------------------------------------------------------- the loop


def _now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


_MS = pd.Timedelta(milliseconds=1)
_SETTLED = pd.Timedelta(days=1)  # an empty answer about a span older than this is final


@dataclass(frozen=True)
class Unavailable:
    """A span of a data file's history the exchange does not serve.

    ``reason`` is ``"retention"`` (older than the exchange keeps, e.g. Binance's 30 days of open
    interest) or ``"not served"`` (the exchange answered a request for the span with no rows).
    Both ends are inclusive.
    """

    start: pd.Timestamp
    stop: pd.Timestamp
    reason: str


def unavailable_path(path: str | Path) -> Path:
    """The sidecar beside a data file that records its unavailable spans:
    ``.<name>.unavailable.json``."""
    target = Path(path)
    return target.with_name(f".{target.name}.unavailable.json")


def load_unavailable(path: str | Path) -> list[Unavailable]:
    """The spans recorded as unavailable for the data file ``path`` (empty when none)."""
    side = unavailable_path(path)
    if not side.exists():
        return []
    try:
        doc = json.loads(side.read_text(encoding="utf-8"))
        return [
            Unavailable(
                pd.Timestamp(item["start"]).tz_convert("UTC"),
                pd.Timestamp(item["stop"]).tz_convert("UTC"),
                str(item["reason"]),
            )
            for item in doc["unavailable"]
        ]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(
            f"{side}: unreadable record of unavailable spans ({exc}); delete it to retry them"
        ) from exc


def _merge_spans(spans: list[Unavailable]) -> list[Unavailable]:
    out: list[Unavailable] = []
    for span in sorted(spans, key=lambda x: (x.reason, x.start)):
        last = out[-1] if out else None
        if last is not None and last.reason == span.reason and span.start <= last.stop + _MS:
            out[-1] = Unavailable(last.start, max(last.stop, span.stop), last.reason)
        else:
            out.append(span)
    return sorted(out, key=lambda x: x.start)


def _record_unavailable(path: Path, spans: list[Unavailable]) -> None:
    """Add ``spans`` to the sidecar (read, merge and atomic write under the sidecar's lock)."""
    if not spans:
        return
    with file_lock(unavailable_path(path)):
        merged = _merge_spans([*load_unavailable(path), *spans])
        doc = {
            "file": path.name,
            "note": "spans the exchange does not serve; downloads skip them (delete to retry)",
            "unavailable": [
                {"start": x.start.isoformat(), "stop": x.stop.isoformat(), "reason": x.reason}
                for x in merged
            ],
        }
        atomic_write_text(unavailable_path(path), json.dumps(doc, indent=1) + "\n")


def _subtract(
    spans: list[tuple[pd.Timestamp, pd.Timestamp]], holes: list[Unavailable]
) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    out = spans
    for hole in holes:
        nxt = []
        for lo, hi in out:
            if hole.stop < lo or hole.start > hi:
                nxt.append((lo, hi))
                continue
            if lo < hole.start:
                nxt.append((lo, hole.start - _MS))
            if hole.stop < hi:
                nxt.append((hole.stop + _MS, hi))
        out = nxt
    return out


def missing_spans(
    stored: pd.Series | None,
    start: pd.Timestamp,
    stop: pd.Timestamp,
    timeframe: str,
    kind: str = "open_interest",
) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Spans inside ``[start, stop]`` (inclusive) whose rows are not among the ``stored`` dates.

    For bar series the expected dates are the timeframe's grid (aligned like the stored rows, or
    to the epoch for a new file): each run of missing bars is one span, from its first bar to just
    before the next stored one. Funding events have no fixed grid: the spans are before the first
    stored event (when the range starts at least half an interval earlier), after the last one, and
    between two events more than 1.5 typical intervals apart.
    """
    if start > stop:
        return []
    dates = pd.Series([], dtype="datetime64[ms, UTC]") if stored is None else stored
    dates = dates.sort_values().reset_index(drop=True)
    if kind == "funding_rate":
        return _missing_events(dates, start, stop)
    p = int(timeframe_to_timedelta(timeframe) / _MS)
    ms = pd.DatetimeIndex(dates).as_unit("ms").asi8
    phase = int(ms[0] % p) if len(ms) else 0
    lo_ms, hi_ms = int(start.value // 10**6), int(stop.value // 10**6)
    first = lo_ms + (phase - lo_ms) % p
    grid = np.arange(first, hi_ms + 1, p, dtype="int64")
    have = ms - (ms - phase) % p  # each stored row's bar, sorted like the dates
    at = np.minimum(np.searchsorted(have, grid), max(len(have) - 1, 0))
    miss = grid[~(have[at] == grid)] if len(have) else grid
    if not len(miss):
        return []
    breaks = np.flatnonzero(np.diff(miss) != p) + 1
    out = []
    for run in np.split(miss, breaks):
        a = pd.Timestamp(int(run[0]), unit="ms", tz="UTC")
        b = pd.Timestamp(min(int(run[-1]) + p - 1, hi_ms), unit="ms", tz="UTC")
        out.append((max(a, start), b))
    return out


def _missing_events(
    dates: pd.Series, start: pd.Timestamp, stop: pd.Timestamp
) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    if dates.empty:
        return [(start, stop)]
    steps = dates.diff().dropna()
    interval = steps.median() if len(steps) else pd.Timedelta(hours=8)
    interval = max(interval, pd.Timedelta(hours=1))
    out = []
    first, last = dates.iloc[0], dates.iloc[-1]
    if first - start >= interval / 2:
        out.append((start, min(stop, first - _MS)))
    inside = list(dates.loc[(dates >= start - interval * 2) & (dates <= stop + interval * 2)])
    for a, b in zip(inside[:-1], inside[1:], strict=True):
        if b - a > interval * 1.5:
            lo, hi = max(a + _MS, start), min(b - _MS, stop)
            if lo <= hi:
                out.append((lo, hi))
    if last + _MS <= stop:
        out.append((max(start, last + _MS), stop))
    return sorted(out)


def _coalesce(
    spans: list[tuple[pd.Timestamp, pd.Timestamp]], window: pd.Timedelta
) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Merge spans that fit into one request together (re-fetching the few rows between them)."""
    out: list[tuple[pd.Timestamp, pd.Timestamp]] = []
    for lo, hi in sorted(spans):
        if out and hi - out[-1][0] < window:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _describe(spans: list[Unavailable]) -> str:
    shown = ", ".join(f"{x.start} .. {x.stop}" for x in spans[:3])
    return shown + (f" and {len(spans) - 3} more" if len(spans) > 3 else "")


def download(
    exchange: Any,
    pair: str,
    timeframe: str,
    datadir: str | Path,
    kind: str,
    *,
    timerange: str | TimeRange | tuple | None = None,
    progress: bool = True,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], pd.Timestamp] = _now,
) -> DownloadResult:
    """Fetch ``kind`` (``open_interest``, ``funding_rate``, ``long_short_ratio`` or
    ``taker_volume``) for ``pair`` into ``datadir``; see the module docstring.

    Every row missing inside the range is fetched: gaps between stored rows as well as the spans
    before the first and after the last one. Without a timerange start the range begins at the
    first stored row (so a rerun repairs what an interrupted run left out), or 30 days ago for a
    new file; the stop defaults to now. Spans the exchange does not serve are recorded beside the
    file (``unavailable_path``), reported once in ``DownloadResult.unavailable`` and a warning,
    and skipped afterwards.
    """
    if kind not in _SPECS:
        raise ValueError(f"cannot download {kind!r}; choose one of {sorted(_SPECS)}")
    from tqdm.auto import tqdm

    fetch, limit, overrides = _SPECS[kind]
    limit = overrides.get(exchange.id, limit)
    period = timeframe_to_timedelta(timeframe)
    step = _MS if kind == "funding_rate" else period
    window = (pd.Timedelta(hours=1) if kind == "funding_rate" else period) * limit
    path = data_path(datadir, pair, timeframe, kind)
    stored = read_frame(path)["date"] if path.exists() else None

    clock = now()
    tr = parse_timerange(timerange)
    stop = min(tr.stop, clock) if tr.stop is not None else clock
    keep = _RETENTION.get(exchange.id) if kind != "funding_rate" else None
    # the exchange's "now" is the range's stop (the replay exchange serves a past clock)
    cutoff = stop - keep if keep is not None else None
    if tr.start is not None:
        start = tr.start
    elif stored is not None and not stored.empty:
        start = stored.min()
    else:
        start = stop - _DEFAULT_SPAN
        if cutoff is not None:
            start = max(start, cutoff)

    spans = _subtract(missing_spans(stored, start, stop, timeframe, kind), load_unavailable(path))
    unavailable: list[Unavailable] = []
    if cutoff is not None:
        old = [(lo, min(hi, cutoff - _MS)) for lo, hi in spans if lo < cutoff]
        spans = [(max(lo, cutoff), hi) for lo, hi in spans if hi >= cutoff]
        unavailable = [Unavailable(lo, hi, "retention") for lo, hi in old]
        if unavailable:
            _record_unavailable(path, unavailable)
            logger.warning(
                "%s keeps %s of %s history: %s for %s cannot be fetched (%d span(s): %s); "
                "recorded in %s and not retried",
                exchange.id,
                keep,
                kind,
                pair,
                timeframe,
                len(unavailable),
                _describe(unavailable),
                unavailable_path(path),
            )

    _call(exchange, exchange.load_markets, sleep=sleep)
    added = 0
    empty: list[Unavailable] = []
    windows = _coalesce(spans, window)
    total = sum(int((b - a) / period) + 1 for a, b in windows)
    try:
        with tqdm(total=total, unit="rows", desc=f"{pair} {kind}", disable=not progress) as bar:
            for lo, hi in windows:
                cursor = lo
                while cursor <= hi:
                    until = min(cursor + window - _MS, hi)
                    since_ms, until_ms = int(cursor.value // 10**6), int(until.value // 10**6)
                    request = functools.partial(
                        _checked_rows, fetch, exchange, pair, timeframe, since_ms, until_ms, limit
                    )
                    rows = _call(exchange, request, sleep=sleep)
                    frame = pd.DataFrame(rows)
                    if not frame.empty:
                        frame["date"] = to_utc_datetime(frame["date"].astype("int64"), unit="ms")
                        frame = frame.loc[(frame["date"] >= cursor) & (frame["date"] <= until)]
                    if frame.empty:
                        if until < clock - max(_SETTLED, 2 * period):
                            empty.append(Unavailable(cursor, until, "not served"))
                        nxt = until + _MS
                    else:
                        _, n = append_frame(frame, path)
                        added += n
                        nxt = max(frame["date"].max() + step, cursor + _MS)
                    bar.update(max(0, int((min(nxt, hi) - cursor) / period)))
                    cursor = nxt
    finally:
        if empty:
            _record_unavailable(path, empty)
            logger.warning(
                "%s served no %s for %s %s in %d span(s): %s; recorded in %s and not retried",
                exchange.id,
                kind,
                pair,
                timeframe,
                len(empty),
                _describe(empty),
                unavailable_path(path),
            )
    dates = read_frame(path)["date"] if path.exists() else pd.Series(dtype="datetime64[ms, UTC]")
    return DownloadResult(
        path=path,
        added=added,
        first=dates.min() if len(dates) else None,
        last=dates.max() if len(dates) else None,
        unavailable=tuple(_merge_spans(unavailable + empty)),
    )


def download_open_interest(
    exchange: Any, pair: str, timeframe: str, datadir: str | Path, **kwargs: Any
) -> DownloadResult:
    """Open interest history into freqtrade's ``<pair>-<tf>-open_interest.feather``.

    Columns ``open_interest_amount`` (base currency: contracts x contract size) and
    ``open_interest_value`` (quote currency; NaN where the exchange does not report it, e.g.
    Bybit).
    """
    return download(exchange, pair, timeframe, datadir, "open_interest", **kwargs)


def download_funding_rate(
    exchange: Any, pair: str, datadir: str | Path, timeframe: str = "1h", **kwargs: Any
) -> DownloadResult:
    """Funding rate history (``date, funding_rate``), as ``freqtrade download-data`` stores it."""
    return download(exchange, pair, timeframe, datadir, "funding_rate", **kwargs)


def download_long_short_ratio(
    exchange: Any, pair: str, timeframe: str, datadir: str | Path, **kwargs: Any
) -> DownloadResult:
    """Account long/short ratio (``long_short_ratio, long_account, short_account``).

    Binance: ``/futures/data/globalLongShortAccountRatio``; Bybit: ``account-ratio`` (buy/sell
    ratios as long/short accounts); OKX: the contract long/short account ratio (ratio only).
    """
    return download(exchange, pair, timeframe, datadir, "long_short_ratio", **kwargs)


def download_taker_volume(
    exchange: Any, pair: str, timeframe: str, datadir: str | Path, **kwargs: Any
) -> DownloadResult:
    """Taker buy/sell volume per bar (base currency) from Binance's ``takerlongshortRatio``."""
    return download(exchange, pair, timeframe, datadir, "taker_volume", **kwargs)
