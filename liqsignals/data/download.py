"""Download open interest, funding, long/short ratio and taker volume history through ccxt.

Covers Binance USDT-M, Bybit linear and OKX swaps. Every function takes a ccxt exchange object
(``make_exchange`` builds one), so tests and the replay exchange can point ``exchange.urls`` at a
loopback server. Downloads are

* **incremental**: they continue from the last stored row (and fill in before the first one when
  the requested range starts earlier);
* **resumable**: each page is merged into the file (atomically) as soon as it arrives, so an
  interrupted download keeps what it fetched and the next run carries on from there;
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
ratio and taker volume history (older ranges are clipped with a warning); taker volume is
published by Binance only.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from liqsignals.data.datadir import (
    TimeRange,
    append_frame,
    data_path,
    parse_timerange,
    read_frame,
    timeframe_to_timedelta,
)

__all__ = [
    "DownloadResult",
    "download",
    "download_funding_rate",
    "download_long_short_ratio",
    "download_open_interest",
    "download_taker_volume",
    "make_exchange",
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
    """Outcome of one download: the file, rows added, and the stored range afterwards."""

    path: Path
    added: int
    first: pd.Timestamp | None
    last: pd.Timestamp | None


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


def _windows(
    stored: pd.Series | None, start: pd.Timestamp, stop: pd.Timestamp, step: pd.Timedelta
) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Ranges still to fetch: before the first stored row and after the last one."""
    if stored is None or stored.empty:
        return [(start, stop)] if start <= stop else []
    first, last = stored.min(), stored.max()
    out = []
    if start < first:
        out.append((start, min(stop, first - pd.Timedelta(milliseconds=1))))
    if last + step <= stop:
        out.append((max(start, last + step), stop))
    return [(a, b) for a, b in out if a <= b]


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

    Without a timerange start, the download begins after the last stored row, or 30 days ago for a
    new file. The timerange stop defaults to now.
    """
    if kind not in _SPECS:
        raise ValueError(f"cannot download {kind!r}; choose one of {sorted(_SPECS)}")
    from tqdm.auto import tqdm

    fetch, limit, overrides = _SPECS[kind]
    limit = overrides.get(exchange.id, limit)
    period = timeframe_to_timedelta(timeframe)
    step = pd.Timedelta(milliseconds=1) if kind == "funding_rate" else period
    window = (pd.Timedelta(hours=1) if kind == "funding_rate" else period) * limit
    path = data_path(datadir, pair, timeframe, kind)
    stored = read_frame(path)["date"] if path.exists() else None

    tr = parse_timerange(timerange)
    stop = min(tr.stop, now()) if tr.stop is not None else now()
    if tr.start is not None:
        start = tr.start
    elif stored is not None and not stored.empty:
        start = stored.max() + step
    else:
        start = stop - _DEFAULT_SPAN
    keep = _RETENTION.get(exchange.id)
    if keep is not None and kind != "funding_rate" and start < stop - keep:
        clipped = (stop - keep + period).floor(period)
        logger.warning(
            "%s keeps %s of %s history; starting at %s instead of %s",
            exchange.id,
            keep,
            kind,
            clipped,
            start,
        )
        start = clipped

    _call(exchange, exchange.load_markets, sleep=sleep)
    added = 0
    windows = _windows(stored, start, stop, step)
    total = sum(int((b - a) / period) + 1 for a, b in windows)
    with tqdm(total=total, unit="rows", desc=f"{pair} {kind}", disable=not progress) as bar:
        for lo, hi in windows:
            cursor = lo
            while cursor <= hi:
                until = min(cursor + window - pd.Timedelta(milliseconds=1), hi)
                since_ms, until_ms = int(cursor.value // 10**6), int(until.value // 10**6)
                request = functools.partial(
                    _checked_rows, fetch, exchange, pair, timeframe, since_ms, until_ms, limit
                )
                rows = _call(exchange, request, sleep=sleep)
                frame = pd.DataFrame(rows)
                if not frame.empty:
                    frame["date"] = pd.to_datetime(
                        frame["date"].astype("int64"), unit="ms", utc=True
                    )
                    frame = frame.loc[(frame["date"] >= cursor) & (frame["date"] <= until)]
                if frame.empty:
                    nxt = until + pd.Timedelta(milliseconds=1)
                else:
                    _, n = append_frame(frame, path)
                    added += n
                    nxt = max(frame["date"].max() + step, cursor + pd.Timedelta(milliseconds=1))
                bar.update(max(0, int((min(nxt, hi) - cursor) / period)))
                cursor = nxt
    dates = read_frame(path)["date"] if path.exists() else pd.Series(dtype="datetime64[ms, UTC]")
    return DownloadResult(
        path=path,
        added=added,
        first=dates.min() if len(dates) else None,
        last=dates.max() if len(dates) else None,
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
