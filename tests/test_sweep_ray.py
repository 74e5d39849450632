"""``liqsignals sweep`` on a real two-node Ray cluster, inside a loopback-only network namespace.

One cluster (``ray start --head --num-cpus 1`` plus ``ray start --address 127.0.0.1:PORT
--num-cpus 1``, object stores of 150 MB) serves three sweeps: a plain one, one during which the
second node's raylet is killed by PID, and one that joins with ``--address auto``. The rows are
compared with ``--serial`` run here. Needs root for ``unshare -n`` (CI runs as root): without it
these tests fail, they never skip. See tests/_ray_support.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from liqsignals import sample
from liqsignals.sweep import RUN_COLUMNS, run_sweep

pytestmark = pytest.mark.slow

HERE = Path(__file__).parent
SUPPORT = HERE / "_ray_support.py"
SPEC = """
[sweep]
command = "evaluate magnets"
datadir = "{datadir}"
pairs = ["BTC/USDT:USDT", "ETH/USDT:USDT"]
timeframe = "15m"
timerange = "20240801-20250531"
[options]
boot = 100
[grid]
window = ["1d", "2d", "3d"]
horizon = ["4h", "1d"]
"""
SMALL = """
[sweep]
command = "evaluate magnets"
datadir = "{datadir}"
pairs = ["BTC/USDT:USDT", "ETH/USDT:USDT"]
timeframe = "1h"
timerange = "20250101-20250201"
[options]
boot = 50
"""
N_TASKS = 12


def _in_namespace(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    inner = " ".join(f"'{a}'" for a in [sys.executable, str(SUPPORT), *args])
    return subprocess.run(
        ["unshare", "-n", "sh", "-c", f"ip link set lo up && {inner}"],
        capture_output=True, text=True, timeout=timeout, cwd=HERE.parent,
    )  # fmt: skip


def _pids_in(netns: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/ns/net") == netns:
                    found.append(int(entry))
            except OSError:
                pass
    return found


def _results(folder: Path) -> pd.DataFrame:
    return pd.read_parquet(folder / "results.parquet")


def _same_rows(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(
        a.drop(columns=list(RUN_COLUMNS)).reset_index(drop=True),
        b.drop(columns=list(RUN_COLUMNS)).reset_index(drop=True),
    )


def _last_json(stdout: str) -> dict:
    # stdout holds the sweep's JSON only (what Ray prints, such as node-death notices, goes
    # to stderr)
    lines = stdout.strip().splitlines()
    assert len(lines) == 1, stdout
    return json.loads(lines[0])


@pytest.fixture(scope="module")
def specs(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep_ray")
    spec, small = root / "spec.toml", root / "small.toml"
    spec.write_text(SPEC.format(datadir=sample.datadir()))
    small.write_text(SMALL.format(datadir=sample.datadir()))
    return root, spec, small


@pytest.fixture(scope="module")
def serial(specs):
    root, spec, small = specs
    run_sweep(spec, root / "serial", serial=True, progress=False)
    run_sweep(small, root / "serial_small", serial=True, progress=False)
    return _results(root / "serial"), _results(root / "serial_small")


@pytest.fixture(scope="module")
def cluster(specs):
    root, spec, small = specs
    work = root / "work"
    work.mkdir()
    out = root / "report.json"
    res = _in_namespace(["cluster", str(out), str(spec), str(work), str(small)], timeout=540)
    assert out.is_file(), f"the scenario wrote no report:\n{res.stdout}\n{res.stderr}"
    report = json.loads(out.read_text())
    assert "error" not in report, report["error"]
    # every process of the namespace was stopped by PID: none is left
    assert report["stopped"], "the scenario stopped no process"
    assert _pids_in(report["netns"]) == []
    return report, work


def test_two_node_cluster_gives_the_serial_rows(cluster, serial):
    report, work = cluster
    nodes = report["nodes"]
    assert len(nodes) == 2 and all(n["alive"] and n["ip"] == "127.0.0.1" for n in nodes)
    plain = report["plain"]
    assert plain["rc"] == 0, plain["stderr"]
    counts = _last_json(plain["stdout"])
    assert (counts["tasks"], counts["ran"], counts["errors"], counts["nodes"]) == (
        N_TASKS,
        N_TASKS,
        0,
        2,
    )
    rows = _results(work / "plain")
    assert len(rows) == N_TASKS and rows["error"].isna().all()
    _same_rows(rows, serial[0])
    # the work was spread: both nodes ran tasks
    assert set(rows["run_node"]) == {n["id"] for n in nodes}


def test_killing_the_second_raylet_mid_sweep_loses_no_task(cluster, serial):
    report, work = cluster
    fault = report["fault"]
    assert "killed_after" in fault, "the raylet was never killed (no task of node 2 recorded)"
    assert fault["killed_after"] < N_TASKS, "the kill came after the sweep had finished"
    assert fault["rc"] == 0, fault["stderr"]
    counts = _last_json(fault["stdout"])
    assert (counts["ran"], counts["failed_in_ray"], counts["errors"]) == (N_TASKS, 0, 0)
    rows = _results(work / "fault")
    # every task exactly once
    assert len(rows) == N_TASKS and rows["task"].is_unique
    assert sorted(rows["task"]) == sorted(serial[0]["task"])
    # at least one task had run on the node that was killed
    assert (rows["run_node"] == report["node2"]).sum() >= 1
    assert (rows["run_node"] != report["node2"]).sum() >= 1
    _same_rows(rows, serial[0])


def test_address_auto_joins_the_running_cluster(cluster, serial):
    report, work = cluster
    auto = report["auto"]
    assert auto["rc"] == 0, auto["stderr"]
    assert _last_json(auto["stdout"])["mode"] == "ray"
    rows = _results(work / "auto")
    assert set(rows["run_node"]) <= {n["id"] for n in report["nodes"]}
    _same_rows(rows, serial[1])


def test_no_ray_process_listens_on_anything_but_loopback(cluster):
    report, _ = cluster
    sys.path.insert(0, str(HERE))
    from _ray_support import is_loopback

    snapshots = [report["listeners"], report["listeners_during_sweep"], report["listeners_end"]]
    assert all(snapshots), "a listener snapshot is empty"
    seen = [entry for snap in snapshots for entry in snap]
    assert any(e["name"] == "gcs_server" and e["port"] == 6379 for e in seen)
    assert any(e["name"] == "raylet" for e in seen)
    wild = [e for e in seen if not is_loopback(e["addr"])]
    assert wild == [], f"non-loopback listeners: {wild}"


def test_the_listener_check_sees_a_wildcard_socket(tmp_path):
    out = tmp_path / "listeners.json"
    res = _in_namespace(["listeners", str(out)], timeout=60)
    report = json.loads(out.read_text())
    assert "error" not in report, res.stderr
    sys.path.insert(0, str(HERE))
    from _ray_support import is_loopback

    wild = [e for e in report["listeners"] if not is_loopback(e["addr"])]
    assert [e["addr"] for e in wild] == ["0.0.0.0"]
    assert wild[0]["pid"] > 0
