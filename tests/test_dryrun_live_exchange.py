"""The replay exchange in live mode, as a dry-run bot sees it (no bot, no server: the API
object on a live clock with a fake wall clock): order book, last price, mark price, funding and
the forming candle agree with each other and with the stored candles, and nothing from after
"now" gets out. Also the live clock's alignment step and the fault counters the dry-run tests
rely on."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import numpy as np
import pytest

from liqsignals import sample
from liqsignals.replay.api import ReplayAPI
from liqsignals.replay.clock import DAY_MS, EIGHT_HOURS_MS, HOUR_MS, WEEK_MS, LiveClock
from liqsignals.replay.faults import Fault, FaultConfig, FaultInjector
from liqsignals.replay.store import DataStore

MIN = 60_000


def ms(text: str) -> int:
    import pandas as pd

    return int(pd.Timestamp(text, tz="UTC").value // 1_000_000)


class Wall:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@pytest.fixture(scope="module")
def store() -> DataStore:
    return DataStore(sample.datadir())


def get(api: ReplayAPI, path: str, query: str = "") -> Any:
    resp = api.handle("GET", path, query)
    assert resp.status == 200, resp.body
    return json.loads(resp.payload())


#: wall-clock instants (with seconds inside a 5m candle) and stored moments they replay
CASES = [
    ("2026-11-21 06:37:20", "2025-05-21 23:31:00"),
    ("2026-03-02 00:04:59", "2025-04-02 11:02:00"),
    ("2026-07-15 16:00:01", "2025-03-10 16:00:00"),
]


@pytest.mark.parametrize(("wall_at", "start"), CASES)
@pytest.mark.parametrize("symbol", ["BTCUSDT", "ETHUSDT"])
def test_live_market_is_consistent(store: DataStore, wall_at: str, start: str, symbol: str) -> None:
    wall = Wall(ms(wall_at))
    clock = LiveClock(ms(start), align_ms=HOUR_MS, wall=wall)
    api = ReplayAPI(store, clock)
    now = wall.now
    assert clock.offset_ms % HOUR_MS == 0 and abs(clock.data_now_ms() - ms(start)) <= HOUR_MS // 2

    # candles: the last closed 5m candle is the newest price; the forming 15m candle ends on it
    k5 = get(api, "/fapi/v1/klines", f"symbol={symbol}&interval=5m&limit=3")
    *closed5, forming5 = k5
    assert closed5[-1][6] < now <= forming5[6]
    k15 = get(api, "/fapi/v1/klines", f"symbol={symbol}&interval=15m&limit=2")
    forming15 = k15[-1]
    assert forming15[0] <= now < forming15[0] + 15 * MIN and forming15[0] % (15 * MIN) == 0
    last = Decimal(closed5[-1][4])
    if forming15[0] <= closed5[-1][0]:  # a 5m candle of the forming 15m candle has closed
        assert Decimal(forming15[4]) == last
    else:  # none yet: flat at its open, no volume
        assert forming15[1] == forming15[4] and Decimal(forming15[5]) == 0

    # last price, book and book ticker: one tick around the newest close
    tick = Decimal(store.spec(symbol).tick_size)
    price = Decimal(get(api, "/fapi/v1/ticker/price", f"symbol={symbol}")["price"])
    assert price == last
    book = get(api, "/fapi/v1/depth", f"symbol={symbol}&limit=5")
    bid, ask = Decimal(book["bids"][0][0]), Decimal(book["asks"][0][0])
    assert bid <= last < ask and ask - bid == tick
    assert [Decimal(b[0]) for b in book["bids"]] == sorted(
        (Decimal(b[0]) for b in book["bids"]), reverse=True
    )
    assert book["T"] == now and book["lastUpdateId"] == closed5[-1][6] + 1
    top = get(api, "/fapi/v1/ticker/bookTicker", f"symbol={symbol}")
    assert (Decimal(top["bidPrice"]), Decimal(top["askPrice"])) == (bid, ask)
    ticker = get(api, "/fapi/v1/ticker/24hr", f"symbol={symbol}")
    assert Decimal(ticker["lastPrice"]) == last and ticker["closeTime"] == closed5[-1][6]

    # mark price: follows the last price (1h mark candles are coarser than the 5m candles)
    premium = get(api, "/fapi/v1/premiumIndex", f"symbol={symbol}")
    mark = float(premium["markPrice"])
    assert abs(mark / float(last) - 1) < 2e-3, (mark, last)
    assert premium["time"] == now

    # funding: the newest event is in the past, the next one 8h after it and in the future
    funding = get(api, "/fapi/v1/fundingRate", f"symbol={symbol}&limit=3")
    assert funding and all(r["fundingTime"] <= now for r in funding)
    newest = funding[-1]
    assert premium["nextFundingTime"] == newest["fundingTime"] + EIGHT_HOURS_MS
    assert premium["nextFundingTime"] > now
    assert premium["lastFundingRate"] == newest["fundingRate"]
    # funding events keep the 8h grid of the served hours (the shift is whole hours)
    assert all(r["fundingTime"] % HOUR_MS == 0 for r in funding)
    # the funding row's mark price is the open of the served mark candle at that time
    marks = get(
        api,
        "/fapi/v1/markPriceKlines",
        f"symbol={symbol}&interval=1h&startTime={newest['fundingTime']}&limit=1",
    )
    assert marks[0][0] == newest["fundingTime"] and marks[0][1] == newest["markPrice"]
    # mark candles close no later than now, except the one forming
    all_marks = get(api, "/fapi/v1/markPriceKlines", f"symbol={symbol}&interval=1h&limit=5")
    assert all(m[6] < now for m in all_marks[:-1]) and all_marks[-1][0] <= now


def test_mark_price_follows_last_price_between_mark_candles(store: DataStore) -> None:
    """Within one hour (one 1h mark candle) the last price moves every 5 minutes; the mark
    price moves with it, by the basis of the last mark candle."""
    wall = Wall(ms("2026-11-21 06:00:30"))
    clock = LiveClock(ms("2025-05-21 23:00:30"), align_ms=HOUR_MS, wall=wall)
    api = ReplayAPI(store, clock)
    ratios, prices = [], []
    for _ in range(11):
        wall.now += 5 * MIN
        last = float(get(api, "/fapi/v1/ticker/price", "symbol=BTCUSDT")["price"])
        mark = float(get(api, "/fapi/v1/premiumIndex", "symbol=BTCUSDT")["markPrice"])
        ratios.append(mark / last)
        prices.append(last)
    assert len(set(prices)) > 5
    assert max(ratios) - min(ratios) < 1e-12  # one basis for the whole hour


def test_nothing_after_now_is_served(store: DataStore) -> None:
    wall = Wall(ms("2026-11-21 06:37:20"))
    clock = LiveClock(ms("2025-05-21 23:37:20"), align_ms=HOUR_MS, wall=wall)
    api = ReplayAPI(store, clock)
    now = wall.now
    for path, query in (
        ("/fapi/v1/klines", "symbol=ETHUSDT&interval=1h&limit=1500"),
        ("/fapi/v1/klines", "symbol=ETHUSDT&interval=5m&limit=1500"),
        ("/fapi/v1/markPriceKlines", "symbol=ETHUSDT&interval=1h&limit=1500"),
    ):
        rows = get(api, path, query)
        assert rows[-1][0] <= now and all(r[6] < now for r in rows[:-1]), path
    # asking for the future by startTime gives nothing newer than the forming candle
    rows = get(api, "/fapi/v1/klines", f"symbol=ETHUSDT&interval=5m&startTime={now + HOUR_MS}")
    assert rows == []


def test_live_clock_alignment_step() -> None:
    wall = Wall(ms("2026-11-21 06:37:20"))
    for step in (WEEK_MS, DAY_MS, EIGHT_HOURS_MS, HOUR_MS, 15 * MIN):
        clock = LiveClock(ms("2025-05-21 23:31:00"), align_ms=step, wall=wall)
        assert clock.offset_ms % step == 0 and clock.align_ms == step
        assert abs(clock.data_now_ms() - ms("2025-05-21 23:31:00")) <= step // 2
    assert LiveClock(0, wall=wall).align_ms == WEEK_MS
    for bad in (0, -HOUR_MS, 90_500):
        with pytest.raises(ValueError, match="align_ms"):
            LiveClock(0, align_ms=bad, wall=wall)


def test_cli_align_option(store: DataStore) -> None:
    import argparse

    from liqsignals.replay import cli

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["replay", "--live", "--start", "2025-05-21T23:31", "--align", "1h"])
    clock = cli._exchange_kwargs(args)["clock"]
    assert clock.align_ms == HOUR_MS and clock.offset_ms % HOUR_MS == 0
    args = parser.parse_args(["replay", "--live", "--align", "7m"])
    with pytest.raises(ValueError, match="--align"):
        cli._exchange_kwargs(args)


def test_fault_counters_and_malformed_paths() -> None:
    cfg = FaultConfig(malformed=1.0, malformed_paths=("/fapi/v1/klines",), seed=3)
    inj = FaultInjector(cfg)
    assert inj.draw("/fapi/v1/klines") is Fault.MALFORMED
    assert inj.draw("/fapi/v1/depth") is None  # drawn, but kept off this path
    assert inj.counts["malformed"] == 1
    parsed = FaultConfig.parse("malformed=0.5,malformed_paths=/fapi/v1/klines|/fapi/v1/fundingRate")
    assert parsed.malformed_paths == ("/fapi/v1/klines", "/fapi/v1/fundingRate")

    inj = FaultInjector(FaultConfig(missing_candle=0.3, duplicate_candle=0.3, seed=5))
    rows = list(range(1000))
    out = inj.mangle_rows("/fapi/v1/klines", rows)
    dropped = len(set(rows) - set(out))
    doubled = len(out) - len(set(out))
    assert inj.counts["missing_candle"] == dropped > 200
    assert inj.counts["duplicate_candle"] == doubled > 200
    assert np.all(np.diff(out) >= 0)  # order kept
