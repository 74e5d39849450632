"""The options layer every data-reading command shares (``liqsignals.cli.options``): layered
configs, the datadir rule, pairs / timeframe / timerange errors and the one error path."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from liqsignals import sample
from liqsignals.cli import build_parser, main
from liqsignals.cli import options as o

BTC = "BTC/USDT:USDT"
SAMPLE_FILE = sample.datadir() / "futures" / "BTC_USDT_USDT-1h-futures.feather"


def write_json(path: Path, doc: dict) -> Path:
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture
def btc_only(tmp_path: Path) -> Path:
    """A datadir holding BTC 1h futures candles only."""
    folder = tmp_path / "binance" / "futures"
    folder.mkdir(parents=True)
    shutil.copy(SAMPLE_FILE, folder / SAMPLE_FILE.name)
    return tmp_path / "binance"


def parse(argv: list[str]):
    return build_parser().parse_args(argv)


# ----------------------------------------------------------------------------- config layering
def test_later_config_files_override_earlier_ones(tmp_path: Path) -> None:
    base = write_json(tmp_path / "base.json", {
        "timeframe": "15m", "datadir": "base_dir",
        "exchange": {"name": "binance", "pair_whitelist": ["ETH/USDT:USDT"], "key": "k"},
    })  # fmt: skip
    over = write_json(tmp_path / "over.json", {
        "timeframe": "1h", "exchange": {"pair_whitelist": [BTC]},
    })  # fmt: skip
    cfg = o.load_config([base, over])
    assert cfg["timeframe"] == "1h"
    assert cfg["exchange"] == {"name": "binance", "pair_whitelist": [BTC], "key": "k"}
    assert cfg["datadir"] == "base_dir"  # kept from the earlier file
    assert o.load_config([over, base])["timeframe"] == "15m"  # order decides
    assert o.load_config([]) == {}


def test_several_c_flags_reach_the_command(tmp_path: Path, btc_only: Path) -> None:
    base = write_json(tmp_path / "a.json", {"datadir": "nowhere", "timeframe": "15m",
                                           "exchange": {"pair_whitelist": ["ETH/USDT:USDT"]}})  # fmt: skip
    over = write_json(tmp_path / "b.json", {"datadir": str(btc_only), "timeframe": "1h",
                                           "exchange": {"pair_whitelist": [BTC]}})  # fmt: skip
    args = parse(["evaluate", "magnets", "-c", str(base), "-c", str(over)])
    opts = o.resolve_data_options(args)
    assert (opts.datadir, opts.datadir_source) == (btc_only, "config")
    assert opts.pairs == [BTC] and opts.timeframe == "1h"
    # flags win over every config
    args = parse(["evaluate", "magnets", "-c", str(base), "-c", str(over), "-p", "X/USDT:USDT",
                  "-t", "4h", "--datadir", str(tmp_path)])  # fmt: skip
    opts = o.resolve_data_options(args)
    assert (opts.datadir, opts.datadir_source) == (tmp_path, "--datadir")
    assert opts.pairs == ["X/USDT:USDT"] and opts.timeframe == "4h"


def test_bad_config_files_are_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(o.CLIError, match="does not exist"):
        o.load_config([tmp_path / "missing.json"])
    broken = tmp_path / "broken.json"
    broken.write_text('{"timeframe": ')
    with pytest.raises(o.CLIError, match="broken.json is not valid JSON"):
        o.load_config([broken])
    listed = write_json(tmp_path / "list.json", [1, 2])  # type: ignore[arg-type]
    with pytest.raises(o.CLIError, match="JSON object"):
        o.load_config([listed])
    rc = main(["evaluate", "magnets", "-c", str(broken), "-p", BTC, "-t", "1h"])
    assert rc == 2 and "broken.json is not valid JSON" in capsys.readouterr().err


# ----------------------------------------------------------------------------- datadir rule
def test_datadir_rule_flag_then_config_then_sample(tmp_path: Path) -> None:
    cfg = {"datadir": str(tmp_path / "cfg")}
    assert o.resolve_datadir(tmp_path / "flag", cfg) == (tmp_path / "flag", "--datadir")
    assert o.resolve_datadir(None, cfg) == (tmp_path / "cfg", "config")
    assert o.resolve_datadir(None, {}) == (sample.datadir(), "sample")
    assert o.resolve_datadir(None, {"datadir": ""}) == (sample.datadir(), "sample")
    with pytest.raises(o.CLIError, match="no sample data for 'kraken'"):
        o.resolve_datadir(None, {}, exchange="kraken")


def test_the_same_rule_in_every_command(tmp_path: Path) -> None:
    cfg = write_json(tmp_path / "c.json", {"datadir": str(tmp_path / "d")})
    for argv in (["evaluate", "magnets"], ["evaluate", "realised", "--realised", "x.csv"],
                 ["calibrate", "--realised", "x.csv", "--train", "20240101-20240201",
                  "--test", "20240201-20240301"]):  # fmt: skip
        opts = o.resolve_data_options(parse([*argv, "-c", str(cfg), "-p", BTC, "-t", "1h"]))
        assert opts.datadir == tmp_path / "d", argv
        opts = o.resolve_data_options(parse([*argv, "-p", BTC, "-t", "1h"]))
        assert opts.datadir == sample.datadir(), argv
    from liqsignals.plot_cli import _resolve

    for command in ("heatmap", "map"):
        r = _resolve(parse([command, "-c", str(cfg), "-p", BTC, "--out", "x.png"]))
        assert r["exchanges"] == [("binance", tmp_path / "d")] and r["timeframe"] == "1h"
        r = _resolve(parse([command, "-p", BTC, "--out", "x.png"]))
        assert r["exchanges"] == [("binance", sample.datadir())]


def test_sample_fallback_is_announced_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    o.resolve_data_options(parse(["evaluate", "magnets", "-p", BTC, "-t", "1h"]))
    captured = capsys.readouterr()
    assert "bundled sample data" in captured.err and captured.out == ""


# ----------------------------------------------------------------------------- messages
def test_unknown_pair_lists_the_datadir_pairs(
    btc_only: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["evaluate", "magnets", "--datadir", str(btc_only), "-p", "ETH/USDT:USDT",
               "-t", "1h", "--json"])  # fmt: skip
    captured = capsys.readouterr()
    assert rc == 2 and captured.out == ""
    assert "liqsignals evaluate: error: pair 'ETH/USDT:USDT' is not in" in captured.err
    assert "it has futures candles for: BTC/USDT:USDT\n" in captured.err
    assert "freqtrade download-data" in captured.err  # how to fetch it is still said
    assert "Traceback" not in captured.err


def test_unknown_timeframe_lists_the_pair_timeframes(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["evaluate", "realised", "-p", BTC, "-t", "4h", "--realised", "x.csv"])
    err = capsys.readouterr().err
    assert rc == 2
    assert (
        f"no 4h futures candles for {BTC} in {sample.datadir()}; its timeframes: 5m, 15m, 1h" in err
    )
    assert o.availability_problem(sample.datadir(), BTC, "1h") is None


def test_missing_datadir_folder_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gone = tmp_path / "nothere"
    for argv in (["evaluate", "magnets"], ["map", "--out", str(tmp_path / "m.png"),
                                           "--no-progress"]):  # fmt: skip
        rc = main([*argv, "--datadir", str(gone), "-p", BTC, "-t", "1h"])
        err = capsys.readouterr().err
        assert rc == 2
        assert f"datadir {gone} does not exist" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "holds no futures candles" in str(o.availability_problem(empty, BTC, "1h"))


def test_pairs_and_timeframe_are_needed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "magnets", "-t", "1h"]) == 2
    assert "no pairs: pass -p/--pairs" in capsys.readouterr().err
    assert main(["evaluate", "magnets", "-p", BTC]) == 2
    assert "no timeframe: pass -t/--timeframe" in capsys.readouterr().err
    assert main(["evaluate", "magnets", "-p", BTC, "-t", "1x"]) == 2
    assert "-t/--timeframe: invalid timeframe '1x'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("20250101-20259999", "'20259999' is not a date"),
        ("2025-01-01", "expected START-STOP"),
        ("20250101", "expected START-STOP"),
        ("-", "expected START-STOP"),
        ("2025011-", "'2025011' is not a date"),
        ("20250301-20250101", "start is after stop"),
    ],
)
def test_timerange_errors_name_the_bad_part(text: str, message: str) -> None:
    with pytest.raises(o.CLIError) as exc:
        o.parse_timerange(text, "--train")
    assert str(exc.value).startswith(f"--train {text!r}: ")
    assert message in str(exc.value)
    assert "format=" not in str(exc.value)  # no pandas advice


def test_timerange_forms() -> None:
    tr = o.parse_timerange("20250101T0630-")
    assert str(tr.start) == "2025-01-01 06:30:00+00:00" and tr.stop is None
    tr = o.parse_timerange("-1735689600")
    assert tr.start is None and str(tr.stop) == "2025-01-01 00:00:00+00:00"
    assert o.parse_timerange(None) == (None, None) == o.parse_timerange("")


def test_bad_input_exits_2_without_a_traceback(tmp_path: Path) -> None:
    """The installed entry point: status 2, one message, no traceback, nothing on stdout."""
    cmd = [sys.executable, "-m", "liqsignals", "evaluate", "magnets", "-p", BTC, "-t", "1h",
           "--timerange", "20250101-20259999", "--json"]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 2
    assert res.stdout == ""
    assert "Traceback" not in res.stderr
    assert "liqsignals evaluate: error: --timerange '20250101-20259999'" in res.stderr
    assert "You might want to try" not in res.stderr


def test_run_command_maps_user_errors_to_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse(["evaluate", "magnets"])

    def boom(exc: BaseException):
        def func(_args):
            raise exc

        return func

    assert o.run_command(boom(o.CLIError("bad flag")), args) == 2
    assert capsys.readouterr().err == "liqsignals evaluate: error: bad flag\n"
    assert o.run_command(boom(FileNotFoundError("no file")), args) == 2
    assert o.run_command(boom(KeyboardInterrupt()), args) == 130
    assert o.run_command(lambda _a: None, args) == 0
    with pytest.raises(RuntimeError):  # a bug is not bad input: it keeps its traceback
        o.run_command(boom(RuntimeError("bug")), args)


def test_evaluate_information_and_competing_through_the_liqsignals_command(capsys):
    """``liqsignals evaluate information|competing`` hand their options to the library runners
    and print the JSON keys the issue names."""
    import json

    from liqsignals import sample
    from liqsignals.cli import main

    datadir = str(sample.datadir())
    common = ["--datadir", datadir, "--pairs", "BTC/USDT:USDT", "--timeframe", "1h"]
    rc = main(["evaluate", "information", *common, "--horizon", "1d", "--resamples", "100",
               "--importance-repeats", "0", "--json"])  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    for key in ("n", "horizon", "score_price_only", "score_with_liq", "improvement",
                "improvement_ci_low", "improvement_ci_high"):  # fmt: skip
        assert key in out, key
    assert out["improvement_ci_low"] <= out["improvement"] <= out["improvement_ci_high"]
    assert out["n"] > 100
    rc = main(["evaluate", "competing", *common, "--horizon", "1d", "--json"])
    text = capsys.readouterr().out
    assert rc == 0 and "lift" in text
    with pytest.raises(SystemExit):
        main(["evaluate", "magnets", "--no-such-option"])
