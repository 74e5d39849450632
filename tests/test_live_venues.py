"""Several venues live: ``liqsignals poll`` against replay exchanges, and a dry-run bot whose
frame combines its own exchange with a second venue that the poller keeps current.

Two replay instances share one clock: the first serves the bundled Binance sample (the bot's
exchange), the second real Bybit BTC perpetual 15m candles from the shared market data (the
other venue, reached by ccxt through the replay's Binance-compatible API)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from liqsignals import sample
from liqsignals.data.datadir import data_path, load_candles, read_frame, write_frame
from liqsignals.live.poller import PollVenue, poll_candles, run_poller
from liqsignals.multi import liquidation_features_multi

PAIR = "BTC/USDT:USDT"
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LOG_ENV = "LIQSIGNALS_TEST_VENUES_LOG"
TF = pd.Timedelta("15m")


def _bybit_replay_datadir(root: Path) -> Path:
    """Real Bybit 15m candles (2025-01-01 on) laid out as a replay datadir."""
    src = SHARED / "bybit" / "futures"
    if not src.is_dir():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"the shared market data ({SHARED}) is required under CI")
        pytest.skip("needs ../shared/data beside the repo")
    out = root / "binance"
    for pair in ("BTC/USDT:USDT", "ETH/USDT:USDT"):
        df = load_candles(SHARED / "bybit", pair, "15m", timerange="20250101-")
        write_frame(df, data_path(out, pair, "15m", "futures"))
    return out


def _clock_start() -> int:
    stored = sample.load_candles(PAIR, "15m")
    return int(stored["date"].iloc[-2000].value // 1_000_000)


def test_poller_stores_closed_candles_and_fills_gaps(tmp_path: Path) -> None:
    from liqsignals.data.download import make_exchange
    from liqsignals.replay import ReplayExchange
    from liqsignals.replay.clock import HOUR_MS, LiveClock

    clock = LiveClock(_clock_start(), align_ms=HOUR_MS)
    offset = pd.Timedelta(milliseconds=clock.offset_ms)
    source = _bybit_replay_datadir(tmp_path / "replay")
    truth = load_candles(source, PAIR, "15m")
    with ReplayExchange(source, clock=clock) as server:
        ex = make_exchange("binance", {"exchange": {"ccxt_config": server.ccxt_config()}})
        target = tmp_path / "data" / "bybit"
        added, last = poll_candles(ex, PAIR, "15m", target, history=pd.Timedelta(days=3))
        now = pd.Timestamp(clock.now_ms(), unit="ms", tz="UTC")
        assert last is not None and last + TF <= now < last + 2 * TF  # the newest closed one
        assert 280 <= added <= 300  # three days of 15m candles
        stored = read_frame(data_path(target, PAIR, "15m", "futures"))
        want = truth.assign(date=truth["date"] + offset).set_index("date")
        want.index = want.index.as_unit("ms")
        got = stored.set_index("date")
        pd.testing.assert_frame_equal(
            got, want.loc[got.index, got.columns], check_freq=False, check_dtype=False
        )
        # a lost middle stretch is fetched again on the next round; nothing else changes
        path = data_path(target, PAIR, "15m", "futures")
        write_frame(stored.drop(index=range(100, 130)).reset_index(drop=True), path)
        state = run_poller(
            [
                PollVenue(
                    "bybit",
                    target,
                    (PAIR,),
                    "binance",
                    {"exchange": {"ccxt_config": server.ccxt_config()}},
                )
            ],
            timeframes=("15m",),
            rounds=1,
            status=lambda s: None,
        )
        again = read_frame(path)
        assert state.added[("bybit", PAIR, "15m")] >= 30
        pd.testing.assert_frame_equal(again.iloc[: len(stored)], stored)
    with pytest.raises(ValueError, match="distinct"):
        run_poller([PollVenue("a", target, (PAIR,)), PollVenue("a", target, (PAIR,))])


STRATEGY = '''
"""LiqSweepReversal on a combined book: its exchange plus the polled venues; a JSONL line per
analysis (first and last candle of the frame)."""

import json
import os

from LiqSweepReversal import LiqSweepReversal

from liqsignals.strategy.venues import venue_populate


class LiqVenues(LiqSweepReversal):
    def liq_populate(self, dataframe, metadata):
        out = venue_populate(self, dataframe, metadata)
        path = os.environ.get("__ENV__")
        if path and self.liq_live() and len(out):
            row = {"pair": metadata["pair"], "first": out["date"].iloc[0].isoformat(),
                   "last": out["date"].iloc[-1].isoformat(), "rows": len(out)}
            with open(path, "a") as fh:
                fh.write(json.dumps(row) + "\\n")
        return out
'''.replace("__ENV__", LOG_ENV)


def _frame(got: dict[str, Any]) -> pd.DataFrame:
    df = pd.DataFrame(got["data"], columns=got["columns"])
    df["date"] = pd.to_datetime(df["date"], utc=True)
    return df


@pytest.mark.slow
def test_dry_run_bot_on_two_venues_equals_the_multi_batch_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replay A (Binance sample) is the bot's exchange; replay B (real Bybit candles) is polled
    into the bot's user_data/data/bybit by run_poller in a thread. Every row of the bot's
    frame equals liquidation_features_multi over the same Binance candles (from the bot's first
    analysed candle) and the Bybit candles of those dates."""
    from _dryrun_support import Bot, load_strategy

    from liqsignals.replay import ReplayExchange
    from liqsignals.replay.clock import HOUR_MS, LiveClock

    clock = LiveClock(_clock_start(), align_ms=HOUR_MS)
    offset = pd.Timedelta(milliseconds=clock.offset_ms)
    bybit_src = _bybit_replay_datadir(tmp_path / "replay-bybit")
    venue_dir = tmp_path / "user_data" / "data" / "bybit"
    strategies = tmp_path / "strategies"
    strategies.mkdir()
    (strategies / "LiqVenues.py").write_text(STRATEGY)
    log = tmp_path / "venues.jsonl"
    monkeypatch.setenv(LOG_ENV, str(log))
    config = {
        "liqsignals": {
            "venues": {"bybit": str(venue_dir)},
            "venue_wait": 30,
            "window": "1d",
            "live_state": False,
        }
    }
    stop = threading.Event()
    with (
        ReplayExchange(sample.datadir(), clock=clock) as ex_a,
        ReplayExchange(bybit_src, clock=clock) as ex_b,
    ):
        venue = PollVenue(
            "bybit",
            venue_dir,
            (PAIR,),
            "binance",
            {"exchange": {"ccxt_config": ex_b.ccxt_config()}},
        )
        run_poller([venue], timeframes=("15m",), rounds=1, history=pd.Timedelta(days=20),
                   status=lambda s: None)  # fmt: skip
        poller = threading.Thread(
            target=run_poller,
            args=([venue],),
            kwargs={
                "timeframes": ("15m",),
                "interval": 2.0,
                "stop": stop,
                "status": lambda s: None,
            },
            daemon=True,
        )
        poller.start()
        bot = Bot(tmp_path, ex_a, strategies, strategy="LiqVenues", config=config)
        bot.start()
        try:
            bot.wait_ready(timeout=240)
            bot.wait_for(
                "an analysis of BTC",
                lambda: log.exists() and any(json.loads(x)["pair"] == PAIR for x in log.read_text().splitlines()),
                240,
            )  # fmt: skip
            got = bot.wait_for(
                "the analysed frame",
                lambda: (r := bot.try_api(f"pair_candles?pair={PAIR}&timeframe=15m", timeout=30))
                and r.get("data") and r,
                60,
            )  # fmt: skip
            logtext = bot.log()
        finally:
            bot.stop()
            stop.set()
            poller.join(30)
    assert "Traceback" not in logtext, logtext[-3000:]
    frame = _frame(got)
    first = pd.Timestamp(
        next(json.loads(x) for x in log.read_text().splitlines() if json.loads(x)["pair"] == PAIR)[
            "first"
        ]
    )
    last = frame["date"].iloc[-1]
    # the batch path over the same candles (stored dates = served dates - offset)
    binance = sample.load_candles(PAIR, "15m")
    binance = binance.loc[
        (binance["date"] >= first - offset) & (binance["date"] <= last - offset)
    ].reset_index(drop=True)
    bybit = load_candles(bybit_src, PAIR, "15m")
    bybit = bybit.loc[(bybit["date"] >= first - offset) & (bybit["date"] <= last - offset)]
    assert bybit["date"].isin(binance["date"]).sum() >= len(binance) - 5  # Bybit on every row
    polled = load_candles(venue_dir, PAIR, "15m")
    assert polled["date"].max() >= last  # the poller had the bot's last candle
    model = load_strategy("LiqSweepReversal")
    model.liq_window = "1d"  # as the bot's config says
    want = liquidation_features_multi(
        {"binance": binance, "bybit": bybit},
        model.liq_model(PAIR),
        **model.liq_feature_kwargs(),
    )
    want = want.iloc[-len(frame) :]
    np.testing.assert_array_equal(
        frame["date"].to_numpy(), (binance["date"] + offset).iloc[-len(frame) :].to_numpy()
    )
    cols = list(want.columns)
    ok = np.isfinite(want["liq_long_total"].to_numpy())
    assert ok.sum() >= 100, ok.sum()  # a warm book on many rows
    np.testing.assert_array_equal(frame[cols].astype(float).to_numpy(), want.to_numpy(float))
    # Bybit really is in the book: Binance alone differs
    alone = liquidation_features_multi({"binance": binance}, model.liq_model(PAIR),
                                       **model.liq_feature_kwargs()).iloc[-len(frame):]  # fmt: skip
    assert not np.allclose(
        alone["liq_long_total"].to_numpy()[ok], want["liq_long_total"].to_numpy()[ok]
    )


