"""The unit of work of a walk-forward run: one freqtrade hyperopt or backtest, run offline.

A task gets everything it reads in a :class:`Payload` (data files, strategy sources, the
freqtrade config, as bytes; on Ray through the object store), writes them into its own
temporary folder, starts its own replay exchange on a free loopback port
(:func:`liqsignals.replay.offline.run_offline`), runs freqtrade there with its own ``userdir``
and returns plain numbers. Nothing is read from or written to the driver's working directory,
so a worker on another machine needs only this package and freqtrade installed.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_LOSS",
    "BacktestTask",
    "HyperoptTask",
    "Payload",
    "TaskFailed",
    "build_payload",
    "run_task",
]

#: freqtrade's loss for the hyperopt tasks unless another is given
DEFAULT_LOSS = "SharpeHyperOptLossDaily"


class TaskFailed(RuntimeError):
    """freqtrade failed inside a task; the message holds the end of its output."""


@dataclass(frozen=True)
class Payload:
    """What every task of one run reads: ``files`` maps a path relative to the task's folder
    (``data/futures/...``, ``strategies/S.py``, ``config.json``) to its bytes."""

    strategy: str
    pairs: tuple[str, ...]
    timeframe: str
    files: Mapping[str, bytes] = field(repr=False)


@dataclass(frozen=True)
class HyperoptTask:
    """``freqtrade hyperopt`` on a fold's training span with one random state, ``-j 1``."""

    fold: int
    random_state: int
    timerange: str
    epochs: int
    loss: str = DEFAULT_LOSS
    spaces: tuple[str, ...] = ("buy", "sell")

    @property
    def name(self) -> str:
        return f"hyperopt fold {self.fold} random-state {self.random_state}"


@dataclass(frozen=True)
class BacktestTask:
    """``freqtrade backtesting`` on a fold's test span, with the tuned parameters (grouped by
    space, as freqtrade's parameter file holds them) or with the defaults (``params=None``)."""

    fold: int
    variant: str  # "tuned" or "default"
    timerange: str
    params: Mapping[str, Mapping[str, Any]] | None = None

    @property
    def name(self) -> str:
        return f"backtest fold {self.fold} {self.variant}"


def _pair_file_prefix(pair: str) -> str:
    return pair.replace("/", "_").replace(":", "_") + "-"


def build_payload(
    *,
    datadir: Path,
    strategy: str,
    strategy_path: Path,
    config: Path,
    pairs: tuple[str, ...],
    timeframe: str,
) -> Payload:
    """Read the pairs' files of ``datadir/futures`` (candles, mark, funding), the strategy
    folder's ``*.py`` files (never a parameter ``*.json`` next to them) and the config."""
    files: dict[str, bytes] = {}
    futures = datadir / "futures"
    prefixes = tuple(_pair_file_prefix(p) for p in pairs)
    for path in sorted(futures.glob("*.feather")):
        if path.name.startswith(prefixes):
            files[f"data/futures/{path.name}"] = path.read_bytes()
    for path in sorted(strategy_path.glob("*.py")):
        files[f"strategies/{path.name}"] = path.read_bytes()
    files["config.json"] = config.read_bytes()
    return Payload(strategy, tuple(pairs), timeframe, files)


def _materialise(payload: Payload, root: Path) -> None:
    for rel, data in payload.files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    (root / "user_data").mkdir()


def _freqtrade(payload: Payload, root: Path, command: str, args: list[str]) -> str:
    from liqsignals.replay.offline import run_offline

    argv = [
        sys.executable, "-m", "freqtrade", command,
        "-c", str(root / "config.json"), "-c", "{overlay}",
        "--strategy-path", str(root / "strategies"), "-s", payload.strategy,
        "--datadir", str(root / "data"), "--userdir", str(root / "user_data"),
        "--timeframe", payload.timeframe, "-p", *payload.pairs, *args,
    ]  # fmt: skip
    env = {"HOME": str(root), "PYTHONHASHSEED": "0"}
    res = run_offline(argv, root / "data", cwd=root, env=env, echo=False)
    if res.returncode != 0:
        raise TaskFailed(f"freqtrade {command} exited with {res.returncode}:\n{res.output[-3000:]}")
    return res.output


