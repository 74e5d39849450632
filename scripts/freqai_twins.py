"""Backtest the FreqAI twins (LiqFreqAIExample, LiqFreqAIPriceOnly) offline and tabulate them.

Runs ``freqtrade backtesting -c config/futures.json -c config/futures-freqai-<twin>.json``
through the replay exchange for each twin (each in its own user_data folder), then reads the
exported trades (profit, drawdown, trades, fees, funding) and FreqAI's saved out-of-sample
predictions (``models/<identifier>/backtesting_predictions``), and scores them against the
realised target recomputed from the candles of the datadir. Writes ``table.md`` and
``results.json`` into ``--out``.

    python scripts/freqai_twins.py --datadir ../shared/data/binance \\
        --timerange 20240101-20250531 --out build/freqai-twins

``--twins liq`` runs only that twin (default: both; the other twin's folder in ``--out`` is
used by the report as it is). ``--report-only`` skips the backtests and tabulates what ``--out``
already holds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
TWINS = {"liq": "LiqFreqAIExample", "priceonly": "LiqFreqAIPriceOnly"}
PAIRS = {"btc": "BTC/USDT:USDT", "eth": "ETH/USDT:USDT"}


def overlay(twin: str) -> Path:
    return ROOT / "config" / f"futures-freqai-{twin}.json"


def run_twin(twin: str, datadir: Path, timerange: str, out: Path, extra: list[str]) -> float:
    from liqsignals.replay.offline import run_offline

    userdir = out / twin
    userdir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "freqtrade", "backtesting", "-c", str(ROOT / "config" / "futures.json"),
           "-c", str(overlay(twin)), *extra, "-c", "{overlay}", "--datadir", str(datadir),
           "--userdir", str(userdir), "--timerange", timerange, "--export", "trades",
           "--cache", "none"]  # fmt: skip
    start = time.monotonic()
    with open(userdir / "freqtrade.log", "w") as log:
        result = run_offline(cmd, datadir, cwd=ROOT, echo=True, stream=log)
    if result.returncode != 0:
        raise SystemExit(
            f"{twin}: freqtrade exited {result.returncode}; see {userdir}/freqtrade.log"
        )
    return time.monotonic() - start


def realised_target(datadir: Path, pair: str, candles: int) -> pd.Series:
    """The 4h signed excursion recomputed here from the candle file, by date."""
    name = pair.split("/")[0] + "_USDT_USDT-15m-futures.feather"
    df = pd.read_feather(datadir / "futures" / name).sort_values("date").reset_index(drop=True)
    high, low, close = (df[c].to_numpy(dtype=np.float64) for c in ("high", "low", "close"))
    n = len(df)
    up = np.full(n, np.nan)
    down = np.full(n, np.nan)
    for i in range(n - candles):  # candles i+1 .. i+candles
        up[i] = high[i + 1 : i + 1 + candles].max()
        down[i] = low[i + 1 : i + 1 + candles].min()
    value = (up - close) / close + (down - close) / close
    return pd.Series(value, index=pd.DatetimeIndex(df["date"]))


def predictions(userdir: Path, identifier: str, target: str) -> pd.DataFrame:
    folder = userdir / "models" / identifier / "backtesting_predictions"
    frames = []
    for path in sorted(folder.glob("cb_*_prediction.feather")):
        coin = path.name.split("_")[1]
        df = pd.read_feather(path)
        df["pair"] = PAIRS[coin]
        frames.append(df[["date", "pair", target, f"{target}_mean", "do_predict"]])
    if not frames:
        raise SystemExit(f"no saved predictions in {folder}")
    return pd.concat(frames).drop_duplicates(["pair", "date"], keep="last")


def trade_stats(userdir: Path, strategy: str) -> dict[str, Any]:
    from liqsignals.mainjob import load_latest_backtest

    stats = load_latest_backtest(userdir / "backtest_results")[strategy]
    trades = stats["trades"]
    fees = sum(
        t["amount"] * (t["open_rate"] * t["fee_open"] + t["close_rate"] * t["fee_close"])
        for t in trades
    )
    return {
        "start": stats["backtest_start"],
        "end": stats["backtest_end"],
        "trades": stats["total_trades"],
        "profit_pct": 100.0 * stats["profit_total"],
        "profit_abs": stats["profit_total_abs"],
        "max_drawdown_pct": 100.0 * stats["max_drawdown_account"],
        "fees": fees,
        "funding": sum(t.get("funding_fees") or 0.0 for t in trades),
        "win_pct": 100.0 * stats["wins"] / max(1, stats["total_trades"]),
        "long_trades": sum(1 for t in trades if not t["is_short"]),
    }


def scored(pred: pd.DataFrame, real: dict[str, pd.Series], target: str) -> pd.DataFrame:
    rows = []
    for pair, group in pred.groupby("pair", sort=True):
        r = real[pair].reindex(pd.DatetimeIndex(group["date"])).to_numpy()
        g = group.assign(realised=r)
        rows.append(g.sort_values("date"))
    out = pd.concat(rows)
    keep = (out["do_predict"] == 1) & np.isfinite(out["realised"]) & np.isfinite(out[target])
    return out[keep].rename(columns={target: "pred", f"{target}_mean": "train_mean"})


DAY = 96  # 15m candles a day: the bootstrap block of one pair


def _in_time_order(s: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Rows by date (pairs interleaved) and the block of one day of every pair in ``s``: the
    bootstrap then keeps both the serial dependence and the pairs' common moves together."""
    return s.sort_values(["date", "pair"], kind="stable"), DAY * int(s["pair"].nunique())


