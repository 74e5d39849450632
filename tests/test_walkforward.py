"""``liqsignals walkforward``: the fold layout, bad input before any task runs, and a real run of
2 folds x 5 hyperopt epochs of LiqSweepReversal on the bundled data, serial and on a Ray cluster
started inside a loopback-only network namespace, whose reports must agree."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from liqsignals.cli import main as cli_main
from liqsignals.walkforward.folds import Fold, make_folds

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
STRATEGY = "LiqSweepReversal"
#: 46 days of the bundled data (2024-06-01 .. 2025-05-31): 2 folds of 23 days, 16 train + 7 test
TIMERANGE = "20250301-20250416"
EPOCHS = 5


def _utc(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)


# ----------------------------------------------------------------------------- folds
def test_folds_are_consecutive_and_do_not_overlap():
    folds = make_folds(_utc("2025-03-01"), _utc("2025-04-16"), 2, 0.7)
    # 46 days: 23 per fold, round(16.1) = 16 training days, 7 test days (written out by hand)
    assert folds == [
        Fold(0, _utc("2025-03-01"), _utc("2025-03-17"), _utc("2025-03-24")),
        Fold(1, _utc("2025-03-24"), _utc("2025-04-09"), _utc("2025-04-16")),
    ]
    assert folds[0].train_timerange == "20250301T000000-20250316T235959"
    assert folds[0].test_timerange == "20250317T000000-20250323T235959"


def test_the_last_fold_takes_the_remainder():
    folds = make_folds(_utc("2024-01-01"), _utc("2024-04-01"), 3, 0.5)  # 91 days = 3 x 30 + 1
    assert [(f.train_start.day, f.test_start.day) for f in folds] == [(1, 16), (31, 15), (1, 16)]
    assert folds[-1].test_stop == _utc("2024-04-01")


def test_folds_too_short_is_an_error():
    with pytest.raises(ValueError, match="folds too short"):
        make_folds(_utc("2025-03-01"), _utc("2025-03-20"), 2, 0.7)


# ----------------------------------------------------------------------------- bad input
def _run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    rc = cli_main(["walkforward", *argv])
    return rc, capsys.readouterr().err


BASE = ["--timerange", TIMERANGE, "--folds", "2", "--epochs", "1", "--serial"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--strategy", "NoSuchStrategy"], "unknown strategy 'NoSuchStrategy'"),
        (["--strategy", STRATEGY, "--folds", "6"], "folds too short"),
        (["--strategy", STRATEGY, "--pairs", "DOGE/USDT:USDT"], "no data: pair 'DOGE/USDT:USDT'"),
        (["--strategy", STRATEGY, "--timerange", "20240101-20240301"], "no data for all of"),
        (["--strategy", STRATEGY, "--timerange", "20250301-"], "needs both START and STOP"),
        (["--strategy", STRATEGY, "--epochs", "0"], "--epochs must be >= 1"),
        (["--strategy", STRATEGY, "--address", "127.0.0.1:9"], "exclude each other"),
    ],
)
def test_bad_input_is_a_clear_error_before_any_task(extra, message, tmp_path, capsys):
    # the later flags win in argparse, so each case overrides BASE where it needs to
    rc, err = _run_cli([*BASE, *extra, "--out", str(tmp_path / "out")], capsys)
    assert rc == 2
    assert message in err
    assert "walkforward: [" not in err  # no task ran
    assert not (tmp_path / "out").exists()


def test_a_strategy_without_hyperoptable_parameters_is_refused(tmp_path, capsys):
    (tmp_path / "Plain.py").write_text(
        "from freqtrade.strategy import IStrategy\n\nclass Plain(IStrategy):\n    timeframe = '15m'\n"
    )
    argv = [*BASE, "--strategy", "Plain", "--strategy-path", str(tmp_path), "--out", "x"]
    rc, err = _run_cli(argv, capsys)
    assert rc == 2 and "has no hyperoptable parameters" in err


def test_an_address_where_nothing_listens_is_refused(tmp_path, capsys):
    import socket

    with socket.socket() as s:  # a loopback port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = ["--strategy", STRATEGY, "--timerange", TIMERANGE, "--folds", "2", "--epochs", "1"]
    rc, err = _run_cli([*argv, "--address", f"127.0.0.1:{port}", "--out", str(tmp_path)], capsys)
    assert rc == 2 and "nothing listens" in err


# ----------------------------------------------------------------------------- real runs
def _command(out: Path, *extra: str) -> list[str]:
    return [
        PY, "-m", "liqsignals", "walkforward", "--strategy", STRATEGY,
        "--pairs", "BTC/USDT:USDT", "ETH/USDT:USDT", "--timerange", TIMERANGE,
        "--folds", "2", "--epochs", str(EPOCHS), "--random-states", "1", "--out", str(out),
        *extra,
    ]  # fmt: skip


#: runs as PID 1 of private PID, mount and network namespaces (only loopback): a Ray head with
#: 2 CPUs and a bounded object store on 127.0.0.1, the walk-forward with --address (from "/", so
#: nothing relies on the driver's working directory), the sockets that listen while it runs;
#: then every other process of the namespace (all started here) is stopped by PID. Ray's workers
#: keep the test's priority (RAY_worker_niceness=0; Ray's default makes them nicer by 15).
_IN_NAMESPACE = """
import ipaddress, json, os, secrets, signal, subprocess, sys, tempfile, time
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))
ENV = {{**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_worker_niceness": "0",
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32)}}


