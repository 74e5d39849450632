"""Real freqtrade commands, run offline through the replay exchange (``config/replay.json``
overlay, written for a free port): backtesting, lookahead-analysis, recursive-analysis,
plot-dataframe and a dry run, with a small probe strategy the tests own; and the main job
(the shipped LiqSweepReversal) with its success and failure checks."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from _replay_support import make_datadir

from liqsignals import mainjob
from liqsignals.replay.api import ReplayAPI
from liqsignals.replay.clock import HistoricalClock
from liqsignals.replay.offline import run_offline
from liqsignals.replay.store import DataStore

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
TIMERANGE = "20250325-20250501"  # inside the test datadir, after the strategy's warm-up
SHORT = "20250405-20250420"


@pytest.fixture(scope="module")
def datadir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_datadir(tmp_path_factory.mktemp("ft-data"))


_PROBE = '''
import ta
from freqtrade.strategy import IStrategy


class ReplayProbe(IStrategy):
    """Trades both sides often, so the replay tests do not depend on the shipped strategies."""

    INTERFACE_VERSION = 3
    timeframe = "15m"
    can_short = True
    startup_candle_count = 200
    stoploss = -0.05
    minimal_roi = {"0": 0.02}
    plot_config = {"main_plot": {"bb_upper": {}, "bb_lower": {}}, "subplots": {"RSI": {"rsi": {}}}}

    def populate_indicators(self, dataframe, metadata):
        bands = ta.volatility.BollingerBands(close=dataframe["close"], window=20, window_dev=2.0)
        dataframe["bb_upper"] = bands.bollinger_hband()
        dataframe["bb_lower"] = bands.bollinger_lband()
        dataframe["rsi"] = ta.momentum.RSIIndicator(close=dataframe["close"], window=14).rsi()
        return dataframe

    def populate_entry_trend(self, dataframe, metadata):
        dataframe.loc[dataframe["close"] < dataframe["bb_lower"], "enter_long"] = 1
        dataframe.loc[dataframe["close"] > dataframe["bb_upper"], "enter_short"] = 1
        return dataframe

    def populate_exit_trend(self, dataframe, metadata):
        dataframe.loc[dataframe["rsi"] > 55, "exit_long"] = 1
        dataframe.loc[dataframe["rsi"] < 45, "exit_short"] = 1
        return dataframe

    def leverage(self, pair, current_time, current_rate, proposed_leverage, max_leverage,
                 entry_tag, side, **kwargs):
        return 2.0
'''


@pytest.fixture(scope="module")
def probe_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("probe-strategy")
    (folder / "ReplayProbe.py").write_text(_PROBE)
    return folder


def _freqtrade(command: str, strategy_path: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "freqtrade",
        command,
        "-c",
        str(ROOT / "config" / "futures.json"),
        "-c",
        "{overlay}",
        "--strategy-path",
        str(strategy_path),
        "-s",
        "ReplayProbe",
        *args,
    ]


def _known_paths(datadir: Path) -> set[str]:
    api = ReplayAPI(DataStore(datadir), HistoricalClock(0))
    return set(api.routes)


def test_backtest_through_the_replay_exchange(
    datadir: Path, tmp_path: Path, probe_path: Path
) -> None:
    userdir = tmp_path / "user_data"
    userdir.mkdir()
    cmd = mainjob.backtest_command(
        datadir=datadir,
        userdir=userdir,
        timerange=TIMERANGE,
        strategy="ReplayProbe",
        strategy_path=probe_path,
    )
    result = run_offline(cmd, datadir, cwd=ROOT, echo=False, timeout=300)
    assert result.returncode == 0, result.output[-3000:]
    assert "BACKTESTING REPORT" in result.output
    # freqtrade loaded its markets from the server, and asked for nothing it does not serve
    assert result.requests.get("GET /fapi/v1/exchangeInfo", 0) >= 1
    paths = {key.split(" ", 1)[1] for key in result.requests}
    assert paths <= _known_paths(datadir), paths
    stats = mainjob.load_latest_backtest(userdir / "backtest_results")["ReplayProbe"]
    assert stats["total_trades"] > 0
    pairs = {t["pair"] for t in stats["trades"]}
    assert pairs == {"BTC/USDT:USDT", "ETH/USDT:USDT"}
    assert {t["is_short"] for t in stats["trades"]} == {True, False}
    assert all(t["leverage"] == 2.0 for t in stats["trades"])


def test_mainjob_succeeds_and_reports_trades(
    datadir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = mainjob.main(["--datadir", str(datadir), "--timerange", TIMERANGE])
    out = capsys.readouterr().out
    assert rc == 0
    match = re.search(r"mainjob: OK, (\d+) trades", out)
    assert match and int(match.group(1)) > 0


_NO_TRADES = """
from freqtrade.strategy import IStrategy