class _FakeStrategy:
    """What venue_populate uses of a LiqStrategy."""

    timeframe = "15m"

    def __init__(self, venues: dict[str, str], live: bool) -> None:
        self.config = {"exchange": {"name": "binance"}, "liqsignals": {"venues": venues}}
        self.live = live

    def liq_live(self) -> bool:
        return self.live

    def liq_model(self, pair: str) -> Any:
        from liqsignals import LiquidationModel

        return LiquidationModel(window="1d", bin_bp=20.0)

    def liq_feature_kwargs(self) -> dict[str, Any]:
        return {"intensity_lookback": 200}


def test_venue_populate_live_frames_equal_the_batch_and_ignore_later_venue_candles(
    tmp_path: Path,
) -> None:
    """A live strategy's sliding frames (freqtrade drops old rows as new ones close) against the
    batch path over every candle seen; the venue's datadir already holds candles *after* the
    bot's last candle, which must not change anything (causal)."""
    from liqsignals.strategy.venues import venue_populate

    binance = sample.load_candles(PAIR, "15m").iloc[-1500:].reset_index(drop=True)
    other = binance.copy()
    other[["open", "high", "low", "close"]] *= 1.0004
    other["volume"] = binance["volume"].to_numpy()[::-1] * 0.5
    other = other.drop(index=[400, 401, 1210]).reset_index(drop=True)
    venue = tmp_path / "bybit"
    write_frame(other, data_path(venue, PAIR, "15m", "futures"))  # all of it, future included
    s = _FakeStrategy({"bybit": str(venue)}, live=True)
    width = 600
    frames = []
    for end in [900, 901, 902, 930, 1000, 1001, 1200, 1300]:
        frame = binance.iloc[end - width : end].reset_index(drop=True)
        frames.append(venue_populate(s, frame, {"pair": PAIR}))
    seen = binance.iloc[900 - width : 1300]
    upto = other.loc[other["date"] <= seen["date"].iloc[-1]]
    want = liquidation_features_multi(
        {"binance": seen.reset_index(drop=True), "bybit": upto},
        s.liq_model(PAIR),
        **s.liq_feature_kwargs(),
    )
    last = frames[-1]
    cols = list(want.columns)
    np.testing.assert_array_equal(last[cols].to_numpy(float), want.iloc[-width:].to_numpy(float))
    assert np.isfinite(last["liq_long_total"].to_numpy()).sum() > 500
    # the backtest path on the last frame is the batch over that frame alone
    s.live = False
    bt = venue_populate(s, binance.iloc[700:1300].reset_index(drop=True), {"pair": PAIR})
    ref = liquidation_features_multi(
        {"binance": binance.iloc[700:1300].reset_index(drop=True), "bybit": upto},
        s.liq_model(PAIR),
        **s.liq_feature_kwargs(),
    )
    np.testing.assert_array_equal(bt[cols].to_numpy(float), ref.to_numpy(float))
    with pytest.raises(ValueError, match="bot's own exchange"):
        venue_populate(_FakeStrategy({"binance": str(venue)}, True), frame, {"pair": PAIR})


