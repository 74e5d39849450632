"""``liqsignals walkforward``: tune on the past, test on the future, every fold at once.

::

    liqsignals walkforward --strategy LiqSweepReversal --pairs BTC/USDT:USDT ETH/USDT:USDT \\
        --timerange 20230101-20250531 --folds 3 --epochs 30 --random-states 2 --out wf/

Splits ``--timerange`` into ``--folds`` consecutive folds (a training span, then its test span;
no overlap); runs freqtrade's hyperopt on every training span once per random state (``-j 1``
inside a task; the lowest loss is kept); backtests the tuned and the default parameters on the
test span that follows. The tasks run on Ray (a local instance by default, ``--address`` joins a
cluster) or in this process (``--serial``); each task runs freqtrade offline against its own
replay exchange on loopback, in its own folder. Writes ``OUT/report.md``,
``OUT/walkforward.json`` and ``OUT/equity.png``.
"""

from __future__ import annotations

import argparse
import ast
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from liqsignals.cli import options
from liqsignals.cli.options import CLIError

__all__ = ["check_strategy", "main", "register"]

ROOT = Path(__file__).resolve().parents[2]


def register(sub: Any) -> None:
    p = sub.add_parser(
        "walkforward",
        help="walk-forward hyperopt and backtests with freqtrade, folds in parallel on Ray",
        description=(__doc__ or "").split("\n\n")[0],
    )
    p.add_argument("--strategy", "-s", required=True, help="strategy class name")
    p.add_argument(
        "--strategy-path",
        type=Path,
        default=ROOT / "strategies",
        help="folder of the strategy files (default: the checkout's strategies/)",
    )
    p.add_argument(
        "--config",
        "-c",
        type=Path,
        default=ROOT / "config" / "futures.json",
        help="freqtrade config (default: config/futures.json)",
    )
    options.add_datadir_option(p)
    options.add_pairs_option(p)
    p.add_argument("-t", "--timeframe", default="15m", help="candle timeframe (default 15m)")
    p.add_argument("--timerange", required=True, help="START-STOP split into the folds")
    p.add_argument("--folds", type=int, required=True, help="number of train/test folds")
    p.add_argument(
        "--train-fraction",
        type=float,
        default=0.7,
        help="share of each fold used for training (default 0.7; the rest is its test span)",
    )
    p.add_argument("--epochs", "-e", type=int, default=20, help="hyperopt epochs per task")
    p.add_argument(
        "--random-states",
        type=int,
        default=1,
        metavar="N",
        help="hyperopt tasks per fold, with --random-state 1..N (default 1)",
    )
    p.add_argument("--hyperopt-loss", default="SharpeHyperOptLossDaily")
    p.add_argument("--spaces", nargs="+", default=["buy", "sell"])
    p.add_argument("--address", default=None, help="Ray cluster to join (e.g. auto, HOST:PORT)")
    p.add_argument("--serial", action="store_true", help="run the tasks in this process")
    p.add_argument("--out", type=Path, required=True, help="report folder")
    p.set_defaults(func=main)


# ----------------------------------------------------------------------------- checks
def _parameters(cls: ast.ClassDef) -> dict[str, str]:
    """``name -> space`` of the hyperoptable parameters a class body declares."""
    out = {}
    for node in cls.body:
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)):
            continue
        func = node.value.func
        kind = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        if not kind.endswith("Parameter"):
            continue
        space = next(
            (str(k.value.value) for k in node.value.keywords
             if k.arg == "space" and isinstance(k.value, ast.Constant)),
            None,
        )  # fmt: skip
        for target in node.targets:
            if isinstance(target, ast.Name):
                out[target.id] = space or target.id.split("_")[0]
    return out