class NeverTrades(IStrategy):
    INTERFACE_VERSION = 3
    timeframe = "15m"
    can_short = True
    stoploss = -0.1
    minimal_roi = {"0": 1}

    def populate_indicators(self, dataframe, metadata):
        return dataframe

    def populate_entry_trend(self, dataframe, metadata):
        dataframe["enter_long"] = 0
        return dataframe

    def populate_exit_trend(self, dataframe, metadata):
        dataframe["exit_long"] = 0
        return dataframe
"""


def test_mainjob_fails_when_nothing_trades(
    datadir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    strategies = tmp_path / "strategies"
    strategies.mkdir()
    (strategies / "NeverTrades.py").write_text(_NO_TRADES)
    rc = mainjob.main(
        ["--datadir", str(datadir), "--timerange", SHORT]
        + ["--strategy", "NeverTrades", "--strategy-path", str(strategies)]
    )
    assert rc == 1
    assert "no trades" in capsys.readouterr().err


def test_mainjob_fails_when_freqtrade_fails(
    datadir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = mainjob.main(["--datadir", str(datadir), "--timerange", "20200101-20200201"])
    assert rc != 0
    assert "freqtrade exited" in capsys.readouterr().err


def test_lookahead_analysis_offline(datadir: Path, tmp_path: Path, probe_path: Path) -> None:
    cmd = _freqtrade(
        "lookahead-analysis",
        probe_path,
        "--datadir",
        str(datadir),
        "--timeframe",
        "15m",
        "--timerange",
        SHORT,
        "--userdir",
        str(tmp_path),
    )
    result = run_offline(cmd, datadir, cwd=ROOT, echo=False, timeout=300)
    assert result.returncode == 0, result.output[-3000:]
    assert re.search(r"ReplayProbe\s*│\s*No\s*│", result.output), result.output[-2000:]


def test_recursive_analysis_offline(datadir: Path, tmp_path: Path, probe_path: Path) -> None:
    cmd = _freqtrade(
        "recursive-analysis",
        probe_path,
        "--datadir",
        str(datadir),
        "--timeframe",
        "15m",
        "--timerange",
        SHORT,
        "--userdir",
        str(tmp_path),
    )
    result = run_offline(cmd, datadir, cwd=ROOT, echo=False, timeout=300)
    assert result.returncode == 0, result.output[-3000:]
    assert "Recursive Analysis" in result.output
    assert re.search(r"│\s*rsi\s*│", result.output)


def test_plot_dataframe_offline(datadir: Path, tmp_path: Path, probe_path: Path) -> None:
    cmd = _freqtrade(
        "plot-dataframe",
        probe_path,
        "--datadir",
        str(datadir),
        "--timeframe",
        "15m",
        "--timerange",
        SHORT,
        "--userdir",
        str(tmp_path),
        "-p",
        "BTC/USDT:USDT",
        "--no-trades",
    )
    result = run_offline(cmd, datadir, cwd=ROOT, echo=False, timeout=300)
    assert result.returncode == 0, result.output[-3000:]
    html = tmp_path / "plot" / "freqtrade-plot-BTC_USDT_USDT-15m.html"
    assert html.exists() and html.stat().st_size > 50_000
    assert "bb_upper" in html.read_text()


def test_dry_run_on_the_live_clock(datadir: Path, tmp_path: Path, probe_path: Path) -> None:
    """``freqtrade trade --dry-run`` against history replayed as now: it starts, fetches fresh
    candles and analyses them, with no outdated-data warning and no other network access."""
    from liqsignals.replay.clock import WEEK_MS, LiveClock

    store = DataStore(datadir)
    clock = LiveClock(store.last_close_ms() - WEEK_MS)
    cmd = [
        sys.executable,
        "-m",
        "freqtrade",
        "trade",
        "-c",
        str(ROOT / "config" / "futures.json"),
        "-c",
        "{overlay}",
        "--strategy-path",
        str(probe_path),
        "-s",
        "ReplayProbe",
        "--dry-run",
        "--db-url",
        "sqlite://",
        "--userdir",
        str(tmp_path),
        "-v",
    ]
    result = run_offline(cmd, datadir, clock=clock, cwd=ROOT, echo=False, timeout=15)
    assert result.timed_out  # a bot runs until stopped
    out = result.output
    assert "Bot heartbeat" in out and "Converting candle (OHLCV) data" in out
    assert result.requests.get("GET /fapi/v1/klines", 0) >= 2  # one per pair
    assert result.requests.get("GET /fapi/v1/time", 0) >= 1
    for bad in ("Outdated history", "Traceback", "ERROR", "WARNING"):
        assert bad not in out, out[out.find(bad) - 500 : out.find(bad) + 500]