def quality(s: pd.DataFrame) -> dict[str, Any]:
    from liqsignals.analysis.intervals import paired_block_bootstrap

    s, block = _in_time_order(s)
    p, y, m = (s[c].to_numpy(dtype=np.float64) for c in ("pred", "realised", "train_mean"))
    zp = (p - p.mean()) / p.std()
    zy = (y - y.mean()) / y.std()
    corr = paired_block_bootstrap(zp * zy, block=block)
    r2 = 1.0 - np.sum((y - p) ** 2) / np.sum((y - m) ** 2)
    hit = np.mean(np.sign(p - m) == np.sign(y - m))
    return {
        "n": int(len(s)),
        "pearson": corr.estimate,
        "pearson_low": corr.low,
        "pearson_high": corr.high,
        "spearman": float(pd.Series(p).corr(pd.Series(y), method="spearman")),
        "r2_oos": float(r2),
        "hit_rate": float(hit),
    }


def paired(a: pd.DataFrame, b: pd.DataFrame) -> dict[str, Any]:
    """Liq minus price-only on the candles both predicted: squared-error gain, correlation."""
    from liqsignals.analysis.intervals import paired_block_bootstrap

    j, block = _in_time_order(a.merge(b, on=["pair", "date"], suffixes=("_a", "_b")))
    y = j["realised_a"].to_numpy(dtype=np.float64)
    zy = (y - y.mean()) / y.std()
    pa, pb = j["pred_a"].to_numpy(), j["pred_b"].to_numpy()
    za, zb = (pa - pa.mean()) / pa.std(), (pb - pb.mean()) / pb.std()
    corr = paired_block_bootstrap(za * zy, zb * zy, block=block)
    se = paired_block_bootstrap((y - pb) ** 2, (y - pa) ** 2, block=block)  # > 0: liq better
    return {
        "n": int(len(j)),
        "block": block,
        "pearson_diff": corr.estimate,
        "pearson_diff_low": corr.low,
        "pearson_diff_high": corr.high,
        "mse_gain": se.estimate,
        "mse_gain_low": se.low,
        "mse_gain_high": se.high,
        "mse_price_only": float(np.mean((y - pb) ** 2)),
    }


def report(out: Path, datadir: Path, runtimes: dict[str, float]) -> dict[str, Any]:
    """Trade statistics (``None`` for a twin whose backtest has not finished) and prediction
    quality from whatever predictions FreqAI saved, pooled and per pair; the paired liq minus
    price-only comparison on the candles both predicted, both pairs pooled (the registered
    primary) and per pair."""
    cfg = json.loads(overlay("liq").read_text())
    candles = int(cfg["freqai"]["feature_parameters"]["label_period_candles"])
    real = {pair: realised_target(datadir, pair, candles) for pair in PAIRS.values()}
    results: dict[str, Any] = {"twins": {}, "liq_minus_priceonly": {}}
    scores = {}
    for twin, strategy in TWINS.items():
        ident = json.loads(overlay(twin).read_text())["freqai"]["identifier"]
        s = scored(predictions(out / twin, ident, "&-excursion"), real, "&-excursion")
        scores[twin] = s
        try:
            trades: dict[str, Any] | None = trade_stats(out / twin, strategy)
        except (FileNotFoundError, KeyError):
            trades = None
        results["twins"][strategy] = {
            "backtest": trades,
            "predictions": {
                "all": quality(s),
                **{pair: quality(g) for pair, g in s.groupby("pair")},
            },
            "prediction_span": [str(s["date"].min()), str(s["date"].max())],
            "runtime_s": runtimes.get(twin),
        }
    # the registered primary: both pairs pooled, on the candles both twins predicted
    results["liq_minus_priceonly"]["BTC + ETH"] = paired(scores["liq"], scores["priceonly"])
    for pair in PAIRS.values():
        a = scores["liq"][scores["liq"]["pair"] == pair]
        b = scores["priceonly"][scores["priceonly"]["pair"] == pair]
        if len(a) and len(b):
            results["liq_minus_priceonly"][pair] = paired(a, b)
    return results


