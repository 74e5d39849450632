"""Pictures (liqsignals.plotting) and the ``liqsignals heatmap`` / ``liqsignals map`` commands.

PNGs are read back: exact pixel size, not blank, and in a planted-cluster case the cluster's row
is yellow while empty price levels are dark. HTML files must hold the plotly traces.
"""

from __future__ import annotations

import argparse
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from liqsignals import sample
from liqsignals.cli import main
from liqsignals.heatmap import (
    Heatmap,
    LiquidationMap,
    liquidation_heatmap,
    liquidation_map,
    map_buckets,
)
from liqsignals.model import LiquidationModel
from liqsignals.plotting import load_trades, plot_heatmap, plot_map, save_heatmap, save_map

PAIR = "BTC/USDT:USDT"


def read_png(path: Path) -> np.ndarray:
    import matplotlib.image as mpimg

    return mpimg.imread(path)


def distinct_colours(img: np.ndarray) -> int:
    rgb = (img[..., :3] * 255).astype(np.uint8).reshape(-1, 3)
    return len(np.unique(rgb, axis=0))


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    df = sample.load_candles(PAIR, "1h")
    return df.loc[df["date"] >= "2025-03-20"].reset_index(drop=True)


@pytest.fixture(scope="module")
def hm(candles: pd.DataFrame) -> Heatmap:
    out = liquidation_heatmap(candles, window="1w", max_bins=300)
    out.meta.update(pair=PAIR, timeframe="1h", exchange="binance")
    return out


@pytest.fixture(scope="module")
def lmap(candles: pd.DataFrame) -> LiquidationMap:
    return liquidation_map(candles, window="1w")


# ----------------------------------------------------------------------------- heatmap PNG
@pytest.mark.parametrize(
    ("mode", "colors", "scale"),
    [("combined", "default", "sqrt"), ("long", "cividis", "log"), ("short", "default", "linear")],
)
def test_heatmap_png_size_and_content(
    hm: Heatmap, tmp_path: Path, mode: str, colors: str, scale: str
) -> None:
    path = save_heatmap(hm, tmp_path / "h.png", mode, colors=colors, scale=scale, width=900,
                        height=500)  # fmt: skip
    img = read_png(path)
    assert img.shape[:2] == (500, 900)
    assert distinct_colours(img) > 200


def planted() -> tuple[Heatmap, float, float]:
    n = 14 * 24
    df = pd.DataFrame(
        {
            "date": pd.date_range("2025-01-01", periods=n, freq="1h", tz="UTC"),
            "open": 100.0,
            "high": 100.01,
            "low": 99.99,
            "close": 100.0,
            "volume": 1000.0,
        }
    )
    model = LiquidationModel(
        window="1w", leverages=(10.0,), leverage_weights=(1.0,), entry_samples=1
    )
    f_long, f_short, _ = model.liquidation_factors()
    hm = liquidation_heatmap(df, model, margin=0.15)
    return hm, 100 * float(f_long[0]), 100 * float(f_short[0])


def _pixel_strip(fig, img: np.ndarray, price: float, spread: int = 0) -> np.ndarray:
    """Median RGB of a horizontal strip of 80 pixels at ``price`` (mid picture); with
    ``spread``, the most yellow of the strips up to ``spread`` pixel rows away (a one-bin
    cluster is only a pixel or two high)."""
    ax = fig.axes[0]
    x0, x1 = ax.get_xlim()
    px, py = ax.transData.transform(((x0 + x1) / 2, price))
    row = int(round(img.shape[0] - py))
    cols = slice(int(px) - 40, int(px) + 40)
    strips = [np.median(img[r, cols, :3], axis=0) for r in range(row - spread, row + spread + 1)]
    return max(strips, key=lambda rgb: float(rgb[0] + rgb[1] - rgb[2]))


@pytest.mark.parametrize("colors", ["default", "cividis"])
def test_planted_cluster_is_yellow_and_empty_levels_dark(tmp_path: Path, colors: str) -> None:
    hm, long_level, short_level = planted()
    for mode, level in (("long", long_level), ("combined", short_level)):
        fig = plot_heatmap(hm, mode, colors=colors, width=800, height=600)
        path = tmp_path / f"{mode}.png"
        fig.savefig(path, dpi=fig.dpi, facecolor=fig.get_facecolor())
        img = read_png(path)
        assert img.shape[:2] == (600, 800)
        r, g, b = _pixel_strip(fig, img, level, spread=1)
        assert r > 0.75 and g > 0.75 and b < 0.45, (mode, colors, (r, g, b))
        for empty in (95.0, 104.0, 87.0):
            assert _pixel_strip(fig, img, empty).sum() < 0.6, (mode, colors, empty)
    # in the long picture, the short cluster's level is empty
    fig = plot_heatmap(hm, "long", colors=colors, width=800, height=600)
    fig.savefig(tmp_path / "l.png", dpi=fig.dpi)
    assert _pixel_strip(fig, read_png(tmp_path / "l.png"), short_level).sum() < 0.6


