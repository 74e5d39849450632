"""Market-data downloads through real ccxt objects whose HTTP layer answers from a script."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import ccxt
import pandas as pd
import pytest

from liqsignals.data import download as dl
from liqsignals.data.datadir import load_long_short_ratio, load_open_interest, load_taker_volume

HOUR = 3_600_000
NOW = pd.Timestamp("2025-05-31 12:00", tz="UTC")
NOW_MS = int(NOW.value // 10**6)


def _market(exchange_id: str, size: float = 1.0) -> dict[str, Any]:
    market_id = {"okx": "BTC-USDT-SWAP"}.get(exchange_id, "BTCUSDT")
    return {
        "id": market_id,
        "symbol": "BTC/USDT:USDT",
        "base": "BTC",
        "quote": "USDT",
        "settle": "USDT",
        "baseId": "BTC",
        "quoteId": "USDT",
        "settleId": "USDT",
        "type": "swap",
        "spot": False,
        "margin": False,
        "swap": True,
        "future": False,
        "option": False,
        "contract": True,
        "linear": True,
        "inverse": False,
        "contractSize": size,
        "active": True,
        "precision": {"amount": 0.001, "price": 0.1},
        "limits": {"amount": {}, "price": {}, "cost": {}, "leverage": {}},
        "info": {"pair": "BTCUSDT"},
    }


class Binance:
    """Answers Binance's /futures/data endpoints for hourly rows up to NOW (30 days kept)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.failures: dict[int, Exception] = {}
        self.headers: dict[str, str] = {}

    def __call__(self, url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        parsed = urlparse(url)
        q = {k: v[0] for k, v in parse_qs(parsed.query).items()}
        self.requests.append({"path": parsed.path, **q})
        n = len(self.requests)
        if n in self.failures:
            raise self.failures[n]
        period = HOUR if q.get("period") == "1h" else 300_000
        start = max(int(q.get("startTime", NOW_MS - 30 * 24 * HOUR)), NOW_MS - 30 * 24 * HOUR)
        end = min(int(q.get("endTime", NOW_MS)), self.now_ms)
        first = -(-start // period) * period
        stamps = list(range(first, end + 1, period))[: int(q.get("limit", 30))]
        if parsed.path.endswith("openInterestHist"):
            return [
                {
                    "symbol": "BTCUSDT",
                    "sumOpenInterest": str(1000 + t // HOUR % 100),
                    "sumOpenInterestValue": str((1000 + t // HOUR % 100) * 50000),
                    "timestamp": t,
                }
                for t in stamps
            ]
        if parsed.path.endswith("globalLongShortAccountRatio"):
            return [
                {
                    "symbol": "BTCUSDT",
                    "longAccount": "0.6",
                    "longShortRatio": "1.5",
                    "shortAccount": "0.4",
                    "timestamp": t,
                }
                for t in stamps
            ]
        if parsed.path.endswith("takerlongshortRatio"):
            return [
                {"buySellRatio": "2", "buyVol": "10.5", "sellVol": "5.25", "timestamp": t}
                for t in stamps
            ]
        raise AssertionError(f"unexpected request {url}")

    now_ms = NOW_MS


def _binance(server: Binance) -> Any:
    exchange = dl.make_exchange("binance")
    exchange.set_markets([_market("binance")])
    exchange.fetch = server

    def remember_headers(*args: Any, **kwargs: Any) -> Any:
        exchange.last_response_headers = dict(server.headers)
        return server(*args, **kwargs)

    exchange.fetch = remember_headers
    return exchange


def _sleeps() -> tuple[list[float], Any]:
    waited: list[float] = []
    return waited, waited.append


def test_open_interest_incremental_and_read_by_freqtrade(tmp_path: Path) -> None:
    from freqtrade.data.history.datahandlers.featherdatahandler import FeatherDataHandler
    from freqtrade.enums import CandleType

    server = Binance()
    exchange = _binance(server)
    waited, sleep = _sleeps()
    result = dl.download_open_interest(
        exchange, "BTC/USDT:USDT", "1h", tmp_path, progress=False, now=lambda: NOW, sleep=sleep
    )
    assert result.added == 721 and result.last == NOW
    assert result.path == tmp_path / "futures" / "BTC_USDT_USDT-1h-open_interest.feather"
    assert len(server.requests) == 2 and not waited
    oi = load_open_interest(tmp_path, "BTC/USDT:USDT", "1h")
    assert oi["open_interest_amount"].iloc[-1] == 1000 + NOW_MS // HOUR % 100
    theirs = FeatherDataHandler(tmp_path).ohlcv_load(
        "BTC/USDT:USDT", "1h", CandleType.OPEN_INTEREST, fill_missing=False
    )
    assert theirs["open_interest_value"].tolist() == oi["open_interest_value"].tolist()

    later = NOW + pd.Timedelta(hours=3)
    server.now_ms = int(later.value // 10**6)
    again = dl.download_open_interest(
        exchange, "BTC/USDT:USDT", "1h", tmp_path, progress=False, now=lambda: later, sleep=sleep
    )
    assert again.added == 3
    assert int(server.requests[-1]["startTime"]) == NOW_MS + HOUR  # continues after the last row


def test_interrupted_download_resumes(tmp_path: Path) -> None:
    server = Binance()
    server.failures = {3: ccxt.ExchangeError("boom")}
    exchange = _binance(server)
    kwargs = {"progress": False, "now": lambda: NOW, "sleep": lambda s: None}
    with pytest.raises(ccxt.ExchangeError):
        dl.download_open_interest(exchange, "BTC/USDT:USDT", "5m", tmp_path, **kwargs)
    kept = load_open_interest(tmp_path, "BTC/USDT:USDT", "5m")
    assert len(kept) == 1000  # the two pages before the failure are on disk
    first_run = len(server.requests)
    result = dl.download_open_interest(exchange, "BTC/USDT:USDT", "5m", tmp_path, **kwargs)
    assert int(server.requests[first_run]["startTime"]) == int(
        (kept["date"].iloc[-1] + pd.Timedelta(minutes=5)).value // 10**6
    )
    full = load_open_interest(tmp_path, "BTC/USDT:USDT", "5m")
    assert len(full) == 30 * 288 + 1 and result.added == len(full) - 1000
    assert full["date"].diff().dropna().eq(pd.Timedelta(minutes=5)).all()


def test_retries_back_off_and_honour_retry_after(tmp_path: Path) -> None:
    server = Binance()
    server.failures = {
        1: ccxt.RateLimitExceeded("429"),
        2: ccxt.NetworkError("reset"),
        3: ccxt.DDoSProtection("418"),
    }
    server.headers = {"Retry-After": "7"}
    exchange = _binance(server)
    waited, sleep = _sleeps()
    result = dl.download_long_short_ratio(
        exchange,
        "BTC/USDT:USDT",
        "1h",
        tmp_path,
        timerange="20250530-",
        progress=False,
        now=lambda: NOW,
        sleep=sleep,
    )
    assert waited == [7.0, 2.0, 7.0]
    assert result.added == 37
    ls = load_long_short_ratio(tmp_path, "BTC/USDT:USDT", "1h")
    assert ls[["long_short_ratio", "long_account", "short_account"]].iloc[0].tolist() == [
        1.5,
        0.6,
        0.4,
    ]
    assert exchange.enableRateLimit


def test_binance_history_is_clipped_to_30_days(tmp_path: Path) -> None:
    server = Binance()
    exchange = _binance(server)
    dl.download_taker_volume(
        exchange,
        "BTC/USDT:USDT",
        "1h",
        tmp_path,
        timerange="20250101-",
        progress=False,
        now=lambda: NOW,
    )
    first = int(server.requests[0]["startTime"])
    assert first >= NOW_MS - 30 * 24 * HOUR
    taker = load_taker_volume(tmp_path, "BTC/USDT:USDT", "1h")
    assert taker[["taker_buy_volume", "taker_sell_volume"]].iloc[0].tolist() == [10.5, 5.25]


def test_okx_open_interest_counts_contracts(tmp_path: Path) -> None:
    seen: list[str] = []

    def okx(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        seen.append(url)
        q = {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}
        begin, end = int(q["begin"]) + 1, min(int(q["end"]) - 1, NOW_MS)
        stamps = [t for t in range(-(-begin // HOUR) * HOUR, end + 1, HOUR)]
        # newest first, [ts, contracts, coins, usd] as OKX returns them
        return {
            "code": "0",
            "msg": "",
            "data": [[str(t), "1300", "13", "780000"] for t in stamps[::-1]],
        }

    exchange = dl.make_exchange("okx")
    exchange.set_markets([_market("okx", size=0.01)])
    exchange.fetch = okx
    dl.download_open_interest(
        exchange,
        "BTC/USDT:USDT",
        "1h",
        tmp_path,
        timerange="20250530-",
        progress=False,
        now=lambda: NOW,
    )
    assert "rubik/stat/contracts/open-interest-history" in seen[0]
    oi = load_open_interest(tmp_path, "BTC/USDT:USDT", "1h")
    assert len(oi) == 37
    assert oi["open_interest_amount"].unique().tolist() == [13.0]  # 1300 contracts x 0.01 BTC
    assert oi["open_interest_value"].unique().tolist() == [780000.0]


def test_bybit_long_short_pages_by_time(tmp_path: Path) -> None:
    seen: list[dict[str, str]] = []

    def bybit(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        q = {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}
        seen.append(q)
        start, end = int(q["startTime"]), min(int(q["endTime"]), NOW_MS)
        stamps = list(range(-(-start // HOUR) * HOUR, end + 1, HOUR))[::-1]
        rows = [
            {"symbol": "BTCUSDT", "buyRatio": "0.55", "sellRatio": "0.45", "timestamp": str(t)}
            for t in stamps
        ]
        return {"retCode": 0, "retMsg": "OK", "result": {"list": rows}, "time": NOW_MS}

    exchange = dl.make_exchange("bybit")
    exchange.set_markets([_market("bybit")])
    exchange.fetch = bybit
    dl.download_long_short_ratio(
        exchange,
        "BTC/USDT:USDT",
        "1h",
        tmp_path,
        timerange="20250531-",
        progress=False,
        now=lambda: NOW,
    )
    assert seen[0]["startTime"] == str(NOW_MS - 12 * HOUR) and seen[0]["category"] == "linear"
    ls = load_long_short_ratio(tmp_path, "BTC/USDT:USDT", "1h")
    assert len(ls) == 13 and ls["date"].is_monotonic_increasing
    assert ls["long_short_ratio"].iloc[0] == pytest.approx(0.55 / 0.45)
    assert ls["long_account"].iloc[0] == 0.55
    with pytest.raises(ValueError, match="Binance only"):
        dl.download_taker_volume(
            exchange, "BTC/USDT:USDT", "1h", tmp_path, progress=False, now=lambda: NOW
        )


def test_make_exchange_ignores_keys_and_applies_config() -> None:
    config = {
        "exchange": {
            "name": "binance",
            "key": "k",
            "ccxt_config": {"timeout": 1234, "apiKey": "nope", "options": {"x": 1}},
        }
    }
    exchange = dl.make_exchange("binance", config)
    assert exchange.timeout == 1234 and not exchange.apiKey
    assert exchange.options["defaultType"] == "swap" and exchange.options["x"] == 1
    with pytest.raises(ValueError, match="unknown ccxt exchange"):
        dl.make_exchange("nosuchexchange")


@pytest.mark.slow
def test_download_through_replay_exchange(tmp_path: Path) -> None:
    """Real ccxt over HTTP to the loopback replay exchange; the copy equals the served files."""
    from _replay_support import add_metric_files, make_datadir

    from liqsignals.data.datadir import LAYOUTS, load_series
    from liqsignals.replay.server import ReplayExchange

    source = make_datadir(tmp_path / "src")
    add_metric_files(source)
    target = tmp_path / "dst"
    with ReplayExchange(source) as server:
        exchange = dl.make_exchange("binance", {"exchange": {"ccxt_config": server.ccxt_config()}})
        now = pd.Timestamp(server.store.last_close_ms(), unit="ms", tz="UTC")
        for kind, tf in [
            ("open_interest", "5m"),
            ("long_short_ratio", "1h"),
            ("taker_volume", "5m"),
        ]:
            result = dl.download(
                exchange, "BTC/USDT:USDT", tf, target, kind, progress=False, now=lambda: now
            )
            assert result.first == now - pd.Timedelta(days=30)  # Binance keeps 30 days
            served = load_series(source, "BTC/USDT:USDT", tf, kind)
            got = load_series(target, "BTC/USDT:USDT", tf, kind)
            # rows up to the one completed at "now" (the replay never serves later ones)
            shown = (served["date"] >= result.first) & (served["date"] < now)
            assert len(got) == shown.sum() > 0
            pd.testing.assert_frame_equal(got, served.loc[shown].reset_index(drop=True))
            assert list(got.columns) == list(LAYOUTS[kind])