def check_strategy(strategy_path: Path, name: str, spaces: list[str]) -> dict[str, str]:
    """The hyperoptable parameters (``name -> space``) of strategy class ``name`` in
    ``strategy_path`` within ``spaces`` (its bases in the same folder included); a
    :class:`CLIError` when there is no such class or it has none."""
    if not strategy_path.is_dir():
        raise CLIError(f"--strategy-path {strategy_path} is not a folder")
    classes: dict[str, ast.ClassDef] = {}
    for path in sorted(strategy_path.glob("*.py")):
        try:
            tree = ast.parse(path.read_text(), filename=str(path))
        except SyntaxError:
            continue
        classes.update({n.name: n for n in tree.body if isinstance(n, ast.ClassDef)})
    if name not in classes:
        known = ", ".join(sorted(classes)) or "none"
        raise CLIError(f"unknown strategy {name!r} in {strategy_path}; its classes: {known}")
    params: dict[str, str] = {}
    todo = [classes[name]]
    while todo:
        cls = todo.pop()
        for key, space in _parameters(cls).items():
            params.setdefault(key, space)
        todo += [classes[b.id] for b in cls.bases if isinstance(b, ast.Name) and b.id in classes]
    chosen = {k: v for k, v in params.items() if v in spaces}
    if not chosen:
        raise CLIError(
            f"strategy {name} has no hyperoptable parameters in the spaces {' '.join(spaces)}"
        )
    return chosen


def _check_data(datadir: Path, pairs: list[str], timeframe: str, start: datetime,
                stop: datetime) -> None:  # fmt: skip
    from liqsignals.data.datadir import load_candles
    from liqsignals.model import timeframe_to_timedelta

    step = timeframe_to_timedelta(timeframe)
    for pair in pairs:
        problem = options.availability_problem(datadir, pair, timeframe)
        if problem:
            raise CLIError(f"no data: {problem}")
        df = load_candles(datadir, pair, timeframe)
        first, last = df["date"].iloc[0].to_pydatetime(), df["date"].iloc[-1].to_pydatetime()
        if first > start or last + step < stop:
            raise CLIError(
                f"no data for all of --timerange: {pair} {timeframe} candles in {datadir} run "
                f"from {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M}, the range is "
                f"{start:%Y-%m-%d} to {stop:%Y-%m-%d}"
            )


def _notes(datadir: Path, pairs: list[str]) -> tuple[str, str]:
    from liqsignals.data.datadir import list_data

    held = {(p, kind) for p, _, kind in list_data(datadir)}
    funded = all((p, "funding_rate") in held and (p, "mark") in held for p in pairs)
    funding = (
        "funding fees applied by freqtrade from the funding-rate and mark-price files"
        if funded
        else "funding NOT applied: the datadir lacks funding-rate or mark files for some pairs"
    )
    slippage = (
        "slippage 0: freqtrade backtesting fills at candle prices (entries at the next "
        "candle's open, exits at the ROI, stop or signal price), without a spread or impact"
    )
    return funding, slippage


def _range(text: str) -> tuple[datetime, datetime]:
    tr = options.parse_timerange(text)
    if tr.start is None or tr.stop is None:
        raise CLIError(f"--timerange {text!r}: walk-forward needs both START and STOP")
    start = tr.start.to_pydatetime() if hasattr(tr.start, "to_pydatetime") else tr.start
    stop = tr.stop.to_pydatetime() if hasattr(tr.stop, "to_pydatetime") else tr.stop
    return start.astimezone(UTC), stop.astimezone(UTC)


