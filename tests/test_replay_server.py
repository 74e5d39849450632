"""The replay exchange over HTTP, with real ccxt as the client."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import ccxt
import pandas as pd
import pytest
from _replay_support import START, http_get, json_get, make_datadir, ms

from liqsignals.replay import FaultConfig, ReplayExchange

pytestmark = pytest.mark.slow

BTC = "BTC/USDT:USDT"


@pytest.fixture(scope="module")
def datadir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_datadir(tmp_path_factory.mktemp("replay-server"))


@pytest.fixture(scope="module")
def exchange(datadir: Path) -> Iterator[ReplayExchange]:
    with ReplayExchange(datadir) as ex:
        yield ex


@pytest.fixture()
def api(exchange: ReplayExchange) -> ccxt.binanceusdm:
    exchange.set_faults(None)
    return ccxt.binanceusdm(exchange.ccxt_config())


def _frame(datadir: Path, name: str) -> pd.DataFrame:
    df = pd.read_feather(datadir / "futures" / name)
    df["ts"] = df["date"].dt.as_unit("ms").astype("int64")
    return df


def test_markets_parse_as_linear_swaps(api: ccxt.binanceusdm) -> None:
    markets = api.load_markets()
    assert sorted(markets) == [BTC, "ETH/USDT:USDT"]
    m = markets[BTC]
    assert (m["type"], m["swap"], m["linear"], m["contract"]) == ("swap", True, True, True)
    assert (m["base"], m["quote"], m["settle"], m["id"]) == ("BTC", "USDT", "USDT", "BTCUSDT")
    assert m["active"] is True and m["contractSize"] == 1
    assert m["precision"]["price"] == 0.1 and m["precision"]["amount"] == 0.001
    assert m["limits"]["amount"]["min"] == 0.001 and m["limits"]["cost"]["min"] == 100
    assert markets["ETH/USDT:USDT"]["precision"]["price"] == 0.01


def test_freqtrade_style_binance_client_sees_only_linear_markets(exchange: ReplayExchange) -> None:
    cfg = exchange.freqtrade_overlay()["exchange"]["ccxt_config"]
    api = ccxt.binance({**cfg, "options": {**cfg["options"], "defaultType": "swap"}})
    assert sorted(api.load_markets()) == [BTC, "ETH/USDT:USDT"]
    assert api.fetch_time() == exchange.clock.now_ms()


def test_candles_match_the_file_bar_for_bar_with_pagination(
    api: ccxt.binanceusdm, datadir: Path
) -> None:
    ref = _frame(datadir, "BTC_USDT_USDT-15m-futures.feather")
    got: list[list[float]] = []
    since = ms(START)
    while True:
        page = api.fetch_ohlcv(BTC, "15m", since=since, limit=1000)
        if not page:
            break
        got.extend(page)
        since = page[-1][0] + 1
    assert len(got) == len(ref)
    assert [r[0] for r in got] == ref["ts"].tolist()
    assert [r[1:] for r in got] == ref[["open", "high", "low", "close", "volume"]].values.tolist()
    # ccxt's own pagination (several requests with since/until) agrees
    until = ms("2025-04-10")
    paged = api.fetch_ohlcv(BTC, "1h", since=ms(START), params={"paginate": True, "until": until})
    ref_h = _frame(datadir, "BTC_USDT_USDT-1h-futures.feather")
    ref_h = ref_h[ref_h["ts"] <= until]
    assert [r[0] for r in paged] == ref_h["ts"].tolist()
    assert [r[4] for r in paged] == ref_h["close"].tolist()


def test_mark_candles_and_funding_history(api: ccxt.binanceusdm, datadir: Path) -> None:
    mark = _frame(datadir, "BTC_USDT_USDT-1h-mark.feather")
    got = api.fetch_mark_ohlcv(BTC, "1h", since=ms(START), limit=1000)
    assert [r[0] for r in got] == mark["ts"].tolist()[: len(got)]
    assert [r[4] for r in got] == mark["close"].tolist()[: len(got)]
    funding = _frame(datadir, "BTC_USDT_USDT-1h-funding_rate.feather")
    rates = []
    since = ms(START)
    while True:
        page = api.fetch_funding_rate_history(BTC, since=since, limit=40)
        if not page:
            break
        rates.extend(page)
        since = page[-1]["timestamp"] + 1
    assert [r["timestamp"] for r in rates] == funding["ts"].tolist()
    assert [r["fundingRate"] for r in rates] == funding["open"].tolist()


def test_order_book_on_tick_and_lot_grid(api: ccxt.binanceusdm, datadir: Path) -> None:
    book = api.fetch_order_book(BTC, limit=20)
    bids, asks = book["bids"], book["asks"]
    assert len(bids) == len(asks) == 20
    assert bids == sorted(bids, reverse=True) and asks == sorted(asks)
    tick, lot = Decimal("0.1"), Decimal("0.001")
    for price, amount in bids + asks:
        assert Decimal(str(price)) % tick == 0 and Decimal(str(amount)) % lot == 0
        assert amount >= 0.001
    assert asks[0][0] - bids[0][0] == pytest.approx(0.1)
    last_close = _frame(datadir, "BTC_USDT_USDT-5m-futures.feather")["close"].iloc[-1]
    assert bids[0][0] <= last_close < asks[0][0]
    ticker = api.fetch_ticker(BTC)
    assert ticker["last"] == last_close
    rate = api.fetch_funding_rate(BTC)
    assert rate["fundingTimestamp"] > rate["timestamp"]


def test_http_errors_are_binance_json(exchange: ReplayExchange, api: ccxt.binanceusdm) -> None:
    status, headers, body = http_get(exchange.url + "/fapi/v1/klines?symbol=FOO&interval=1h")
    assert status == 400 and headers["Content-Type"].startswith("application/json")
    assert json.loads(body) == {"code": -1121, "msg": "Invalid symbol."}
    status, body_json = json_get(exchange.url + "/fapi/v1/klines?symbol=BTCUSDT&interval=2x")
    assert (status, body_json["code"]) == (400, -1120)
    status, body_json = json_get(exchange.url + "/some/where/else")
    assert (status, body_json["code"]) == (404, -5000)
    with pytest.raises(ccxt.BadSymbol):
        api.fapiPublicGetKlines({"symbol": "FOO", "interval": "1h"})
    with pytest.raises(ccxt.BadRequest):
        api.fapiPublicGetKlines({"symbol": "BTCUSDT", "interval": "9m"})


def _raw(exchange: ReplayExchange, data: bytes) -> bytes:
    with socket.create_connection((exchange.host, exchange.port), timeout=5) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_malformed_http_gets_json_not_html(exchange: ReplayExchange) -> None:
    for request, status in (
        (b"GARBAGE\r\n\r\n", b"400"),
        (b"GET / HTTP/1.1 junk\r\n\r\n", b"400"),
        (b"BREW /fapi/v1/ping HTTP/1.1\r\nHost: x\r\n\r\n", b"501"),
        (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", b"414"),
    ):
        answer = _raw(exchange, request)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.split(b"\r\n")[0].split(b" ")[:2] == [b"HTTP/1.1", status]
        assert b"content-type: application/json" in head.lower()
        assert b"<html" not in answer.lower() and b"Traceback" not in answer
        assert json.loads(body)["code"] == -1000
    answer = _raw(exchange, b"POST /fapi/v1/order HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert b" 404 " in answer.split(b"\r\n")[0] and b'"code":-5000' in answer


def test_faults_reach_ccxt_as_its_errors(exchange: ReplayExchange, api: ccxt.binanceusdm) -> None:
    api.load_markets()
    try:
        exchange.set_faults(FaultConfig(rate_limit=1.0, retry_after_s=7))
        status, headers, body = http_get(exchange.url + "/fapi/v1/depth?symbol=BTCUSDT")
        assert status == 429 and headers["Retry-After"] == "7"
        assert json.loads(body)["code"] == -1003
        with pytest.raises(ccxt.DDoSProtection):
            api.fetch_order_book(BTC)
        exchange.set_faults(FaultConfig(server_error=1.0))
        with pytest.raises(ccxt.OperationFailed):  # retryable for freqtrade
            api.fetch_ticker(BTC)
        exchange.set_faults(FaultConfig(bad_gateway=1.0))
        assert http_get(exchange.url + "/fapi/v1/depth?symbol=BTCUSDT")[0] == 502
        exchange.set_faults(FaultConfig(malformed=1.0))
        status, _, body = http_get(exchange.url + "/fapi/v1/depth?symbol=BTCUSDT")
        assert status == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(body)
        # ccxt does not raise on an unparsable body: it hands back an empty book
        book = api.fetch_order_book(BTC)
        assert book["bids"] == [] and book["asks"] == []
        exchange.set_faults(FaultConfig(timeout=1.0, timeout_s=3.0))
        api.timeout = 500
        t0 = time.monotonic()
        with pytest.raises(ccxt.RequestTimeout):
            api.fetch_order_book(BTC)
        assert time.monotonic() - t0 < 2.5
        # the server itself stays healthy for exempt paths
        assert json_get(exchange.url + "/fapi/v1/ping") == (200, {})
        exchange.set_faults(FaultConfig(missing_candle=0.2, seed=4))
        api.timeout = 10_000
        thin = api.fetch_ohlcv(BTC, "15m", limit=1000)
        assert 700 < len(thin) < 900
        exchange.set_faults(FaultConfig(duplicate_candle=0.2, seed=4))
        _, rows = json_get(exchange.url + "/fapi/v1/klines?symbol=BTCUSDT&interval=15m&limit=1000")
        opens = [r[0] for r in rows]
        assert len(opens) > 1100 and len(set(opens)) == 1000
    finally:
        exchange.set_faults(None)


def test_stop_releases_the_port(datadir: Path) -> None:
    ex = ReplayExchange(datadir).start()
    port = ex.port
    assert json_get(ex.url + "/fapi/v1/ping") == (200, {})
    ex.stop()
    ex.stop()  # idempotent
    assert not ex.running
    with ReplayExchange(datadir, port=port) as again:  # the port is free again
        assert again.port == port
        assert json_get(again.url + "/fapi/v1/ping") == (200, {})
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/fapi/v1/ping", timeout=2)
