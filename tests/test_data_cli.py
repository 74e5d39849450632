"""The data commands through ``liqsignals.cli.main``."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import pytest

from liqsignals.cli import main
from liqsignals.data.datadir import load_liquidation_bars
from liqsignals.data.liquidations import load_liquidation_events

FIXTURES = Path(__file__).parent / "fixtures" / "liquidation_events"


def test_import_liquidation_events(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted(str(p) for p in FIXTURES.glob("*.csv"))
    rc = main(
        [
            "import",
            "liquidation-events",
            *files,
            "--exchange",
            "binance",
            "--datadir",
            str(tmp_path),
        ]
        + ["-p", "BTC/USDT:USDT", "ETH/USDT:USDT"]
    )
    assert rc == 0
    btc = load_liquidation_events(tmp_path, "BTC/USDT:USDT")
    assert len(btc) > 10 and set(btc["symbol"]) == {"BTC/USDT:USDT"}
    assert "new events" in capsys.readouterr().out
    # a second import stores nothing new
    main(
        ["import", "liquidation-events", *files, "--exchange", "binance"]
        + ["--datadir", str(tmp_path), "-p", "BTC/USDT:USDT"]
    )
    assert len(load_liquidation_events(tmp_path, "BTC/USDT:USDT")) == len(btc)


def test_import_totals_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "t.csv"
    csv.write_text(
        "date,long_liquidation_usd,short_liquidation_usd\n2024-01-01 00:00,1,2\n2024-01-01 01:00,3,4\n"
    )
    args = ["import", "liquidation-totals", str(csv), "--exchange", "binance"]
    assert main([*args, "--datadir", str(tmp_path), "-p", "BTC/USDT:USDT"]) == 0
    assert load_liquidation_bars(tmp_path, "BTC/USDT:USDT", "1h")[
        "long_liquidation_usd"
    ].tolist() == [1.0, 3.0]
    assert main([*args, "--datadir", str(tmp_path)]) == 2
    assert "exactly one --pairs" in capsys.readouterr().err
    assert main(["download", "open-interest", "-p", "BTC/USDT:USDT"]) == 2
    assert "no exchange" in capsys.readouterr().err


def test_config_supplies_exchange_pairs_and_datadir(tmp_path: Path) -> None:
    from liqsignals.data import cli

    config = tmp_path / "config.json"
    config.write_text(
        '{"exchange": {"name": "bybit", "pair_whitelist": ["ETH/USDT:USDT"]}, '
        f'"datadir": "{tmp_path / "data"}"}}'
    )
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    cli.register(sub)
    args = parser.parse_args(["download", "long-short", "-c", str(config)])
    _, exchange, pairs, datadir = cli._resolve(args)
    assert (exchange, pairs, datadir) == ("bybit", ["ETH/USDT:USDT"], tmp_path / "data")


@pytest.mark.slow
def test_download_command_against_replay_exchange(tmp_path: Path) -> None:
    import json

    from _replay_support import add_metric_files, make_datadir

    from liqsignals.data.datadir import load_open_interest
    from liqsignals.replay.server import ReplayExchange

    source = make_datadir(tmp_path / "src")
    add_metric_files(source)
    with ReplayExchange(source) as server:
        config = tmp_path / "overlay.json"
        config.write_text(
            json.dumps({"exchange": {"name": "binance", **server.freqtrade_overlay()["exchange"]}})
        )
        args = ["download", "open-interest", "-c", str(config), "-p", "BTC/USDT:USDT"]
        args += ["-t", "1h", "--datadir", str(tmp_path / "dst"), "--timerange", "20250425-20250501"]
        assert main([*args, "--no-progress"]) == 0
    oi = load_open_interest(tmp_path / "dst", "BTC/USDT:USDT", "1h")
    assert oi["date"].iloc[0] == pd.Timestamp("2025-04-25", tz="UTC")
    assert oi["date"].iloc[-1] == pd.Timestamp("2025-04-30 23:00", tz="UTC")
