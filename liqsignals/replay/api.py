"""Binance USDT-M REST semantics of the replay exchange, independent of the HTTP transport.

:class:`ReplayAPI` turns ``(method, path, query)`` into a :class:`Response`: Binance's JSON shapes,
parameter rules (defaults, maximum ``limit``, ``startTime``/``endTime`` windows) and error bodies
(``{"code": -1121, "msg": "Invalid symbol."}`` with HTTP 400, 404 for unknown paths).

Endpoints
---------
``/fapi/v1/ping``, ``/fapi/v1/time``, ``/fapi/v1/exchangeInfo``, ``/fapi/v1/klines``,
``/fapi/v1/markPriceKlines``, ``/fapi/v1/indexPriceKlines``, ``/fapi/v1/premiumIndexKlines``,
``/fapi/v1/fundingRate``, ``/fapi/v1/fundingInfo``, ``/fapi/v1/premiumIndex``,
``/fapi/v1/depth``, ``/fapi/v1/ticker/24hr``, ``/fapi/v1/ticker/price``,
``/fapi/v2/ticker/price``, ``/fapi/v1/ticker/bookTicker``, ``/fapi/v1/openInterest`` and the
metric endpoints in :data:`METRIC_ENDPOINTS`.

Adding a data endpoint
----------------------
Series endpoints of the ``/futures/data/...`` kind (``symbol``, ``period``, ``limit`` default 30
and at most 500, ``startTime``, ``endTime``) are one entry in :data:`METRIC_ENDPOINTS`: the
series kind stored in the datadir (``<PAIR>-<tf>-<kind>.feather``) and a function turning one row
into Binance's JSON object. ``openInterestHist``, ``globalLongShortAccountRatio`` and
``takerlongshortRatio`` are wired this way; a symbol without such a file answers ``[]``.

Time
----
All time comes from the :class:`~liqsignals.replay.clock.Clock`. A candle is served once it has
closed; the candle open at "now" is served as a *forming* candle built from the finer stored
candles that have closed by then (flat at its open, volume 0, when there are none), so a
client never sees prices from after "now". Metric rows (open interest, ratios, taker volume) are
served once their period has ended.
"""

from __future__ import annotations

import json
import logging
import threading
import zlib
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal
from typing import Any
from urllib.parse import parse_qs

import numpy as np

from liqsignals.replay.clock import Clock
from liqsignals.replay.faults import FaultInjector
from liqsignals.replay.store import (
    INTERVALS,
    PERIODS,
    DataStore,
    Market,
    Series,
    bin_close,
    bin_open,
)

logger = logging.getLogger(__name__)

KLINES_LIMIT_DEFAULT, KLINES_LIMIT_MAX = 500, 1500
FUNDING_LIMIT_DEFAULT, FUNDING_LIMIT_MAX = 100, 1000
DATA_LIMIT_DEFAULT, DATA_LIMIT_MAX = 30, 500
DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)
DEPTH_LIMIT_DEFAULT = 500
_FUNDING_INTERVAL_MS = 8 * 3_600_000
_DELIVERY_PERPETUAL = 4133404800000
_DAY_MS = 86_400_000


class BinanceError(Exception):
    """An error answered the way Binance answers it: ``{"code": ..., "msg": ...}``."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status


@dataclass
class Response:
    """What the transport sends back. ``body`` is JSON-able, or raw ``bytes``."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

    def payload(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body, separators=(",", ":")).encode()


def error_response(code: int, msg: str, status: int = 400) -> Response:
    return Response(status, {"code": code, "msg": msg})


def _num(x: float) -> str:
    """Shortest decimal text that reads back as the same float (no exponent)."""
    if x != x:  # NaN: Binance never sends it; an empty value is the honest stand-in
        return ""
    return np.format_float_positional(float(x), trim="-")


# ------------------------------------------------------------------------------ parameters


_LONG_RANGE = "'^[0-9]{1,20}$'"


