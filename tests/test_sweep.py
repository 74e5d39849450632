"""``liqsignals sweep``: the spec, bad input, the serial runner, resume (fast; no Ray).

The Ray runs (a real two-node cluster, a killed raylet, loopback only) are in
tests/test_sweep_ray.py.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from liqsignals import sample
from liqsignals.cli import main
from liqsignals.cli.options import CLIError
from liqsignals.sweep import RUN_COLUMNS, build_tasks, holm_view, load_spec, run_sweep

PAIRS = ["BTC/USDT:USDT", "ETH/USDT:USDT"]
BASE = """
[sweep]
command = "evaluate magnets"
datadir = "{datadir}"
pairs = {pairs}
timeframe = "1h"
timerange = "20250101-20250115"
[options]
boot = 50
[grid]
{grid}
"""


def _spec(tmp_path: Path, grid: str = 'horizon = ["4h", "1d"]', **kw) -> Path:
    text = BASE.format(
        datadir=kw.get("datadir", sample.datadir()),
        pairs=json.dumps(kw.get("pairs", PAIRS)),
        grid=grid,
    )
    if "command" in kw:
        text = text.replace('"evaluate magnets"', json.dumps(kw["command"]))
    path = tmp_path / kw.get("name", "spec.toml")
    path.write_text(text)
    return path


def _drop_run(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=list(RUN_COLUMNS))


# ----------------------------------------------------------------------------- spec
def test_spec_gives_one_task_per_cell_and_pair(tmp_path):
    spec = load_spec(_spec(tmp_path, 'window = ["1d", "2d"]\nhorizon = ["4h", "1d", "3d"]'))
    tasks = build_tasks(spec)
    assert len(tasks) == 2 * 3 * 2
    assert [t.pair for t in tasks[:2]] == PAIRS
    assert tasks[0].params == {"window": "1d", "horizon": "4h"}
    assert tasks[-1].params == {"window": "2d", "horizon": "3d"}
    argv = list(tasks[0].argv)
    assert argv[:2] == ["evaluate", "magnets"] and argv[-1] == "--json"
    assert argv[argv.index("--datadir") + 1] == str(sample.datadir().resolve())
    assert argv[argv.index("--window") + 1] == "1d" and argv[argv.index("--boot") + 1] == "50"
    assert len({t.key for t in tasks}) == len(tasks)
    assert [t.key for t in build_tasks(load_spec(tmp_path / "spec.toml"))] == [t.key for t in tasks]


def test_a_relative_datadir_is_taken_from_the_spec_folder_not_the_cwd(tmp_path, monkeypatch):
    sub = tmp_path / "specs"
    sub.mkdir()
    (sub / "data").symlink_to(sample.datadir())
    spec = load_spec(_spec(sub, datadir="data"))
    monkeypatch.chdir(tmp_path)
    assert spec.datadir == sample.datadir().resolve()
    assert all(Path(t.argv[t.argv.index("--datadir") + 1]).is_absolute() for t in build_tasks(spec))


# ----------------------------------------------------------------------------- bad input
def _sweep_rc(capsys, spec: Path, out: Path, *extra: str) -> tuple[int, str]:
    rc = main(["sweep", str(spec), "--out", str(out), "--no-progress", *extra])
    return rc, capsys.readouterr().err


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (
            {"command": "evaluate nothing"},
            "is not a command a sweep can run; use one of: evaluate magnets",
        ),
        ({"command": "serve"}, "is not a command a sweep can run"),
        (
            {"grid": 'windw = ["1d"]'},
            "[grid] key 'windw' is not an option of `liqsignals evaluate magnets`",
        ),
        ({"grid": 'datadir = ["x"]'}, "the sweep sets --datadir itself"),
        ({"grid": 'rule = ["sideways"]'}, "invalid choice: 'sideways'"),
        ({"pairs": ["BTC/USDT:USDT", "DOGE/USDT:USDT"]}, "pair 'DOGE/USDT:USDT' has no 1h data"),
    ],
)
def test_bad_input_is_a_clear_error_before_any_task_runs(tmp_path, capsys, kw, message):
    out = tmp_path / "out"
    rc, err = _sweep_rc(capsys, _spec(tmp_path, **kw), out)
    assert rc == 2
    assert err.startswith("liqsignals sweep: error: ") and message in err, err
    assert not (out / "tasks").exists() and not (out / "results.parquet").exists()


def test_an_address_where_nothing_listens_is_a_clear_error(tmp_path, capsys):
    port = _unused_port()
    out = tmp_path / "out"
    rc, err = _sweep_rc(capsys, _spec(tmp_path), out, "--address", f"127.0.0.1:{port}")
    assert rc == 2
    assert f"--address 127.0.0.1:{port}: nothing listens at 127.0.0.1:{port}" in err, err
    assert not (out / "tasks").exists()
    rc, err = _sweep_rc(capsys, _spec(tmp_path), out, "--address", "127.0.0.1")
    assert rc == 2 and "expected HOST:PORT" in err


def test_a_missing_spec_and_conflicting_flags_are_errors(tmp_path, capsys):
    rc, err = _sweep_rc(capsys, tmp_path / "none.toml", tmp_path / "out")
    assert rc == 2 and "does not exist" in err
    (tmp_path / "bad.toml").write_text("[sweep\n")
    rc, err = _sweep_rc(capsys, tmp_path / "bad.toml", tmp_path / "out")
    assert rc == 2 and "is not valid TOML" in err
    rc, err = _sweep_rc(capsys, _spec(tmp_path), tmp_path / "out", "--serial", "--address", "auto")
    assert rc == 2 and "takes no --address" in err


# ----------------------------------------------------------------------------- serial
def _direct(pair: str, horizon: str) -> dict:
    """The command run on its own, in another process: the rows' expected values."""
    argv = [sys.executable, "-m", "liqsignals", "evaluate", "magnets", "--datadir",
            str(sample.datadir()), "--pairs", pair, "--timeframe", "1h", "--timerange",
            "20250101-20250115", "--boot", "50", "--horizon", horizon, "--json"]  # fmt: skip
    res = subprocess.run(argv, capture_output=True, text=True, check=True)
    return json.loads(res.stdout)


