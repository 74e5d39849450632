"""Realised liquidations: side conventions, CSV captures, bars and the websocket collector."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import ccxt
import pandas as pd
import pytest

from liqsignals.data import attach_market_data, load_liquidation_bars
from liqsignals.data import liquidations as lq

FIXTURES = Path(__file__).parent / "fixtures" / "liquidation_events"
CAPTURES = {
    "binance_force_orders_all_2024-08.csv": 456,
    "binance_force_orders_large_2024-08.csv": 385,
    "binance_force_orders_all_2025-06.csv": 700,
}


def _market(symbol: str, market_id: str, size: float = 1.0) -> dict[str, Any]:
    base, rest = symbol.split("/")
    quote = rest.split(":")[0]
    return {
        "id": market_id,
        "symbol": symbol,
        "base": base,
        "quote": quote,
        "settle": quote,
        "baseId": base,
        "quoteId": quote,
        "settleId": quote,
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
        "info": {},
    }


def _pro(name: str, markets: list[dict[str, Any]]) -> Any:
    import ccxt.pro

    exchange = getattr(ccxt.pro, name)({"options": {"defaultType": "swap"}})
    exchange.set_markets(markets)
    return exchange


@pytest.mark.parametrize(("name", "rows"), sorted(CAPTURES.items()))
def test_csv_captures_parse(name: str, rows: int) -> None:
    events = lq.read_liquidation_events_csv(FIXTURES / name)
    assert len(events) == rows
    assert list(events.columns) == list(lq.EVENT_COLUMNS)
    assert set(events["side"]) == {lq.LONG, lq.SHORT}
    assert (events["price"] > 0).all() and (events["amount"] > 0).all()
    assert events["date"].is_monotonic_increasing
    assert events["symbol"].str.endswith("/USDT:USDT").all()
    assert (events["value"] - events["price"] * events["amount"]).abs().max() < 1e-6


def test_csv_capture_row_values() -> None:
    events = lq.read_liquidation_events_csv(FIXTURES / "binance_force_orders_all_2024-08.csv")
    btc = events.loc[events["symbol"] == "BTC/USDT:USDT"]
    # BTC,SELL,LIMIT,IOC,0.006,58911.00,59145.00,FILLED,0.006,0.006,1723897051510,...
    row = btc.loc[btc["date"] == pd.Timestamp(1723897051510, unit="ms", tz="UTC")].iloc[0]
    assert row["side"] == lq.LONG  # SELL: a long was liquidated
    assert row["price"] == 59145.0 and row["amount"] == 0.006
    # the 2025 capture has no average price ("None"): the order price is used
    later = lq.read_liquidation_events_csv(FIXTURES / "binance_force_orders_all_2025-06.csv")
    first = later.iloc[0]
    assert first["symbol"] == "FLUX/USDT:USDT" and first["price"] == 0.1895
    assert first["amount"] == 5739.0 and first["side"] == lq.SHORT


def test_csv_with_header_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text(
        "symbol,side,a,b,c,d,e,f,g,h,trade_time,usd\nBTC,SELL,L,I,1,2,2,F,1,1,1723897051510,2\n"
    )
    with pytest.raises(ValueError, match="row 1 is not a forceOrder capture"):
        lq.read_liquidation_events_csv(path)


def test_events_to_bars_sums_by_side() -> None:
    events = lq.read_liquidation_events_csv(FIXTURES / "binance_force_orders_all_2024-08.csv")
    bars = lq.events_to_bars(events, "5m")
    assert list(bars.columns) == ["date", "long_liquidation_usd", "short_liquidation_usd"]
    assert bars["date"].diff().dropna().eq(pd.Timedelta(minutes=5)).all()
    long_total = events.loc[events["side"] == lq.LONG, "value"].sum()
    assert bars["long_liquidation_usd"].sum() == pytest.approx(long_total)
    assert bars["short_liquidation_usd"].sum() == pytest.approx(
        events.loc[events["side"] == lq.SHORT, "value"].sum()
    )
    padded = lq.events_to_bars(
        events.iloc[:0], "1h", start="2024-01-01T00:00Z", stop="2024-01-01T02:00Z"
    )
    assert padded["long_liquidation_usd"].tolist() == [0.0, 0.0, 0.0]


def test_binance_force_order_through_ccxt() -> None:
    exchange = _pro("binance", [_market("BTC/USDT:USDT", "BTCUSDT")])
    message = {
        "e": "forceOrder",
        "E": 1698871323061,
        "o": {
            "s": "BTCUSDT",
            "S": "SELL",
            "o": "LIMIT",
            "f": "IOC",
            "q": "1.5",
            "p": "34800.0",
            "ap": "35000.0",
            "X": "FILLED",
            "l": "0.5",
            "z": "1.5",
            "T": 1698871323059,
        },
    }
    (event,) = lq.parse_liquidation_message(exchange, message)
    assert event["symbol"] == "BTC/USDT:USDT" and event["exchange"] == "binance"
    assert event["side"] == lq.LONG
    assert event["amount"] == 1.5  # accumulated fill, not ccxt's last fill
    assert event["value"] == 1.5 * 35000.0
    message["o"]["S"] = "BUY"
    assert lq.parse_liquidation_message(exchange, message)[0]["side"] == lq.SHORT


def test_bybit_all_liquidation_side_is_the_position() -> None:
    exchange = _pro("bybit", [_market("ROSE/USDT:USDT", "ROSEUSDT")])
    message = {
        "topic": "allLiquidation.ROSEUSDT",
        "type": "snapshot",
        "ts": 1739502303204,
        "data": [
            {"T": 1739502302929, "s": "ROSEUSDT", "S": "Sell", "v": "20000", "p": "0.04499"},
            {"T": 1739502302931, "s": "ROSEUSDT", "S": "Buy", "v": "100", "p": "0.045"},
        ],
    }
    short, long_ = lq.parse_liquidation_message(exchange, message)
    assert short["side"] == lq.SHORT and long_["side"] == lq.LONG
    assert short["symbol"] == "ROSE/USDT:USDT" and short["amount"] == 20000.0


def test_okx_liquidation_orders_count_contracts() -> None:
    exchange = _pro("okx", [_market("BTC/USDT:USDT", "BTC-USDT-SWAP", size=0.01)])
    message = {
        "arg": {"channel": "liquidation-orders", "instType": "SWAP"},
        "data": [
            {
                "details": [
                    {
                        "bkLoss": "0",
                        "bkPx": "60000",
                        "ccy": "",
                        "posSide": "short",
                        "side": "buy",
                        "sz": "13",
                        "ts": "1692266434010",
                    },
                    {
                        "bkLoss": "0",
                        "bkPx": "59000",
                        "ccy": "",
                        "posSide": "net",
                        "side": "sell",
                        "sz": "2",
                        "ts": "1692266434020",
                    },
                ],
                "instFamily": "BTC-USDT",
                "instId": "BTC-USDT-SWAP",
                "instType": "SWAP",
                "uly": "BTC-USDT",
            }
        ],
    }
    first, second = lq.parse_liquidation_message(exchange, message)
    assert first["side"] == lq.SHORT and first["amount"] == pytest.approx(0.13)
    assert second["side"] == lq.LONG and second["value"] == pytest.approx(0.02 * 59000)


def test_totals_import_feeds_attach(tmp_path: Path) -> None:
    csv = tmp_path / "totals.csv"
    csv.write_text(
        "date,long_liquidation_usd,short_liquidation_usd\n"
        "2024-01-01 00:00:00,100.0,5.0\n"
        "2024-01-01 04:00:00,0.0,7.5\n"
        "2024-01-01 08:00:00,1.0,2.0\n"
    )
    path = lq.import_liquidation_totals(csv, tmp_path, "BTC/USDT:USDT")
    assert path.name == "BTC_USDT_USDT-4h-liquidations.feather"
    bars = load_liquidation_bars(tmp_path, "BTC/USDT:USDT", "4h")
    assert bars["short_liquidation_usd"].tolist() == [5.0, 7.5, 2.0]
    candles = pd.DataFrame(
        {
            "date": pd.date_range("2024-01-01", periods=3, freq="4h", tz="UTC"),
            "open": 1.0,
            "high": 1.0,
            "low": 1.0,
            "close": 1.0,
            "volume": 1.0,
        }
    )
    out = attach_market_data(candles, tmp_path, "BTC/USDT:USDT", "4h")
    assert out["long_liquidation_usd"].tolist() == [100.0, 0.0, 1.0]
    bad = tmp_path / "bad.csv"
    bad.write_text("date,long_liquidation_usd\n2024-01-01,1\n")
    with pytest.raises(ValueError, match="short_liquidation_usd"):
        lq.read_liquidation_totals_csv(bad)


# --------------------------------------------------------------------------------- collector


def _payload(i: int, side: str = "SELL", symbol: str = "BTCUSDT") -> dict[str, Any]:
    return {
        "s": symbol,
        "S": side,
        "o": "LIMIT",
        "f": "IOC",
        "q": "0.1",
        "p": "60000",
        "ap": str(60000 + i),
        "X": "FILLED",
        "l": "0.1",
        "z": "0.1",
        "T": 1_700_000_000_000 + i * 1000,
    }


class FakeStream:
    """Stands in for ccxt.pro: scripted batches, a dropped connection, and a replay after it."""

    id = "binance"
    has = {"watchLiquidationsForSymbols": True}

    def __init__(self, script: list[Any]) -> None:
        self._parser = _pro(
            "binance", [_market("BTC/USDT:USDT", "BTCUSDT"), _market("ETH/USDT:USDT", "ETHUSDT")]
        )
        self.script = list(script)
        self.calls = 0
        self.closed = False

    async def watch_liquidations_for_symbols(self, symbols: list[str]) -> list[dict[str, Any]]:
        self.calls += 1
        await asyncio.sleep(0)
        if not self.script:
            await asyncio.Event().wait()  # nothing more: block like a quiet socket
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return [self._parser.parse_ws_liquidation(p) for p in step]

    async def close(self) -> None:
        self.closed = True


def _script() -> list[Any]:
    return [
        [_payload(0), _payload(1, "BUY")],
        [_payload(2), _payload(3, symbol="ETHUSDT"), _payload(4, symbol="SOLUSDT")],
        ccxt.NetworkError("connection closed"),
        [_payload(2), _payload(3, symbol="ETHUSDT"), _payload(5)],  # replayed after reconnect
        [_payload(6, "BUY")],
    ]


def test_collector_keeps_every_event_once(tmp_path: Path) -> None:
    stream = FakeStream(_script())
    pairs = ["BTC/USDT:USDT", "ETH/USDT:USDT"]
    stored = asyncio.run(
        lq.collect_liquidations(
            stream, pairs, tmp_path, flush_every=2, max_events=6, reconnect_delay=0.0
        )
    )
    assert stored == 6 and stream.closed
    btc = lq.load_liquidation_events(tmp_path, "BTC/USDT:USDT")
    assert btc["price"].tolist() == [60000.0, 60001.0, 60002.0, 60005.0, 60006.0]
    assert btc["side"].tolist() == [lq.LONG, lq.SHORT, lq.LONG, lq.LONG, lq.SHORT]
    assert len(lq.load_liquidation_events(tmp_path, "ETH/USDT:USDT")) == 1
    # a second run that sees the same events again stores nothing new
    again = asyncio.run(_run_until_quiet(FakeStream(_script()), pairs, tmp_path))
    assert again == 0
    assert len(lq.load_liquidation_events(tmp_path, "BTC/USDT:USDT")) == 5


async def _run_until_quiet(stream: FakeStream, pairs: list[str], datadir: Path) -> int:
    stop = asyncio.Event()
    task = asyncio.create_task(
        lq.collect_liquidations(stream, pairs, datadir, stop=stop, reconnect_delay=0.0)
    )
    while stream.script:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    stop.set()
    return await task


def test_collector_flushes_on_cancel(tmp_path: Path) -> None:
    async def main() -> None:
        stream = FakeStream([[_payload(0)], [_payload(1)]])
        task = asyncio.create_task(
            lq.collect_liquidations(stream, ["BTC/USDT:USDT"], tmp_path, flush_every=1000)
        )
        while stream.script:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert len(lq.load_liquidation_events(tmp_path, "BTC/USDT:USDT")) == 2
