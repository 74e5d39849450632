"""Reports of the evaluations: markdown tables and prose, PNG figures, and the one-screen text
summaries ``liqsignals evaluate`` and ``liqsignals calibrate`` print without ``--json``.

The numbers come from the result objects of :mod:`liqsignals.evaluate`
(:class:`~liqsignals.evaluate.MagnetEvaluation`, :class:`~liqsignals.evaluate.RealisedEvaluation`)
and :mod:`liqsignals.calibrate` (:class:`~liqsignals.calibrate.CalibrationResult`); this module
only formats them. Files are written through :mod:`liqsignals.fileio` (atomic replace).
matplotlib is imported only when a figure is drawn.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from liqsignals.evaluate import duration_text, spearman
from liqsignals.fileio import atomic_path, atomic_write_text

if TYPE_CHECKING:
    import pandas as pd

    from liqsignals.calibrate import CalibrationResult
    from liqsignals.evaluate import MagnetEvaluation, RealisedEvaluation

__all__ = [
    "calibration_text",
    "fmt",
    "magnet_text",
    "md_table",
    "realised_baseline_text",
    "realised_text",
    "write_magnet_report",
    "write_realised_report",
]


# ----------------------------------------------------------------------------- formatting
def fmt(v: Any, spec: str = ".3f") -> str:
    """A number for a table or a summary line: ``-`` for None/NaN, thousands separators for
    integers, ``spec`` for floats."""
    import numpy as np

    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if (isinstance(v, int | np.integer) and not isinstance(v, bool)) or spec == "d":
        return f"{int(v):,}"
    if isinstance(v, float | np.floating):
        return format(float(v), spec)
    return str(v)


def md_table(df: pd.DataFrame, formats: Mapping[str, str] | None = None, index: str = "") -> str:
    """A markdown table of ``df`` (index first, headed ``index``); ``formats``: column ->
    format spec for :func:`fmt` (default ``.3f``)."""
    formats = formats or {}
    cols = list(df.columns)
    head = ([index] if index is not None else []) + cols
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for idx, row in df.iterrows():
        cells = [str(idx) if not isinstance(idx, tuple) else " / ".join(map(str, idx))]
        cells += [fmt(row[c], formats.get(c, ".3f")) for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- magnets
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
    return md_table(df[_RATE_COLS], _RATE_FMT, index="group")


def write_magnet_report(evaluation: MagnetEvaluation, path: str | Path) -> Path:
    """Markdown tables of a magnet evaluation at ``path``, with PNG plots beside it
    (``<stem>_distance.png``, ``<stem>_grid.png``); returns ``path``."""
    import pandas as pd

    path = Path(path)
    study = evaluation.study
    tf = evaluation.timeframe
    s = study.settings
    h = s["horizon"]
    lines = [
        "# Magnet test: do estimated liquidation clusters attract price?",
        "",
        f"Pairs {', '.join(s['pairs'])}, {tf} candles, samples {s['first_sample']} to "
        f"{s['last_sample']} (timerange `{evaluation.timerange or 'all'}`; earlier candles only warm the "
        f"engine up). Model window {s['window']}, target rule `{s['rule']}`, band "
        f"{s['band_pct']:g}% of price, horizon {h} candles ({duration_text(h, tf)}), one sample every "
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
            f"{w} / {duration_text(int(hh), tf)} / {b:g}%"
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
            f"{h} candles ({duration_text(h, tf)}), in quote currency (USDT). *guide* is what the "
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
            lines += [f"### {pair}", "", md_table(tab[cols], fm, index="intensity"), ""]
    atomic_write_text(path, "\n".join(lines))
    return path


# ----------------------------------------------------------------------------- figures
def _figure(w: float, h: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), dpi=110, layout="constrained")


def _save(fig: Any, path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
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
            f"{row['window']}\n{duration_text(int(row['horizon']), tf)}\n{row['band_pct']:g}%"
        )
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xticks(np.arange(len(labels)), labels, fontsize=7)
    ax.set_ylabel("lift (hit rate / baseline)")
    ax.set_xlabel("window / horizon / band")
    ax.grid(alpha=0.3)
    ax.set_title("Lift with 95% block-bootstrap interval", fontsize=10)
    return _save(fig, path)


# ----------------------------------------------------------------------------- realised
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
    return md_table(pd.DataFrame.from_dict(rows, orient="index"), index="")


def write_realised_report(evaluation: RealisedEvaluation, path: str | Path) -> Path:
    """Markdown tables of an estimated-vs-realised evaluation at ``path``, with a scatter plot
    beside it (``<stem>_scatter.png``); returns ``path``."""
    path = Path(path)
    per_pair, bars = evaluation.per_pair, evaluation.bars
    lines = [
        "# Estimated vs realised liquidations",
        "",
        f"Model `{evaluation.model}`, {evaluation.timeframe} candles, timerange "
        f"`{evaluation.timerange or 'all'}`. Per-candle estimates are summed into the realised bars "
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
            f"{fmt(m['majority_side_share_large'])} of them. Scale: median "
            f"log10(estimated / realised) = {fmt(m['log10_scale'], '+.2f')}, RMS "
            f"{fmt(m['log10_rmse'], '.2f')}.",
            "",
            _realised_table(m),
            "",
        ]
    pic = _plot_scatter(bars, path.with_name(f"{path.stem}_scatter.png"))
    lines += [f"![estimated vs realised]({pic.name})", ""]
    atomic_write_text(path, "\n".join(lines))
    return path


def _plot_scatter(bars: Mapping[str, pd.DataFrame], path: Path) -> Path:
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


# ----------------------------------------------------------------------------- summaries
def magnet_text(evaluation: MagnetEvaluation) -> str:
    """The three-line summary of ``liqsignals evaluate magnets``."""
    out = evaluation.to_dict()
    s = evaluation.study.settings
    return (
        f"magnet test {', '.join(evaluation.pairs)} {evaluation.timeframe} window "
        f"{out['window']} horizon {out['horizon']} candles ({out['horizon_duration']}) band "
        f"{s['band_pct']:g}% rule {s['rule']}\n"
        f"  samples {out['n']}, cluster hit rate {fmt(out['hit_rate'])}, baseline "
        f"{fmt(out['baseline_hit_rate'])}, mirror {fmt(out['mirror_hit_rate'])}\n"
        f"  lift {fmt(out['lift'])} (95% CI {fmt(out['lift_ci_low'])} .. "
        f"{fmt(out['lift_ci_high'])}), lift vs mirror {fmt(out['lift_vs_mirror'])}"
    )


def realised_text(evaluation: RealisedEvaluation) -> str:
    """Three lines per pair: the summary of ``liqsignals evaluate realised``."""
    lines = []
    for pair, m in evaluation.per_pair.items():
        lines.append(
            f"{pair} {evaluation.timeframe}: {m['n_bars']} bars {m['first_bar'][:16]} .. "
            f"{m['last_bar'][:16]}\n"
            f"  Spearman long {fmt(m['spearman_long'])} short {fmt(m['spearman_short'])} "
            f"(baseline {fmt(m['baseline_spearman_long'])} / "
            f"{fmt(m['baseline_spearman_short'])}, excursion "
            f"{fmt(m['excursion_spearman_long'])} / {fmt(m['excursion_spearman_short'])})\n"
            f"  side accuracy on the {m['n_large']} largest bars {fmt(m['side_accuracy_large'])} "
            f"(baseline {fmt(m['baseline_side_accuracy_large'])}), log10 scale "
            f"{fmt(m['log10_scale'], '+.2f')}"
        )
        if "fitted_baseline_spearman_long" in m:
            lines.append(realised_baseline_text(m))
    return "\n".join(lines)


def realised_baseline_text(m: Mapping[str, Any]) -> str:
    """Lines of the fitted-baseline comparison (``evaluate realised --train``) for one pair."""

    def diff(name: str) -> str:
        return (
            f"{fmt(m[name], '+.3f')} [{fmt(m[name + '_ci_low'], '+.3f')}, "
            f"{fmt(m[name + '_ci_high'], '+.3f')}]"
        )

    return (
        f"  fitted baseline (on {m['n_train_bars']} training bars) Spearman long "
        f"{fmt(m['fitted_baseline_spearman_long'])} short {fmt(m['fitted_baseline_spearman_short'])}"
        f", path excursion {fmt(m['path_baseline_spearman_long'])} / "
        f"{fmt(m['path_baseline_spearman_short'])}\n"
        f"  model minus fitted: long {diff('diff_vs_fitted_long')} short "
        f"{diff('diff_vs_fitted_short')}; minus path: long {diff('diff_vs_path_long')} short "
        f"{diff('diff_vs_path_short')}\n"
        f"  long share on the {m['n_busy_bars']} busier bars: model "
        f"{fmt(m['long_share_spearman'])}, excursion {fmt(m['excursion_long_share_spearman'])}, "
        f"fitted {fmt(m['fitted_long_share_spearman'])}; model minus fitted "
        f"{diff('diff_share_vs_fitted')}, minus excursion {diff('diff_share_vs_excursion')}"
    )


def calibration_text(result: CalibrationResult) -> str:
    """The summary of ``liqsignals calibrate``."""
    r = result
    return (
        f"calibrated on {r.train} ({r.train_bars}), {r.evaluations} "
        f"evaluations in {r.seconds} s\n"
        f"  params: {json.dumps(r.params)}\n"
        f"  train score {fmt(r.train_score)} (start model {fmt(r.start_train_score)})\n"
        f"  TEST {r.test}: score {fmt(r.test_score)} (start model "
        f"{fmt(r.start_test_score)}, baseline {fmt(r.baseline_test_score)}, "
        f"excursion baseline {fmt(r.excursion_test_score)})"
    )