class Params:
    """Query parameters with Binance's validation rules."""

    def __init__(self, query: str) -> None:
        try:
            raw = parse_qs(query, keep_blank_values=True, strict_parsing=False)
        except ValueError:
            raise BinanceError(-1100, "Illegal characters found in a parameter.") from None
        for name, values in raw.items():
            if len(values) > 1:
                raise BinanceError(-1101, "Duplicate values for a parameter detected.")
            if not name:
                raise BinanceError(-1100, "Illegal characters found in a parameter.")
        self._p = {k: v[0] for k, v in raw.items()}

    def get(self, name: str) -> str | None:
        value = self._p.get(name)
        return value if value not in (None, "") else None

    def required(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise BinanceError(
                -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
            )
        return value

    def integer(self, name: str) -> int | None:
        value = self.get(name)
        if value is None:
            return None
        if not (value.isascii() and value.isdigit() and len(value) <= 20):
            raise BinanceError(
                -1100,
                f"Illegal characters found in parameter '{name}'; legal range is {_LONG_RANGE}.",
            )
        return int(value)

    def limit(self, default: int, maximum: int) -> int:
        value = self.integer("limit")
        if value is None:
            return default
        if value < 1:
            raise BinanceError(-1130, "Data sent for parameter 'limit' is not valid.")
        return min(value, maximum)

    def window(self) -> tuple[int | None, int | None]:
        start, end = self.integer("startTime"), self.integer("endTime")
        if start is not None and end is not None and start > end:
            raise BinanceError(-1023, "Start time is greater than end time.")
        return start, end


# ------------------------------------------------------------------------------ metric hooks


def _oi_row(symbol: str, ts: int, c: Mapping[str, float]) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "sumOpenInterest": _num(c["open_interest_amount"]),
        "sumOpenInterestValue": _num(c["open_interest_value"]),
        "timestamp": ts,
    }


def _lsr_row(symbol: str, ts: int, c: Mapping[str, float]) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "longShortRatio": _num(c["long_short_ratio"]),
        "longAccount": _num(c["long_account"]),
        "shortAccount": _num(c["short_account"]),
        "timestamp": ts,
    }


def _taker_row(symbol: str, ts: int, c: Mapping[str, float]) -> dict[str, Any]:
    buy, sell = c["taker_buy_volume"], c["taker_sell_volume"]
    return {
        "buySellRatio": _num(round(buy / sell, 4)) if sell else "0",
        "buyVol": _num(buy),
        "sellVol": _num(sell),
        "timestamp": ts,
    }


RowFormatter = Callable[[str, int, Mapping[str, float]], dict[str, Any]]

#: ``/futures/data/*`` endpoints: path -> (stored series kind, row formatter). Add entries here.
METRIC_ENDPOINTS: dict[str, tuple[str, RowFormatter]] = {
    "/futures/data/openInterestHist": ("open_interest", _oi_row),
    "/futures/data/globalLongShortAccountRatio": ("long_short_ratio", _lsr_row),
    "/futures/data/takerlongshortRatio": ("taker_volume", _taker_row),
}

#: candle endpoints: path -> (stored candle type, name of the symbol parameter)
KLINE_ENDPOINTS: dict[str, tuple[str, str]] = {
    "/fapi/v1/klines": ("futures", "symbol"),
    "/fapi/v1/markPriceKlines": ("mark", "symbol"),
    "/fapi/v1/indexPriceKlines": ("index", "pair"),
    "/fapi/v1/premiumIndexKlines": ("premiumIndex", "symbol"),
}


def _select(ts: np.ndarray, start: int | None, end: int | None, limit: int) -> tuple[int, int]:
    """Binance's window rule on ascending ``ts``: from ``start`` forward, else back from ``end``."""
    lo = 0 if start is None else int(np.searchsorted(ts, start, "left"))
    hi = len(ts) if end is None else int(np.searchsorted(ts, end, "right"))
    if hi <= lo:
        return lo, lo
    if start is not None:
        return lo, min(hi, lo + limit)
    return max(lo, hi - limit), hi


