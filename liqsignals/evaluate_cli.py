"""``liqsignals evaluate magnets|realised`` and ``liqsignals calibrate``.

``liqsignals evaluate magnets --datadir DIR --pairs PAIR [PAIR ...] --timeframe TF [--timerange R]
[--window 1w] [--horizon 1d] [--band-pct 5] [--report out.md] [--json]``
    Do estimated clusters attract price? Hit rate of the strongest cluster within the band vs a
    distance-matched random level, lift with a block-bootstrap interval. ``--json`` prints one
    object with ``n, hit_rate, baseline_hit_rate, lift, lift_ci_low, lift_ci_high``; ``--report``
    writes markdown tables and PNG plots (by intensity bucket, distance band, side, window x
    horizon x band, and the intensity -> price move table).
``liqsignals evaluate realised --datadir DIR --pairs PAIR --timeframe TF --realised CSV
[--timerange R] [--train R] [--model PRESET_OR_FILE] [--report out.md] [--json]``
    Estimated vs realised liquidations per realised bar: Spearman per side, side accuracy on the
    largest bars, and the same for naive baselines. With ``--train``: the candle-only log-linear
    baseline fitted on the training bars, the path-excursion baseline, the long-share test on the
    busier half of the bars, and block-bootstrap intervals of model minus each baseline
    (:mod:`liqsignals.analysis.baselines`).
``liqsignals evaluate information|competing|risk|trades [options]``
    Delegated to the ``main`` of :mod:`liqsignals.analysis.information`, ``.competing``,
    ``.risk`` (does the book near price forecast a bar's liquidations and range beyond past
    volatility and volume?) and ``.trades`` (cost-aware event study toward the target); each has
    its own options (``--help``) and ``--json``.
``liqsignals calibrate --datadir DIR --pairs PAIR --timeframe TF --realised CSV --train R --test R
[--budget N] [--out liqsignals/presets/NAME.json] [--json]``
    Fit the model to realised liquidations on the training range and score it on the test range.

``-c/--config`` (layered), ``--datadir``, ``-p/--pairs``, ``-t/--timeframe`` and ``--timerange``
are the shared options of :mod:`liqsignals.cli.options` (without ``--datadir`` and a config's
``datadir``: the bundled sample data). ``--timerange`` is the evaluated period; earlier candles
in the datadir are loaded automatically to warm the engine up. Progress goes to stderr; with
``--json`` stdout holds exactly one JSON object (the result's ``to_dict()``: see
:class:`liqsignals.evaluate.MagnetEvaluation`, :class:`liqsignals.evaluate.RealisedEvaluation`,
:class:`liqsignals.calibrate.CalibrationResult`); tables and figures come from
:mod:`liqsignals.report`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

from liqsignals.cli import options

# numpy, pandas, evaluate, calibrate and report are imported inside the commands:
# `liqsignals --help` and the other commands must not pay for them.


def register(subparsers: Any) -> None:
    """Add ``evaluate`` (with ``magnets`` and ``realised``) and ``calibrate``."""
    ev = subparsers.add_parser(
        "evaluate",
        help="check the model against the market: cluster magnet test, estimated vs realised",
        description="Evaluate the liquidation model: do clusters attract price (magnets), and do "
        "estimated liquidations match realised ones (realised)?",
    )
    sub = ev.add_subparsers(dest="evaluate_command", metavar="TEST")
    sub.required = True

    m = sub.add_parser(
        "magnets",
        help="hit rate of estimated clusters vs a distance-matched random level",
        description="At every STEP-th candle, take the strongest significant cluster within "
        "--band-pct of the close (engine state at that close only) and check whether price "
        "touches it within --horizon candles; compare with the same distance on a random side.",
    )
    _common(m)
    m.add_argument("--window", default=None, help="model window (default: the model's, 1w)")
    m.add_argument(
        "--horizon", default="1d", help="candles (e.g. 24) or a duration (1d, 36h); default 1d"
    )
    m.add_argument("--band-pct", type=float, default=5.0, help="target band, %% of price (5)")
    m.add_argument(
        "--rule",
        default="larger",
        choices=("larger", "nearest", "magnet"),
        help="target: larger of the nearest long/short clusters in the band (default), the "
        "nearer one, or the engine's magnet",
    )
    m.add_argument("--step", type=int, default=None, help="candles between samples (horizon/4)")
    m.add_argument(
        "--windows", default="1d,1w,2w", help="report grid: model windows (default 1d,1w,2w)"
    )
    m.add_argument(
        "--horizons", default="4h,1d,3d", help="report grid: horizons (default 4h,1d,3d)"
    )
    m.add_argument("--bands", default="2,5,10", help="report grid: bands in %% (default 2,5,10)")
    m.add_argument("--boot", type=int, default=1000, help="bootstrap resamples (default 1000)")
    m.add_argument(
        "--seed", type=int, default=0, help="seed of the baseline coin flips and bootstrap"
    )
    m.set_defaults(func=_cmd_magnets)

    r = sub.add_parser(
        "realised",
        help="estimated vs realised liquidations per bar (Spearman, side accuracy, baselines)",
        description="Sum the per-candle estimates into the bars of a realised liquidation CSV "
        "(date, long_liquidation_usd, short_liquidation_usd; bar open time UTC) and compare.",
    )
    _common(r)
    _realised_arg(r)
    r.add_argument(
        "--train",
        default=None,
        help="training range (ends before --timerange starts), e.g. 20241101-20250301: fit the "
        "candle-only log-linear baseline there and report it, the path-excursion baseline, the "
        "long-share test and bootstrap intervals of model minus each baseline",
    )
    r.set_defaults(func=_cmd_realised)

    for name, module, text in (
        (
            "information",
            "liqsignals.analysis.information",
            "does liq_* improve a walk-forward touch forecast that already knows the price path?",
        ),
        (
            "competing",
            "liqsignals.analysis.competing",
            "liq clusters against swing, round-number, volume-node and placebo targets",
        ),
        (
            "risk",
            "liqsignals.analysis.risk",
            "does the book near price forecast a bar's liquidations and range beyond past volatility?",
        ),
        (
            "trades",
            "liqsignals.analysis.trades",
            "cost-aware event study: trade toward the target (fees, slippage, funding)",
        ),
    ):
        # the options are the module's own (``--help`` shows them); the dispatcher passes
        # whatever follows the command name through as ``args.passthrough``
        e = sub.add_parser(name, help=text, add_help=False, description=text)
        e.set_defaults(func=_delegate(module), passthrough=[])

    c = subparsers.add_parser(
        "calibrate",
        help="fit the model's free parameters to realised liquidations; score on a later period",
        description="Seeded random + coordinate search over window, close half-life, direction "
        "tilt and leverage mix, maximising the mean Spearman correlation (long, short) on --train; "
        "participation is then set so the median estimated/realised ratio is 1. The score on "
        "--test (which must come after --train) is reported and stored in the preset.",
    )
    _common(c, timerange=False, report=False)
    _realised_arg(c)
    c.add_argument("--train", required=True, help="training range, e.g. 20241101-20250301")
    c.add_argument("--test", required=True, help="test range after it, e.g. 20250301-20250601")
    c.add_argument("--budget", type=int, default=60, help="model evaluations (default 60)")
    c.add_argument("--seed", type=int, default=0, help="search seed (default 0)")
    c.add_argument("--out", type=Path, default=None, help="write the fitted preset JSON here")
    c.set_defaults(func=_cmd_calibrate)


def _delegate(module: str) -> Any:
    """A command that hands its arguments to ``module.main`` (its own parser and --help)."""

    def run(args: argparse.Namespace) -> int:
        return int(importlib.import_module(module).main(args.passthrough) or 0)

    return run


def _common(p: argparse.ArgumentParser, timerange: bool = True, report: bool = True) -> None:
    options.add_data_options(
        p,
        timerange_help="evaluated period, e.g. 20230101-20250601 (earlier candles warm up)"
        if timerange
        else None,
    )
    p.add_argument(
        "--model",
        default=None,
        help="preset name (all, high, low or a calibrated preset) or a model JSON file",
    )
    if report:
        p.add_argument("--report", type=Path, default=None, help="write a markdown report here")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _realised_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--realised",
        nargs="+",
        required=True,
        type=Path,
        help="realised liquidations CSV per pair (same order as --pairs)",
    )


# ----------------------------------------------------------------------------- helpers
def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _model(spec: str | None) -> Any:
    from liqsignals.model import LiquidationModel

    if spec is None:
        return LiquidationModel()
    path = Path(spec)
    if path.suffix == ".json" or path.is_file():
        if not path.is_file():
            raise options.CLIError(f"--model: model file {path} does not exist")
        return LiquidationModel.from_json(path)
    return LiquidationModel.preset(spec)


def _frames(opts: options.DataOptions, timerange: str | None, pad: Any) -> dict[str, Any]:
    """Candles of every pair for ``timerange`` plus ``pad`` of history before it (warm-up)."""
    from liqsignals.data.datadir import TimeRange

    tr = options.parse_timerange(timerange)
    lo = None if tr.start is None else tr.start - pad
    frames = {}
    for pair in opts.pairs:
        frames[pair] = options.load_candles(
            opts.datadir, pair, opts.timeframe, TimeRange(lo, tr.stop)
        )
        _say(f"loaded {pair} {opts.timeframe}: {len(frames[pair])} candles (with warm-up)")
    return frames


def _split(text: str) -> list[str]:
    return [t.strip() for t in str(text).split(",") if t.strip()]


def _emit(args: argparse.Namespace, result: Any, text: str) -> None:
    if args.json:
        print(json.dumps(result.to_dict(), allow_nan=False))
    else:
        print(text)


def _realised_files(args: argparse.Namespace, pairs: list[str]) -> dict[str, Path]:
    if len(args.realised) != len(pairs):
        raise options.CLIError(
            f"--realised needs one CSV per pair: {len(pairs)} pair(s), {len(args.realised)} file(s)"
        )
    return dict(zip(pairs, args.realised, strict=True))


# ----------------------------------------------------------------------------- commands
def _cmd_magnets(args: argparse.Namespace) -> int:
    from liqsignals import evaluate as ev
    from liqsignals import report

    opts = options.resolve_data_options(args)
    model = _model(args.model)
    if args.window:
        model = model.replace(window=args.window)
    tf = opts.timeframe
    h = ev.horizon_candles(args.horizon, tf)
    grid = ev.MagnetGrid()
    if args.report:
        grid = ev.MagnetGrid(
            windows=_split(args.windows),
            horizons=[ev.horizon_candles(x, tf) for x in _split(args.horizons)],
            bands=[float(b) for b in _split(args.bands)],
        )
    frames = _frames(opts, opts.timerange, ev.magnet_warmup(model, tf, grid.windows))
    settings = ev.MagnetOptions(
        horizon=h, band_pct=args.band_pct, rule=args.rule, step=args.step,
        start=opts.range.start, seed=args.seed,
    )  # fmt: skip
    study = ev.magnet_study(
        frames, model, settings, grid=grid, bootstrap=ev.Bootstrap(n_boot=args.boot),
        progress=_say,
    )  # fmt: skip
    result = ev.MagnetEvaluation(study, timeframe=tf, timerange=opts.timerange)
    if args.report:
        result.report = str(report.write_magnet_report(result, args.report))
        _say(f"report written to {result.report}")
    _emit(args, result, report.magnet_text(result))
    return 0


def _cmd_realised(args: argparse.Namespace) -> int:
    from liqsignals import evaluate as ev
    from liqsignals import report

    opts = options.resolve_data_options(args)
    model = _model(args.model)
    files = _realised_files(args, opts.pairs)
    span = opts.timerange
    if args.train is not None:
        trr = options.parse_timerange(args.train, "--train")
        if trr.stop is None or opts.range.start is None or trr.stop > opts.range.start:
            raise options.CLIError(
                "--train needs an end at or before the start of --timerange (YYYYMMDD-YYYYMMDD)"
            )
        start = "" if trr.start is None else trr.start.strftime("%Y%m%dT%H%M")
        stop = "" if opts.range.stop is None else opts.range.stop.strftime("%Y%m%dT%H%M")
        span = f"{start}-{stop}"
    frames = _frames(opts, span, ev.realised_warmup(model))
    try:
        result = ev.evaluate_realised_pairs(
            frames, files, model, model_name=args.model, timeframe=opts.timeframe,
            timerange=opts.timerange, train=args.train,
        )  # fmt: skip
    except ValueError as exc:
        raise options.CLIError(str(exc)) from exc
    if args.report:
        result.report = str(report.write_realised_report(result, args.report))
        _say(f"report written to {result.report}")
    _emit(args, result, report.realised_text(result))
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from liqsignals import report
    from liqsignals.calibrate import CALIBRATION_WARMUP, calibrate, write_preset

    opts = options.resolve_data_options(args)
    model = _model(args.model)
    files = _realised_files(args, opts.pairs)
    tr = options.parse_timerange(args.train, "--train")
    te = options.parse_timerange(args.test, "--test")
    if tr.start is None or te.stop is None:
        raise options.CLIError("--train and --test need both ends (YYYYMMDD-YYYYMMDD)")
    span = f"{tr.start.strftime('%Y%m%d')}-{te.stop.strftime('%Y%m%dT%H%M')}"
    frames = _frames(opts, span, CALIBRATION_WARMUP)
    result = calibrate(
        frames, {p: str(f) for p, f in files.items()}, train=args.train, test=args.test,
        model=model, budget=args.budget, seed=args.seed, progress=_say,
    )  # fmt: skip
    if args.out:
        names = ", ".join(Path(f).name for f in files.values())
        result.preset = str(write_preset(result, args.out, realised_name=names))
        _say(f"preset written to {result.preset}")
    _emit(args, result, report.calibration_text(result))
    return 0
