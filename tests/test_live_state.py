"""The pair state of a running bot (liqsignals.strategy.live_state): a 1M window on 15m candles
reaches a dry-run strategy through the datadir history and the saved engine state, and every row
of its frame equals the batch computation over the full history, before and after a restart; a
corrupt state, another model or a gap is rebuilt with a log line, never used silently."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from liqsignals import sample
from liqsignals.data.datadir import data_path, write_frame
from liqsignals.features import liquidation_features
from liqsignals.strategy import settings

ROOT = Path(__file__).resolve().parent.parent
PAIR = "BTC/USDT:USDT"
META = {"pair": PAIR}
STORED = 6300  # candles in the datadir (download-data); the bot's frames start before its end


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    return sample.load_candles(PAIR, "15m").iloc[:7400].reset_index(drop=True)


@pytest.fixture
def userdir(tmp_path: Path, candles: pd.DataFrame) -> dict[str, Path]:
    datadir = tmp_path / "data"
    write_frame(candles.iloc[:STORED], data_path(datadir, PAIR, "15m", "futures"))
    return {"user_data": tmp_path / "user_data", "datadir": datadir}


def strategy(dirs: dict[str, Path], live: bool = True, **liq: Any) -> Any:
    from freqtrade.configuration import Configuration
    from freqtrade.data.dataprovider import DataProvider
    from freqtrade.enums import RunMode
    from freqtrade.resolvers import StrategyResolver

    dirs["user_data"].mkdir(parents=True, exist_ok=True)
    args = {
        "config": [str(ROOT / "config" / "futures.json")],
        "user_data_dir": str(dirs["user_data"]),
        "datadir": str(dirs["datadir"]),
        "strategy": "LiqSweepReversal",
        "strategy_path": str(ROOT / "strategies"),
    }
    mode = RunMode.DRY_RUN if live else RunMode.BACKTEST
    config = Configuration(args, mode).get_config()
    config["liqsignals"] = {"window": "1M", **liq}
    strat = StrategyResolver.load_strategy(config)
    strat.dp = DataProvider(config, None)
    return strat


def liq(df: pd.DataFrame) -> np.ndarray:
    return df[[c for c in df.columns if c.startswith("liq_")]].to_numpy(dtype=float)


def batch(strat: Any, history: pd.DataFrame, rows: int) -> np.ndarray:
    """The batch columns over the whole history, its last ``rows`` rows."""
    feats = liquidation_features(history, strat.liq_model(PAIR), **strat.liq_feature_kwargs())
    return feats.to_numpy(dtype=float)[-rows:]


def populate(strat: Any, frame: pd.DataFrame) -> np.ndarray:
    return liq(strat.populate_indicators(frame.reset_index(drop=True).copy(), META))


def test_long_window_asks_freqtrade_only_for_the_lookbacks(userdir: dict[str, Path]) -> None:
    full = settings.startup_candles("1M", "15m", intensity_lookback=500)
    assert full == 2880 + 500 + 10 > settings.LIVE_STARTUP_CAP
    strat = strategy(userdir)
    assert strat.liq_state is True
    assert strat.startup_candle_count == 500 + 14 + 12 + 40
    assert strategy(userdir, live=False).startup_candle_count == full  # backtests: all of it
    off = strategy(userdir, live_state=False)
    assert off.liq_state is False and off.startup_candle_count == full
    with pytest.raises(ValueError, match="live_state"):
        strategy(userdir, live_state="sometimes")


def test_history_state_restart_corruption_and_model_change(
    userdir: dict[str, Path], candles: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="liqsignals")
    # first start: no state; the datadir's 5,800 candles before the frame, then the frame
    a = strategy(userdir)
    out = populate(a, candles.iloc[5800:6800])
    stats = a.liq_stream_stats(PAIR)
    assert (stats.last_mode, stats.history_used, stats.restored) == ("rebuild", 5800, 0)
    assert "engine built from 6800 candles (5800 from the datadir, 1000 live)" in caplog.text
    want = batch(a, candles.iloc[:6800], 1000)
    assert np.isfinite(want[:, 0]).all()  # the 1M window is warm on every row of the frame
    np.testing.assert_array_equal(out, want)
    out = populate(a, candles.iloc[5801:6802])
    assert (a.liq_stream_stats(PAIR).last_mode, a.liq_stream_stats(PAIR).last_fed) == ("update", 2)
    np.testing.assert_array_equal(out, batch(a, candles.iloc[:6802], 1001))
    engine_file, tail_file = a.liq_state_hooks(PAIR).store.paths(PAIR)
    assert engine_file.parent == userdir["user_data"] / "liqsignals_state"
    assert engine_file.exists() and tail_file.exists()

    # restart: the state is restored, only the candles after its last one go to the engine
    caplog.clear()
    b = strategy(userdir)
    out = populate(b, candles.iloc[6250:6806])
    stats = b.liq_stream_stats(PAIR)
    assert (stats.restored, stats.rebuilds, stats.last_mode, stats.last_fed) == (1, 0, "update", 4)
    assert "engine restored from saved state" in caplog.text
    np.testing.assert_array_equal(out, batch(b, candles.iloc[:6806], 556))

    # a corrupt engine file: detected, said, rebuilt from the datadir history
    raw = engine_file.read_bytes()
    engine_file.write_bytes(raw[: len(raw) // 2])
    caplog.clear()
    c = strategy(userdir)
    out = populate(c, candles.iloc[6250:6807])
    stats = c.liq_stream_stats(PAIR)
    assert (stats.restored, stats.rebuilds, stats.history_used) == (0, 1, 6250)
    assert f"saved state of {PAIR} is unusable" in caplog.text and "corrupt" in caplog.text
    np.testing.assert_array_equal(out, batch(c, candles.iloc[:6807], 557))

    # a corrupt sidecar: the same
    tail_file.write_bytes(b"not a state file")
    caplog.clear()
    d = strategy(userdir)
    populate(d, candles.iloc[6250:6808])
    assert d.liq_stream_stats(PAIR).restored == 0
    assert f"saved state of {PAIR} is unusable" in caplog.text

    # the state is valid again (d saved it); another model invalidates it
    caplog.clear()
    e = strategy(userdir, window="5w")
    out = populate(e, candles.iloc[6250:6809])
    assert e.liq_stream_stats(PAIR).restored == 0
    assert "different model" in caplog.text
    np.testing.assert_array_equal(out, batch(e, candles.iloc[:6809], 559))


def test_a_gap_after_the_state_is_rebuilt_not_bridged(
    userdir: dict[str, Path], candles: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="liqsignals")
    populate(strategy(userdir), candles.iloc[5800:6800])
    caplog.clear()
    # the bot was down: its new frame starts 200 candles after the state's last candle, and the
    # datadir ends before that too
    g = strategy(userdir)
    out = populate(g, candles.iloc[7000:7400])
    stats = g.liq_stream_stats(PAIR)
    assert (stats.restored, stats.rebuilds, stats.history_used) == (1, 1, 0)
    assert "does not continue into the bot's candles" in caplog.text
    assert "candle(s) before the bot's first candle" in caplog.text
    np.testing.assert_array_equal(out, batch(g, candles.iloc[7000:7400], 400))


# ----------------------------------------------------------------------------- dry-run on the replay


def _candles(bot: Any, pair: str) -> dict[str, Any] | None:
    got = bot.try_api(f"pair_candles?pair={pair}&timeframe=15m", timeout=30)
    return got if got and got.get("data") else None


def _frame(got: dict[str, Any]) -> pd.DataFrame:
    df = pd.DataFrame(got["data"], columns=got["columns"])
    df["date"] = pd.to_datetime(df["date"], utc=True)
    return df


def _assert_frame_is_batch(
    frame: pd.DataFrame, stored: pd.DataFrame, offset_ms: int, model: Any
) -> int:
    """Every row of the bot's frame against the batch columns over the stored history up to the
    frame's last candle (the bot's dates are the stored ones shifted by ``offset_ms``)."""
    from liqsignals.strategy.live_cache import ns_dates

    dates = ns_dates(frame["date"]) - offset_ms * 1_000_000
    stored_ns = ns_dates(stored["date"])
    end = int(np.searchsorted(stored_ns, dates[-1])) + 1
    assert stored_ns[end - 1] == dates[-1]
    history = stored.iloc[:end]
    want = liquidation_features(history, model.liq_model(PAIR), **model.liq_feature_kwargs())
    want = want.iloc[-len(frame) :]
    np.testing.assert_array_equal(dates, stored_ns[end - len(frame) : end])
    cols = [c for c in want.columns]
    got = frame[cols].astype(float).to_numpy()
    assert np.isfinite(want["liq_long_total"].to_numpy()).all()  # warm on every row
    np.testing.assert_array_equal(got, want.to_numpy(dtype=float))
    return len(frame)


@pytest.mark.slow
def test_dry_run_bot_with_a_1M_window_equals_the_batch_before_and_after_restart(
    tmp_path: Path,
) -> None:
    """freqtrade trade --dry-run on the replay, 1M window on 15m: the first start builds from the
    datadir, a restart restores the saved state, a corrupt state file is rebuilt; every row of the
    bot's frame equals the batch value over the full stored history each time."""
    from _dryrun_support import Bot, write_strategy

    from liqsignals.replay import ReplayExchange
    from liqsignals.replay.clock import HOUR_MS, LiveClock

    stored = sample.load_candles(PAIR, "15m")
    start_ms = int(stored["date"].iloc[8000].value // 1_000_000)
    clock = LiveClock(start_ms, align_ms=HOUR_MS)
    offset = pd.Timedelta(milliseconds=clock.offset_ms)
    datadir = tmp_path / "user_data" / "data" / "binance"  # the bot's default datadir
    cut = pd.Timestamp(start_ms, unit="ms", tz="UTC") - pd.Timedelta(minutes=15 * 300)
    for pair in ("BTC/USDT:USDT", "ETH/USDT:USDT"):  # what download-data fetched: up to 300 ago
        df = sample.load_candles(pair, "15m")
        df = df.loc[df["date"] <= cut].assign(date=lambda d: d["date"] + offset)
        write_frame(df.reset_index(drop=True), data_path(datadir, pair, "15m", "futures"))
    model = strategy({"user_data": tmp_path / "model-ud", "datadir": datadir}, live=False)
    exchange = ReplayExchange(sample.datadir(), clock=clock)
    config = {"liqsignals": {"window": "1M"}}
    bot = Bot(tmp_path, exchange, write_strategy(tmp_path / "strategies"), config=config)
    logs: list[str] = []
    # freqtrade cleans up on SIGTERM, and exits with 130 when the signal lands in its throttle
    # sleep (seen right after a start); the log must still show the clean-up and no traceback
    try:
        exchange.start()

        def run(marker: str) -> pd.DataFrame:
            bot.start()
            bot.wait_ready(timeout=240)
            bot.wait_for(marker, lambda: marker in bot.log(), 240)
            frame = _frame(bot.wait_for("the analysed frame", lambda: _candles(bot, PAIR), 60))
            logs.append(bot.log())
            assert "Traceback" not in logs[-1], logs[-1][-3000:]
            return frame

        first = run(f"liqsignals: {PAIR} engine built from")
        assert "from the datadir" in logs[-1] and "(0 from the datadir" not in logs[-1]
        assert "Strategy using startup_candle_count: 566" in logs[-1]
        _assert_frame_is_batch(first, stored, clock.offset_ms, model)
        assert bot.stop() in (0, 130)

        second = run(f"liqsignals: {PAIR} engine restored from saved state")
        assert f"liqsignals: {PAIR} engine built from" not in logs[-1]
        _assert_frame_is_batch(second, stored, clock.offset_ms, model)
        assert bot.stop() in (0, 130)

        engine_file = bot.userdir / "liqsignals_state" / "BTC_USDT_USDT-15m.engine.npz"
        raw = engine_file.read_bytes()
        engine_file.write_bytes(raw[:100] + b"\0" * 64 + raw[164:])
        third = run(f"liqsignals: {PAIR} engine built from")
        assert f"liqsignals: saved state of {PAIR} is unusable" in logs[-1]
        _assert_frame_is_batch(third, stored, clock.offset_ms, model)
        assert bot.stop() in (0, 130)
    finally:
        if bot.proc is not None:
            bot.stop()
        exchange.stop()


def test_a_failed_save_is_logged_and_the_columns_still_come(
    userdir: dict[str, Path],
    candles: pd.DataFrame,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from liqsignals.strategy.live_state import StateStore

    def full_disk(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(StateStore, "save", full_disk)
    caplog.set_level(logging.INFO, logger="liqsignals")
    s = strategy(userdir)
    out = populate(s, candles.iloc[5800:6800])
    assert f"could not save the state of {PAIR}" in caplog.text
    np.testing.assert_array_equal(out, batch(s, candles.iloc[:6800], 1000))
