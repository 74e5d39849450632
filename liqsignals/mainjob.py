"""The main job (``make backtest``): an offline freqtrade backtest on the bundled data.

Starts the replay exchange on a free loopback port, runs ::

    freqtrade backtesting -c config/futures.json -c <overlay> --strategy-path strategies
        -s LiqSweepReversal --datadir <bundled datadir> --timeframe 15m --timerange <range>

with a temporary ``user_data`` folder, streams freqtrade's output, stops the exchange, and exits
non-zero when freqtrade fails *or* when its output holds no result table or the exported
results hold no trades (freqtrade exits 0 after some configuration problems).

Run ``python -m liqsignals.mainjob --help`` for the options.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from liqsignals.cli import options

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STRATEGY = "LiqSweepReversal"
#: inside the bundled data (2024-06-01 -> 2025-05-31), leaving a month for indicator warm-up
DEFAULT_TIMERANGE = "20240701-20250531"
_REPORT_MARK = "BACKTESTING REPORT"


def load_latest_backtest(results_dir: str | Path) -> dict[str, Any]:
    """Per-strategy statistics of the newest export in a ``backtest_results`` folder.

    Reads freqtrade's ``.last_result.json`` pointer and the zip it names, without importing
    freqtrade. Returns ``{strategy_name: stats}`` where ``stats["total_trades"]`` and
    ``stats["trades"]`` (one dict per trade) are what freqtrade exported.
    """
    results_dir = Path(results_dir)
    pointer = results_dir / ".last_result.json"
    if not pointer.exists():
        raise FileNotFoundError(f"no backtest results in {results_dir}")
    latest = results_dir / json.loads(pointer.read_text())["latest_backtest"]
    with zipfile.ZipFile(latest) as zf:
        name = latest.with_suffix(".json").name
        data = json.loads(zf.read(name))
    return dict(data["strategy"])


def backtest_command(
    *,
    datadir: str | Path,
    userdir: str | Path,
    timerange: str = DEFAULT_TIMERANGE,
    strategy: str = DEFAULT_STRATEGY,
    config: str | Path = ROOT / "config" / "futures.json",
    strategy_path: str | Path = ROOT / "strategies",
    timeframe: str = "15m",
) -> list[str]:
    """The ``freqtrade backtesting`` command line, with ``{overlay}`` for the replay overlay."""
    return [
        sys.executable,
        "-m",
        "freqtrade",
        "backtesting",
        "-c",
        str(config),
        "-c",
        "{overlay}",
        "--strategy-path",
        str(strategy_path),
        "-s",
        strategy,
        "--datadir",
        str(datadir),
        "--timeframe",
        timeframe,
        "--timerange",
        timerange,
        "--userdir",
        str(userdir),
        "--export",
        "trades",
        "--cache",
        "none",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m liqsignals.mainjob",
        description="Offline freqtrade backtest through the replay exchange (make backtest).",
    )
    parser.add_argument(
        "--datadir", type=Path, default=None, help="default: the bundled sample data"
    )
    parser.add_argument("--timerange", default=DEFAULT_TIMERANGE)
    parser.add_argument("--strategy", default=DEFAULT_STRATEGY)
    parser.add_argument("--strategy-path", type=Path, default=ROOT / "strategies")
    parser.add_argument(
        "--userdir",
        type=Path,
        default=None,
        help="freqtrade user_data folder to keep the results in (default: a temporary one)",
    )
    args = parser.parse_args(argv)

    from liqsignals.replay.offline import run_offline

    for needed in (ROOT / "config" / "futures.json", args.strategy_path):
        if not needed.exists():
            print(f"mainjob: {needed} not found (run from a source checkout)", file=sys.stderr)
            return 2
    try:  # the datadir rule and the --timerange check of the liqsignals commands
        datadir, _ = options.resolve_datadir(args.datadir, {})
        options.parse_timerange(args.timerange)
        if not datadir.is_dir():
            raise options.CLIError(f"datadir {datadir} does not exist")
    except options.CLIError as exc:
        print(f"mainjob: error: {exc}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="liqsignals-mainjob-") as tmp:
        userdir = args.userdir or Path(tmp) / "user_data"
        userdir.mkdir(parents=True, exist_ok=True)
        cmd = backtest_command(
            datadir=datadir,
            userdir=userdir,
            timerange=args.timerange,
            strategy=args.strategy,
            strategy_path=args.strategy_path,
        )
        result = run_offline(cmd, datadir, cwd=ROOT)
        if result.returncode != 0:
            print(f"mainjob: freqtrade exited with {result.returncode}", file=sys.stderr)
            return result.returncode or 1
        if _REPORT_MARK not in result.output:
            print("mainjob: freqtrade printed no backtesting report", file=sys.stderr)
            return 1
        try:
            stats = load_latest_backtest(userdir / "backtest_results")[args.strategy]
        except (FileNotFoundError, KeyError, ValueError) as exc:
            print(f"mainjob: no exported results for {args.strategy}: {exc}", file=sys.stderr)
            return 1
        trades = int(stats["total_trades"])
        if trades == 0:
            print("mainjob: the backtest made no trades", file=sys.stderr)
            return 1
        per_pair = ", ".join(
            f"{row['key']}: {row['trades']}"
            for row in stats["results_per_pair"]
            if row["key"] != "TOTAL"
        )
        print(
            f"mainjob: OK, {trades} trades ({per_pair}), "
            f"profit {float(stats['profit_total']) * 100:.2f}% over {args.timerange}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