def _cell(value: Any, fmt: str) -> str:
    return "not finished" if value is None else format(value, fmt)


def markdown(results: dict[str, Any]) -> str:
    head = ("| strategy | predictions of | n | Pearson r [95 %] | Spearman | R² oos | hit rate | "
            "trades | profit % | max drawdown % | fees USDT | funding USDT |")  # fmt: skip
    lines = [head, "|" + "---|" * 12]
    for name, r in results["twins"].items():
        bt = r["backtest"] or {}
        for key, q in r["predictions"].items():
            what = "BTC + ETH" if key == "all" else key.split("/")[0]
            lines.append(
                f"| {name} | {what} | {q['n']} | {q['pearson']:.3f} [{q['pearson_low']:.3f}, "
                f"{q['pearson_high']:.3f}] | {q['spearman']:.3f} | {q['r2_oos']:.3f} | "
                f"{q['hit_rate']:.3f} | "
                + " | ".join(
                    _cell(bt.get(k) if key == "all" else None, f)
                    if key == "all" else ""
                    for k, f in (("trades", "d"), ("profit_pct", ".2f"),
                                 ("max_drawdown_pct", ".2f"), ("fees", ".2f"),
                                 ("funding", ".2f"))
                )
                + " |"
            )  # fmt: skip
    lines.append("")
    for pair, d in results["liq_minus_priceonly"].items():
        lines.append(
            f"- {pair.split('/')[0]}, liq minus price-only on the {d['n']} candles both predicted "
            f"(bootstrap blocks of {d['block']} rows = 1 day): "
            f"Pearson r {d['pearson_diff']:+.3f} [{d['pearson_diff_low']:+.3f}, "
            f"{d['pearson_diff_high']:+.3f}], mean squared error reduction {d['mse_gain']:+.2e} "
            f"[{d['mse_gain_low']:+.2e}, {d['mse_gain_high']:+.2e}] (price-only MSE "
            f"{d['mse_price_only']:.2e})."
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datadir", type=Path, required=True, help="exchange folder (…/binance)")
    parser.add_argument("--timerange", default="20240101-20250531")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument(
        "--twins",
        default=",".join(TWINS),
        help=f"comma-separated twins to backtest (default: all of {','.join(TWINS)})",
    )
    parser.add_argument("--parallel", action="store_true", help="both twins at once")
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        type=Path,
        help="one more config overlay for both twins (e.g. shorter periods)",
    )
    args = parser.parse_args(argv)
    run = [t.strip() for t in args.twins.split(",") if t.strip()]
    unknown = [t for t in run if t not in TWINS]
    if unknown or not run or len(set(run)) != len(run):
        parser.error(f"--twins: give distinct names from {sorted(TWINS)}, got {args.twins!r}")
    from liqsignals.fileio import atomic_write_text

    datadir = args.datadir.resolve()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    runtimes: dict[str, float] = {}
    if (out / "runtimes.json").exists():
        runtimes = json.loads((out / "runtimes.json").read_text())
    if not args.report_only:
        with ThreadPoolExecutor(max_workers=2 if args.parallel else 1) as pool:
            extra = [a for c in args.config for a in ("-c", str(c.resolve()))]
            jobs = {t: pool.submit(run_twin, t, datadir, args.timerange, out, extra) for t in run}
            runtimes.update({t: j.result() for t, j in jobs.items()})
        atomic_write_text(out / "runtimes.json", json.dumps(runtimes))
    results = report(out, datadir, runtimes)
    atomic_write_text(out / "results.json", json.dumps(results, indent=2, default=float))
    table = markdown(results)
    atomic_write_text(out / "table.md", table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