def test_serial_rows_are_the_commands_own_json(tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["sweep", str(_spec(tmp_path)), "--out", str(out), "--serial"])
    err = capsys.readouterr().err
    assert rc == 0
    assert "sweep: 100%" in err and "4/4" in err  # the progress bar, on stderr
    rows = pd.read_parquet(out / "results.parquet")
    assert len(rows) == 4 and rows["error"].isna().all()
    assert list(rows["pair"]) == PAIRS * 2
    assert list(rows["param_horizon"]) == ["4h", "4h", "1d", "1d"]
    assert set(rows["run_node"]) == {"local"} and (rows["run_wall_s"] > 0).all()
    for i in (0, 3):
        want = _direct(rows["pair"][i], rows["param_horizon"][i])
        for key in ("n", "hit_rate", "baseline_hit_rate", "lift", "lift_ci_low", "window"):
            assert rows[key][i] == want[key], key
        assert json.loads(rows["pairs"][i]) == want["pairs"]
    summary = (out / "summary.md").read_text()
    assert "# Sweep: `liqsignals evaluate magnets`" in summary
    assert "## Holm-corrected view" in summary and "### horizon" in summary
    assert (out / "spec.toml").read_text() == (tmp_path / "spec.toml").read_text()


def test_a_failing_task_is_recorded_and_the_status_is_1(tmp_path, capsys):
    spec = _spec(tmp_path, grid='timerange = ["20250101-20250108", "20300101-20300108"]')
    out = tmp_path / "out"
    rc, _ = _sweep_rc(capsys, spec, out, "--serial")
    assert rc == 1
    rows = pd.read_parquet(out / "results.parquet")
    assert rows["error"].isna().tolist() == [True, True, False, False]
    assert "no BTC/USDT:USDT 1h candles" in rows["error"][2]


