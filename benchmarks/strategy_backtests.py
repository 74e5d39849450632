"""Backtest every shipped strategy and its fixed-stop baseline on real data; walk-forward hyperopt.

Reproduces ``docs/strategies.md``::

    python benchmarks/strategy_backtests.py --datadir ../shared/data/binance \\
        --timerange 20230101-20250531 --train 20230101-20240630 --test 20240701-20250531 \\
        --epochs 40 --out docs/strategies.md

Every results table prints the fee and funding totals of its trades (USDT, from freqtrade's
export) and the slippage setting. Slippage goes through the strategies' ``custom_entry_price`` /
``custom_exit_price`` (``liqsignals.strategy.costs``): ``--slippage-bp 0 2`` backtests the full
period once per setting (0 = freqtrade's own fills, the strategies' default); stop-loss and ROI
exits have no price hook in freqtrade and fill unslipped (counted in the table). The walk-forward
part runs at the first setting.

Everything runs offline through the replay exchange. Hyperopt runs on a copy of ``strategies/`` in
a temporary folder, so its parameter file never lands next to the shipped strategies (a parameter
file there would silently override their defaults). The tuned parameters are checked on the test
period only, which comes after the training period.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STRATEGIES = [
    "LiqSweepReversal",
    "LiqSweepReversalFixedStop",
    "LiqMagnetTrend",
    "LiqMagnetTrendFixedStop",
]


def _freqtrade(
    argv: list[str], datadir: Path, userdir: Path, strategy_path: Path, slippage_bp: float = 0.0
) -> str:
    from liqsignals.fileio import atomic_write_text
    from liqsignals.replay.offline import run_offline

    costs = userdir / "liqsignals-costs.json"
    atomic_write_text(costs, json.dumps({"liqsignals": {"slippage_bp": slippage_bp}}))
    cmd = [
        sys.executable, "-m", "freqtrade", argv[0],
        "-c", str(ROOT / "config" / "futures.json"), "-c", "{overlay}", "-c", str(costs),
        "--strategy-path", str(strategy_path), "--datadir", str(datadir),
        "--userdir", str(userdir), *argv[1:],
    ]  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        res = run_offline(cmd, datadir=datadir)
    if res.returncode != 0:
        raise SystemExit(f"freqtrade {argv[0]} failed:\n{res.output[-4000:]}")
    return res.output


def _latest_stats(userdir: Path) -> dict[str, Any]:
    results = userdir / "backtest_results"
    latest = results / json.loads((results / ".last_result.json").read_text())["latest_backtest"]
    with zipfile.ZipFile(latest) as zf:
        return dict(json.loads(zf.read(latest.with_suffix(".json").name))["strategy"])


WICK_TAGS = ("sweep_long", "sweep_short")  # LiqSweepReversal.liq_wick_entry_tags


def _row(name: str, st: dict[str, Any], slippage_bp: float = 0.0) -> str:
    from liqsignals.strategy.costs import SlippageSettings, trade_costs

    trades = st["total_trades"]
    wins = st.get("wins", 0)
    win_rate = 100.0 * wins / trades if trades else float("nan")
    setting = SlippageSettings(slippage_bp)
    tags = WICK_TAGS if name.startswith("LiqSweepReversal") else ()
    c = trade_costs(st.get("trades", []), setting, tags)
    if slippage_bp == 0:
        slip = "0 bp"
    else:
        all_in = st["profit_total"] - c.unslipped_slippage / float(st["starting_balance"])
        slip = (
            f"{slippage_bp:g} bp{' (x3 on sweeps)' if tags else ''}: {c.slippage:.2f} in the "
            f"profit; {c.unslipped_exits} stop/ROI exits unslipped, at {slippage_bp:g} bp they "
            f"would cost {c.unslipped_slippage:.2f} more (profit {100 * all_in:.2f} %)"
        )
    return (
        f"| {name} | {trades} | {win_rate:.1f} % | {100 * st['profit_total']:.2f} % | "
        f"{100 * st.get('max_drawdown_account', 0.0):.2f} % | {st.get('sharpe', float('nan')):.2f} | "
        f"{c.fees:.2f} | {c.funding:.2f} | {slip} |"
    )


HEADER = (
    "| strategy | trades | win rate | total profit | max drawdown | Sharpe | fees paid (USDT) | "
    "funding paid (USDT) | slippage (USDT) |\n|---|---:|---:|---:|---:|---:|---:|---:|---|"
)


def backtest(
    strategies: list[str], datadir: Path, timerange: str, strategy_path: Path,
    slippage_bp: float = 0.0,
) -> dict[str, Any]:  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        userdir = Path(tmp)
        _freqtrade(
            ["backtesting", "--strategy-list", *strategies, "--timeframe", "15m",
             "--timerange", timerange, "--export", "trades", "--cache", "none"],
            datadir, userdir, strategy_path, slippage_bp,
        )  # fmt: skip
        return _latest_stats(userdir)


def hyperopt(
    strategy: str, datadir: Path, train: str, epochs: int, strategy_path: Path,
    slippage_bp: float = 0.0,
) -> dict[str, Any]:  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        out = _freqtrade(
            ["hyperopt", "-s", strategy, "--timeframe", "15m", "--timerange", train,
             "--spaces", "buy", "sell", "--hyperopt-loss", "SharpeHyperOptLossDaily",
             "-e", str(epochs), "-j", "2", "--random-state", "42", "--print-json",
             "--disable-param-export"],
            datadir, Path(tmp), strategy_path, slippage_bp,
        )  # fmt: skip
    best = None
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("{") and '"params"' in line:
            best = json.loads(line)["params"]  # --print-json: the best epoch's parameters
    if best is None:
        raise SystemExit(f"no hyperopt result found for {strategy}")
    return best


def _by_space(strategy: str, flat: dict[str, Any], strategy_path: Path) -> dict[str, Any]:
    """Group flat parameter values by their hyperopt space, as freqtrade's parameter file wants."""
    import importlib.util

    from freqtrade.strategy.parameters import BaseParameter

    spec = importlib.util.spec_from_file_location(strategy, strategy_path / f"{strategy}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cls = getattr(module, strategy)
    grouped: dict[str, dict[str, Any]] = {}
    for key, value in flat.items():
        param = getattr(cls, key, None)
        if isinstance(param, BaseParameter) and param.space:
            grouped.setdefault(param.space, {})[key] = value
    return grouped


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datadir", type=Path, default=ROOT.parent / "shared" / "data" / "binance")
    ap.add_argument("--timerange", default="20230101-20250531")
    ap.add_argument("--train", default="20230101-20240630")
    ap.add_argument("--test", default="20240701-20250531")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--hyperopt", nargs="*", default=["LiqSweepReversal", "LiqMagnetTrend"])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "strategies.md")
    ap.add_argument(
        "--slippage-bp", type=float, nargs="+", default=[0.0, 2.0],
        help="full-period backtests at each slippage (bp per fill, 3x on sweep entries); the "
        "walk-forward runs at the first (default 0 2)",
    )  # fmt: skip
    ap.add_argument("--skip-hyperopt", action="store_true", help="full-period tables only")
    args = ap.parse_args()
    if any(b < 0 for b in args.slippage_bp):
        ap.error("--slippage-bp must be >= 0")
    slip0 = args.slippage_bp[0]
    t0 = time.time()
    lines = [
        "# Strategy results on real data",
        "",
        "Binance USDT-M futures, BTC/USDT:USDT and ETH/USDT:USDT, 15m candles, isolated margin, "
        "leverage cap 3x, `config/futures.json` (2 open trades, 1000 USDT dry-run wallet, fees "
        "0.05 % per side as freqtrade assumes for Binance, funding fees applied from the 1h "
        "funding files). Numbers as they came out: no strategy here is claimed to be profitable.",
        "",
        "Costs in every table: `total profit` is after freqtrade's fees (0.05 % per side) and "
        "funding; the fee and funding columns are their totals over the table's trades (USDT, "
        "from freqtrade's export; funding positive = paid). Slippage: `0 bp` is freqtrade's own "
        "fills (the strategies' default); a non-zero setting moves entry prices "
        "(`custom_entry_price`, 3x on the sweep entries that follow a liquidation wick) and the "
        "exits freqtrade prices through `custom_exit_price` (exit signals, `custom_exit`); "
        "stop-loss and ROI exits have no price hook and fill unslipped: the column counts them "
        "and gives the profit with their slippage subtracted after the fact. Slippage amounts are "
        "nominal (bp x notional).",
        "",
        "Produced with:",
        "",
        "```",
        f"python benchmarks/strategy_backtests.py --datadir ../shared/data/binance "
        f"--timerange {args.timerange} --train {args.train} --test {args.test} "
        f"--epochs {args.epochs} --slippage-bp {' '.join(f'{b:g}' for b in args.slippage_bp)}"
        f"{' --skip-hyperopt' if args.skip_hyperopt else ''} "
        f"--out {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}",
        "```",
        "",
        f"## Full period {args.timerange}",
        "",
    ]
    for bp in args.slippage_bp:
        print(f"backtesting {STRATEGIES} on {args.timerange}, slippage {bp:g} bp ...",
              file=sys.stderr, flush=True)  # fmt: skip
        stats = backtest(STRATEGIES, args.datadir, args.timerange, ROOT / "strategies", bp)
        lines += [f"Slippage {bp:g} bp per fill" + (" (freqtrade's own fills):" if bp == 0 else
                  " (3x on sweep entries), via custom_entry_price/custom_exit_price:"), "",
                  HEADER]  # fmt: skip
        for name in STRATEGIES:
            lines.append(_row(name, stats[name], bp))
        lines.append("")
    lines += [
        "",
        "Each `...FixedStop` row has the same entries and targets as the strategy above it with a "
        "fixed stop (-6 % of margin, about 2 % of price) instead of the stop beyond the liquidation "
        "cluster, so the difference between the two rows is what the cluster stop is worth here.",
        "",
    ]
    if args.skip_hyperopt:
        _write(args.out, lines, t0)
        return
    lines += [
        f"## Walk-forward hyperopt: train {args.train}, test {args.test}",
        "",
        f"`freqtrade hyperopt --spaces buy sell --hyperopt-loss SharpeHyperOptLossDaily -e "
        f"{args.epochs} --random-state 42` on the training period only; the tuned parameters are "
        f"then backtested on the later test period next to the defaults (slippage {slip0:g} bp).",
        "",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        tuned_path = Path(tmp) / "strategies"
        shutil.copytree(ROOT / "strategies", tuned_path, ignore=shutil.ignore_patterns("*.json"))
        default_test = backtest(args.hyperopt, args.datadir, args.test, ROOT / "strategies", slip0)
        for name in args.hyperopt:
            print(f"hyperopt {name} on {args.train} ...", file=sys.stderr, flush=True)
            best = hyperopt(name, args.datadir, args.train, args.epochs, tuned_path, slip0)
            params = {"strategy_name": name, "params": _by_space(name, best, tuned_path)}
            (tuned_path / f"{name}.json").write_text(json.dumps(params))
            tuned = backtest([name], args.datadir, args.test, tuned_path, slip0)[name]
            lines += [
                f"### {name}",
                "",
                "Tuned parameters: `" + json.dumps(best, sort_keys=True) + "`",
                "",
                HEADER,
                _row(f"{name} defaults, test period", default_test[name], slip0),
                _row(f"{name} tuned on train, test period", tuned, slip0),
                "",
            ]
            (tuned_path / f"{name}.json").unlink()
    _write(args.out, lines, t0)


def _write(out: Path, lines: list[str], t0: float) -> None:
    from liqsignals.fileio import atomic_write_text

    lines.append(f"Run time: {(time.time() - t0) / 60:.0f} minutes on 2 cores.")
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, "\n".join(lines) + "\n")
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
