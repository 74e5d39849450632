"""Binance semantics of the replay exchange, asked directly (no HTTP): windows, limits,
causality of the clock, aggregation, metric endpoints and error bodies."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _replay_support import add_metric_files, make_datadir, ms

from liqsignals.replay.api import ReplayAPI
from liqsignals.replay.clock import WEEK_MS, HistoricalClock, LiveClock
from liqsignals.replay.store import DataStore, aggregate, bin_open


@pytest.fixture(scope="module")
def datadir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_datadir(tmp_path_factory.mktemp("replay-api"))
    add_metric_files(root)
    return root


@pytest.fixture(scope="module")
def store(datadir: Path) -> DataStore:
    return DataStore(datadir)


def _api(store: DataStore, at: str | int | None = None) -> ReplayAPI:
    now = store.last_close_ms() if at is None else (at if isinstance(at, int) else ms(at))
    return ReplayAPI(store, HistoricalClock(now))


def _get(api: ReplayAPI, path: str, query: str = "") -> tuple[int, object]:
    resp = api.handle("GET", path, query)
    return resp.status, json.loads(resp.payload())


def _file(datadir: Path, name: str) -> pd.DataFrame:
    return pd.read_feather(datadir / "futures" / name)


def test_store_finds_markets_and_end_of_data(store: DataStore) -> None:
    assert sorted(store.markets) == ["BTCUSDT", "ETHUSDT"]
    assert store.markets["BTCUSDT"].pair == "BTC/USDT:USDT"
    assert store.timeframes("BTCUSDT") == ["5m", "15m", "1h"]
    assert store.last_close_ms() == ms("2025-05-01")
    assert store.has("BTCUSDT", "open_interest") and not store.has("ETHUSDT", "open_interest")


def test_klines_windows_follow_binance_rules(store: DataStore, datadir: Path) -> None:
    api = _api(store)
    ref = _file(datadir, "BTC_USDT_USDT-1h-futures.feather")
    opens = ref["date"].dt.as_unit("ms").astype("int64").to_numpy()
    q = "symbol=BTCUSDT&interval=1h"
    # no window: the newest 500
    status, rows = _get(api, "/fapi/v1/klines", q)
    assert status == 200 and len(rows) == 500
    assert [r[0] for r in rows] == list(opens[-500:])
    # startTime only: forward from start (a start inside a candle begins at the next open)
    start = int(opens[10]) + 1
    _, rows = _get(api, "/fapi/v1/klines", f"{q}&startTime={start}&limit=5")
    assert [r[0] for r in rows] == list(opens[11:16])
    # endTime only: the newest `limit` up to end
    _, rows = _get(api, "/fapi/v1/klines", f"{q}&endTime={opens[100]}&limit=3")
    assert [r[0] for r in rows] == list(opens[98:101])
    # both: from start, capped by end
    _, rows = _get(api, "/fapi/v1/klines", f"{q}&startTime={opens[5]}&endTime={opens[7]}")
    assert [r[0] for r in rows] == list(opens[5:8])
    # limit above the maximum is capped at 1500; the data holds fewer 1h rows than that
    _, rows = _get(api, "/fapi/v1/klines", f"{q}&startTime={opens[0]}&limit=5000")
    assert len(rows) == min(1500, len(opens))
    # row shape: 12 fields, close time = next open - 1, values are the stored floats
    row = rows[3]
    assert len(row) == 12 and row[6] == row[0] + 3_600_000 - 1
    stored = ref.iloc[3]
    assert [float(x) for x in row[1:6]] == [
        stored["open"],
        stored["high"],
        stored["low"],
        stored["close"],
        stored["volume"],
    ]


def test_aggregated_intervals_match_a_pandas_resample(store: DataStore, datadir: Path) -> None:
    api = _api(store)
    ref = _file(datadir, "BTC_USDT_USDT-1h-futures.feather").set_index("date")
    expect = (
        ref.resample("4h", origin="epoch", label="left", closed="left")
        .agg({"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
        .dropna()
    )
    _, rows = _get(api, "/fapi/v1/klines", "symbol=BTCUSDT&interval=4h&limit=1500")
    got = pd.DataFrame(
        [[float(x) for x in r[1:6]] for r in rows],
        columns=["open", "high", "low", "close", "volume"],
        index=pd.to_datetime([r[0] for r in rows], unit="ms", utc=True),
    )
    common = expect.index.intersection(got.index)
    assert len(common) > 200
    np.testing.assert_allclose(
        got.loc[common].to_numpy(), expect.loc[common].to_numpy(), rtol=1e-12
    )
    # weekly candles open on Mondays
    _, weeks = _get(api, "/fapi/v1/klines", "symbol=BTCUSDT&interval=1w")
    assert weeks and all(pd.Timestamp(r[0], unit="ms").weekday() == 0 for r in weeks)


def test_bins_and_aggregate_reference() -> None:
    ts = np.array([ms("2025-03-03 00:05"), ms("2025-03-09 23:55"), ms("2025-03-10")], "int64")
    assert list(bin_open(ts, "1w")) == [ms("2025-03-03")] * 2 + [ms("2025-03-10")]
    assert list(bin_open(ts, "1M")) == [ms("2025-03-01")] * 3
    from liqsignals.replay.store import Series

    src = Series(
        np.arange(6, dtype="int64") * 300_000,
        {
            "open": np.arange(6.0),
            "high": np.arange(6.0) + 10,
            "low": np.arange(6.0) - 10,
            "close": np.arange(6.0) + 0.5,
            "volume": np.ones(6),
        },
    )
    out = aggregate(src, "15m")
    assert list(out.ts) == [0, 900_000]
    assert list(out.cols["open"]) == [0.0, 3.0] and list(out.cols["close"]) == [2.5, 5.5]
    assert list(out.cols["high"]) == [12.0, 15.0] and list(out.cols["volume"]) == [3.0, 3.0]


@pytest.mark.parametrize("seed", range(6))
def test_nothing_after_now_is_served(store: DataStore, datadir: Path, seed: int) -> None:
    """At a random instant, closed candles end by then and the forming one uses only the past."""
    rng = np.random.default_rng(seed)
    five = _file(datadir, "BTC_USDT_USDT-5m-futures.feather")
    five_ts = five["date"].dt.as_unit("ms").astype("int64").to_numpy()
    now = int(rng.integers(ms("2025-04-01"), ms("2025-04-30"))) // 1000 * 1000
    api = _api(store, now)
    _, rows = _get(api, "/fapi/v1/klines", "symbol=BTCUSDT&interval=1h&limit=20")
    *closed, forming = rows
    assert all(r[6] < now for r in closed)
    assert forming[0] <= now < forming[6] + 1
    # the forming hour is exactly the 5m candles that have closed by now
    inside = (five_ts >= forming[0]) & (five_ts + 300_000 <= now)
    if inside.any():
        part = five[inside]
        assert float(forming[1]) == part["open"].iloc[0]
        assert float(forming[2]) == part["high"].max()
        assert float(forming[3]) == part["low"].min()
        assert float(forming[4]) == part["close"].iloc[-1]
        assert float(forming[5]) == pytest.approx(part["volume"].sum())
    else:
        assert forming[1] == forming[2] == forming[3] == forming[4] and float(forming[5]) == 0
    # no later price anywhere in the answer, and funding/ticker agree with the clock
    _, funding = _get(api, "/fapi/v1/fundingRate", "symbol=BTCUSDT&limit=1000")
    assert funding and max(r["fundingTime"] for r in funding) <= now
    _, ticker = _get(api, "/fapi/v1/ticker/24hr", "symbol=BTCUSDT")
    assert ticker["closeTime"] < now


def test_funding_history_both_layouts(store: DataStore, datadir: Path) -> None:
    api = _api(store)
    for symbol, name, col in (
        ("BTCUSDT", "BTC_USDT_USDT-1h-funding_rate.feather", "open"),
        ("ETHUSDT", "ETH_USDT_USDT-1h-funding_rate.feather", "funding_rate"),
    ):
        ref = _file(datadir, name)
        _, rows = _get(api, "/fapi/v1/fundingRate", f"symbol={symbol}")
        assert len(rows) == min(100, len(ref))  # default limit 100: the newest ones
        assert [float(r["fundingRate"]) for r in rows] == list(ref[col].iloc[-len(rows) :])
        assert rows[0]["markPrice"] != ""
    _, rows = _get(api, "/fapi/v1/fundingRate", "symbol=BTCUSDT&limit=5000")
    assert len(rows) == len(_file(datadir, "BTC_USDT_USDT-1h-funding_rate.feather"))


def test_premium_index_book_and_tickers(store: DataStore) -> None:
    api = _api(store)
    _, prem = _get(api, "/fapi/v1/premiumIndex", "symbol=BTCUSDT")
    assert prem["nextFundingTime"] > prem["time"] and float(prem["markPrice"]) > 0
    _, all_prem = _get(api, "/fapi/v1/premiumIndex")
    assert [p["symbol"] for p in all_prem] == ["BTCUSDT", "ETHUSDT"]
    _, book = _get(api, "/fapi/v1/depth", "symbol=BTCUSDT&limit=7")
    assert len(book["bids"]) == len(book["asks"]) == 10  # rounded up to a listed depth
    bids = [float(p) for p, _ in book["bids"]]
    asks = [float(p) for p, _ in book["asks"]]
    assert bids == sorted(bids, reverse=True) and asks == sorted(asks) and bids[0] < asks[0]
    _, price = _get(api, "/fapi/v1/ticker/price", "symbol=BTCUSDT")
    assert bids[0] <= float(price["price"]) < asks[0]
    _, bt = _get(api, "/fapi/v1/ticker/bookTicker", "symbol=BTCUSDT")
    assert float(bt["bidPrice"]) == bids[0]


def test_metric_endpoints(store: DataStore, datadir: Path) -> None:
    api = _api(store)
    oi = pd.read_feather(datadir / "futures" / "BTC_USDT_USDT-5m-open_interest.feather")
    status, rows = _get(api, "/futures/data/openInterestHist", "symbol=BTCUSDT&period=5m")
    assert status == 200 and len(rows) == 30  # default limit
    last = oi.iloc[-1]
    # a period is served once it has ended: the last stored row ends exactly at the clock
    assert rows[-1]["timestamp"] == ms(last["date"])
    assert float(rows[-1]["sumOpenInterest"]) == last["open_interest_amount"]
    # coarser periods sample the finer snapshots at period boundaries
    _, hourly = _get(api, "/futures/data/openInterestHist", "symbol=BTCUSDT&period=1h&limit=3")
    assert all(r["timestamp"] % 3_600_000 == 0 for r in hourly)
    _, lsr = _get(api, "/futures/data/globalLongShortAccountRatio", "symbol=BTCUSDT&period=1h")
    r = lsr[-1]
    assert float(r["longAccount"]) + float(r["shortAccount"]) == pytest.approx(1.0)
    _, taker = _get(api, "/futures/data/takerlongshortRatio", "symbol=BTCUSDT&period=15m&limit=2")
    assert float(taker[0]["buySellRatio"]) == pytest.approx(0.55 / 0.45, abs=1e-4)
    # taker volume sums the three 5m rows of each 15m period
    five = pd.read_feather(
        datadir / "futures" / "liqsignals" / "BTC_USDT_USDT-5m-taker_volume.feather"
    )
    t0 = taker[0]["timestamp"]
    mask = (five["date"] >= pd.Timestamp(t0, unit="ms", tz="UTC")) & (
        five["date"] < pd.Timestamp(t0 + 900_000, unit="ms", tz="UTC")
    )
    assert float(taker[0]["buyVol"]) == pytest.approx(five.loc[mask, "taker_buy_volume"].sum())
    # a symbol without such files answers an empty list; a bad period is an error
    assert _get(api, "/futures/data/openInterestHist", "symbol=ETHUSDT&period=5m") == (200, [])
    status, err = _get(api, "/futures/data/openInterestHist", "symbol=BTCUSDT&period=7m")
    assert status == 400 and err["code"] == -1130
    _, cur = _get(api, "/fapi/v1/openInterest", "symbol=BTCUSDT")
    assert float(cur["openInterest"]) == last["open_interest_amount"]


@pytest.mark.parametrize(
    ("path", "query", "status", "code"),
    [
        ("/fapi/v1/klines", "symbol=NOPEUSDT&interval=1h", 400, -1121),
        ("/fapi/v1/klines", "symbol=BTCUSDT&interval=7m", 400, -1120),
        ("/fapi/v1/klines", "interval=1h", 400, -1102),
        ("/fapi/v1/klines", "symbol=BTCUSDT", 400, -1102),
        ("/fapi/v1/klines", "symbol=&interval=1h", 400, -1102),
        ("/fapi/v1/klines", "symbol=BTCUSDT&interval=1h&startTime=12ab", 400, -1100),
        ("/fapi/v1/klines", "symbol=BTCUSDT&interval=1h&limit=-3", 400, -1100),
        ("/fapi/v1/klines", "symbol=BTCUSDT&interval=1h&limit=0", 400, -1130),
        ("/fapi/v1/klines", "symbol=BTCUSDT&interval=1h&startTime=9&endTime=3", 400, -1023),
        ("/fapi/v1/klines", "symbol=BTCUSDT&symbol=ETHUSDT&interval=1h", 400, -1101),
        ("/fapi/v1/markPriceKlines", "symbol=BTCUSDT&interval=1x", 400, -1120),
        ("/fapi/v1/depth", "symbol=XRPUSDT", 400, -1121),
        ("/fapi/v1/fundingRate", "symbol=BTCUSDT&startTime=x", 400, -1100),
        ("/futures/data/openInterestHist", "symbol=BTCUSDT", 400, -1102),
        ("/fapi/v1/nothing", "", 404, -5000),
        ("/api/v3/klines", "symbol=BTCUSDT&interval=1h", 404, -5000),
        ("/fapi/v2/account", "timestamp=1&signature=ab", 401, -2015),
    ],
)
def test_bad_requests_get_binance_errors(
    store: DataStore, path: str, query: str, status: int, code: int
) -> None:
    got_status, body = _get(_api(store), path, query)
    assert (got_status, body["code"]) == (status, code)
    assert isinstance(body["msg"], str) and body["msg"]


def test_a_bug_becomes_a_json_500_without_traceback(store: DataStore) -> None:
    api = _api(store)

    def broken(params: object) -> object:
        raise RuntimeError("secret internals")

    api.routes["/fapi/v1/ping"] = broken
    resp = api.handle("GET", "/fapi/v1/ping", "")
    body = resp.payload().decode()
    assert resp.status == 500 and json.loads(body)["code"] == -1000
    assert "Traceback" not in body and "secret" not in body


def test_live_clock_serves_shifted_candles_that_appear_over_time(store: DataStore) -> None:
    class Wall:
        now = ms("2026-01-15 10:07:30")

        def __call__(self) -> int:
            return self.now

    wall = Wall()
    clock = LiveClock(ms("2025-04-20 10:00"), wall=wall)
    api = ReplayAPI(store, clock)
    assert clock.offset_ms % WEEK_MS == 0
    _, server_time = _get(api, "/fapi/v1/time")
    assert server_time["serverTime"] == wall.now
    _, rows = _get(api, "/fapi/v1/klines", "symbol=BTCUSDT&interval=15m&limit=3")
    *closed, forming = rows
    assert closed[-1][6] < wall.now <= forming[6]
    assert wall.now - closed[-1][6] <= 15 * 60_000
    # the served candle is the stored one, shifted
    stored = store.stored("BTCUSDT", "futures", "15m")
    i = int(np.searchsorted(stored.ts, closed[-1][0] - clock.offset_ms))
    assert float(closed[-1][4]) == stored.cols["close"][i]
    # a quarter of an hour later one more candle has closed
    wall.now += 15 * 60_000
    _, later = _get(api, "/fapi/v1/klines", "symbol=BTCUSDT&interval=15m&limit=3")
    assert later[-2][0] == forming[0] and later[-1][0] == forming[0] + 15 * 60_000