# ----------------------------------------------------------------------------- resume
def test_a_rerun_skips_finished_tasks_and_writes_the_same_rows(tmp_path):
    spec, out = _spec(tmp_path), tmp_path / "out"
    first = run_sweep(spec, out, serial=True, progress=False)
    assert (first.ran, first.skipped) == (4, 0)
    rows = pd.read_parquet(out / "results.parquet")
    again = run_sweep(spec, out, serial=True, progress=False)
    assert (again.ran, again.skipped) == (0, 4)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "results.parquet"), rows)
    # an interrupted sweep: two task records missing
    for key in rows["task"][1:3]:
        (out / "tasks" / f"{key}.json").unlink()
    resumed = run_sweep(spec, out, serial=True, progress=False)
    assert (resumed.ran, resumed.skipped) == (2, 2)
    after = pd.read_parquet(out / "results.parquet")
    assert after["task"].is_unique and len(after) == 4
    pd.testing.assert_frame_equal(_drop_run(after), _drop_run(rows))
    assert not list(out.rglob("*.tmp"))  # atomic writes leave no temporary file


def test_a_grown_grid_resumes_and_another_sweeps_results_are_refused(tmp_path):
    out = tmp_path / "out"
    run_sweep(_spec(tmp_path, 'horizon = ["4h"]'), out, serial=True, progress=False)
    grown = run_sweep(_spec(tmp_path, 'horizon = ["4h", "1d"]'), out, serial=True, progress=False)
    assert (grown.ran, grown.skipped) == (2, 2)
    with pytest.raises(CLIError, match="holds 4 result"):
        run_sweep(_spec(tmp_path, 'horizon = ["3d"]'), out, serial=True, progress=False)


# ----------------------------------------------------------------------------- Holm view
def test_holm_view_adjusts_the_family_of_p_values():
    frame = pd.DataFrame(
        {"pair": ["A", "B", "C", "D"], "param_k": [1, 1, 2, 2], "error": [None] * 4,
         "gain": [0.1, 0.2, 0.3, 0.4], "gain_p_value": [0.01, 0.04, 0.03, 0.005]}
    )  # fmt: skip
    view, note = holm_view(frame)
    # by hand: sorted 0.005, 0.01, 0.03, 0.04 -> 4x, 3x, 2x, 1x, running max
    assert view["pair"].tolist() == ["D", "A", "C", "B"]
    assert np.allclose(view["p_holm"], [0.02, 0.03, 0.06, 0.06])
    assert view["reject_at_0.05"].tolist() == [True, True, False, False]
    assert "4 tests" in note and "the command's own" in note


def test_holm_view_from_intervals_when_the_command_prints_no_p_value():
    frame = pd.DataFrame(
        {"pair": ["A", "B"], "error": [None, None], "lift": [2.0, 1.0],
         "lift_ci_low": [2.0 / np.exp(1.959963984540054 * 0.25), 0.8],
         "lift_ci_high": [2.0 * np.exp(1.959963984540054 * 0.25), 1.25]}
    )  # fmt: skip
    view, note = holm_view(frame)
    # A: log(2) / 0.25 = 2.7726 standard errors -> two-sided p = 0.005561
    assert view["pair"].tolist() == ["A", "B"]
    assert view["p"].iloc[0] == pytest.approx(0.005561, abs=2e-6)
    assert view["p"].iloc[1] == pytest.approx(1.0)
    assert view["p_holm"].iloc[0] == pytest.approx(2 * 0.005561, abs=4e-6)
    assert "approximations" in note


def test_without_ray_installed_the_error_names_the_extra(tmp_path, capsys, monkeypatch):
    import importlib

    real = importlib.import_module

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'", name="ray")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", no_ray)
    out = tmp_path / "out"
    rc, err = _sweep_rc(capsys, _spec(tmp_path), out)
    assert rc == 2
    assert "pip install 'liqsignals[ray]'" in err and "--serial" in err, err
    assert not (out / "tasks").exists()
