"""Pictures that fit their view: one test per defect of the "Pictures" issue.

Price window from the shown candles and side, a log scale that separates clusters, the same
numbers per colour in PNG and HTML, no single-row stripes on the bundled real candles, the
resolution options honoured and stated, the month on every date tick, a responsive dark HTML
page, the map's title / price label / hover, and errors that say what is available.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from liqsignals import sample
from liqsignals.cli import main
from liqsignals.heatmap import (
    Heatmap,
    liquidation_heatmap,
    liquidation_map,
    smooth_along_price,
)
from liqsignals.plotting import heatmap_figure, map_figure, plot_heatmap, plot_map, save_heatmap

PAIR = "BTC/USDT:USDT"
MONTHS = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"


@pytest.fixture(scope="module")
def c15() -> pd.DataFrame:
    df = sample.load_candles(PAIR, "15m")
    return df.loc[df["date"] >= "2025-04-20"].reset_index(drop=True)


@pytest.fixture(scope="module")
def hm15(c15: pd.DataFrame) -> Heatmap:
    out = liquidation_heatmap(c15, window="1w", start="2025-05-10", max_bins=500, max_times=2000)
    out.meta.update(pair=PAIR, timeframe="15m", exchange="binance")
    return out


def _shown(df: pd.DataFrame, start: str) -> tuple[float, float]:
    part = df.loc[df["date"] >= start]
    return float(part["low"].min()), float(part["high"].max())


# ----------------------------------------------------------------------------- price window
def test_price_window_follows_the_shown_candles_and_side(c15: pd.DataFrame) -> None:
    start = "2025-05-31 12:00"
    lo, hi = _shown(c15, start)
    bin_rel = 10 / 1e4 * 1.01  # edges snap to 10 bp bins
    m = min(max(0.5 * (hi / lo - 1), 0.02), 0.15)  # documented automatic margin
    hm = liquidation_heatmap(c15, window="1w", start=start)
    assert hm.edges[0] == pytest.approx(lo * (1 - m), rel=bin_rel)
    assert hm.edges[-1] == pytest.approx(hi * (1 + m), rel=bin_rel)
    # the candles fill a sizeable part of the height (the issue: about 1 %)
    assert (hi - lo) / (hm.edges[-1] - hm.edges[0]) > 0.2
    long = liquidation_heatmap(c15, window="1w", start=start, side="long")
    assert long.edges[0] == pytest.approx(lo * (1 - m), rel=bin_rel)
    assert long.edges[-1] == pytest.approx(hi * (1 + 0.15 * m), rel=bin_rel)
    short = liquidation_heatmap(c15, window="1w", start=start, side="short")
    assert short.edges[0] == pytest.approx(lo * (1 - 0.15 * m), rel=bin_rel)
    assert short.edges[-1] == pytest.approx(hi * (1 + m), rel=bin_rel)
    wide = liquidation_heatmap(c15, window="1w", start=start, margin=0.10)
    assert wide.edges[0] == pytest.approx(lo * 0.90, rel=bin_rel)
    assert wide.edges[-1] == pytest.approx(hi * 1.10, rel=bin_rel)
    with pytest.raises(ValueError, match="side"):
        liquidation_heatmap(c15, window="1w", start=start, side="both")


def test_cli_heatmap_range_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    common = ["-p", PAIR, "-t", "1h", "--no-progress", "--width", "600", "--height", "400"]
    out = tmp_path / "h.png"
    assert main(["heatmap", *common, "--timerange", "20250520-", "--range", "5",
                 "--mode", "long", "--out", str(out)]) == 0  # fmt: skip
    assert out.is_file()
    assert main(["heatmap", *common, "--range", "150", "--out", str(out)]) == 2
    assert "--range 150" in capsys.readouterr().err


# ----------------------------------------------------------------------------- log scale
def _rgb(fig, value: float) -> np.ndarray:
    img = fig.axes[0].images[0]
    return np.asarray(img.cmap(img.norm(value)))[:3]


def test_log_scale_keeps_clusters_distinguishable(hm15: Heatmap) -> None:
    """A thin background over most cells, a cluster 10x and one 100x stronger: three colours."""
    rng = np.random.default_rng(7)
    n_t, n_b = hm15.shape
    z = rng.lognormal(np.log(1e5), 0.6, size=(n_t, n_b)).astype(np.float32)
    z[:, n_b // 4 : n_b // 4 + 10] = 1e6
    z[:, n_b // 2 : n_b // 2 + 5] = 1e7
    syn = dataclasses.replace(hm15, long=z, short=np.zeros_like(z))
    fig = plot_heatmap(syn, "long", scale="log", smooth=False, width=600, height=400)
    bg, ten, hundred = (_rgb(fig, v) for v in (1e5, 1e6, 1e7))
    assert np.abs(ten - bg).sum() > 0.4 and np.abs(hundred - ten).sum() > 0.4
    # the background stays in the dark end of the scale
    assert fig.axes[0].images[0].norm(1e5) < 0.2


def test_log_scale_does_not_flood_real_pictures(hm15: Heatmap) -> None:
    """Share of non-empty cells in the top 40 % of the log scale: 73 % before the floor."""
    fig = plot_heatmap(hm15, scale="log", width=600, height=400)
    norm = fig.axes[0].images[0].norm
    z = smooth_along_price(hm15).combined
    u = np.ma.filled(norm(z[z > 0]), 0.0)
    assert (u > 0.6).mean() < 0.4


# ----------------------------------------------------------------------------- PNG == HTML
def test_png_and_html_show_the_same_numbers(hm15: Heatmap) -> None:
    for scale in ("sqrt", "log"):
        png = plot_heatmap(hm15, scale=scale, width=600, height=400)
        html = heatmap_figure(hm15, scale=scale)
        trace = html.data[0]
        shown = smooth_along_price(hm15).combined
        np.testing.assert_allclose(np.asarray(trace.z), shown.T, rtol=1e-6)
        norm = png.axes[0].images[0].norm
        assert float(trace.zmax) == pytest.approx(float(norm.vmax), rel=1e-9)
        label = png.axes[1].get_ylabel()
        assert f"per {hm15.row_bp:.0f} bp row" in label
        assert f"per {hm15.row_bp:.0f} bp row" in trace.colorbar.title.text.replace("<br>", " ")
        assert f"per {hm15.row_bp:.0f} bp row" in trace.hovertemplate


# ----------------------------------------------------------------------------- stripes
def stripe_share(z: np.ndarray, x: float = 0.08) -> float:
    """Share of visible cells (a neighbour above 0.1 of the sqrt colour scale) that are darker
    than both price neighbours by more than ``x`` of the colour scale."""
    pos = z[z > 0]
    c = np.sqrt(np.clip(z / np.percentile(pos, 99.5), 0, 1))
    mid, up, dn = c[:, 1:-1], c[:, 2:], c[:, :-2]
    visible = np.maximum(up, dn) > 0.1
    return float(((mid < np.minimum(up, dn) - x) & visible).sum() / visible.sum())


def test_no_single_row_stripes_on_real_candles(hm15: Heatmap) -> None:
    hm1 = liquidation_heatmap(
        sample.load_candles(PAIR, "1h"), window="1w", start="2025-03-01", max_bins=500,
        max_times=2000,
    )  # fmt: skip
    for hm in (hm15, hm1):
        raw = stripe_share(hm.combined)
        shown = stripe_share(smooth_along_price(hm).combined)
        assert raw > 0.02, raw  # the defect is real at the default resolution
        assert shown < 0.005, shown
        assert smooth_along_price(hm).meta["smooth_bp"] >= hm.model.bin_bp
    off = smooth_along_price(hm15, 0)
    assert off is hm15
    total = smooth_along_price(hm15).long.sum(dtype=np.float64)
    assert total == pytest.approx(float(hm15.long.sum(dtype=np.float64)), rel=0.01)


# ----------------------------------------------------------------------------- resolution
def _cells(text: str) -> tuple[int, int, str]:
    m = re.search(r"(\d+) columns every ([0-9dhms ]+), (\d+) rows of (\d+) bp", text)
    assert m, text
    return int(m.group(1)), int(m.group(3)), m.group(2)


def test_resolution_options_honoured_in_png_and_html(tmp_path: Path) -> None:
    out = tmp_path / "h.html"
    args = ["heatmap", "-p", PAIR, "-t", "15m", "--timerange", "20240701-", "--no-progress",
            "--max-columns", "100", "--max-rows", "60", "--plotlyjs", "cdn", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    cols, rows, step = _cells(out.read_text())
    assert cols <= 100 and rows <= 60
    # one year of 15m candles in 100 columns: the stated step is the real one (days, not 15m)
    assert step.startswith("3d")
    png = tmp_path / "h.png"
    assert main([*args[:-1], str(png)]) == 0
    hm = liquidation_heatmap(sample.load_candles(PAIR, "15m"), window="1w", start="2024-07-01",
                             max_times=100, max_bins=60)  # fmt: skip
    fig = heatmap_figure(hm)
    assert np.asarray(fig.data[0].z).shape == (hm.shape[1], hm.shape[0])
    note = " ".join(t.get_text() for t in plot_heatmap(hm, width=600, height=400).texts)
    assert _cells(note)[:2] == (hm.shape[0], hm.shape[1])


# ----------------------------------------------------------------------------- axes, page
def test_month_on_every_date_tick(hm15: Heatmap) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = plot_heatmap(hm15, width=1200, height=500)
    FigureCanvasAgg(fig).draw()
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels() if t.get_text()]
    assert len(labels) >= 4
    assert all(re.search(MONTHS, lab) for lab in labels), labels


def test_html_page_is_dark_responsive_and_formats_match(hm15: Heatmap, tmp_path: Path) -> None:
    path = save_heatmap(hm15, tmp_path / "h.html", plotlyjs="cdn", html="plotly")
    text = path.read_text()
    assert "background: #0b0c10" in text and "100vh" in text and '"responsive": true' in text
    assert 'name="viewport"' in text
    fig = heatmap_figure(hm15)
    assert fig.layout.height is None and fig.layout.paper_bgcolor == "#0b0c10"
    assert fig.layout.yaxis.hoverformat == ",.2f"  # candles hover as the heatmap does
    assert "price %{y:,.2f}" in fig.data[0].hovertemplate


# ----------------------------------------------------------------------------- map
def test_map_title_price_label_hover_and_legend(c15: pd.DataFrame) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    lmap = liquidation_map(c15, window="1w", at="2025-05-20 12:00")
    meta = {"pair": PAIR, "timeframe": "15m"}
    fig = map_figure(lmap, meta=meta)
    assert "2025-05-20 12:15 UTC" in fig.layout.title.text  # the close of the 12:00 candle
    assert fig.layout.hovermode == "x unified"
    assert any(str(a.text).startswith("price ") for a in fig.layout.annotations)
    png = plot_map(lmap, meta=meta, width=1200, height=700)
    FigureCanvasAgg(png).draw()
    leg = png.legends[0].get_window_extent()
    assert leg.y0 >= png.axes[0].get_window_extent().y1 - 1  # above the axes, off the curves
    assert "2025-05-20 12:15 UTC" in png.texts[0].get_text()


# ----------------------------------------------------------------------------- errors
def test_errors_say_what_is_available(c15: pd.DataFrame, capsys) -> None:
    with pytest.raises(ValueError, match="warm-up"):
        liquidation_heatmap(c15, window="1w", end="2025-04-22")
    with pytest.raises(ValueError, match=r"after the data.*2025-06-01 00:00"):
        liquidation_map(c15, window="1w", at="2030-01-01")
    with pytest.raises(ValueError, match="shorter than the candles"):
        liquidation_heatmap(c15, window="10m")
    with pytest.raises(ValueError, match="shorter than the candles"):
        liquidation_map(c15, window="10m")
    rc = main(["heatmap", "-p", PAIR, "-t", "15m", "--timerange", "-20240603", "--no-progress",
               "--out", "x.png"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and "warm-up" in err and "2024-06-01 00:00" in err
    rc = main(["map", "-p", PAIR, "-t", "15m", "--at", "2030-01-01", "--no-progress",
               "--out", "x.png"])  # fmt: skip
    assert rc == 2 and "after the data" in capsys.readouterr().err
    rc = main(["map", "-p", PAIR, "-t", "1h", "--window", "30m", "--no-progress",
               "--out", "x.png"])  # fmt: skip
    assert rc == 2 and "shorter than one 1h candle" in capsys.readouterr().err
