"""The walk-forward report: per-fold tables, the stitched out-of-sample equity curve and the
totals with moving-block bootstrap intervals, for the tuned and for the default parameters.

Each fold's test backtest starts from freqtrade's dry-run wallet; the stitched curve is that
wallet plus the running sum of every test trade's profit (quote currency, fees and funding
included), fold after fold. Intervals: the daily profit over all test days (0 on days without a
closed trade) goes through :func:`liqsignals.analysis.intervals.paired_block_bootstrap` (blocks
of :data:`BLOCK_DAYS` days); the interval of the mean day times the number of days is the
interval of the total. The tuned-minus-default interval pairs the same days.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from liqsignals.walkforward.folds import Fold

__all__ = ["BLOCK_DAYS", "VARIANTS", "WalkForwardReport", "build_report", "write_report"]

BLOCK_DAYS = 7
VARIANTS = ("tuned", "default")
#: fields that differ between two runs of the same tasks (wall time, machine)
TIMING_FIELDS = ("seconds", "host", "ray_node")


def _strip(row: dict[str, Any], timing: bool) -> dict[str, Any]:
    return {k: v for k, v in row.items() if timing or k not in TIMING_FIELDS}


@dataclass
class WalkForwardReport:
    """Everything the report shows; :meth:`to_dict` is the JSON file."""

    strategy: str
    pairs: list[str]
    timeframe: str
    timerange: str
    folds: list[Fold]
    settings: dict[str, Any]
    hyperopt: list[dict[str, Any]]
    backtests: dict[str, list[dict[str, Any]]]  # variant -> one result per fold, in fold order
    totals: dict[str, dict[str, Any]]
    difference: dict[str, Any]
    command: str = ""
    wall_seconds: float = 0.0
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)

    def to_dict(self, timing: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "strategy": self.strategy,
            "pairs": self.pairs,
            "timeframe": self.timeframe,
            "timerange": self.timerange,
            "folds": [f.to_dict() for f in self.folds],
            "settings": self.settings,
            "hyperopt": [_strip(r, timing) for r in self.hyperopt],
            "backtests": {
                v: [_strip(r, timing) for r in rows] for v, rows in self.backtests.items()
            },
            "totals": self.totals,
            "tuned_minus_default": self.difference,
            "command": self.command,
        }
        if timing:
            out["wall_seconds"] = self.wall_seconds
        return out


def _test_days(folds: Sequence[Fold]) -> list[datetime]:
    days = []
    for f in folds:
        d = f.test_start
        while d < f.test_stop:
            days.append(d)
            d += timedelta(days=1)
    return days


def _daily(folds: Sequence[Fold], rows: Sequence[dict[str, Any]]) -> list[float]:
    """Profit per test day (close day of each trade; a trade closed after its fold's last day,
    which freqtrade's end-of-data exit does not do, counts on that last day)."""
    days = _test_days(folds)
    index = {d: i for i, d in enumerate(days)}
    out = [0.0] * len(days)
    for fold, row in zip(folds, rows, strict=True):
        last = fold.test_stop - timedelta(days=1)
        for t in row["trade_list"]:
            ts = datetime.fromtimestamp(t["close_timestamp"] / 1000, UTC)
            day = ts.replace(hour=0, minute=0, second=0, microsecond=0)
            out[index.get(day, index[last])] += t["profit_abs"]
    return out


def _interval(daily: Sequence[float], b: Sequence[float] | None, scale: float) -> dict[str, Any]:
    from liqsignals.analysis.intervals import paired_block_bootstrap

    n = len(daily)
    iv = paired_block_bootstrap(daily, b, block=BLOCK_DAYS, resamples=4000, seed=0)
    return {
        "estimate": iv.estimate * n,
        "low": iv.low * n,
        "high": iv.high * n,
        "estimate_pct": 100 * iv.estimate * n / scale,
        "low_pct": 100 * iv.low * n / scale,
        "high_pct": 100 * iv.high * n / scale,
        "p_value_le_0": iv.p_value,
        "confidence": iv.confidence,
        "block_days": iv.block,
        "days": n,
        "resamples": iv.resamples,
    }


def _curve(rows: Sequence[dict[str, Any]], start: float) -> list[tuple[int, float]]:
    points = []
    equity = start
    for row in rows:
        for t in row["trade_list"]:
            equity += t["profit_abs"]
            points.append((int(t["close_timestamp"]), equity))
    return points


def _max_drawdown(points: Sequence[tuple[int, float]], start: float) -> float:
    peak, worst = start, 0.0
    for _, eq in points:
        peak = max(peak, eq)
        worst = max(worst, (peak - eq) / peak if peak > 0 else 0.0)
    return worst


def build_report(
    *,
    strategy: str,
    pairs: Sequence[str],
    timeframe: str,
    timerange: str,
    folds: Sequence[Fold],
    settings: dict[str, Any],
    hyperopt: Sequence[dict[str, Any]],
    backtests: Sequence[dict[str, Any]],
) -> WalkForwardReport:
    """Collect the task results (in any order) into a report."""
    hyper = sorted(hyperopt, key=lambda r: (r["fold"], r["random_state"]))
    by_variant: dict[str, list[dict[str, Any]]] = {}
    for variant in VARIANTS:
        found = {r["fold"]: r for r in backtests if r["variant"] == variant}
        missing = [f.index for f in folds if f.index not in found]
        if missing:
            raise ValueError(f"no {variant} backtest for folds {missing}")
        by_variant[variant] = [found[f.index] for f in folds]
    start = float(by_variant["default"][0]["starting_balance"])
    totals: dict[str, dict[str, Any]] = {}
    curves: dict[str, list[tuple[int, float]]] = {}
    daily: dict[str, list[float]] = {}
    for variant, rows in by_variant.items():
        curves[variant] = _curve(rows, start)
        daily[variant] = _daily(folds, rows)
        profit = sum(r["profit_abs"] for r in rows)
        totals[variant] = {
            "trades": sum(r["trades"] for r in rows),
            "profit_abs": profit,
            "profit_pct": 100 * profit / start,
            "fees": sum(r["fees"] for r in rows),
            "funding": sum(r["funding"] for r in rows),
            "max_drawdown_stitched": _max_drawdown(curves[variant], start),
            "starting_balance": start,
            "interval": _interval(daily[variant], None, start),
        }
    difference = _interval(daily["tuned"], daily["default"], start)
    return WalkForwardReport(
        strategy, list(pairs), timeframe, timerange, list(folds), settings, hyper, by_variant,
        totals, difference, curves=curves,
    )  # fmt: skip


# ----------------------------------------------------------------------------- writing
def _pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def _money(x: float) -> str:
    return f"{x:.2f}"


def _params(params: dict[str, dict[str, Any]] | None) -> str:
    if not params:
        return "defaults"
    flat = {k: v for space in params.values() for k, v in space.items()}
    return ", ".join(f"{k}={v}" for k, v in sorted(flat.items()))


def _span(a: datetime, b: datetime) -> str:
    return f"{a:%Y-%m-%d} → {(b - timedelta(days=1)):%Y-%m-%d}"


def _iv(iv: dict[str, Any]) -> str:
    return (
        f"{iv['estimate']:.2f} [{iv['low']:.2f}, {iv['high']:.2f}] "
        f"({iv['estimate_pct']:.2f} % [{iv['low_pct']:.2f} %, {iv['high_pct']:.2f} %])"
    )


def markdown(report: WalkForwardReport, png_name: str = "equity.png", level: int = 1) -> str:
    """The report as markdown (headings start at ``level``)."""
    h = "#" * level
    s = report.settings
    cur = s.get("stake_currency", "USDT")
    lines = [
        f"{h} Walk-forward: {report.strategy}",
        "",
        f"Pairs {', '.join(report.pairs)}, {report.timeframe} candles, {report.timerange}, "
        f"{len(report.folds)} folds (training {100 * s['train_fraction']:.0f} % of each fold, "
        f"then its test span). Hyperopt: `--spaces {' '.join(s['spaces'])} --hyperopt-loss "
        f"{s['loss']} -e {s['epochs']} -j 1 --random-state R` for R in "
        f"{s['random_states']}, on the training span only; the lowest loss is kept. Costs: "
        f"{s['fee_note']}; {s['funding_note']}; {s['slippage_note']}. "
        f"Wallet {report.totals['default']['starting_balance']:.0f} {cur} per test span.",
        "",
    ]
    if report.command:
        lines += ["```", report.command, "```", ""]
    for variant in VARIANTS:
        title = "tuned on the training span" if variant == "tuned" else "default parameters"
        lines += [
            f"{h}# Test spans, {title}",
            "",
            "| fold | training | test | parameters | trades | profit | profit % | max drawdown "
            f"| fees ({cur}) | funding ({cur}) |",
            "|---:|---|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for fold, row in zip(report.folds, report.backtests[variant], strict=True):
            params = row.get("params") if variant == "tuned" else None
            lines.append(
                f"| {fold.index} | {_span(fold.train_start, fold.train_stop)} | "
                f"{_span(fold.test_start, fold.test_stop)} | {_params(params)} | {row['trades']} | "
                f"{_money(row['profit_abs'])} | {_pct(row['profit_total'])} | "
                f"{_pct(row['max_drawdown_account'])} | {_money(row['fees'])} | "
                f"{_money(row['funding'])} |"
            )
        lines.append("")
    lines += [
        f"{h}# Totals over all test spans",
        "",
        f"Total profit in {cur} with a {100 * report.difference['confidence']:.0f} % moving-block "
        f"bootstrap interval (daily profit, blocks of {BLOCK_DAYS} days, "
        f"{report.difference['days']} test days), in brackets as % of the wallet.",
        "",
        "| parameters | trades | total profit [interval] | p (total <= 0) | max drawdown "
        f"(stitched) | fees ({cur}) | funding ({cur}) |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for variant in VARIANTS:
        t = report.totals[variant]
        lines.append(
            f"| {variant} | {t['trades']} | {_iv(t['interval'])} | "
            f"{t['interval']['p_value_le_0']:.3f} | {_pct(t['max_drawdown_stitched'])} | "
            f"{_money(t['fees'])} | {_money(t['funding'])} |"
        )
    d = report.difference
    lines += [
        f"| tuned − default | | {_iv(d)} | {d['p_value_le_0']:.3f} | | | |",
        "",
        f"![stitched out-of-sample equity]({png_name})",
        "",
        f"{h}# Hyperopt tasks",
        "",
        "| fold | random state | training timerange | data seen | epochs | best epoch | loss "
        "| training trades | training profit |",
        "|---:|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in report.hyperopt:
        lines.append(
            f"| {r['fold']} | {r['random_state']} | {r['timerange']} | {r['data_start']} → "
            f"{r['data_end']} | {r['epochs_run']} | {r['epoch']} | {r['loss']:.4f} | "
            f"{r['train_trades']} | {_pct(r['train_profit_total'])} |"
        )
    if report.wall_seconds:
        lines += ["", f"Wall time {report.wall_seconds / 60:.1f} minutes ({s['executor']})."]
    return "\n".join(lines) + "\n"


def _plot(report: WalkForwardReport, path: Path) -> None:
    from liqsignals.extras import require
    from liqsignals.fileio import atomic_path

    mpl = require("matplotlib", "the walk-forward equity picture")
    mpl.use("Agg")
    plt = require("matplotlib.pyplot")
    fig, ax = plt.subplots(figsize=(10, 4.5), dpi=110)
    start = report.totals["default"]["starting_balance"]
    for fold in report.folds:
        ax.axvspan(fold.test_start, fold.test_stop, color="0.92", lw=0)
    for variant, colour in zip(VARIANTS, ("tab:blue", "tab:orange"), strict=True):
        pts = report.curves.get(variant, [])
        xs = [report.folds[0].test_start] + [datetime.fromtimestamp(t / 1000, UTC) for t, _ in pts]
        ys = [start] + [eq for _, eq in pts]
        xs.append(report.folds[-1].test_stop)
        ys.append(ys[-1])
        ax.step(xs, ys, where="post", color=colour, label=f"{variant} parameters")
    ax.axhline(start, color="0.5", lw=0.8, ls=":")
    ax.set_title(f"{report.strategy}: stitched out-of-sample equity (test spans shaded)")
    ax.set_ylabel(report.settings.get("stake_currency", "USDT"))
    ax.legend(loc="best")
    fig.autofmt_xdate()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def write_report(report: WalkForwardReport, out: Path) -> dict[str, Path]:
    """``out/report.md``, ``out/walkforward.json`` and ``out/equity.png``, each atomically."""
    from liqsignals.fileio import atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    paths = {"md": out / "report.md", "json": out / "walkforward.json", "png": out / "equity.png"}
    _plot(report, paths["png"])
    atomic_write_text(paths["json"], json.dumps(report.to_dict(), indent=1, default=_json) + "\n")
    atomic_write_text(paths["md"], markdown(report, paths["png"].name))
    return paths


def _json(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