def test_bad_picture_arguments(hm: Heatmap, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mode"):
        plot_heatmap(hm, "both")
    with pytest.raises(ValueError, match="colors"):
        plot_heatmap(hm, colors="rainbow")
    with pytest.raises(ValueError, match="scale"):
        plot_heatmap(hm, scale="cube")
    with pytest.raises(ValueError, match=".png or .html"):
        save_heatmap(hm, tmp_path / "h.jpg")


# ----------------------------------------------------------------------------- heatmap HTML
def test_heatmap_html_has_traces(hm: Heatmap, tmp_path: Path) -> None:
    path = save_heatmap(hm, tmp_path / "h.html", "combined", plotlyjs="cdn", html="plotly")
    text = path.read_text()
    assert '"type":"heatmap"' in text and '"type":"candlestick"' in text
    assert "estimated notional" in text and "%{z:,.0f} USDT" in text


# ----------------------------------------------------------------------------- trades
def _trade(pair: str, t0: str, t1: str, p0: float, p1: float, short: bool, profit: float) -> dict:
    return {
        "pair": pair,
        "open_date": f"{t0}+00:00",
        "close_date": f"{t1}+00:00",
        "open_rate": p0,
        "close_rate": p1,
        "is_short": short,
        "profit_ratio": profit,
        "profit_abs": profit * 100,
        "exit_reason": "exit_signal" if profit > 0 else "stop_loss",
        "stop_loss_abs": p0 * (1.04 if short else 0.96),
        "initial_stop_loss_abs": p0 * (1.04 if short else 0.96),
        "open_timestamp": int(pd.Timestamp(t0, tz="UTC").value // 10**6),
        "close_timestamp": int(pd.Timestamp(t1, tz="UTC").value // 10**6),
        "amount": 0.01,
        "stake_amount": 100.0,
        "leverage": 3.0,
        "enter_tag": "t",
    }


@pytest.fixture(scope="module")
def backtest_dir(tmp_path_factory: pytest.TempPathFactory, candles: pd.DataFrame) -> Path:
    """A freqtrade-format export: backtest_results/{.last_result.json, *.zip, *.meta.json}."""
    folder = tmp_path_factory.mktemp("backtest_results")
    c = candles.set_index("date")["close"]
    trades = [
        _trade(PAIR, "2025-05-10 04:00", "2025-05-11 09:00", c["2025-05-10 04:00"],
               c["2025-05-11 09:00"], False, 0.02),
        _trade(PAIR, "2025-05-20 10:00", "2025-05-21 02:00", c["2025-05-20 10:00"],
               c["2025-05-21 02:00"], True, -0.01),
        _trade("ETH/USDT:USDT", "2025-05-12 00:00", "2025-05-12 05:00", 2500.0, 2550.0, False,
               0.02),
    ]  # fmt: skip
    stem = "backtest-result-2025-06-01_00-00-00"
    data = {"strategy": {"Demo": {"trades": trades}}, "strategy_comparison": []}
    with zipfile.ZipFile(folder / f"{stem}.zip", "w") as zf:
        zf.writestr(f"{stem}.json", json.dumps(data))
    (folder / f"{stem}.meta.json").write_text(json.dumps({"Demo": {"run_id": "x"}}))
    (folder / ".last_result.json").write_text(json.dumps({"latest_backtest": f"{stem}.zip"}))
    (folder / "plain.json").write_text(json.dumps(data))
    two = {"strategy": {"A": {"trades": trades}, "B": {"trades": []}}}
    (folder / "two.json").write_text(json.dumps(two))
    return folder


def test_load_trades_matches_freqtrade(backtest_dir: Path) -> None:
    ours = load_trades(backtest_dir / "backtest-result-2025-06-01_00-00-00.zip")
    assert len(ours) == 3
    from freqtrade.data.btanalysis import load_backtest_data

    theirs = load_backtest_data(backtest_dir / "backtest-result-2025-06-01_00-00-00.zip")
    for col in ("pair", "open_date", "close_date", "open_rate", "close_rate", "is_short"):
        assert list(ours[col]) == list(theirs[col]), col
    btc = load_trades(backtest_dir, pair=PAIR)  # folder: the newest result
    assert len(btc) == 2 and set(btc["pair"]) == {PAIR}
    assert len(load_trades(backtest_dir / "plain.json", pair=PAIR)) == 2
    assert len(load_trades(backtest_dir / "two.json", strategy="B")) == 0
    with pytest.raises(ValueError, match="several strategies"):
        load_trades(backtest_dir / "two.json")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_trades(backtest_dir / "missing.zip")


def test_trades_drawn_on_heatmap(hm: Heatmap, backtest_dir: Path, tmp_path: Path) -> None:
    trades = load_trades(backtest_dir, pair=PAIR)
    fig = plot_heatmap(hm, trades=trades, width=900, height=500)
    ax = fig.axes[0]
    by_label = {c.get_label(): c for c in ax.collections}
    for label in ("long entry", "short entry", "exit, profit", "exit, loss", "stop level"):
        assert label in by_label, label
    assert by_label["long entry"].get_offsets()[0][1] == pytest.approx(trades["open_rate"][0])
    assert by_label["short entry"].get_offsets()[0][1] == pytest.approx(trades["open_rate"][1])
    stops = [seg[0][1] for seg in by_label["stop level"].get_segments()]
    assert stops == pytest.approx(list(trades["stop_loss_abs"]))
    html = save_heatmap(hm, tmp_path / "t.html", trades=trades, plotlyjs="cdn", html="plotly")
    text = html.read_text()
    assert "long entry" in text and "short entry" in text and "stop level" in text
    # the web view's export overlays the same trades (entry/exit dates and prices)
    web = save_heatmap(hm, tmp_path / "w.html", trades=trades).read_text()
    data = json.loads(web.split('id="liqsignals-data">', 1)[1].split("</script>", 1)[0])
    shown = trades.loc[
        (trades["close_date"] >= hm.times[0]) & (trades["open_date"] <= hm.times[-1])
    ]
    assert [t["open_rate"] for t in data["trades"]] == pytest.approx(list(shown["open_rate"]))
    assert [t["is_short"] for t in data["trades"]] == list(shown["is_short"])


# ----------------------------------------------------------------------------- map
def test_map_bars_below_and_above_price(lmap: LiquidationMap, tmp_path: Path) -> None:
    fig = plot_map(lmap, range_pct=12, width=1000, height=600, meta={"pair": PAIR})
    ax = fig.axes[0]
    bars = {c.get_label(): c for c in ax.containers}
    long_x = np.array([p.get_x() + p.get_width() / 2 for p in bars["long"]])
    short_x = np.array([p.get_x() + p.get_width() / 2 for p in bars["short"]])
    assert len(long_x) > 20 and len(short_x) > 20
    assert (long_x < lmap.price).all() and (short_x > lmap.price).all()
    # the bars are the map's buckets
    heights = np.array([p.get_height() for p in bars["long"]])
    b = map_buckets(lmap, 2 * 12 / 160, price_range=(lmap.price * 0.88, lmap.price * 1.12))
    np.testing.assert_allclose(heights, b.loc[b["price"] < lmap.price, "long"].to_numpy())
    assert heights.max() > 0
    path = save_map(lmap, tmp_path / "m.png", width=1000, height=600)
    img = read_png(path)
    assert img.shape[:2] == (600, 1000) and distinct_colours(img) > 50


def test_map_html(lmap: LiquidationMap, tmp_path: Path) -> None:
    from liqsignals.plotting import map_figure

    fig = map_figure(lmap, meta={"pair": PAIR})
    kinds = [(t.type, t.name) for t in fig.data]
    assert kinds == [
        ("bar", "long"),
        ("bar", "short"),
        ("scatter", "cumulative long"),
        ("scatter", "cumulative short"),
    ]
    assert (np.asarray(fig.data[0].x) < lmap.price).all()
    assert (np.asarray(fig.data[1].x) > lmap.price).all()
    text = save_map(lmap, tmp_path / "m.html", plotlyjs="cdn", meta={"pair": PAIR}).read_text()
    assert '"name":"long"' in text and '"name":"cumulative short"' in text
    assert "estimated long notional" in text


# ----------------------------------------------------------------------------- command line
def test_cli_heatmap_and_map(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    datadir = str(sample.datadir())
    common = ["--datadir", datadir, "-p", PAIR, "-t", "1h", "--no-progress"]
    out = tmp_path / "heat.png"
    rc = main(["heatmap", *common, "--timerange", "20250401-20250501", "--width", "1000",
               "--height", "560", "--mode", "long", "--colors", "cividis", "--out", str(out)])  # fmt: skip
    assert rc == 0
    assert read_png(out).shape[:2] == (560, 1000)
    assert f"wrote {out}" in capsys.readouterr().out
    html = tmp_path / "heat.html"
    assert main(["heatmap", *common, "--timerange", "20250501-", "--html", "plotly",
                 "--plotlyjs", "cdn", "--out", str(html)]) == 0  # fmt: skip
    assert '"type":"candlestick"' in html.read_text()
    web = tmp_path / "web.html"  # the default: the web view's self-contained page
    assert main(["heatmap", *common, "--timerange", "20250501-", "--out", str(web)]) == 0
    assert 'id="liqsignals-data"' in web.read_text()
    mp = tmp_path / "map.png"
    assert main(["map", *common, "--at", "2025-05-01", "--out", str(mp)]) == 0
    assert read_png(mp).shape[:2] == (900, 1600)


def test_cli_missing_data_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    datadir = tmp_path / "binance"
    rc = main(["heatmap", "--datadir", str(datadir), "-p", PAIR, "-t", "1h", "--no-progress",
               "--out", str(tmp_path / "x.png")])  # fmt: skip
    assert rc == 2
    err = capsys.readouterr().err
    assert "liqsignals heatmap: error:" in err
    assert str(datadir / "futures" / "BTC_USDT_USDT-1h-futures.feather") in err
    assert "freqtrade download-data" in err
    assert not (tmp_path / "x.png").exists()
    rc = main(["map", "--datadir", str(datadir), "-p", PAIR, "-t", "1h", "--no-progress",
               "--out", str(tmp_path / "x.png")])  # fmt: skip
    assert rc == 2 and "freqtrade download-data" in capsys.readouterr().err


def test_cli_two_exchanges_and_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """binance + bybit: the second datadir is the first one's sibling; -c supplies the rest."""
    src = sample.datadir() / "futures" / "BTC_USDT_USDT-1h-futures.feather"
    for ex in ("binance", "bybit"):
        (tmp_path / "data" / ex / "futures").mkdir(parents=True)
        shutil.copy(src, tmp_path / "data" / ex / "futures" / src.name)
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "datadir": str(tmp_path / "data" / "binance"),
                "timeframe": "1h",
                "exchange": {"name": "binance", "pair_whitelist": [PAIR]},
            }
        )
    )
    out = tmp_path / "two.png"
    rc = main(["heatmap", "-c", str(config), "--exchange", "binance,bybit", "--timerange",
               "20250501-", "--no-progress", "--out", str(out)])  # fmt: skip
    assert rc == 0 and out.is_file()
    assert main(["map", "-c", str(config), "--exchange", "binance,bybit", "--no-progress",
                 "--out", str(tmp_path / "two_map.png")]) == 0  # fmt: skip
    from liqsignals.plot_cli import _resolve

    args = argparse.Namespace(
        config=[], exchange="binance,bybit", datadir=[tmp_path / "data" / "binance"],
        pairs=[PAIR], timeframe=None,
    )  # fmt: skip
    r = _resolve(args)
    assert r["exchanges"] == [
        ("binance", tmp_path / "data" / "binance"),
        ("bybit", tmp_path / "data" / "bybit"),
    ]
    assert r["timeframe"] == "1h"
    args.datadir = [tmp_path / "a", tmp_path / "b", tmp_path / "c"]
    with pytest.raises(ValueError, match="one per exchange"):
        _resolve(args)
    # only bybit missing: the error names bybit's file
    (tmp_path / "data" / "bybit" / "futures" / src.name).unlink()
    rc = main(["map", "-c", str(config), "--exchange", "binance,bybit", "--no-progress",
               "--out", str(tmp_path / "x.png")])  # fmt: skip
    assert rc == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "data" / "bybit" / "futures" / src.name) in err
    assert "--exchange bybit" in err


def test_cli_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("heatmap", "map"):
        with pytest.raises(SystemExit) as exc:
            main([command, "--help"])
        assert exc.value.code == 0
        text = capsys.readouterr().out
        assert "examples:" in text and f"liqsignals {command} -p BTC/USDT:USDT" in text
        assert "--datadir" in text and "--exchange" in text


def test_two_exchange_heatmap_is_the_sum(candles: pd.DataFrame) -> None:
    """What the command does for --exchange a,b: common grid via like=, then a sum."""
    from liqsignals.heatmap import combine_heatmaps

    a = liquidation_heatmap(candles, window="1w", max_times=40, max_bins=100)
    other = candles.copy()
    other["volume"] *= 3
    b = liquidation_heatmap(other, window="1w", like=a)
    both = combine_heatmaps([a, b])
    np.testing.assert_allclose(both.combined, 4 * a.combined, rtol=1e-4, atol=1.0)