def listeners():
    out = []
    for proto in ("tcp", "tcp6"):
        for line in Path("/proc/net/" + proto).read_text().splitlines()[1:]:
            parts = line.split()
            if parts[3] != "0A":
                continue
            raw = bytes.fromhex(parts[1].rsplit(":", 1)[0])
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            ip = ipaddress.ip_address(raw)
            if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
                ip = ip.ipv4_mapped
            out.append({{"addr": str(ip), "loopback": ip.is_loopback,
                         "port": int(parts[1].rsplit(":", 1)[1], 16)}})
    return out


def stop_others():
    killed = []
    for _ in range(5):
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
        time.sleep(0.5)
    return sorted(set(killed))


report = {{"pid": os.getpid()}}
try:
    temp = tempfile.mkdtemp(prefix="ray-wf-", dir="/tmp")
    cmd = [RAY, "start", "--head", "--port", "6379", "--num-cpus", "2",
           "--object-store-memory", str(150 * 1024 * 1024), "--node-ip-address", "127.0.0.1",
           "--include-dashboard=false", "--disable-usage-stats", "--temp-dir", temp]
    res = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=180)
    if res.returncode != 0:
        raise RuntimeError("ray start failed: " + res.stdout + res.stderr)
    proc = subprocess.Popen({command!r}, env=ENV, cwd="/", stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(10)
    report["listeners"] = listeners()
    out, err = proc.communicate(timeout=900)
    report.update(rc=proc.returncode, stdout=out, stderr=err[-4000:])
except Exception as exc:
    report["error"] = type(exc).__name__ + ": " + str(exc)
finally:
    report["stopped"] = stop_others()
    Path({result!r}).write_text(json.dumps(report))
"""


def _comparable(doc: dict[str, Any]) -> dict[str, Any]:
    """The report without what may differ between two runs of the same tasks."""
    doc = json.loads(json.dumps(doc))
    for key in ("wall_seconds", "command"):
        doc.pop(key, None)
    doc["settings"].pop("executor", None)
    for row in doc["hyperopt"] + doc["backtests"]["tuned"] + doc["backtests"]["default"]:
        for key in ("seconds", "host", "ray_node"):
            row.pop(key, None)
    return doc


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.fail(
            "the Ray walk-forward test needs root and unshare (a private network namespace)"
        )
    work = tmp_path_factory.mktemp("walkforward")
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    # the serial run and the Ray run at the same time: two cores, two runs
    serial = subprocess.Popen(
        _command(work / "serial", "--serial"), cwd=work, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    result = work / "ray-result.json"
    script = _IN_NAMESPACE.format(
        command=_command(work / "ray", "--address", "127.0.0.1:6379"),
        result=str(result),
    )  # fmt: skip
    script_path = work / "in_namespace.py"
    script_path.write_text(textwrap.dedent(script))
    ns = subprocess.run(
        ["unshare", "-n", "-p", "-f", "--mount-proc", "sh", "-c",
         f"ip link set lo up; exec {PY} {script_path}"],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    s_out, s_err = serial.communicate(timeout=600)
    assert serial.returncode == 0, s_err[-4000:]
    assert ns.returncode == 0 and result.exists(), ns.stderr[-4000:]
    ray = json.loads(result.read_text())
    assert "error" not in ray, ray
    assert ray["rc"] == 0, ray["stderr"]
    return {
        "serial": json.loads((work / "serial" / "walkforward.json").read_text()),
        "ray": json.loads((work / "ray" / "walkforward.json").read_text()),
        "serial_err": s_err,
        "ray_run": ray,
        "work": work,
    }


def _span(fold: dict[str, Any], part: str) -> tuple[datetime, datetime]:
    return (
        datetime.fromisoformat(fold[f"{part}_start"]),
        datetime.fromisoformat(fold[f"{part}_stop"]),
    )


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.slow
def test_folds_do_not_overlap_and_each_test_follows_its_training(runs):
    folds = runs["serial"]["folds"]
    assert len(folds) == 2
    spans = []
    for fold in folds:
        (a, b), (c, d) = _span(fold, "train"), _span(fold, "test")
        assert a < b == c < d  # the test span starts where its training span ends
        spans += [(a, b), (c, d)]
    assert all(spans[i][1] <= spans[i + 1][0] for i in range(len(spans) - 1))  # no overlap
    assert _ts("2025-03-01") == spans[0][0] and spans[-1][1] == _ts("2025-04-16")
    # the test backtests saw only their test span
    for fold, row in zip(folds, runs["serial"]["backtests"]["default"], strict=True):
        c, d = _span(fold, "test")
        assert row["timerange"] == fold["test_timerange"]
        assert c <= _ts(row["data_start"]) and _ts(row["data_end"]) < d


@pytest.mark.slow
def test_tuned_parameters_come_from_the_training_span_only(runs):
    doc = runs["serial"]
    for fold in doc["folds"]:
        a, b = _span(fold, "train")
        tasks = [r for r in doc["hyperopt"] if r["fold"] == fold["index"]]
        assert len(tasks) == 1 and tasks[0]["epochs_run"] == EPOCHS
        task = tasks[0]
        assert task["timerange"] == fold["train_timerange"]  # the hyperopt's --timerange
        assert a <= _ts(task["data_start"]) and _ts(task["data_end"]) < b  # what it evaluated
        tuned = next(r for r in doc["backtests"]["tuned"] if r["fold"] == fold["index"])
        assert tuned["params"] == task["params"]
        flat = {k: str(v) for space in task["params"].values() for k, v in space.items()}
        # freqtrade logged that the tuned backtest ran with exactly these values, and the
        # default backtest with the strategy's defaults
        assert tuned["used_parameters"] == flat
        default = next(r for r in doc["backtests"]["default"] if r["fold"] == fold["index"])
        assert set(default["used_parameters"]) == set(flat)
        assert all(v.startswith("default:") for v in default["used_parameters"].values())


@pytest.mark.slow
def test_serial_and_ray_reports_agree(runs):
    assert _comparable(runs["serial"]) == _comparable(runs["ray"])
    assert runs["ray"]["settings"]["executor"] == "Ray, 2 CPUs"
    nodes = {r["ray_node"] for r in runs["ray"]["hyperopt"] + runs["ray"]["backtests"]["tuned"]}
    assert None not in nodes  # every task ran as a Ray task
    assert all(r["ray_node"] is None for r in runs["serial"]["hyperopt"])
    # Ray listened on loopback only inside the namespace
    listeners = runs["ray_run"]["listeners"]
    assert len(listeners) > 3 and all(s["loopback"] for s in listeners), listeners
    assert runs["ray_run"]["stopped"]  # the head's processes, stopped by PID


@pytest.mark.slow
def test_the_report_files(runs):
    work = runs["work"]
    md = (work / "serial" / "report.md").read_text()
    assert "| fold | training | test | parameters |" in md
    assert "tuned − default" in md and "slippage 0" in md and "funding fees applied" in md
    png = (work / "serial" / "equity.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    doc = runs["serial"]
    for variant in ("tuned", "default"):
        rows = doc["backtests"][variant]
        t = doc["totals"][variant]
        assert t["trades"] == sum(r["trades"] for r in rows)
        assert t["profit_abs"] == pytest.approx(sum(r["profit_abs"] for r in rows))
        iv = t["interval"]
        assert iv["low"] <= iv["estimate"] <= iv["high"]
        assert iv["estimate"] == pytest.approx(t["profit_abs"])
    assert "[1/6]" in runs["serial_err"] and "[6/6]" in runs["serial_err"]  # progress on stderr