# ----------------------------------------------------------------------------- main
def main(args: argparse.Namespace) -> int:
    from liqsignals.walkforward.folds import make_folds
    from liqsignals.walkforward.report import build_report, write_report
    from liqsignals.walkforward.runner import (
        RayExecutor,
        SerialExecutor,
        WalkForwardPlan,
        run_walkforward,
    )
    from liqsignals.walkforward.tasks import build_payload

    t0 = time.monotonic()
    if args.serial and args.address:
        raise CLIError("--serial and --address exclude each other")
    if args.epochs < 1:
        raise CLIError(f"--epochs must be >= 1, got {args.epochs}")
    if args.random_states < 1:
        raise CLIError(f"--random-states must be >= 1, got {args.random_states}")
    if not args.config.is_file():
        raise CLIError(f"--config {args.config} does not exist")
    if args.out.exists() and not args.out.is_dir():
        raise CLIError(f"--out {args.out} exists and is not a folder")
    config = options.load_config([args.config])
    datadir, source = options.resolve_datadir(args.datadir, config)
    if source == "sample":
        options.note(f"no --datadir: using the bundled sample data in {datadir}")
    pairs = options.resolve_pairs(args.pairs, config)
    timeframe = options.resolve_timeframe(args.timeframe, config)
    params = check_strategy(args.strategy_path, args.strategy, list(args.spaces))
    start, stop = _range(args.timerange)
    try:
        folds = make_folds(start, stop, args.folds, args.train_fraction)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    _check_data(datadir, pairs, timeframe, folds[0].train_start, folds[-1].test_stop)
    funding_note, slippage_note = _notes(datadir, pairs)
    plan = WalkForwardPlan(
        folds, args.epochs, list(range(1, args.random_states + 1)), args.hyperopt_loss,
        tuple(args.spaces),
    )  # fmt: skip
    payload = build_payload(
        datadir=datadir,
        strategy=args.strategy,
        strategy_path=args.strategy_path,
        config=args.config,
        pairs=tuple(pairs),
        timeframe=timeframe,
    )
    for f in folds:
        print(
            f"walkforward: fold {f.index}: train {f.train_timerange}, test {f.test_timerange}",
            file=sys.stderr,
        )
    print(f"walkforward: hyperoptable parameters: {', '.join(sorted(params))}", file=sys.stderr)
    if args.serial:
        executor: Any = SerialExecutor(payload)
        how = "serial, in one process"
    else:
        executor = RayExecutor(payload, args.address)
        resources = executor.ray.cluster_resources()
        how = f"Ray, {resources.get('CPU', 0):.0f} CPUs"
        print(f"walkforward: {how}", file=sys.stderr)
    record = run_walkforward(plan, executor)
    rates = sorted({r for b in record.backtests for r in b.get("fee_rates", [])})
    fee_note = (
        "fees " + " / ".join(f"{100 * r:.3f} %" for r in rates) + " of notional per side "
        "(freqtrade's fee for the exchange), on entry and exit"
        if rates
        else "fees: no trades, none charged"
    )
    settings = {
        "train_fraction": args.train_fraction,
        "epochs": args.epochs,
        "random_states": list(plan.random_states),
        "loss": args.hyperopt_loss,
        "spaces": list(args.spaces),
        "fee_note": fee_note,
        "funding_note": funding_note,
        "slippage_note": slippage_note,
        "stake_currency": str(config.get("stake_currency", "USDT")),
        "executor": how,
        "hyperoptable": params,
    }
    report = build_report(
        strategy=args.strategy,
        pairs=pairs,
        timeframe=timeframe,
        timerange=args.timerange,
        folds=folds,
        settings=settings,
        hyperopt=record.hyperopt,
        backtests=record.backtests,
    )
    report.command = "liqsignals walkforward " + " ".join(
        shlex.quote(a) for a in _shown_args(args, pairs)
    )
    report.wall_seconds = time.monotonic() - t0
    paths = write_report(report, args.out)
    for variant in ("tuned", "default"):
        t = report.totals[variant]
        iv = t["interval"]
        print(
            f"{variant}: {t['trades']} trades, profit {t['profit_abs']:.2f} "
            f"[{iv['low']:.2f}, {iv['high']:.2f}] ({t['profit_pct']:.2f} %)"
        )
    print(f"wrote {paths['md']}, {paths['json'].name}, {paths['png'].name}", file=sys.stderr)
    return 0


def _shown_args(args: argparse.Namespace, pairs: list[str]) -> list[str]:
    out = ["--strategy", args.strategy, "--pairs", *pairs, "--timerange", args.timerange,
           "--folds", str(args.folds), "--epochs", str(args.epochs),
           "--random-states", str(args.random_states)]  # fmt: skip
    if args.train_fraction != 0.7:
        out += ["--train-fraction", str(args.train_fraction)]
    if args.hyperopt_loss != "SharpeHyperOptLossDaily":
        out += ["--hyperopt-loss", args.hyperopt_loss]
    if args.serial:
        out.append("--serial")
    return out
