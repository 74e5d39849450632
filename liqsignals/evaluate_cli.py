"""``liqsignals evaluate magnets|realised`` and ``liqsignals calibrate``.

``liqsignals evaluate magnets --datadir DIR --pairs PAIR [PAIR ...] --timeframe TF [--timerange R]
[--window 1w] [--horizon 1d] [--band-pct 5] [--report out.md] [--json]``
    Do estimated clusters attract price? Hit rate of the strongest cluster within the band vs a
    distance-matched random level, lift with a block-bootstrap interval. ``--json`` prints one
    object with ``n, hit_rate, baseline_hit_rate, lift, lift_ci_low, lift_ci_high``; ``--report``
    writes markdown tables and PNG plots (by intensity bucket, distance band, side, window x
    horizon x band, and the intensity -> price move table).
``liqsignals evaluate realised --datadir DIR --pairs PAIR --timeframe TF --realised CSV
[--timerange R] [--model PRESET_OR_FILE] [--report out.md] [--json]``
    Estimated vs realised liquidations per realised bar: Spearman per side, side accuracy on the
    largest bars, and the same for naive baselines.
``liqsignals calibrate --datadir DIR --pairs PAIR --timeframe TF --realised CSV --train R --test R
[--budget N] [--out liqsignals/presets/NAME.json] [--json]``
    Fit the model to realised liquidations on the training range and score it on the test range.

``--timerange`` is the evaluated period; earlier candles in the datadir are loaded automatically
to warm the engine up. Progress goes to stderr; with ``--json`` stdout holds exactly one JSON
object.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

# numpy, pandas, evaluate and calibrate are imported inside the commands: `liqsignals --help` and
# the other commands must not pay for them.


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
    r.set_defaults(func=_cmd_realised)

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


def _common(p: argparse.ArgumentParser, timerange: bool = True, report: bool = True) -> None:
    p.add_argument(
        "--datadir",
        type=Path,
        default=None,
        help="exchange folder of a freqtrade datadir (default: the bundled sample data)",
    )
    p.add_argument("--pairs", nargs="+", required=True, help="e.g. BTC/USDT:USDT")
    p.add_argument("--timeframe", "-t", required=True, help="candle timeframe, e.g. 15m or 1h")
    if timerange:
        p.add_argument("--timerange", default=None, help="evaluated period, e.g. 20230101-20250601")
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
            raise FileNotFoundError(f"model file {path} does not exist")
        return LiquidationModel.from_json(path)
    return LiquidationModel.preset(spec)


def _datadir(args: argparse.Namespace) -> Path:
    if args.datadir is not None:
        return Path(args.datadir)
    from liqsignals import sample

    return sample.datadir()


def _load(
    datadir: Path, pair: str, timeframe: str, timerange: str | None, pad: pd.Timedelta
) -> tuple[pd.DataFrame, pd.Timestamp | None, pd.Timestamp | None]:
    """Candles for ``timerange`` plus ``pad`` of history before it (for warm-up)."""
    from liqsignals.data.datadir import load_candles, parse_timerange

    tr = parse_timerange(timerange)
    lo = None if tr.start is None else tr.start - pad
    df = load_candles(datadir, pair, timeframe, timerange=(lo, tr.stop))
    if df.empty:
        raise ValueError(f"no {pair} {timeframe} candles in {datadir} for {timerange}")
    return df, tr.start, tr.stop


def _split(text: str) -> list[str]:
    return [t.strip() for t in str(text).split(",") if t.strip()]


def _clean(obj: Any) -> Any:
    """JSON-safe: NaN/inf -> None, numpy -> Python."""
    import numpy as np
    import pandas as pd

    if isinstance(obj, Mapping):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating | float):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, pd.Timestamp):
        return str(obj)
    return obj


def _emit(args: argparse.Namespace, obj: Mapping[str, Any], text: str) -> None:
    if args.json:
        print(json.dumps(_clean(obj), allow_nan=False))
    else:
        print(text)


def _fmt(v: Any, spec: str = ".3f") -> str:
    import numpy as np

    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if (isinstance(v, int | np.integer) and not isinstance(v, bool)) or spec == "d":
        return f"{int(v):,}"
    if isinstance(v, float | np.floating):
        return format(float(v), spec)
    return str(v)


def _md_table(df: pd.DataFrame, formats: Mapping[str, str] | None = None, index: str = "") -> str:
    formats = formats or {}
    cols = list(df.columns)
    head = ([index] if index is not None else []) + cols
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for idx, row in df.iterrows():
        cells = [str(idx) if not isinstance(idx, tuple) else " / ".join(map(str, idx))]
        cells += [_fmt(row[c], formats.get(c, ".3f")) for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _duration(candles: int, tf: str) -> str:
    from liqsignals.evaluate import _format_td
    from liqsignals.features import timeframe_to_timedelta

    return _format_td(timeframe_to_timedelta(tf) * candles)


# ----------------------------------------------------------------------------- magnets
def _cmd_magnets(args: argparse.Namespace) -> int:
    import pandas as pd

    from liqsignals.evaluate import horizon_candles, magnet_study
    from liqsignals.features import DEFAULT_INTENSITY_LOOKBACK, timeframe_to_timedelta
    from liqsignals.model import parse_duration

    model = _model(args.model)
    if args.window:
        model = model.replace(window=args.window)
    tf = args.timeframe
    h = horizon_candles(args.horizon, tf)
    horizons = [horizon_candles(x, tf) for x in _split(args.horizons)] if args.report else []
    windows = _split(args.windows) if args.report else []
    bands = [float(b) for b in _split(args.bands)] if args.report else []
    longest = max([model.window_td, *(parse_duration(w, "window") for w in windows)])
    pad = longest + timeframe_to_timedelta(tf) * DEFAULT_INTENSITY_LOOKBACK + pd.Timedelta(days=1)
    datadir = _datadir(args)
    frames = {}
    start = None
    for pair in args.pairs:
        frames[pair], start, _ = _load(datadir, pair, tf, args.timerange, pad)
        _say(f"loaded {pair} {tf}: {len(frames[pair])} candles (with warm-up)")
    study = magnet_study(
        frames, model, horizon=h, band_pct=args.band_pct, windows=windows, horizons=horizons,
        bands=bands, rule=args.rule, step=args.step, start=start, n_boot=args.boot,
        seed=args.seed, progress=_say,
    )  # fmt: skip
    out: dict[str, Any] = dict(study.headline)
    out.update(
        pairs=list(args.pairs), timeframe=tf, timerange=args.timerange,
        horizon_duration=_duration(h, tf), first_sample=study.settings["first_sample"],
        last_sample=study.settings["last_sample"],
    )  # fmt: skip
    if "by_pair" in study.tables:
        out["by_pair"] = {
            p: {
                k: row[k]
                for k in (
                    "n",
                    "hit_rate",
                    "baseline_hit_rate",
                    "lift",
                    "lift_ci_low",
                    "lift_ci_high",
                )
            }  # fmt: skip
            for p, row in study.tables["by_pair"].iterrows()
        }
    if args.report:
        out["report"] = str(_magnet_report(study, args, out))
        _say(f"report written to {out['report']}")
    text = (
        f"magnet test {', '.join(args.pairs)} {tf} window {study.headline['window']} horizon "
        f"{h} candles ({out['horizon_duration']}) band {args.band_pct:g}% rule {args.rule}\n"
        f"  samples {out['n']}, cluster hit rate {_fmt(out['hit_rate'])}, baseline "
        f"{_fmt(out['baseline_hit_rate'])}, mirror {_fmt(out['mirror_hit_rate'])}\n"
        f"  lift {_fmt(out['lift'])} (95% CI {_fmt(out['lift_ci_low'])} .. "
        f"{_fmt(out['lift_ci_high'])}), lift vs mirror {_fmt(out['lift_vs_mirror'])}"
    )
    _emit(args, out, text)
    return 0


_RATE_FMT = {
    "n": "d",
    "hit_rate": ".3f",
    "baseline_hit_rate": ".3f",
    "mirror_hit_rate": ".3f",
    "lift": ".3f",
    "lift_ci_low": ".3f",
    "lift_ci_high": ".3f",
    "lift_vs_mirror": ".3f",
    "median_dist_pct": ".2f",
}
_RATE_COLS = list(_RATE_FMT)


def _rate_table(df: pd.DataFrame) -> str:
    return _md_table(df[_RATE_COLS], _RATE_FMT, index="group")


def _magnet_report(study: Any, args: argparse.Namespace, out: Mapping[str, Any]) -> Path:
    import pandas as pd

    path = Path(args.report)
    path.parent.mkdir(parents=True, exist_ok=True)
    tf = args.timeframe
    s = study.settings
    h = s["horizon"]
    lines = [
        "# Magnet test: do estimated liquidation clusters attract price?",
        "",
        f"Pairs {', '.join(s['pairs'])}, {tf} candles, samples {s['first_sample']} to "
        f"{s['last_sample']} (timerange `{args.timerange or 'all'}`; earlier candles only warm the "
        f"engine up). Model window {s['window']}, target rule `{s['rule']}`, band "
        f"{s['band_pct']:g}% of price, horizon {h} candles ({_duration(h, tf)}), one sample every "
        f"{s['step']} candles; block bootstrap with blocks of {s['block']} candles, "
        f"{s['n_boot']} resamples, {int(s['confidence'] * 100)}% percentile intervals, seed "
        f"{s['seed']}.",
        "",
        "How to read: *hit rate* is the share of samples whose target cluster (its centre) was "
        "touched within the horizon; *baseline* is the same for a level at the same distance on a "
        "random side (a market without magnets touches it as often); *mirror* is the level at the "
        "same distance on the other side. *lift* = hit rate / baseline: above 1 means clusters "
        "are reached more often than distance alone explains, and the interval says how sure.",
        "",
        "## Headline",
        "",
        _rate_table(pd.DataFrame([dict(study.headline)], index=["all"]).assign(
            median_dist_pct=float(study.samples["dist_pct"].median()) if len(study.samples)
            else math.nan)),
        "",
    ]  # fmt: skip
    t = study.tables
    pics = []
    if "by_bucket" in t:
        lines += [
            "## By intensity bucket (`liq_intensity_bucket` at the sampled candle)",
            "",
            _rate_table(t["by_bucket"]),
            "",
        ]
    if "by_distance" in t:
        pic = _plot_distance(t["by_distance"], path.with_name(f"{path.stem}_distance.png"))
        pics.append(pic)
        lines += [
            "## By distance of the target from the close",
            "",
            _rate_table(t["by_distance"]),
            "",
            f"![hit rate vs distance]({pic.name})",
            "",
        ]
    if "by_side" in t:
        lines += ["## By side of the target", "", _rate_table(t["by_side"]), ""]
    if "by_pair" in t:
        lines += ["## By pair", "", _rate_table(t["by_pair"]), ""]
    if "grid" in t and len(t["grid"]) > 1:
        g = t["grid"].copy()
        g.index = [
            f"{w} / {_duration(int(hh), tf)} / {b:g}%"
            for w, hh, b in zip(g["window"], g["horizon"], g["band_pct"], strict=True)
        ]
        pic = _plot_grid(t["grid"], tf, path.with_name(f"{path.stem}_grid.png"))
        pics.append(pic)
        lines += [
            "## Window x horizon x band",
            "",
            "Each row is a separate run of the test (window / horizon / band).",
            "",
            _rate_table(g),
            "",
            f"![lift by window, horizon and band]({pic.name})",
            "",
        ]
    if "intensity" in t:
        lines += [
            "## Cluster intensity -> price move over the horizon",
            "",
            f"Every {s['step']}-th candle with a defined intensity bucket; moves over the next "
            f"{h} candles ({_duration(h, tf)}), in quote currency (USDT). *guide* is what the "
            "traders' guides claim for BTC; *excursion toward* is the furthest move toward the "
            "nearest cluster, *touch* the share of candles whose nearest cluster was reached.",
            "",
        ]
        for pair, tab in t["intensity"].groupby(level="pair", sort=False):
            tab = tab.droplevel("pair").copy()
            if not str(pair).upper().startswith("BTC"):
                tab["guide"] = "(BTC only)"  # the guides' dollar bands are for BTC
            fm = {
                "n": "d", "median_abs_move": ",.0f", "p75_abs_move": ",.0f",
                "median_abs_move_pct": ".2f", "median_range": ",.0f",
                "median_excursion_toward": ",.0f", "touch_rate": ".3f",
                "median_cluster_dist_pct": ".2f", "median_cluster_size": ",.3g",
            }  # fmt: skip
            cols = ["guide", *fm]
            lines += [f"### {pair}", "", _md_table(tab[cols], fm, index="intensity"), ""]
    path.write_text("\n".join(lines))
    return path


def _figure(w: float, h: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), dpi=110, layout="constrained")


def _save(fig: Any, path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    fig.savefig(path)
    return path


def _plot_distance(tab: pd.DataFrame, path: Path) -> Path:
    import numpy as np

    fig = _figure(7.5, 4.2)
    ax = fig.add_subplot()
    x = np.arange(len(tab))
    hr = tab["hit_rate"].to_numpy(float)
    br = tab["baseline_hit_rate"].to_numpy(float)
    ax.errorbar(
        x - 0.08, hr,
        yerr=[hr - tab["hit_rate_ci_low"].to_numpy(float),
              tab["hit_rate_ci_high"].to_numpy(float) - hr],
        fmt="o-", color="tab:red", capsize=3, label="cluster (target)",
    )  # fmt: skip
    ax.errorbar(
        x + 0.08, br,
        yerr=[br - tab["baseline_ci_low"].to_numpy(float),
              tab["baseline_ci_high"].to_numpy(float) - br],
        fmt="s--", color="tab:blue", capsize=3, label="baseline (same distance, random side)",
    )  # fmt: skip
    ax.plot(x, tab["mirror_hit_rate"], "^:", color="tab:gray", label="mirror (other side)")
    ax.set_xticks(x, [f"{i}\nn={n}" for i, n in zip(tab.index, tab["n"], strict=True)])
    ax.set_xlabel("distance of the target from the close")
    ax.set_ylabel("touched within the horizon")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title("Hit rate vs distance band (bars: 95% block-bootstrap interval)", fontsize=10)
    return _save(fig, path)


def _plot_grid(grid: pd.DataFrame, tf: str, path: Path) -> Path:
    import numpy as np

    fig = _figure(8.0, 4.2)
    ax = fig.add_subplot()
    labels = []
    for i, (_, row) in enumerate(grid.iterrows()):
        lift = row["lift"]
        ax.errorbar(
            [i], [lift], yerr=[[lift - row["lift_ci_low"]], [row["lift_ci_high"] - lift]],
            fmt="o", color="tab:red", capsize=3,
        )  # fmt: skip
        labels.append(
            f"{row['window']}\n{_duration(int(row['horizon']), tf)}\n{row['band_pct']:g}%"
        )
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xticks(np.arange(len(labels)), labels, fontsize=7)
    ax.set_ylabel("lift (hit rate / baseline)")
    ax.set_xlabel("window / horizon / band")
    ax.grid(alpha=0.3)
    ax.set_title("Lift with 95% block-bootstrap interval", fontsize=10)
    return _save(fig, path)


# ----------------------------------------------------------------------------- realised
def _realised_paths(args: argparse.Namespace) -> dict[str, Path]:
    if len(args.realised) != len(args.pairs):
        raise ValueError(
            f"--realised needs one CSV per pair: {len(args.pairs)} pair(s), "
            f"{len(args.realised)} file(s)"
        )
    return dict(zip(args.pairs, args.realised, strict=True))


_MEAN_KEYS = (
    "spearman_long", "spearman_short", "spearman_total", "spearman_mean",
    "baseline_spearman_long", "baseline_spearman_short", "baseline_spearman_total",
    "baseline_spearman_mean", "excursion_spearman_long", "excursion_spearman_short",
    "excursion_spearman_mean", "side_accuracy_large", "baseline_side_accuracy_large",
    "excursion_side_accuracy_large", "majority_side_share_large", "log10_scale", "log10_rmse",
    "log10_slope",
)  # fmt: skip


def _cmd_realised(args: argparse.Namespace) -> int:
    import numpy as np
    import pandas as pd

    from liqsignals.evaluate import evaluate_realised

    model = _model(args.model)
    files = _realised_paths(args)
    pad = model.window_td + pd.Timedelta(days=1)
    datadir = _datadir(args)
    per_pair: dict[str, dict[str, Any]] = {}
    bars: dict[str, pd.DataFrame] = {}
    for pair, csv in files.items():
        df, start, stop = _load(datadir, pair, args.timeframe, args.timerange, pad)
        _say(f"loaded {pair} {args.timeframe}: {len(df)} candles (with warm-up)")
        per_pair[pair], bars[pair] = evaluate_realised(df, csv, model, start=start, stop=stop)
    if len(per_pair) == 1:
        out: dict[str, Any] = dict(next(iter(per_pair.values())))
    else:
        out = {"n_bars": sum(m["n_bars"] for m in per_pair.values())}
        for k in _MEAN_KEYS:
            vals = [m[k] for m in per_pair.values() if m[k] is not None]
            out[k] = float(np.mean(vals)) if vals else None
        out["per_pair"] = per_pair
    out.update(
        pairs=list(args.pairs), timeframe=args.timeframe, timerange=args.timerange,
        model=args.model or "default", window=model.to_dict()["window"],
    )  # fmt: skip
    if args.report:
        out["report"] = str(_realised_report(per_pair, bars, args))
        _say(f"report written to {out['report']}")
    lines = []
    for pair, m in per_pair.items():
        lines.append(
            f"{pair} {args.timeframe}: {m['n_bars']} bars {m['first_bar'][:16]} .. "
            f"{m['last_bar'][:16]}\n"
            f"  Spearman long {_fmt(m['spearman_long'])} short {_fmt(m['spearman_short'])} "
            f"(baseline {_fmt(m['baseline_spearman_long'])} / "
            f"{_fmt(m['baseline_spearman_short'])}, excursion "
            f"{_fmt(m['excursion_spearman_long'])} / {_fmt(m['excursion_spearman_short'])})\n"
            f"  side accuracy on the {m['n_large']} largest bars {_fmt(m['side_accuracy_large'])} "
            f"(baseline {_fmt(m['baseline_side_accuracy_large'])}), log10 scale "
            f"{_fmt(m['log10_scale'], '+.2f')}"
        )
    _emit(args, out, "\n".join(lines))
    return 0


_REALISED_ROWS = (
    ("Spearman, long side", "spearman_long", "baseline_spearman_long", "excursion_spearman_long"),
    ("Spearman, short side", "spearman_short", "baseline_spearman_short",
     "excursion_spearman_short"),
    ("Spearman, total", "spearman_total", "baseline_spearman_total", None),
    ("side accuracy, largest 10% of bars", "side_accuracy_large",
     "baseline_side_accuracy_large", "excursion_side_accuracy_large"),
)  # fmt: skip


def _realised_table(m: Mapping[str, Any]) -> str:
    import pandas as pd

    rows = {
        label: {
            "model": m[a],
            "baseline abs(return) x volume": m[b],
            "excursion x volume": m[c] if c else None,
        }
        for label, a, b, c in _REALISED_ROWS
    }
    return _md_table(pd.DataFrame.from_dict(rows, orient="index"), index="")


def _realised_report(
    per_pair: Mapping[str, Mapping[str, Any]],
    bars: Mapping[str, pd.DataFrame],
    args: argparse.Namespace,
) -> Path:
    path = Path(args.report)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Estimated vs realised liquidations",
        "",
        f"Model `{args.model or 'default'}`, {args.timeframe} candles, timerange "
        f"`{args.timerange or 'all'}`. Per-candle estimates are summed into the realised bars "
        "(only bars whose candles are all present and past warm-up). Baselines: *abs(return) x "
        "volume* puts the bar's |return| x quote volume on the long side when it fell and on the "
        "short side when it rose; *excursion x volume* uses (open - low)/open x quote volume for "
        "longs and (high - open)/open x quote volume for shorts.",
        "",
    ]
    for pair, m in per_pair.items():
        lines += [
            f"## {pair}",
            "",
            f"{m['n_bars']} bars, {m['first_bar'][:16]} to {m['last_bar'][:16]} UTC; "
            f"{m['n_large']} large bars; the realised majority side of the large bars covers "
            f"{_fmt(m['majority_side_share_large'])} of them. Scale: median "
            f"log10(estimated / realised) = {_fmt(m['log10_scale'], '+.2f')}, RMS "
            f"{_fmt(m['log10_rmse'], '.2f')}.",
            "",
            _realised_table(m),
            "",
        ]
    pic = _plot_scatter(bars, path.with_name(f"{path.stem}_scatter.png"))
    lines += [f"![estimated vs realised]({pic.name})", ""]
    path.write_text("\n".join(lines))
    return path


def _plot_scatter(bars: Mapping[str, pd.DataFrame], path: Path) -> Path:
    from liqsignals.evaluate import spearman

    n = len(bars)
    fig = _figure(8.0, 3.8 * n)
    axes = fig.subplots(n, 2, squeeze=False)
    for r, (pair, b) in enumerate(bars.items()):
        for c, side in enumerate(("long", "short")):
            ax = axes[r][c]
            est = b[f"est_{side}"].to_numpy(float)
            real = b[f"real_{side}"].to_numpy(float)
            ok = (est > 0) & (real > 0)
            ax.scatter(real[ok], est[ok], s=6, alpha=0.5,
                       color="tab:red" if side == "long" else "tab:green")  # fmt: skip
            if ok.any():
                lo = min(real[ok].min(), est[ok].min())
                hi = max(real[ok].max(), est[ok].max())
                ax.plot([lo, hi], [lo, hi], "k--", lw=0.7, label="estimated = realised")
                ax.legend(fontsize=7, loc="upper left")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(f"realised {side} liquidations per bar (quote)")
            ax.set_ylabel(f"estimated {side} (quote)")
            ax.set_title(
                f"{pair} {side}s: Spearman {spearman(est, real):.3f} over {len(est)} bars "
                f"({int(ok.sum())} shown: both > 0)",
                fontsize=9,
            )
            ax.grid(alpha=0.3, which="both")
    return _save(fig, path)


# ----------------------------------------------------------------------------- calibrate
def _cmd_calibrate(args: argparse.Namespace) -> int:
    import pandas as pd

    from liqsignals.calibrate import calibrate, write_preset
    from liqsignals.data.datadir import parse_timerange

    model = _model(args.model)
    files = _realised_paths(args)
    tr, te = parse_timerange(args.train), parse_timerange(args.test)
    if tr.start is None or te.stop is None:
        raise ValueError("--train and --test need both ends (YYYYMMDD-YYYYMMDD)")
    span = f"{tr.start.strftime('%Y%m%d')}-{te.stop.strftime('%Y%m%dT%H%M')}"
    pad = pd.Timedelta(days=32)
    datadir = _datadir(args)
    candles = {}
    for pair in files:
        candles[pair], _, _ = _load(datadir, pair, args.timeframe, span, pad)
        _say(f"loaded {pair} {args.timeframe}: {len(candles[pair])} candles (with warm-up)")
    result = calibrate(
        candles, {p: str(f) for p, f in files.items()}, train=args.train, test=args.test,
        model=model, budget=args.budget, seed=args.seed, progress=_say,
    )  # fmt: skip
    if args.out:
        names = ", ".join(Path(f).name for f in files.values())
        result["preset"] = str(write_preset(result, args.out, realised_name=names))
        _say(f"preset written to {result['preset']}")
    out = {k: v for k, v in result.items() if k not in ("history", "model")}
    text = (
        f"calibrated on {result['train']} ({result['train_bars']}), {result['evaluations']} "
        f"evaluations in {result['seconds']} s\n"
        f"  params: {json.dumps(result['params'])}\n"
        f"  train score {_fmt(result['train_score'])} (start model "
        f"{_fmt(result['start_train_score'])})\n"
        f"  TEST {result['test']}: score {_fmt(result['test_score'])} (start model "
        f"{_fmt(result['start_test_score'])}, baseline {_fmt(result['baseline_test_score'])}, "
        f"excursion baseline {_fmt(result['excursion_test_score'])})"
    )
    _emit(args, out, text)
    return 0
