"""The web view's server side, in process (Starlette's TestClient): payloads, validation, security."""

from __future__ import annotations

import base64
import json
import math
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from starlette.testclient import TestClient

from liqsignals import sample
from liqsignals.heatmap import liquidation_heatmap
from liqsignals.web.app import PRESETS, WebConfig, create_app
from liqsignals.web.cli import add_arguments, check_host, main

ROOT = Path(__file__).resolve().parents[1]
BTC = {"pair": "BTC/USDT:USDT", "timeframe": "1h"}


@pytest.fixture(scope="module")
def client() -> TestClient:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return TestClient(create_app(WebConfig(datadirs={"binance": sample.datadir()})))


def _matrix(body: dict) -> np.ndarray:
    raw = np.frombuffer(base64.b64decode(body["matrix"]), dtype=np.uint8)
    return raw.reshape(body["rows"], body["cols"])


def test_meta_lists_the_sample(client: TestClient) -> None:
    body = client.get("/api/meta").json()
    assert body["catalogue"]["binance"]["BTC/USDT:USDT"] == ["5m", "15m", "1h"]
    assert body["modes"] == ["long", "short", "combined"]
    assert "binance_btc" in body["presets"] and "default" in body["presets"]
    assert body["trades"] is False


def test_heatmap_payload_matches_the_library(client: TestClient) -> None:
    params = {**BTC, "span": "1M", "w": 200, "h": 120, "mode": "long", "window": "1w"}
    r = client.get("/api/heatmap", params=params)
    assert r.status_code == 200
    body = r.json()
    assert body["cols"] <= 200 and body["rows"] <= 120
    assert len(body["times"]) == body["cols"] == len(body["close"])
    q = _matrix(body)
    # the same heatmap computed directly: the payload's intensities are its sqrt-scaled values
    df = sample.load_candles("BTC/USDT:USDT", "1h")
    start = df["date"].iloc[-1] - pd.Timedelta(days=30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hm = liquidation_heatmap(df, window="1w", start=start, max_times=200, max_bins=120)
    assert body["times"][-1] == int(df["date"].iloc[-1].value // 1_000_000)
    assert math.isclose(body["edges_lo"], hm.edges[0]) and math.isclose(
        body["edges_hi"], hm.edges[-1]
    )
    z = hm.long
    vmax = float(np.percentile(z[z > 0], 99.5))
    assert math.isclose(body["vmax"], vmax, rel_tol=1e-6)
    want = np.rint(255 * np.sqrt(np.minimum(z / vmax, 1))).astype(np.uint8).T[::-1]
    assert np.array_equal(q, want)
    assert (q > 0).mean() > 0.05  # not blank
    # top row is the highest price: its intensities are the last matrix row's
    assert np.array_equal(q[0], want[0])


def test_payload_of_a_year_of_15m_stays_small(client: TestClient) -> None:
    r = client.get(
        "/api/heatmap", params={**BTC, "timeframe": "15m", "span": "all", "w": 1400, "h": 600}
    )
    assert r.status_code == 200
    assert len(r.content) < 3_000_000


def test_modes_and_pairs_differ(client: TestClient) -> None:
    base = {**BTC, "span": "1w", "w": 100, "h": 80}
    long = _matrix(client.get("/api/heatmap", params={**base, "mode": "long"}).json())
    short = _matrix(client.get("/api/heatmap", params={**base, "mode": "short"}).json())
    eth = client.get("/api/heatmap", params={**base, "pair": "ETH/USDT:USDT"}).json()
    assert not np.array_equal(long, short)
    assert eth["edges_hi"] < 10_000  # ETH prices, not BTC's


def test_map_and_readout(client: TestClient) -> None:
    at = int(pd.Timestamp("2025-05-20 12:00", tz="UTC").value // 1_000_000)
    body = client.get("/api/map", params={**BTC, "at": at, "preset": "binance_btc"}).json()
    assert body["time"] == at
    df = sample.load_candles("BTC/USDT:USDT", "1h")
    assert body["price"] == float(
        df.loc[df["date"] == pd.Timestamp(at, unit="ms", tz="UTC"), "close"].iloc[0]
    )
    b = body["buckets"]
    price = body["price"]
    assert all(s == 0 for p, s in zip(b["price"], b["short"], strict=True) if p < price * 0.999)
    assert sum(b["long"]) > 0 and sum(b["short"]) > 0
    r = body["readout"]
    assert r["liq_long_cluster_price"] < price < r["liq_short_cluster_price"]
    assert {c["side"] for c in body["clusters"]} == {"long", "short"}


def test_status_reports_the_last_candle(client: TestClient) -> None:
    body = client.get("/api/status", params=BTC).json()
    df = sample.load_candles("BTC/USDT:USDT", "1h")
    assert body == {"last": int(df["date"].iloc[-1].value // 1_000_000), "n": len(df)}


@pytest.mark.parametrize(
    "params, word",
    [
        ({"pair": "../../../etc/passwd", "timeframe": "1h"}, "pair"),
        ({"pair": "BTC/USDT:USDT", "timeframe": "1h/../../x"}, "timeframe"),
        ({**BTC, "exchange": "/etc"}, "exchange"),
        ({**BTC, "preset": "../../model"}, "preset"),
        ({**BTC, "window": "5y"}, "window"),
        ({**BTC, "mode": "both"}, "mode"),
        ({**BTC, "w": "100000"}, "w"),
        ({**BTC, "start": "yesterday"}, "start"),
    ],
)
def test_bad_parameters_are_400(client: TestClient, params: dict, word: str) -> None:
    r = client.get("/api/heatmap", params=params)
    assert r.status_code == 400
    assert word in r.json()["error"]


def test_static_paths_stay_in_the_package(client: TestClient) -> None:
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/../app.py").status_code == 404
    assert client.get("/static/%2e%2e/app.py").status_code == 404


def test_read_only(client: TestClient) -> None:
    assert client.post("/api/meta").status_code == 405
    assert client.put("/static/app.js", content=b"x").status_code == 405


def test_security_headers(client: TestClient) -> None:
    h = client.get("/").headers
    assert "default-src 'self'" in h["content-security-policy"]
    assert h["x-content-type-options"] == "nosniff"


def test_token_every_route() -> None:
    app = create_app(WebConfig(datadirs={"binance": sample.datadir()}, token="t0k"))
    c = TestClient(app)
    for path in ("/", "/healthz", "/api/meta", "/static/app.js", "/api/status"):
        assert c.get(path).status_code == 401, path
    assert c.get("/api/meta", params={"token": "wrong"}).status_code == 401
    assert c.get("/api/meta", headers={"Authorization": "Bearer t0k"}).status_code == 200
    first = c.get("/", params={"token": "t0k"})
    assert first.status_code == 200 and "liqsignals_token=t0k" in first.headers["set-cookie"]
    assert c.get("/api/meta").status_code == 200  # the cookie carries it now


def test_trades_overlay(tmp_path: Path, client: TestClient) -> None:
    trades = [
        {
            "pair": "BTC/USDT:USDT",
            "open_date": "2025-05-20 00:00:00+00:00",
            "close_date": "2025-05-21 00:00:00+00:00",
            "open_rate": 100_000.0,
            "close_rate": 101_000.0,
            "is_short": False,
            "profit_ratio": 0.01,
        },
        {
            "pair": "ETH/USDT:USDT",
            "open_date": "2025-05-20 00:00:00+00:00",
            "close_date": "2025-05-21 00:00:00+00:00",
            "open_rate": 2500.0,
            "close_rate": 2400.0,
            "is_short": True,
            "profit_ratio": 0.04,
        },
    ]
    path = tmp_path / "backtest-result.json"
    path.write_text(json.dumps({"strategy": {"S": {"trades": trades}}}))
    c = TestClient(create_app(WebConfig(datadirs={"binance": sample.datadir()}, trades=path)))
    assert c.get("/api/meta").json()["trades"] is True
    got = c.get("/api/trades", params=BTC).json()["trades"]
    assert got == [
        {
            "open": int(pd.Timestamp("2025-05-20", tz="UTC").value // 1_000_000),
            "close": int(pd.Timestamp("2025-05-21", tz="UTC").value // 1_000_000),
            "open_rate": 100_000.0,
            "close_rate": 101_000.0,
            "is_short": False,
            "profit_ratio": 0.01,
        }
    ]
    assert client.get("/api/trades", params=BTC).json() == {"trades": []}


def test_two_exchanges_sum(tmp_path: Path) -> None:
    other = tmp_path / "bybit"
    shutil.copytree(sample.datadir(), other)
    one = TestClient(create_app(WebConfig(datadirs={"binance": sample.datadir()})))
    two = TestClient(create_app(WebConfig(datadirs={"binance": sample.datadir(), "bybit": other})))
    p = {**BTC, "span": "1w", "w": 80, "h": 60}
    a = one.get("/api/heatmap", params=p).json()
    b = two.get("/api/heatmap", params={**p, "exchange": "binance,bybit"}).json()
    # the same data twice: twice the mass, the same picture after scaling
    assert math.isclose(b["vmax"], 2 * a["vmax"], rel_tol=1e-5)
    assert np.abs(_matrix(a).astype(int) - _matrix(b).astype(int)).max() <= 1


def test_new_candles_in_the_datadir_are_picked_up(tmp_path: Path) -> None:
    from liqsignals.data.datadir import save_candles

    df = sample.load_candles("BTC/USDT:USDT", "1h")
    root = tmp_path / "binance"
    save_candles(df.iloc[:-5], root, "BTC/USDT:USDT", "1h")
    c = TestClient(create_app(WebConfig(datadirs={"binance": root})))
    before = c.get("/api/status", params=BTC).json()["last"]
    hm1 = c.get("/api/heatmap", params={**BTC, "span": "1w", "w": 50, "h": 40}).json()
    save_candles(df, root, "BTC/USDT:USDT", "1h")
    after = c.get("/api/status", params=BTC).json()["last"]
    hm2 = c.get("/api/heatmap", params={**BTC, "span": "1w", "w": 50, "h": 40}).json()
    assert after - before == 5 * 3_600_000
    assert hm2["times"][-1] == after and hm1["times"][-1] == before


def test_check_host() -> None:
    check_host("127.0.0.1", None)
    check_host("::1", None)
    check_host("localhost", None)
    check_host("0.0.0.0", "secret")
    with pytest.raises(ValueError, match="--token"):
        check_host("0.0.0.0", None)
    with pytest.raises(ValueError, match="--token"):
        check_host("192.168.1.5", "")


def test_serve_refuses_public_host_without_token() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "liqsignals.web.cli", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 2
    assert "--token" in proc.stderr and "0.0.0.0" in proc.stderr


def test_main_rejects_missing_datadir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--datadir", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_add_arguments_defaults() -> None:
    import argparse

    p = argparse.ArgumentParser()
    add_arguments(p)
    a = p.parse_args([])
    assert (a.host, a.port, a.token, a.datadir) == ("127.0.0.1", 8050, None, None)


def test_presets_exist() -> None:
    from liqsignals.model import LiquidationModel

    for name in PRESETS:
        if name != "default":
            LiquidationModel.preset(name)


def test_static_assets_have_no_remote_urls() -> None:
    static = ROOT / "liqsignals" / "web" / "static"
    for path in static.iterdir():
        text = path.read_text()
        assert "http://" not in text and "https://" not in text, path.name


def test_live_poller_appends_closed_candles(tmp_path: Path) -> None:
    pytest.importorskip("ccxt")
    from liqsignals.data.datadir import load_candles, save_candles
    from liqsignals.replay import ReplayExchange
    from liqsignals.web.cli import LivePoller

    df = sample.load_candles("BTC/USDT:USDT", "15m")
    source, target = tmp_path / "replay", tmp_path / "binance"
    save_candles(df, source, "BTC/USDT:USDT", "15m")
    save_candles(df.iloc[:-12], target, "BTC/USDT:USDT", "15m")
    with ReplayExchange(source) as ex:  # historical clock: time stands at the end of the data
        poller = LivePoller(f"http://127.0.0.1:{ex.port}", target, 60.0)
        added = poller.poll_once()
        again = poller.poll_once()
    got = load_candles(target, "BTC/USDT:USDT", "15m")
    # every stored candle that has closed by the replay's "now" arrives, with the stored values
    assert 11 <= added <= 12 and again == 0
    n = len(df) - 12 + added
    assert len(got) == n
    cols = ["open", "high", "low", "close", "volume"]
    pd.testing.assert_frame_equal(
        got[cols].reset_index(drop=True),
        df.iloc[:n][cols].reset_index(drop=True),
        check_dtype=False,
    )
    assert got["date"].tolist() == df["date"].iloc[:n].tolist()


def test_register_hook_for_the_dispatcher(capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from liqsignals.cli.options import run_command
    from liqsignals.web.cli import register

    parser = argparse.ArgumentParser(prog="liqsignals")
    sub = parser.add_subparsers(dest="command")
    register(sub)
    args = parser.parse_args(["serve", "--host", "0.0.0.0"])
    assert run_command(args.func, args) == 2
    assert "--token" in capsys.readouterr().err


def test_main_rejects_a_trades_file_that_is_no_backtest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "result.json"
    bad.write_text('{"not": "a result"}')
    assert main(["--trades", str(bad)]) == 2
    assert "not a freqtrade backtest result" in capsys.readouterr().err


# ----------------------------------------------------------------------------- exact hover
def test_cell_is_the_exact_matrix_value(client: TestClient) -> None:
    params = {**BTC, "span": "1M", "w": 150, "h": 90, "mode": "short", "window": "3d"}
    body = client.get("/api/heatmap", params=params).json()
    df = sample.load_candles("BTC/USDT:USDT", "1h")
    start = df["date"].iloc[-1] - pd.Timedelta(days=30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hm = liquidation_heatmap(df, window="3d", start=start, max_times=150, max_bins=90)
    z = hm.short.T[::-1]  # the page's [row, col], row 0 the highest price
    assert z.shape == (body["rows"], body["cols"])
    view = {"start": body["view"]["start"], "end": body["view"]["end"]}
    rows, cols = np.nonzero(z)
    picks = [(int(rows[k]), int(cols[k])) for k in (0, len(rows) // 2, len(rows) - 1)]
    picks.append((int(np.argmax(z) // z.shape[1]), int(np.argmax(z) % z.shape[1])))
    for row, col in picks:
        cell = client.get("/api/cell", params={**params, **view, "row": row, "col": col}).json()
        assert cell["notional"] == float(z[row, col]) and cell["notional"] > 0
        assert cell["time"] == int(hm.times[col].value // 1_000_000)
        k = body["rows"] - 1 - row
        assert math.isclose(cell["price_lo"], hm.edges[k], rel_tol=1e-9)
        assert math.isclose(cell["price_hi"], hm.edges[k + 1], rel_tol=1e-9)
    # the page's own request (span, no start/end) names the same matrix
    row, col = picks[-1]
    same = client.get("/api/cell", params={**params, "row": row, "col": col}).json()
    assert same["notional"] == float(z[row, col])
    bad = client.get("/api/cell", params={**params, "row": body["rows"], "col": 0})
    assert bad.status_code == 400 and "row" in bad.json()["error"]
    assert client.get("/api/cell", params=params).status_code == 400


# ----------------------------------------------------------------------------- static export
def _export_data(text: str) -> dict:
    m = re.search(
        r'<script type="application/json" id="liqsignals-data">(.*?)</script>', text, re.S
    )
    assert m, "no inline data"
    return json.loads(m.group(1).replace("<\\/", "</"))


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "btc.html"
    args = ["heatmap", "--datadir", str(sample.datadir()), "-p", "BTC/USDT:USDT", "-t", "1h",
            "--timerange", "20250401-", "--window", "1w", "--mode", "combined", "--no-smooth",
            "--max-columns", "300", "--max-rows", "120", "--no-market-data", "--no-progress",
            "--out", str(out)]  # fmt: skip
    from liqsignals.cli import main as cli_main

    assert cli_main(args) == 0
    return out


def test_export_and_served_page_use_the_same_renderer(client: TestClient, exported: Path) -> None:
    static = ROOT / "liqsignals" / "web" / "static"
    js, css, page = [(static / n).read_text() for n in ("app.js", "style.css", "index.html")]
    # what the server sends is the package's files
    assert client.get("/static/app.js").text == js
    assert client.get("/static/style.css").text == css
    assert client.get("/").text == page
    text = exported.read_text()
    # the export inlines those very files: the page with its two links replaced by them
    assert f"<script>\n{js}</script>" in text
    assert f"<style>\n{css}</style>" in text
    rest = re.sub(r"<script.*?</script>\n?", "", text, flags=re.S)
    rest = re.sub(r"<style>.*?</style>", "", rest, flags=re.S)
    want = page.replace('<link rel="stylesheet" href="static/style.css">', "")
    want = re.sub(r"<script.*?</script>\n?", "", want, flags=re.S)
    assert re.sub(r"<title>.*?</title>", "", rest) == re.sub(r"<title>.*?</title>", "", want)
    # self-contained: no server, no CDN, no plotly
    assert "http://" not in text and "https://" not in text and "src=" not in text
    assert "plotly" not in text.lower()


def test_export_carries_the_server_encoding(exported: Path) -> None:
    import gzip

    data = _export_data(exported.read_text())
    body = data["heatmap"]
    df = sample.load_candles("BTC/USDT:USDT", "1h")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hm = liquidation_heatmap(df, window="1w", start="2025-04-01", max_times=300, max_bins=120)
    z = hm.combined
    # the keys and the encoding of /api/heatmap: sqrt-scaled uint8, clipped at the 99.5th pct
    server_keys = {"times", "edges_lo", "edges_hi", "rows", "cols", "vmax", "matrix", "open",
                   "high", "low", "close", "row_bp", "first", "last", "mode", "scale", "vmin"}  # fmt: skip
    assert server_keys <= set(body)
    vmax = float(np.percentile(z[z > 0], 99.5))
    assert math.isclose(body["vmax"], vmax, rel_tol=1e-6)
    want = np.rint(255 * np.sqrt(np.minimum(z / vmax, 1))).astype(np.uint8).T[::-1]
    assert np.array_equal(_matrix(body), want)
    assert body["times"] == (hm.times.asi8 // 1_000_000).tolist()
    # the exact cells for the hover: float32, row 0 the highest price
    raw = gzip.decompress(base64.b64decode(data["values"]))
    values = np.frombuffer(raw, dtype="<f4").reshape(body["rows"], body["cols"])
    assert np.array_equal(values, z.T[::-1])
    # the map at the last column beside it
    assert data["map"]["time"] == body["times"][-1]
    assert data["map"]["readout"]["liq_long_cluster_price"] < data["map"]["price"]


def test_export_size_for_a_year_of_15m(tmp_path: Path) -> None:
    from liqsignals.cli import main as cli_main

    out = tmp_path / "year.html"
    args = ["heatmap", "-p", "BTC/USDT:USDT", "-t", "15m", "--timerange", "20240608-",
            "--no-progress", "--no-market-data", "--out", str(out)]  # fmt: skip
    assert cli_main(args) == 0
    data = _export_data(out.read_text())
    assert data["heatmap"]["cols"] > 1500  # default --max-columns 2000
    assert out.stat().st_size < 8_000_000


def test_plotly_html_only_on_request(tmp_path: Path) -> None:
    from liqsignals.cli import main as cli_main

    common = ["heatmap", "-p", "BTC/USDT:USDT", "-t", "1h", "--timerange", "20250501-",
              "--no-progress", "--no-market-data"]  # fmt: skip
    web, plotly = tmp_path / "w.html", tmp_path / "p.html"
    assert cli_main([*common, "--out", str(web)]) == 0
    assert cli_main([*common, "--html", "plotly", "--plotlyjs", "cdn", "--out", str(plotly)]) == 0
    assert "liqsignals-data" in web.read_text() and "plotly" not in web.read_text().lower()
    assert '"type":"heatmap"' in plotly.read_text() and "liqsignals-data" not in plotly.read_text()