def _hyperopt(payload: Payload, task: HyperoptTask, root: Path) -> dict[str, Any]:
    output = _freqtrade(
        payload, root, "hyperopt",
        ["--timerange", task.timerange, "--spaces", *task.spaces, "--hyperopt-loss", task.loss,
         "-e", str(task.epochs), "-j", "1", "--random-state", str(task.random_state),
         "--disable-param-export"],
    )  # fmt: skip
    results = root / "user_data" / "hyperopt_results"
    pointer = results / ".last_result.json"
    if not pointer.is_file():
        raise TaskFailed(f"{task.name}: freqtrade wrote no hyperopt results:\n{output[-3000:]}")
    epochs = []
    with (results / json.loads(pointer.read_text())["latest_hyperopt"]).open() as fh:
        epochs = [json.loads(line) for line in fh if line.strip()]
    if not epochs:
        raise TaskFailed(f"{task.name}: the hyperopt results file holds no epochs")
    # the best epoch: lowest loss, the earliest one on a tie (what freqtrade marks best)
    best = min(epochs, key=lambda e: (float(e["loss"]), int(e["current_epoch"])))
    metrics = best.get("results_metrics") or {}
    return {
        "loss": float(best["loss"]),
        "epoch": int(best["current_epoch"]),
        "epochs_run": len(epochs),
        "params": {k: dict(v) for k, v in best["params_details"].items() if k in task.spaces},
        "train_trades": int(metrics.get("total_trades", 0)),
        "train_profit_total": float(metrics.get("profit_total", 0.0)),
        "data_start": str(metrics.get("backtest_start", "")),
        "data_end": str(metrics.get("backtest_end", "")),
    }


def _trade_costs(trade: Mapping[str, Any]) -> tuple[float, float]:
    """Fees paid (quote) and funding received (quote, negative when paid) of one trade."""
    amount = float(trade["amount"])
    fee = amount * (
        float(trade["open_rate"]) * float(trade.get("fee_open") or 0.0)
        + float(trade["close_rate"]) * float(trade.get("fee_close") or 0.0)
    )
    return fee, float(trade.get("funding_fees") or 0.0)


_PARAM_LINE = re.compile(r"Strategy Parameter(\(default\))?: (\w+) = (\S+)")


def _used_parameters(output: str) -> dict[str, str]:
    """``name -> value`` (as freqtrade logged it) of the parameters a backtest ran with; a
    value from the strategy's defaults is marked ``default:value``."""
    used = {}
    for match in _PARAM_LINE.finditer(output):
        default, name, value = match.groups()
        used[name] = f"default:{value}" if default else value
    return used


def _backtest(payload: Payload, task: BacktestTask, root: Path) -> dict[str, Any]:
    if task.params is not None:
        doc = {"strategy_name": payload.strategy, "params": task.params, "ft_stratparam_v": 1}
        (root / "strategies" / f"{payload.strategy}.json").write_text(json.dumps(doc))
    output = _freqtrade(
        payload, root, "backtesting",
        ["--timerange", task.timerange, "--export", "trades", "--cache", "none"],
    )  # fmt: skip
    results = root / "user_data" / "backtest_results"
    pointer = results / ".last_result.json"
    if not pointer.is_file():
        raise TaskFailed(f"{task.name}: freqtrade exported no backtest results:\n{output[-3000:]}")
    latest = results / json.loads(pointer.read_text())["latest_backtest"]
    with zipfile.ZipFile(latest) as zf:
        stats = json.loads(zf.read(latest.with_suffix(".json").name))["strategy"][payload.strategy]
    trades = []
    fees = funding = 0.0
    rates: set[float] = set()
    for t in stats["trades"]:
        rates.update(float(t.get(k) or 0.0) for k in ("fee_open", "fee_close"))
        fee, fund = _trade_costs(t)
        fees += fee
        funding += fund
        trades.append(
            {"close_timestamp": int(t["close_timestamp"]), "pair": str(t["pair"]),
             "profit_abs": float(t["profit_abs"]), "fee": fee, "funding": fund}
        )  # fmt: skip
    trades.sort(key=lambda r: (r["close_timestamp"], r["pair"]))
    return {
        "trades": int(stats["total_trades"]),
        "profit_total": float(stats["profit_total"]),
        "profit_abs": float(stats["profit_total_abs"]),
        "max_drawdown_account": float(stats.get("max_drawdown_account") or 0.0),
        "starting_balance": float(stats["starting_balance"]),
        "fees": fees,
        "funding": funding,
        "fee_rates": sorted(rates),
        "used_parameters": _used_parameters(output),
        "data_start": str(stats.get("backtest_start", "")),
        "data_end": str(stats.get("backtest_end", "")),
        "trade_list": trades,
    }


def _ray_node() -> str | None:
    """The Ray node id when this runs as a Ray task, else ``None``."""
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return None
    return str(ray.get_runtime_context().get_node_id())


def run_task(payload: Payload, task: HyperoptTask | BacktestTask) -> dict[str, Any]:
    """Run one task in a fresh temporary folder (removed afterwards); returns its numbers plus
    ``kind``, ``fold``, ``timerange``, the task's identity and ``seconds`` (wall time)."""
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="liqsignals-wf-") as tmp:
        root = Path(tmp)
        _materialise(payload, root)
        if isinstance(task, HyperoptTask):
            out = _hyperopt(payload, task, root)
            head: dict[str, Any] = {"kind": "hyperopt", "random_state": task.random_state}
        else:
            out = _backtest(payload, task, root)
            head = {"kind": "backtest", "variant": task.variant, "params": task.params}
    head.update(fold=task.fold, timerange=task.timerange, host=os.uname().nodename)
    head["ray_node"] = _ray_node()
    return {**head, **out, "seconds": time.monotonic() - t0}
