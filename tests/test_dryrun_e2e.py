"""Paper trading end to end: ``freqtrade trade --dry-run`` with the shipped LiqSweepReversal
(through a test subclass that only logs its signals) on the replay exchange's live clock.

History is shifted so that a real LiqSweepReversal signal candle of the bundled data closes just
before (or within a couple of minutes after) the bot starts. The bot must open that trade, its
REST API and its sqlite file must agree, the trade must close on its own (the test's ROI table
ends it one minute after the entry: ``{"0": 0.12, "1": -1}``, everything else is the shipped
strategy), and SIGTERM must stop the bot cleanly. The scenario runs once per session, next to the
faults scenario (see ``_dryrun_support.paper_runs``).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from _dryrun_support import PAIRS, TF_MS, PaperRun, error_lines, is_shutdown_race, paper_runs

from liqsignals import sample
from liqsignals.replay.api import ReplayAPI
from liqsignals.replay.clock import HistoricalClock
from liqsignals.replay.store import DataStore

pytestmark = pytest.mark.slow

#: fields of a trade that the REST API and the database must both report identically
SAME_FIELDS = ("pair", "is_short", "amount", "open_rate", "stake_amount", "leverage", "enter_tag")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> PaperRun:
    result = paper_runs(tmp_path_factory.getbasetemp() / "paper-runs")["e2e"]
    assert result.error is None, result.error
    return result


def _served_ms(text: str) -> int:
    return int(pd.Timestamp(text, tz="UTC").value // 1_000_000)


def _agree(api_trade: dict, db_row: dict) -> None:
    assert api_trade["trade_id"] == db_row["id"]
    for name in SAME_FIELDS:
        assert api_trade[name] == pytest.approx(db_row[name]), name
    assert _served_ms(api_trade["open_date"]) // 1000 == _served_ms(db_row["open_date"]) // 1000


def _on_signal_pair(run: PaperRun, trades: list[dict]) -> dict:
    """The trade on the replayed signal's pair (the other pair may signal on its own)."""
    (trade,) = [t for t in trades if t["pair"] == run.signal.pair]
    return trade


def test_bot_enters_on_the_replayed_signal(run: PaperRun) -> None:
    trade = _on_signal_pair(run, run.snapshots["status_open"])
    sig = run.signal
    assert trade["pair"] == sig.pair
    assert trade["is_short"] == (sig.side == "short")
    assert trade["enter_tag"] == f"sweep_{sig.side}"
    assert trade["strategy"] == "LiqSweepReversalPaper"
    assert trade["leverage"] == 3.0
    # the entry happens in the candle after the signal candle, in served (shifted) time
    signal_close = sig.close_ms + run.offset_ms
    assert signal_close <= trade["open_timestamp"] < signal_close + TF_MS
    # and the bot's own record of that analysis shows the signal on the same candle
    served_signal = pd.Timestamp(sig.date) + pd.Timedelta(milliseconds=run.offset_ms)
    seen = [
        r
        for r in run.signal_log
        if r["pair"] == sig.pair and pd.Timestamp(r["date"]) == served_signal
    ]
    assert seen and seen[0][f"enter_{sig.side}"] == 1


def test_rest_api_and_database_agree(run: PaperRun) -> None:
    db_open = {r["id"]: r for r in run.snapshots["db_open"]}
    assert set(db_open) == {t["trade_id"] for t in run.snapshots["status_open"]}
    for api_open in run.snapshots["status_open"]:
        assert db_open[api_open["trade_id"]]["is_open"] == 1
        _agree(api_open, db_open[api_open["trade_id"]])

    api_all = run.snapshots["trades"]["trades"]
    db_all = {r["id"]: r for r in run.snapshots["db_closed"]}
    assert {t["trade_id"] for t in api_all} == set(db_all)
    assert run.snapshots["trades"]["trades_count"] == len(db_all)
    for trade in api_all:
        row = db_all[trade["trade_id"]]
        _agree(trade, row)
        assert bool(row["is_open"]) == trade["is_open"]
        if not trade["is_open"]:
            assert row["close_rate"] == pytest.approx(trade["close_rate"])
            assert row["close_profit_abs"] == pytest.approx(trade["close_profit_abs"])
            assert row["exit_reason"] == trade["exit_reason"]


def test_trade_closes_on_its_own(run: PaperRun) -> None:
    closed = _on_signal_pair(run, run.snapshots["closed"])
    opened = _on_signal_pair(run, run.snapshots["status_open"])
    assert closed["trade_id"] == opened["trade_id"]
    assert closed["exit_reason"] == "roi"
    assert closed["close_timestamp"] >= closed["open_timestamp"] + 60_000
    assert closed["nr_of_successful_entries"] == 1 and closed["nr_of_successful_exits"] == 1
    assert closed["trade_id"] not in {t["trade_id"] for t in run.snapshots["status_after_close"]}
    # no second trade on the same pair after the exit (freqtrade locks the pair for the candle)
    assert [r["pair"] for r in run.snapshots["db_closed"]].count(run.signal.pair) == 1


def test_sigterm_stops_the_bot_cleanly(run: PaperRun) -> None:
    assert run.snapshots["alive_before_stop"]
    (rc,) = run.exit_codes
    (log,) = run.logs
    # freqtrade turns SIGTERM into KeyboardInterrupt and ends with 130 after its clean shutdown
    # (0 in older releases); a crash ends with 1 or 2
    assert rc in (0, 130), log[-3000:]
    for line in ("worker found ... calling exit", "Cleaning up modules", "Shutting down"):
        assert line in log, line
    for bad in ("Traceback", " CRITICAL ", "Outdated history"):
        assert bad not in log, log[log.find(bad) - 1500 : log.find(bad) + 1500]
    for line in error_lines(log):
        assert is_shutdown_race(log, line), log[line - 1500 : line + 1500]


def test_engine_is_built_once_then_fed_new_candles_only(run: PaperRun) -> None:
    """The strategy builds each pair's engine from the bot's first frame, then feeds it only the
    candles that closed since (exactly one per analysis at 15m): no recomputation of history."""
    for pair in PAIRS:
        records = [r for r in run.signal_log if r["pair"] == pair]
        assert records, pair
        first, *later = records
        assert first["stats"]["last_mode"] == "rebuild" and first["stats"]["rebuilds"] == 1
        # freqtrade's first frame: 3 calls of 499 candles, less the candle still forming
        assert first["rows"] >= 1182 and first["stats"]["candles_fed"] == first["rows"]
        for prev, rec in zip(records, later, strict=False):
            assert rec["stats"]["last_mode"] == "update", rec
            assert rec["stats"]["rebuilds"] == 1 and rec["stats"]["last_fed"] == 1
            assert pd.Timestamp(rec["date"]) - pd.Timestamp(prev["date"]) == pd.Timedelta("15min")


def test_bot_used_only_the_replay_exchange(run: PaperRun) -> None:
    served = set(ReplayAPI(DataStore(sample.datadir()), HistoricalClock(0)).routes)
    paths = {key.split(" ", 1)[1] for key in run.requests}
    assert paths <= served, paths - served
    for needed in ("/fapi/v1/exchangeInfo", "/fapi/v1/klines", "/fapi/v1/depth"):
        assert run.requests.get(f"GET {needed}", 0) >= 1, needed
    (log,) = run.logs
    assert "coingecko" not in log.lower()


def test_workdir_holds_the_dry_run_database(run: PaperRun) -> None:
    assert (Path(run.workdir) / "tradesv3.dryrun.sqlite").exists()