def test_poll_command_one_round_and_clear_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from liqsignals.cli import main
    from liqsignals.replay import ReplayExchange
    from liqsignals.replay.clock import HOUR_MS, LiveClock

    clock = LiveClock(_clock_start(), align_ms=HOUR_MS)
    source = _bybit_replay_datadir(tmp_path / "replay")
    with ReplayExchange(source, clock=clock) as server:
        cfg = tmp_path / "bybit.json"
        cfg.write_text(json.dumps({"exchange": {"ccxt_config": server.ccxt_config()}}))
        root = tmp_path / "data"
        argv = ["poll", "--venue", "bybit=binance", "--venue-config", f"bybit={cfg}", "-p", PAIR,
                "--data-root", str(root), "--rounds", "1", "--history-days", "1", "--json"]  # fmt: skip
        assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rounds"] == 1 and 90 <= out["added"][f"bybit {PAIR} 15m"] <= 97
    assert len(load_candles(root / "bybit", PAIR, "15m")) == out["added"][f"bybit {PAIR} 15m"]
    assert main(["poll", "--venue", "bybit", "-p", PAIR, "--venue-config", f"okx={cfg}"]) == 2
    assert "not in --venue" in capsys.readouterr().err
    assert main(["poll", "--venue", "bybit", "-p", PAIR, "--rounds", "0"]) == 2