# ------------------------------------------------------------------------------ the API


class ReplayAPI:
    """Answers Binance USDT-M public REST requests from a :class:`DataStore`."""

    def __init__(self, store: DataStore, clock: Clock, faults: FaultInjector | None = None):
        self.store = store
        self.clock = clock
        self.faults = faults or FaultInjector()
        #: requests answered so far, per ``"METHOD /path"`` (tests check what clients asked)
        self.requests: Counter[str] = Counter()
        self._count_lock = threading.Lock()
        self.routes: dict[str, Callable[[Params], Any]] = {
            "/fapi/v1/ping": lambda p: {},
            "/fapi/v1/time": lambda p: {"serverTime": self.clock.now_ms()},
            "/fapi/v1/exchangeInfo": self._exchange_info,
            "/fapi/v1/fundingRate": self._funding_rate,
            "/fapi/v1/fundingInfo": lambda p: [],
            "/fapi/v1/premiumIndex": self._premium_index,
            "/fapi/v1/depth": self._depth,
            "/fapi/v1/ticker/24hr": self._ticker_24hr,
            "/fapi/v1/ticker/price": self._ticker_price,
            "/fapi/v2/ticker/price": self._ticker_price,
            "/fapi/v1/ticker/bookTicker": self._book_ticker,
            "/fapi/v1/openInterest": self._open_interest,
        }
        for path, (kind, sym_param) in KLINE_ENDPOINTS.items():
            self.routes[path] = self._kline_handler(path, kind, sym_param)
        for path, (kind, fmt) in METRIC_ENDPOINTS.items():
            self.routes[path] = self._metric_handler(kind, fmt)

    # -------------------------------------------------------------- dispatch

    def handle(
        self, method: str, path: str, query: str, headers: Mapping[str, str] | None = None
    ) -> Response:
        """Answer one request. Never raises: errors become Binance-style responses."""
        with self._count_lock:
            self.requests[f"{method} {path}"] += 1
        try:
            params = Params(query)
            headers = headers or {}
            signed = params.get("signature") is not None or any(
                k.lower() == "x-mbx-apikey" for k in headers
            )
            handler = self.routes.get(path)
            if signed and (handler is None or method != "GET"):
                return error_response(-2015, "Invalid API-key, IP, or permissions for action.", 401)
            if handler is None or method not in ("GET", "HEAD"):
                return error_response(-5000, f"Path {path}, Method {method} is invalid", 404)
            return Response(200, handler(params), {"X-MBX-USED-WEIGHT-1M": "1"})
        except BinanceError as exc:
            return error_response(exc.code, exc.msg, exc.status)
        except Exception:  # a bug must not reach the client as a traceback
            logger.exception("replay exchange: error answering %s %s?%s", method, path, query)
            return error_response(
                -1000, "An unknown error occurred while processing the request.", 500
            )

    # -------------------------------------------------------------- helpers

    def _symbol(self, p: Params, name: str = "symbol") -> Market:
        symbol = p.required(name)
        market = self.store.markets.get(symbol)
        if market is None:
            raise BinanceError(-1121, "Invalid symbol.")
        return market

    def _optional_symbols(self, p: Params) -> tuple[list[Market], bool]:
        if p.get("symbol") is None:
            return list(self.store.markets.values()), False
        return [self._symbol(p)], True

    def _interval(self, p: Params, name: str = "interval") -> str:
        interval = p.required(name)
        if interval not in INTERVALS:
            raise BinanceError(-1120, "Invalid interval.")
        return interval

    def _data_window(self, p: Params) -> tuple[int | None, int | None]:
        start, end = p.window()
        to_data = self.clock.to_data
        return (
            None if start is None else to_data(start),
            None if end is None else to_data(end),
        )

    def visible_candles(self, symbol: str, interval: str, kind: str = "futures") -> Series:
        """Candles of ``interval`` a client can see now: closed ones plus the forming one."""
        now = self.clock.data_now_ms()
        closed = self.store.candles(symbol, interval, kind)
        if closed is None:
            return Series(np.empty(0, "int64"), {})
        n = int(np.searchsorted(bin_close(closed.ts, interval), now, "right"))
        out = closed.take(slice(0, n))
        forming = self._forming(symbol, interval, kind, now)
        if forming is not None and (n == 0 or forming[0] > out.ts[-1]):
            ts, row = forming
            out = Series(
                np.append(out.ts, ts), {k: np.append(v, row[k]) for k, v in out.cols.items()}
            )
        return out

    def _forming(
        self, symbol: str, interval: str, kind: str, now: int
    ) -> tuple[int, dict[str, float]] | None:
        fo = int(bin_open(np.array([now], "int64"), interval)[0])
        fc = int(bin_close(np.array([fo], "int64"), interval)[0])
        # the finest stored timeframe with data inside the bin tells the most about it
        for src_tf in self.store.source_intervals(symbol, interval, kind):
            src = self.store.stored(symbol, kind, src_tf)
            lo = int(np.searchsorted(src.ts, fo, "left"))
            if lo >= len(src) or src.ts[lo] >= fc or src.ts[lo] > now:
                continue  # no stored candle of this timeframe inside the bin (yet)
            hi = int(np.searchsorted(bin_close(src.ts, src_tf), now, "right"))
            c = src.cols
            if hi <= lo:  # nothing closed yet inside the bin: flat at the first open
                o = float(c["open"][lo])
                return fo, {"open": o, "high": o, "low": o, "close": o, "volume": 0.0}
            return fo, {
                "open": float(c["open"][lo]),
                "high": float(c["high"][lo:hi].max()),
                "low": float(c["low"][lo:hi].min()),
                "close": float(c["close"][hi - 1]),
                "volume": float(c["volume"][lo:hi].sum()),
            }
        return None

    def _latest_tf(self, symbol: str, kind: str = "futures") -> tuple[str, int] | None:
        """Stored timeframe with the newest closed candle (finest on ties), and that index."""
        now = self.clock.data_now_ms()
        best: tuple[str, int] | None = None
        best_close = -1
        for tf in self.store.timeframes(symbol, kind):
            src = self.store.stored(symbol, kind, tf)
            i = int(np.searchsorted(src.ts + INTERVALS[tf], now, "right")) - 1
            if i >= 0 and int(src.ts[i]) + INTERVALS[tf] > best_close:
                best, best_close = (tf, i), int(src.ts[i]) + INTERVALS[tf]
        return best

    def _last_candle(
        self, symbol: str, kind: str = "futures"
    ) -> tuple[int, dict[str, float]] | None:
        """The newest closed candle of any stored timeframe: ``(close_ms, row)``."""
        found = self._latest_tf(symbol, kind)
        if found is None:
            return None
        tf, i = found
        src = self.store.stored(symbol, kind, tf)
        return int(src.ts[i]) + INTERVALS[tf], {k: float(v[i]) for k, v in src.cols.items()}

    def _last_price(self, symbol: str) -> float:
        last = self._last_candle(symbol)
        if last is None:
            raise BinanceError(-1121, "Invalid symbol.")
        return last[1]["close"]

    def _mark_price(self, symbol: str) -> float:
        """The mark price now, consistent with the last traded price.

        The newest closed mark candle is used as is when it is as fresh as the newest traded
        candle. When the stored mark candles are coarser (1h mark files next to 5m candles), the
        last price is moved by the mark/last basis seen at the newest mark candle's close, so the
        mark price follows the candles instead of lagging up to an hour behind them.
        """
        last = self._last_candle(symbol)
        if last is None:
            raise BinanceError(-1121, "Invalid symbol.")
        mark = self._last_candle(symbol, "mark")
        if mark is None:
            return last[1]["close"]
        mark_close_ms, mark_row = mark
        if mark_close_ms >= last[0]:
            return mark_row["close"]
        ref = self._close_at(symbol, mark_close_ms)
        if ref is None or not ref > 0:
            return last[1]["close"]
        return round(last[1]["close"] * mark_row["close"] / ref, 8)

    def _close_at(self, symbol: str, close_ms: int) -> float | None:
        """Close of a stored futures candle (any timeframe) that closes exactly at ``close_ms``."""
        for tf in self.store.timeframes(symbol):
            s = self.store.stored(symbol, "futures", tf)
            i = int(np.searchsorted(s.ts, close_ms - INTERVALS[tf], "left"))
            if i < len(s) and int(s.ts[i]) + INTERVALS[tf] == close_ms:
                return float(s.cols["close"][i])
        return None

    # -------------------------------------------------------------- endpoints

    def _exchange_info(self, p: Params) -> dict[str, Any]:
        symbols = []
        for sym, m in sorted(self.store.markets.items()):
            spec = self.store.spec(sym)
            onboard = spec.onboard_ms or self.clock.to_served(self.store.first_ms(sym))
            symbols.append(
                {
                    "symbol": sym,
                    "pair": sym,
                    "contractType": "PERPETUAL",
                    "deliveryDate": _DELIVERY_PERPETUAL,
                    "onboardDate": onboard,
                    "status": "TRADING",
                    "maintMarginPercent": "2.5000",
                    "requiredMarginPercent": "5.0000",
                    "baseAsset": m.base,
                    "quoteAsset": m.quote,
                    "marginAsset": m.settle,
                    "pricePrecision": spec.price_precision,
                    "quantityPrecision": spec.quantity_precision,
                    "baseAssetPrecision": 8,
                    "quotePrecision": 8,
                    "underlyingType": "COIN",
                    "underlyingSubType": [],
                    "settlePlan": 0,
                    "triggerProtect": "0.0500",
                    "liquidationFee": "0.012500",
                    "marketTakeBound": "0.05",
                    "maxMoveOrderLimit": 10000,
                    "filters": [
                        {
                            "filterType": "PRICE_FILTER",
                            "minPrice": spec.min_price,
                            "maxPrice": spec.max_price,
                            "tickSize": spec.tick_size,
                        },
                        {
                            "filterType": "LOT_SIZE",
                            "minQty": spec.min_qty,
                            "maxQty": spec.max_qty,
                            "stepSize": spec.step_size,
                        },
                        {
                            "filterType": "MARKET_LOT_SIZE",
                            "minQty": spec.min_qty,
                            "maxQty": spec.market_max_qty,
                            "stepSize": spec.step_size,
                        },
                        {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                        {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
                        {"filterType": "MIN_NOTIONAL", "notional": spec.min_notional},
                        {
                            "filterType": "PERCENT_PRICE",
                            "multiplierUp": "1.0500",
                            "multiplierDown": "0.9500",
                            "multiplierDecimal": "4",
                        },
                    ],
                    "orderTypes": [
                        "LIMIT",
                        "MARKET",
                        "STOP",
                        "STOP_MARKET",
                        "TAKE_PROFIT",
                        "TAKE_PROFIT_MARKET",
                        "TRAILING_STOP_MARKET",
                    ],
                    "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
                    "permissionSets": ["GRID", "COPY"],
                }
            )
        assets = sorted({m.settle for m in self.store.markets.values()})
        return {
            "timezone": "UTC",
            "serverTime": self.clock.now_ms(),
            "futuresType": "U_MARGINED",
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": 2400,
                },
                {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
            ],
            "exchangeFilters": [],
            "assets": [
                {"asset": a, "marginAvailable": True, "autoAssetExchange": "-10000"} for a in assets
            ],
            "symbols": symbols,
        }

    def _kline_handler(self, path: str, kind: str, sym_param: str) -> Callable[[Params], Any]:
        def handler(p: Params) -> list[list[Any]]:
            market = self._symbol(p, sym_param)
            interval = self._interval(p)
            limit = p.limit(KLINES_LIMIT_DEFAULT, KLINES_LIMIT_MAX)
            start, end = self._data_window(p)
            candles = self.visible_candles(market.symbol, interval, kind)
            lo, hi = _select(candles.ts, start, end, limit)
            rows = self._kline_rows(candles, lo, hi, interval, kind)
            return self.faults.mangle_rows(path, rows)

        return handler

    def _kline_rows(self, s: Series, lo: int, hi: int, interval: str, kind: str) -> list[list[Any]]:
        if hi <= lo:
            return []
        opens = s.ts[lo:hi]
        closes = bin_close(opens, interval) - 1
        shift = self.clock.offset_ms
        o, h, low, c = (s.cols[k][lo:hi] for k in ("open", "high", "low", "close"))
        v = s.cols["volume"][lo:hi]
        rows: list[list[Any]] = []
        for i in range(hi - lo):
            if kind == "futures":
                # quote volume is estimated from the typical price; the taker split is unknown
                # in freqtrade's files and is reported as half of the volume
                quote = v[i] * (o[i] + h[i] + low[i] + c[i]) / 4.0
                rows.append(
                    [
                        int(opens[i]) + shift,
                        _num(o[i]),
                        _num(h[i]),
                        _num(low[i]),
                        _num(c[i]),
                        _num(v[i]),
                        int(closes[i]) + shift,
                        _num(round(quote, 8)),
                        0,
                        _num(v[i] / 2.0),
                        _num(round(quote / 2.0, 8)),
                        "0",
                    ]
                )
            else:  # mark/index/premium klines carry no volume
                rows.append(
                    [
                        int(opens[i]) + shift,
                        _num(o[i]),
                        _num(h[i]),
                        _num(low[i]),
                        _num(c[i]),
                        "0",
                        int(closes[i]) + shift,
                        "0",
                        0,
                        "0",
                        "0",
                        "0",
                    ]
                )
        return rows

    def _funding_rate(self, p: Params) -> list[dict[str, Any]]:
        markets, _ = self._optional_symbols(p)
        limit = p.limit(FUNDING_LIMIT_DEFAULT, FUNDING_LIMIT_MAX)
        start, end = self._data_window(p)
        now = self.clock.data_now_ms()
        out: list[dict[str, Any]] = []
        for m in markets:
            f = self.store.funding(m.symbol)
            if f is None:
                continue
            visible = int(np.searchsorted(f.ts, now, "right"))
            lo, hi = _select(f.ts[:visible], start, end, limit)
            for i in range(lo, hi):
                t = int(f.ts[i])
                out.append(
                    {
                        "symbol": m.symbol,
                        "fundingTime": self.clock.to_served(t),
                        "fundingRate": _num(f.cols["funding_rate"][i]),
                        "markPrice": self._price_at(m.symbol, t),
                    }
                )
        out.sort(key=lambda r: (r["fundingTime"], r["symbol"]))
        return out[:limit] if len(markets) > 1 else out

    def _price_at(self, symbol: str, t: int) -> str:
        """Mark price at ``t`` (the open of the mark candle starting then), or the last price."""
        for kind in ("mark", "futures"):
            for tf in self.store.timeframes(symbol, kind):
                s = self.store.stored(symbol, kind, tf)
                i = int(np.searchsorted(s.ts, t, "left"))
                if i < len(s) and s.ts[i] == t:
                    return _num(s.cols["open"][i])
        return ""

    def _next_funding(self, symbol: str, now: int) -> tuple[float, int]:
        f = self.store.funding(symbol)
        if f is None or not len(f):
            return 0.0, (now // _FUNDING_INTERVAL_MS + 1) * _FUNDING_INTERVAL_MS
        i = int(np.searchsorted(f.ts, now, "right")) - 1
        rate = float(f.cols["funding_rate"][i]) if i >= 0 else 0.0
        step = _FUNDING_INTERVAL_MS
        if i >= 1:
            step = int(f.ts[i] - f.ts[i - 1]) or step
        last = int(f.ts[i]) if i >= 0 else (now // step) * step
        nxt = last + step * ((now - last) // step + 1)
        return rate, nxt

    def _premium_index(self, p: Params) -> Any:
        markets, single = self._optional_symbols(p)
        now = self.clock.data_now_ms()
        rows = []
        for m in markets:
            mark = self._mark_price(m.symbol)
            rate, nxt = self._next_funding(m.symbol, now)
            rows.append(
                {
                    "symbol": m.symbol,
                    "markPrice": _num(mark),
                    "indexPrice": _num(mark),
                    "estimatedSettlePrice": _num(mark),
                    "lastFundingRate": _num(rate),
                    "interestRate": "0.00010000",
                    "nextFundingTime": self.clock.to_served(nxt),
                    "time": self.clock.now_ms(),
                }
            )
        return rows[0] if single else rows

    def _ticker_24hr(self, p: Params) -> Any:
        markets, single = self._optional_symbols(p)
        rows = [self._ticker_row(m.symbol) for m in markets]
        return rows[0] if single else rows

    def _ticker_row(self, symbol: str) -> dict[str, Any]:
        found = self._latest_tf(symbol)
        if found is None:
            raise BinanceError(-1121, "Invalid symbol.")
        tf, last_i = found
        step = INTERVALS[tf]
        src = self.store.stored(symbol, "futures", tf)
        hi = last_i + 1
        lo = int(np.searchsorted(src.ts, int(src.ts[last_i]) + step - _DAY_MS, "left"))
        c = src.cols
        o, last = float(c["open"][lo]), float(c["close"][hi - 1])
        vol = c["volume"][lo:hi]
        typical = (c["open"][lo:hi] + c["high"][lo:hi] + c["low"][lo:hi] + c["close"][lo:hi]) / 4
        quote = float((vol * typical).sum())
        volume = float(vol.sum())
        change = last - o
        return {
            "symbol": symbol,
            "priceChange": _num(round(change, 8)),
            "priceChangePercent": f"{(change / o * 100.0) if o else 0.0:.3f}",
            "weightedAvgPrice": _num(round(quote / volume, 8)) if volume else _num(last),
            "lastPrice": _num(last),
            "lastQty": self.store.spec(symbol).min_qty,
            "openPrice": _num(o),
            "highPrice": _num(float(c["high"][lo:hi].max())),
            "lowPrice": _num(float(c["low"][lo:hi].min())),
            "volume": _num(round(volume, 8)),
            "quoteVolume": _num(round(quote, 2)),
            "openTime": self.clock.to_served(int(src.ts[lo])),
            "closeTime": self.clock.to_served(int(src.ts[hi - 1]) + step - 1),
            "firstId": 0,
            "lastId": 0,
            "count": 0,
        }

    def _ticker_price(self, p: Params) -> Any:
        markets, single = self._optional_symbols(p)
        rows = [
            {
                "symbol": m.symbol,
                "price": _num(self._last_price(m.symbol)),
                "time": self.clock.now_ms(),
            }
            for m in markets
        ]
        return rows[0] if single else rows

    def _book_ticker(self, p: Params) -> Any:
        markets, single = self._optional_symbols(p)
        rows = []
        for m in markets:
            book = self.order_book(m.symbol, 5)
            rows.append(
                {
                    "symbol": m.symbol,
                    "bidPrice": book["bids"][0][0],
                    "bidQty": book["bids"][0][1],
                    "askPrice": book["asks"][0][0],
                    "askQty": book["asks"][0][1],
                    "time": book["T"],
                    "lastUpdateId": book["lastUpdateId"],
                }
            )
        return rows[0] if single else rows

    def _depth(self, p: Params) -> dict[str, Any]:
        market = self._symbol(p)
        limit = p.integer("limit")
        if limit is None:
            limit = DEPTH_LIMIT_DEFAULT
        elif limit < 1:
            raise BinanceError(-1130, "Data sent for parameter 'limit' is not valid.")
        else:  # Binance accepts 5..1000 and answers with the next listed depth
            limit = next((d for d in DEPTH_LIMITS if d >= limit), DEPTH_LIMITS[-1])
        return self.order_book(market.symbol, limit)

    def order_book(self, symbol: str, limit: int) -> dict[str, Any]:
        """A deterministic book around the last closed candle's close.

        One tick between levels; the best bid is the close rounded down to the tick. Sizes are
        drawn from a hash of the symbol and candle time, scaled to the candle's volume, and
        rounded to the lot step.
        """
        last = self._last_candle(symbol)
        if last is None:
            raise BinanceError(-1121, "Invalid symbol.")
        close_ms, row = last
        spec = self.store.spec(symbol)
        tick = Decimal(spec.tick_size)
        step = Decimal(spec.step_size)
        min_qty = Decimal(spec.min_qty)
        price = Decimal(repr(row["close"]))
        best_bid = (price / tick).to_integral_value(ROUND_FLOOR)
        volume = row["volume"] if row["volume"] > 0 else float(min_qty) * 2000
        base = Decimal(repr(max(volume / 4000.0, float(min_qty))))
        seed = zlib.crc32(f"{symbol}:{close_ms}".encode())
        bids: list[list[str]] = []
        asks: list[list[str]] = []
        for k in range(limit):
            for side, ticks, salt in ((bids, best_bid - k, 1), (asks, best_bid + 1 + k, 2)):
                if ticks <= 0:
                    continue
                h = zlib.crc32(f"{seed}:{salt}:{k}".encode()) % 1000
                qty = (base * (Decimal(1) + Decimal(h) / 250)).quantize(step, ROUND_FLOOR)
                side.append([format(ticks * tick, "f"), format(max(qty, min_qty), "f")])
        now = self.clock.now_ms()
        return {
            "lastUpdateId": self.clock.to_served(close_ms),
            "E": now,
            "T": now,
            "bids": bids,
            "asks": asks,
        }

    def _open_interest(self, p: Params) -> dict[str, Any]:
        market = self._symbol(p)
        tfs = self.store.timeframes(market.symbol, "open_interest")
        now = self.clock.data_now_ms()
        for tf in tfs:
            s = self.store.stored(market.symbol, "open_interest", tf)
            i = int(np.searchsorted(s.ts + INTERVALS[tf], now, "right")) - 1
            if i >= 0:
                return {
                    "openInterest": _num(s.cols["open_interest_amount"][i]),
                    "symbol": market.symbol,
                    "time": self.clock.now_ms(),
                }
        raise BinanceError(
            -1130, f"The replay exchange has no open interest data for {market.symbol}."
        )

    def _metric_handler(self, kind: str, fmt: RowFormatter) -> Callable[[Params], Any]:
        def handler(p: Params) -> list[dict[str, Any]]:
            market = self._symbol(p)
            period = p.required("period")
            if period not in PERIODS:
                raise BinanceError(-1130, "Data sent for parameter 'period' is not valid.")
            limit = p.limit(DATA_LIMIT_DEFAULT, DATA_LIMIT_MAX)
            start, end = self._data_window(p)
            found = self.store.metric(market.symbol, kind, period)
            if found is None:
                return []
            s, _ = found
            now = self.clock.data_now_ms()
            visible = int(np.searchsorted(s.ts + INTERVALS[period], now, "right"))
            lo, hi = _select(s.ts[:visible], start, end, limit)
            names = list(s.cols)
            rows = []
            for i in range(lo, hi):
                values = {n: float(s.cols[n][i]) for n in names}
                rows.append(fmt(market.symbol, self.clock.to_served(int(s.ts[i])), values))
            return rows

        return handler
