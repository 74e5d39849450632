"""Pictures of liquidation heatmaps and liquidation maps: PNG (matplotlib) and HTML (the web
view's static export for heatmaps, :mod:`liqsignals.web.export`; plotly on request and for maps).

* **Heatmap** (:func:`plot_heatmap`, :func:`heatmap_figure`): time on x, price on y, colour the
  estimated liquidation notional per price row (black -> blue -> green -> yellow, or the
  colour-blind-safe ``"cividis"``), scaled by ``sqrt`` or ``log`` and clipped at a high percentile
  so clusters stand out (the log scale's floor is the median non-empty cell, 1 to 3 decades below
  the top: :func:`color_limits`); the candles drawn on top; optionally the trades of a freqtrade
  backtest (entries, exits coloured by profit, stop levels). The matrices are drawn smoothed
  along price (:func:`~liqsignals.heatmap.smooth_along_price`, ``smooth=False`` for the raw
  rows). PNG and HTML draw the same cells with the same colour limits; the colour bar and the
  hover state the row height, the small print the columns' time step and the smoothing.
* **Liquidation map** (:func:`plot_map`, :func:`map_figure`): x = price, bars of estimated long
  notional below the current price and short notional above it, cumulative curves (how much a move
  from the current price would liquidate) on a second axis, a line at the current price and the
  largest clusters labelled.

:func:`save_heatmap` and :func:`save_map` pick the format from the file suffix (``.png`` or
``.html``). matplotlib and plotly are imported inside the functions, never at module import;
PNGs are drawn on an Agg canvas (no GUI, no pyplot state) at an exact pixel size.

Example
-------
>>> from liqsignals import sample
>>> from liqsignals.heatmap import liquidation_heatmap
>>> from liqsignals.plotting import save_heatmap
>>> hm = liquidation_heatmap(sample.load_candles("BTC/USDT:USDT", "1h"), window="1w",
...                          start="2025-04-01", max_bins=600)            # doctest: +SKIP
>>> save_heatmap(hm, "heatmap.png", mode="combined")                      # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from liqsignals._time import to_utc_datetime, utc_dates
from liqsignals.extras import ensure
from liqsignals.fileio import atomic_path, atomic_write_text
from liqsignals.heatmap import (
    LEVERAGE_BUCKET_NAMES,
    MODES,
    Heatmap,
    LiquidationMap,
    cumulative_levels,
    cumulative_liquidations,
    map_buckets,
    smooth_along_price,
    top_clusters,
)

# pictures need the plot extra: a clear ImportError naming it, at import time
ensure("matplotlib", "PNG pictures")
ensure("plotly", "interactive HTML pictures")

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.colors import Colormap, Normalize
    from matplotlib.figure import Figure

__all__ = [
    "COLOR_SCHEMES",
    "HTML_OPTIONS",
    "PNG_OPTIONS",
    "SCALES",
    "color_limits",
    "heatmap_figure",
    "liquidation_cmap",
    "load_trades",
    "map_figure",
    "plot_heatmap",
    "plot_map",
    "save_heatmap",
    "save_map",
]

#: ``colors`` choices: the default black -> blue -> green -> yellow scale, and matplotlib maps
#: that stay readable with colour-vision deficiencies.
COLOR_SCHEMES: tuple[str, ...] = ("default", "cividis", "viridis", "magma")
#: ``scale`` choices for the colour intensity.
SCALES: tuple[str, ...] = ("sqrt", "log", "linear")

# black -> navy -> blue -> teal -> green -> yellow, as in the commercial heatmaps
_DEFAULT_STOPS: tuple[tuple[float, str], ...] = (
    (0.00, "#000000"),
    (0.10, "#0a1238"),
    (0.30, "#1d3f9e"),
    (0.55, "#13a08c"),
    (0.78, "#6fd34f"),
    (1.00, "#fff21a"),
)
_BG = "#0b0c10"
_FG = "#d8dce6"
_GRID = "#2a2e39"
# candles: white / red, colours the heatmap scale does not use
_UP = "#eef0f4"
_DOWN = "#ff3b5c"
# trade exits
_WIN = "#39d98a"
_LOSS = "#ff3b5c"
_LONG = "#f6465d"  # long liquidations are forced sells below price
_SHORT = "#2ebd85"  # short liquidations are forced buys above price
# the liquidation map's bars stacked by leverage bucket (low at the bottom): opacity per bucket
_BUCKET_ALPHA = (0.95, 0.6, 0.3)
_BUCKET_LABEL = ("low leverage (<= 10x)", "medium (11-25x)", "high (> 25x)")
#: the band (in % of price) whose 25 / 50 / 75 % cumulative-liquidation prices the map marks:
#: the default read-out band (``ReadoutParams.band_pct``)
MAP_LEVEL_BAND_PCT = 5.0
#: log scale: the floor is the median of the non-empty cells, kept between 1 and 3 decades
#: below the top, so the bulk of thinly filled cells stays dark and a cluster ten times
#: stronger than another gets a visibly different colour
_LOG_DECADES = 3.0
_LOG_MIN_DECADES = 1.0
_LOG_FLOOR_PCT = 50.0
# margins of the main axes, in pixels
_LEFT, _BOTTOM, _TOP = 86, 56, 64


# ----------------------------------------------------------------------------- shared helpers
def liquidation_cmap(colors: str = "default") -> Colormap:
    """The colour map for ``colors`` (see :data:`COLOR_SCHEMES`); zero and NaN draw as its low end."""
    from matplotlib import colormaps
    from matplotlib.colors import LinearSegmentedColormap

    cmap: Colormap
    if colors == "default":
        cmap = LinearSegmentedColormap.from_list("liqsignals", list(_DEFAULT_STOPS), N=256)
    elif colors in COLOR_SCHEMES:
        cmap = colormaps[colors]
    else:
        raise ValueError(f"colors must be one of {COLOR_SCHEMES}, got {colors!r}")
    low = cmap(0.0)
    return cmap.with_extremes(bad=low, under=low)


def _vmax(z: np.ndarray, clip_pct: float) -> float:
    if not 0 < clip_pct <= 100:
        raise ValueError(f"clip_pct must be in (0, 100], got {clip_pct!r}")
    pos = z[z > 0]
    if pos.size == 0:
        return 1.0
    v = float(np.percentile(pos, clip_pct))
    return v if v > 0 else float(pos.max())


def color_limits(z: np.ndarray, scale: str, clip_pct: float) -> tuple[float, float]:
    """``(vmin, vmax)`` of the colour scale, the same for PNG and HTML.

    ``vmax`` is the ``clip_pct`` percentile of the non-empty cells; ``vmin`` is 0 for ``sqrt``
    and ``linear``, and for ``log`` the median of the non-empty cells, kept between 1 and 3
    decades below ``vmax``.
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    vmax = _vmax(z, clip_pct)
    if scale != "log":
        return 0.0, vmax
    pos = z[z > 0]
    floor = float(np.percentile(pos, _LOG_FLOOR_PCT)) if pos.size else vmax / 10**_LOG_DECADES
    floor = min(max(floor, vmax / 10**_LOG_DECADES), vmax / 10**_LOG_MIN_DECADES)
    return floor, vmax


def _norm(scale: str, vmax: float, vmin: float = 0.0) -> Normalize:
    from matplotlib.colors import LogNorm, Normalize, PowerNorm

    if scale == "sqrt":
        return PowerNorm(gamma=0.5, vmin=0.0, vmax=vmax, clip=True)
    if scale == "log":
        return LogNorm(vmin=vmin if vmin > 0 else vmax / 10**_LOG_DECADES, vmax=vmax, clip=True)
    if scale == "linear":
        return Normalize(vmin=0.0, vmax=vmax, clip=True)
    raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")


def _fmt_money(x: float, _pos: Any = None) -> str:
    """``1234567`` -> ``"1.23M"``."""
    a = abs(x)
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if a >= div:
            return f"{x / div:.3g}{suffix}"
    return f"{x:.3g}"


def _fmt_price(x: float, _pos: Any = None) -> str:
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 1:
        return f"{x:,.2f}"
    return f"{x:.4g}"


def _quote(meta: dict[str, Any]) -> str:
    pair = str(meta.get("pair") or "")
    if "/" in pair:
        return pair.split("/", 1)[1].split(":", 1)[0]
    return str(meta.get("quote") or "quote")


def _time_edges(t: np.ndarray) -> np.ndarray:
    """Column edges in matplotlib date numbers: column ``i`` spans ``[t_i, t_i + step)``."""
    step = float(np.median(np.diff(t))) if len(t) > 1 else 1.0 / 24
    return np.concatenate([t, [t[-1] + step]])


def _group_candles(
    o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, size: int
) -> tuple[np.ndarray, ...]:
    """Merge runs of ``size`` columns into one candle; returns first/last column and OHLC."""
    n = len(c)
    starts = np.arange(0, n, size)
    ends = np.minimum(starts + size, n) - 1
    go, gh, gl, gc = (np.full(len(starts), np.nan) for _ in range(4))
    for i, (a, b) in enumerate(zip(starts, ends, strict=True)):
        seg = slice(a, b + 1)
        ok = np.flatnonzero(~np.isnan(c[seg]))
        if ok.size == 0:
            continue
        go[i] = o[seg][ok[0]]
        gc[i] = c[seg][ok[-1]]
        gh[i] = np.nanmax(h[seg])
        gl[i] = np.nanmin(lo[seg])
    return starts, ends, go, gh, gl, gc


def _new_figure(width: int, height: int, dpi: int) -> Figure:
    from matplotlib.figure import Figure

    for name, v in (("width", width), ("height", height), ("dpi", dpi)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    if width < 300 or height < 200:
        raise ValueError(f"picture too small ({width} x {height} px); use at least 300 x 200")
    return Figure(figsize=(width / dpi, height / dpi), dpi=dpi, facecolor=_BG)


def _style_axes(ax: Any) -> None:
    ax.set_facecolor(_BG)
    for spine in ax.spines.values():
        spine.set_color(_GRID)
    ax.tick_params(colors=_FG, labelsize=9)
    ax.xaxis.label.set_color(_FG)
    ax.yaxis.label.set_color(_FG)


def _axes_rect(width: int, height: int, right_px: int) -> tuple[float, float, float, float]:
    left, bottom, top = _LEFT, _BOTTOM, _TOP
    return (
        left / width,
        bottom / height,
        (width - left - right_px) / width,
        (height - bottom - top) / height,
    )


def _titles(fig: Figure, title: str, note: str) -> None:
    """Title and, under it, the small print, left-aligned above the axes."""
    width, height = fig.get_size_inches() * fig.dpi
    fig.text(_LEFT / width, 1 - 24 / height, title, color=_FG, fontsize=13, fontweight="bold")
    fig.text(_LEFT / width, 1 - 44 / height, note, color="#8a90a0", fontsize=8)


def _save_png(fig: Figure, path: Path) -> Path:
    """Draw on an Agg canvas at the figure's exact pixel size and write an RGB PNG.

    The pictures are opaque, so the alpha channel is dropped and Pillow's optimiser is used:
    lossless, and a quarter or so smaller than matplotlib's RGBA output.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(rgba[..., :3])).save(tmp, format="PNG", optimize=True)
    return path


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in (".png", ".html", ".htm"):
        raise ValueError(f"{path}: unknown picture format {path.suffix!r}; use .png or .html")
    return "png" if suffix == ".png" else "html"


def _note(meta: dict[str, Any], model: Any = None) -> str:
    """Small print under a picture: what the colours are and which model made them."""
    window = meta.get("window") or (model.to_dict().get("window") if model is not None else None)
    leverage = meta.get("leverage") or (model.leverage if model is not None else None)
    parts = [str(x) for x in (meta.get("exchange"),) if x]
    if window:
        parts.append(f"window {window}")
    if leverage:
        parts.append(f"leverage {leverage}")
    return "estimated from candles by liqsignals (" + ", ".join(parts) + ")"


# ----------------------------------------------------------------------------- backtest trades
def load_trades(
    path: str | Path, pair: str | None = None, strategy: str | None = None
) -> pd.DataFrame:
    """Trades of a freqtrade backtest result, read without importing freqtrade.

    Parameters
    ----------
    path : str or Path
        ``backtest-result-*.zip`` or ``.json`` as ``freqtrade backtesting --export trades``
        writes them, or the ``backtest_results`` folder (its ``.last_result.json`` names the
        newest), as accepted by freqtrade's ``load_backtest_data``.
    pair : str, optional
        Keep only this pair's trades.
    strategy : str, optional
        Needed when the result holds several strategies.

    Returns
    -------
    DataFrame
        One row per trade, sorted by ``open_date``: ``pair``, ``open_date``, ``close_date`` (UTC),
        ``open_rate``, ``close_rate`` (quote), ``is_short`` (bool), ``profit_ratio``,
        ``profit_abs`` (stake currency), ``exit_reason``, ``stop_loss_abs`` and
        ``initial_stop_loss_abs`` (quote; NaN when not exported), plus whatever else freqtrade
        exported (``leverage``, ``enter_tag``, ...).
    """
    file = Path(path)
    if file.is_dir():
        pointer = file / ".last_result.json"
        if not pointer.is_file():
            raise FileNotFoundError(f"{pointer} does not exist: no backtest results in {file}")
        file = file / json.loads(pointer.read_text())["latest_backtest"]
    if not file.is_file():
        raise FileNotFoundError(
            f"backtest result {file} does not exist; create one with "
            f"`freqtrade backtesting ... --export trades`"
        )
    try:
        if file.suffix == ".zip":
            with zipfile.ZipFile(file) as zf:
                data = json.loads(zf.read(file.with_suffix(".json").name))
        else:
            data = json.loads(file.read_text())
    except (KeyError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        raise ValueError(f"{file}: not a freqtrade backtest result ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("strategy"), dict):
        raise ValueError(f"{file}: not a freqtrade backtest result (no 'strategy' object)")
    strategies = data["strategy"]
    if strategy is None:
        if len(strategies) != 1:
            raise ValueError(
                f"{file} holds several strategies {sorted(strategies)}; choose one with --strategy"
            )
        strategy = next(iter(strategies))
    if strategy not in strategies:
        raise ValueError(f"{file}: no strategy {strategy!r}; available: {sorted(strategies)}")
    df = pd.DataFrame(strategies[strategy].get("trades", []))
    base = ["pair", "open_date", "close_date", "open_rate", "close_rate", "is_short"]
    if df.empty:
        return pd.DataFrame(columns=[*base, "profit_ratio", "stop_loss_abs"])
    df["open_date"] = to_utc_datetime(df["open_date"])
    df["close_date"] = to_utc_datetime(df["close_date"])
    if "is_short" not in df.columns:
        df["is_short"] = False
    df["is_short"] = df["is_short"].fillna(False).astype(bool)
    for col in ("profit_ratio", "profit_abs", "stop_loss_abs", "initial_stop_loss_abs"):
        df[col] = pd.to_numeric(df[col], errors="coerce") if col in df.columns else np.nan
    if pair is not None:
        df = df.loc[df["pair"] == pair]
    return df.sort_values("open_date", kind="stable").reset_index(drop=True)


def _trades_in(trades: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    if trades is None or len(trades) == 0:
        return pd.DataFrame()
    t = trades.loc[(trades["close_date"] >= start) & (trades["open_date"] <= end)]
    return t.reset_index(drop=True)


# ----------------------------------------------------------------------------- heatmap (PNG)
def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


def _heatmap_title(hm: Heatmap, mode: str) -> str:
    pair = hm.meta.get("pair") or ""
    tf = hm.meta.get("timeframe") or ""
    side = {"long": "long", "short": "short", "combined": "long + short"}[mode]
    head = " ".join(x for x in (str(pair), str(tf)) if x)
    return f"{head}  estimated liquidation heatmap ({side})".strip()


def _fmt_td(td: pd.Timedelta) -> str:
    """``Timedelta("13h30m")`` -> ``"13h 30m"``; ``"1d"``, ``"15m"``."""
    secs = int(td.total_seconds())
    parts = []
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if secs >= n:
            parts.append(f"{secs // n}{unit}")
            secs %= n
    return " ".join(parts) or "0s"


def _display(hm: Heatmap, smooth: bool | float) -> Heatmap:
    """The heatmap as drawn: smoothed along price unless ``smooth`` is False (a number: its
    standard deviation in bp, see :func:`~liqsignals.heatmap.smooth_along_price`)."""
    if smooth is False or smooth is None:
        return hm
    if smooth is True:
        return smooth_along_price(hm)
    return smooth_along_price(hm, float(smooth))


def _row_bp(hm: Heatmap, factor: int = 1) -> float:
    return hm.model.grid.span_bp(hm.bins_per_row * factor)


def _colorbar_label(row_bp: float, quote: str, scale: str, sep: str = " ") -> str:
    return f"estimated liquidations{sep}per {row_bp:.0f} bp row ({quote}, {scale})"


def _resolution(times: pd.DatetimeIndex, n_rows: int, row_bp: float, hm: Heatmap) -> str:
    """What one cell is: the column step, the row height and the display smoothing."""
    step = pd.Timedelta(np.median(np.diff(times.asi8))) if len(times) > 1 else None
    cols = f"{len(times)} columns" + (f" every {_fmt_td(step)}" if step is not None else "")
    text = f"{cols}, {n_rows} rows of {row_bp:.0f} bp"
    sm = hm.meta.get("smooth_bp")
    if sm:
        text += f", smoothed along price (sigma {sm:.0f} bp)"
    return text


#: picture options and their defaults (PNG); ``**options`` of the drawing functions
PNG_OPTIONS: dict[str, Any] = {
    "colors": "default",
    "scale": "sqrt",
    "clip_pct": 99.5,
    "smooth": True,
    "candles": True,
    "max_candles": 240,
    "width": 1600,
    "height": 900,
    "dpi": 100,
}
#: the same for interactive HTML
HTML_OPTIONS: dict[str, Any] = {
    "colors": "default",
    "scale": "sqrt",
    "clip_pct": 99.5,
    "smooth": True,
    "max_times": None,
    "max_bins": None,
    "max_candles": 800,
    "width": None,
    "height": None,
}


def picture_options(options: dict[str, Any], defaults: dict[str, Any]) -> tuple[Any, ...]:
    """``defaults`` overridden by ``options`` (in the defaults' order); unknown names raise."""
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise ValueError(f"unknown picture option(s) {unknown}; known: {sorted(defaults)}")
    return tuple(options.get(k, v) for k, v in defaults.items())


def plot_heatmap(
    hm: Heatmap,
    mode: str = "combined",
    *,
    trades: pd.DataFrame | None = None,
    title: str | None = None,
    **options: Any,
) -> Figure:
    """Draw a heatmap with matplotlib (Agg canvas, no pyplot).

    Parameters
    ----------
    hm : Heatmap
    mode : ``"long"``, ``"short"`` or ``"combined"``
    colors : one of :data:`COLOR_SCHEMES`
    scale : ``"sqrt"`` (default), ``"log"`` (see :func:`color_limits`) or ``"linear"``
    clip_pct : float
        Colour saturates at this percentile of the non-zero cells.
    smooth : bool or float
        Display smoothing along price (default True: the width
        :func:`~liqsignals.heatmap.smooth_along_price` chooses; a number: its sigma in bp;
        False: the raw rows).
    candles : bool
        Draw candles (merged to at most ``max_candles``); otherwise the close line.
    trades : DataFrame, optional
        From :func:`load_trades`: entries (triangles: up long, down short), exits (circles, green
        for profit, red for loss), the path between them and stop levels (dashed).
    width, height, dpi : picture size in pixels and its resolution.

    Returns
    -------
    matplotlib.figure.Figure
        ``fig.axes[0]`` is the heatmap; its ``images[0]`` holds the matrix.
    """
    import matplotlib.dates as mdates
    from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

    colors, scale, clip_pct, smooth, candles, max_candles, width, height, dpi = picture_options(
        options, PNG_OPTIONS
    )
    _check_mode(mode)
    hm = _display(hm, smooth)
    z = hm.matrix(mode)
    cmap = liquidation_cmap(colors)
    vmin, vmax = color_limits(z, scale, clip_pct)
    norm = _norm(scale, vmax, vmin)
    fig = _new_figure(width, height, dpi)
    ax = fig.add_axes(_axes_rect(width, height, right_px=120))
    cax = fig.add_axes(
        ((width - 104) / width, _BOTTOM / height, 14 / width, (height - _BOTTOM - _TOP) / height)
    )
    _style_axes(ax)
    _style_axes(cax)

    t = mdates.date2num(utc_dates(hm.times))
    xe = _time_edges(t)
    data = np.ma.masked_less_equal(z.T, 0) if scale == "log" else z.T
    mesh = ax.pcolorfast(xe, hm.edges, data, cmap=cmap, norm=norm)
    ax.set_xlim(xe[0], xe[-1])
    ax.set_ylim(hm.edges[0], hm.edges[-1])

    if candles and np.isfinite(hm.close).any():
        size = max(1, math.ceil(len(t) / max(1, max_candles)))
        a, b, o, h, lo, c = _group_candles(hm.open, hm.high, hm.low, hm.close, size)
        x = (xe[a] + xe[b + 1]) / 2
        w = (xe[b + 1] - xe[a]) * 0.7
        up = c >= o
        col = np.where(up, _UP, _DOWN)
        ok = np.isfinite(c)
        ax.vlines(x[ok], lo[ok], h[ok], colors=col[ok], linewidth=0.8, zorder=3)
        body = np.maximum(np.abs(c - o), (hm.edges[-1] - hm.edges[0]) * 4e-4)
        ax.bar(
            x[ok],
            body[ok],
            width=w[ok],
            bottom=np.minimum(o, c)[ok],
            color=col[ok],
            edgecolor=col[ok],
            linewidth=0.4,
            zorder=4,
            label="candles",
        )
    else:
        ax.plot(t, hm.close, color="#ffffff", linewidth=0.9, zorder=3, label="close")

    tr = _trades_in(trades, hm.times[0], hm.times[-1]) if trades is not None else pd.DataFrame()
    if len(tr):
        _draw_trades_mpl(ax, tr)

    _date_axis(ax)
    ax.yaxis.set_major_formatter(FuncFormatter(_fmt_price))
    ax.set_ylabel(f"price ({_quote(hm.meta)})")
    ax.grid(color=_GRID, linewidth=0.5, alpha=0.6)
    ax.set_axisbelow(False)
    note = f"{_note(hm.meta, hm.model)}; {_resolution(hm.times, hm.shape[1], hm.row_bp, hm)}"
    _titles(fig, title if title is not None else _heatmap_title(hm, mode),
            note + "; times UTC")  # fmt: skip
    cb = fig.colorbar(mesh, cax=cax)
    if scale != "log":  # the function scale of PowerNorm may show ticks beyond vmax
        vmax = float(norm.vmax or 1.0)
        ticks = MaxNLocator(nbins=7).tick_values(0.0, vmax)
        cb.set_ticks([float(v) for v in ticks if 0.0 <= v <= vmax])
    else:  # 1-2-5 ticks between the floor and the top, in the money format (no 10^k labels)
        lo_k, hi_k = math.floor(math.log10(vmin)), math.ceil(math.log10(vmax))
        cands = [m * 10.0**k for k in range(lo_k, hi_k + 1) for m in (1, 2, 5)]
        cb.set_ticks([v for v in cands if vmin <= v <= vmax])
        cb.ax.yaxis.set_minor_formatter(NullFormatter())
    cb.ax.yaxis.set_major_formatter(FuncFormatter(_fmt_money))
    cb.set_label(_colorbar_label(hm.row_bp, _quote(hm.meta), scale), color=_FG, fontsize=9)
    cb.outline.set_edgecolor(_GRID)
    if len(tr) or not candles:
        leg = ax.legend(loc="upper left", fontsize=8, facecolor=_BG, edgecolor=_GRID)
        for text in leg.get_texts():
            text.set_color(_FG)
    return fig


def _date_axis(ax: Any) -> None:
    """Concise UTC date ticks that name the month on every day tick (``05 May``), not only at
    the month's first tick."""
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(minticks=5, maxticks=12)
    formatter = mdates.ConciseDateFormatter(
        locator,
        formats=["%Y", "%b %Y", "%d %b", "%H:%M", "%H:%M", "%S.%f"],
        zero_formats=["", "%b %Y", "%d %b", "%d %b", "%H:%M", "%H:%M"],
        offset_formats=["", "%Y", "%Y", "%Y-%m-%d", "%Y-%m-%d", "%Y-%m-%d %H:%M"],
    )
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(formatter)


def _draw_trades_mpl(ax: Any, tr: pd.DataFrame) -> None:
    import matplotlib.dates as mdates

    t_in = mdates.date2num(utc_dates(pd.DatetimeIndex(tr["open_date"])))
    t_out = mdates.date2num(utc_dates(pd.DatetimeIndex(tr["close_date"])))
    short = tr["is_short"].to_numpy(dtype=bool)
    win = tr["profit_ratio"].fillna(0).to_numpy() > 0
    for a, b, p0, p1 in zip(t_in, t_out, tr["open_rate"], tr["close_rate"], strict=True):
        ax.plot([a, b], [p0, p1], color="#ffffff", linewidth=0.6, alpha=0.5, zorder=5)
    stop = tr["stop_loss_abs"].to_numpy(dtype=float)
    has = np.isfinite(stop)
    if has.any():
        ax.hlines(
            stop[has],
            t_in[has],
            t_out[has],
            colors="#ff9f1a",
            linestyles="dashed",
            linewidth=0.9,
            zorder=5,
            label="stop level",
        )
    kw = {"s": 46, "edgecolors": "#ffffff", "linewidths": 0.6, "zorder": 6}
    if (~short).any():
        ax.scatter(t_in[~short], tr["open_rate"][~short], marker="^", c="#00d5ff",
                   label="long entry", **kw)  # fmt: skip
    if short.any():
        ax.scatter(t_in[short], tr["open_rate"][short], marker="v", c="#ff7ad9",
                   label="short entry", **kw)  # fmt: skip
    if win.any():
        ax.scatter(t_out[win], tr["close_rate"][win], marker="o", c=_WIN,
                   label="exit, profit", **kw)  # fmt: skip
    if (~win).any():
        ax.scatter(t_out[~win], tr["close_rate"][~win], marker="o", c=_LOSS,
                   label="exit, loss", **kw)  # fmt: skip


# ----------------------------------------------------------------------------- heatmap (HTML)
def _downsample(
    hm: Heatmap, mode: str, max_times: int | None, max_bins: int | None
) -> dict[str, Any]:
    """Fewer columns (every ``k``-th snapshot, the last one kept) and rows (summed); ``None``
    keeps the heatmap's own columns / rows. ``row_bp`` is the height of the resulting rows."""
    z = hm.matrix(mode)
    n_t, n_b = z.shape
    for name, v in (("max_times", max_times), ("max_bins", max_bins)):
        if v is not None and (not isinstance(v, int) or v < 1):
            raise ValueError(f"{name} must be a positive int or None, got {v!r}")
    step = max(1, math.ceil(n_t / max_times)) if max_times else 1
    cols = np.arange(n_t - 1, -1, -step)[::-1]
    f = max(1, math.ceil(n_b / max_bins)) if max_bins else 1
    nb = n_b // f
    lo = n_b - nb * f  # drop the lowest spare rows so the top edge stays
    zz = z[cols][:, lo:].reshape(len(cols), nb, f).sum(axis=2)
    edges = hm.edges[lo::f]
    a = np.r_[0, cols[:-1] + 1]
    o = np.array([hm.open[i] for i in a])
    h = np.array([np.nanmax(hm.high[i : j + 1]) for i, j in zip(a, cols, strict=True)])
    low = np.array([np.nanmin(hm.low[i : j + 1]) for i, j in zip(a, cols, strict=True)])
    return {
        "times": hm.times[cols],
        "edges": edges,
        "prices": np.sqrt(edges[:-1] * edges[1:]),
        "z": zz.astype(np.float32),
        "open": o,
        "high": h,
        "low": low,
        "close": hm.close[cols],
        "row_bp": _row_bp(hm, f),
    }


def _plotly_colorscale(
    colors: str, scale: str, n: int = 33, floor: float = 10**-_LOG_DECADES
) -> list[list[Any]]:
    """A plotly colour scale over raw values ``0 .. vmax`` that reproduces ``scale``.

    Colour position ``u`` sits at value fraction ``u**2`` for ``sqrt`` and
    ``floor**(1 - u)`` for ``log`` (``floor = vmin / vmax``, values below it drawn as the low
    end), so the figure holds the real notional (shown on hover) and no second matrix is needed.
    """
    from matplotlib.colors import to_hex

    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    cmap = liquidation_cmap(colors)
    stops: list[list[Any]] = [[0.0, to_hex(cmap(0.0))]]
    if scale == "log":
        stops.append([float(floor), to_hex(cmap(0.0))])
    for i in range(1, n):
        u = i / (n - 1)
        if scale == "sqrt":
            f = u * u
        elif scale == "log":
            f = floor ** (1 - u)
        else:
            f = u
        stops.append([float(f), to_hex(cmap(u))])
    stops[-1][0] = 1.0
    return stops


def heatmap_figure(
    hm: Heatmap,
    mode: str = "combined",
    *,
    trades: pd.DataFrame | None = None,
    title: str | None = None,
    **options: Any,
) -> Any:
    """An interactive plotly figure of the heatmap.

    A ``Heatmap`` trace (hover: time, price, estimated notional per row of the stated height), a
    ``Candlestick`` trace and, with ``trades``, markers for entries and exits and dashed stop
    levels. The cells are the heatmap's own (the same numbers and colour limits as
    :func:`plot_heatmap`); ``max_times`` / ``max_bins`` reduce them further (keeping snapshots,
    summing price rows; the colour bar and hover then state the summed row height).
    ``height=None`` / ``width=None`` let the figure fill the page (see :func:`save_heatmap`).

    Returns
    -------
    plotly.graph_objects.Figure
    """
    import plotly.graph_objects as go

    (colors, scale, clip_pct, smooth, max_times, max_bins, max_candles, width, height) = (
        picture_options(options, HTML_OPTIONS)
    )
    _check_mode(mode)
    hm = _display(hm, smooth)
    d = _downsample(hm, mode, max_times, max_bins)
    z = d["z"]
    vmin, vmax = color_limits(z, scale, clip_pct)
    quote = _quote(hm.meta)
    x = utc_dates(d["times"])
    row_bp = d["row_bp"]
    fig = go.Figure()
    fig.add_trace(
        go.Heatmap(
            x=x,
            y=d["prices"],
            z=np.ascontiguousarray(z.T),
            zmin=0.0,
            zmax=vmax,
            colorscale=_plotly_colorscale(colors, scale, floor=vmin / vmax if vmin > 0 else 1e-3),
            colorbar={
                "title": {"text": _colorbar_label(row_bp, quote, scale, sep="<br>"),
                          "side": "right"},
                "tickformat": "~s",
            },
            hovertemplate=(
                "%{x|%Y-%m-%d %H:%M} UTC<br>price %{y:,.2f}<br>"
                f"estimated notional %{{z:,.0f}} {quote} per {row_bp:.0f} bp row"
                f"<extra>{mode}</extra>"
            ),
            name=f"liquidations ({mode})",
        )
    )  # fmt: skip
    size = max(1, math.ceil(len(x) / max_candles))
    a, b, o, h, lo, c = _group_candles(d["open"], d["high"], d["low"], d["close"], size)
    fig.add_trace(
        go.Candlestick(
            x=x[b],
            open=o,
            high=h,
            low=lo,
            close=c,
            name="candles",
            increasing={"line": {"color": _UP}},
            decreasing={"line": {"color": _DOWN}},
        )
    )
    tr = _trades_in(trades, hm.times[0], hm.times[-1]) if trades is not None else pd.DataFrame()
    if len(tr):
        _draw_trades_plotly(fig, tr)
    note = f"{_note(hm.meta, hm.model)}; {_resolution(d['times'], z.shape[1], row_bp, hm)}"
    fig.update_layout(
        template="plotly_dark",
        paper_bgcolor=_BG,
        plot_bgcolor=_BG,
        title={
            "text": (title if title is not None else _heatmap_title(hm, mode))
            + f"<br><span style='font-size:11px;color:#8a90a0'>{note}</span>"
        },
        xaxis={
            "rangeslider": {"visible": False},
            "title": {"text": "time (UTC)"},
            "tickformatstops": _PLOTLY_DATE_STOPS,
        },
        yaxis={
            "title": {"text": f"price ({quote})"},
            "range": [d["edges"][0], d["edges"][-1]],
            "hoverformat": ",.2f",
            "tickformat": ",.0f",
        },
        height=height,
        width=width,
        autosize=True,
        margin={"l": 80, "r": 40, "t": 70, "b": 70},
        legend={"orientation": "h", "y": 1.02, "x": 0},
    )
    return fig


#: plotly date ticks that always name the month
_PLOTLY_DATE_STOPS = [
    {"dtickrange": [None, 86_400_000], "value": "%H:%M\n%d %b"},
    {"dtickrange": [86_400_000, "M1"], "value": "%d %b\n%Y"},
    {"dtickrange": ["M1", None], "value": "%b %Y"},
]


def _write_html(fig: Any, path: Path, plotlyjs: str | bool, title: str) -> Path:
    """A dark page whose figure fills the browser window (resizes with it)."""
    import html

    body = fig.to_html(
        include_plotlyjs=plotlyjs,
        full_html=False,
        default_width="100%",
        default_height="100vh",
        config={"responsive": True, "displaylogo": False},
    )
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n"
        f"<style>html, body {{ margin: 0; padding: 0; background: {_BG}; color: {_FG}; "
        "overflow: hidden; }</style>\n</head>\n<body>\n"
        f"{body}\n</body>\n</html>\n"
    )
    atomic_write_text(path, page)
    return path


def _draw_trades_plotly(fig: Any, tr: pd.DataFrame) -> None:
    import plotly.graph_objects as go

    t_in = utc_dates(pd.DatetimeIndex(tr["open_date"]))
    t_out = utc_dates(pd.DatetimeIndex(tr["close_date"]))
    short = tr["is_short"].to_numpy(dtype=bool)
    profit = tr["profit_ratio"].fillna(0).to_numpy() * 100
    reason = tr["exit_reason"].astype(str).to_numpy() if "exit_reason" in tr else [""] * len(tr)
    for name, mask, symbol, color in (
        ("long entry", ~short, "triangle-up", "#00d5ff"),
        ("short entry", short, "triangle-down", "#ff7ad9"),
    ):
        if mask.any():
            fig.add_trace(
                go.Scatter(
                    x=t_in[mask],
                    y=tr["open_rate"][mask],
                    mode="markers",
                    name=name,
                    marker={"symbol": symbol, "size": 10, "color": color,
                            "line": {"color": "white", "width": 1}},
                    hovertemplate="entry %{y:,.2f}<br>%{x|%Y-%m-%d %H:%M}<extra>" + name + "</extra>",
                )
            )  # fmt: skip
    fig.add_trace(
        go.Scatter(
            x=t_out,
            y=tr["close_rate"],
            mode="markers",
            name="exit",
            marker={
                "symbol": "circle",
                "size": 9,
                "color": np.where(profit > 0, _WIN, _LOSS),
                "line": {"color": "white", "width": 1},
            },
            customdata=[[float(p), str(r)] for p, r in zip(profit, reason, strict=True)],
            hovertemplate=(
                "exit %{y:,.2f}<br>%{x|%Y-%m-%d %H:%M}<br>profit %{customdata[0]:.2f} %"
                "<br>%{customdata[1]}<extra>exit</extra>"
            ),
        )
    )
    stop = tr["stop_loss_abs"].to_numpy(dtype=float)
    has = np.isfinite(stop)
    if has.any():
        xs: list[Any] = []
        ys: list[Any] = []
        for a, b, s in zip(t_in[has], t_out[has], stop[has], strict=True):
            xs += [a, b, None]
            ys += [s, s, None]
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines",
                name="stop level",
                line={"color": "#ff9f1a", "dash": "dash", "width": 1},
                hovertemplate="stop %{y:,.2f}<extra></extra>",
            )
        )


def save_heatmap(
    hm: Heatmap,
    path: str | Path,
    mode: str = "combined",
    *,
    width: int = 1600,
    height: int = 900,
    dpi: int = 100,
    plotlyjs: str | bool = True,
    html: str = "web",
    **kwargs: Any,
) -> Path:
    """Write the heatmap to ``path``: ``.png`` (matplotlib, ``width`` x ``height`` pixels) or
    ``.html``.

    HTML, ``html="web"`` (default): the page of ``liqsignals serve`` as one self-contained file
    (:mod:`liqsignals.web.export`: the web view's own ``app.js``/``style.css`` inlined, the cells
    inline in the server's encoding with the PNG's colour limits, exact hover notional; no
    server, no CDN). ``kwargs``: ``colors``, ``scale``, ``clip_pct``, ``smooth``, ``trades`` and
    ``lmap`` (a :func:`liqsignals.web.payload.map_payload` shown beside it).
    ``html="plotly"``: a plotly figure on a dark page (``plotlyjs=True`` embeds plotly.js so the
    file works offline, ``"cdn"`` links it); ``kwargs`` go to :func:`heatmap_figure`.
    PNG: ``kwargs`` go to :func:`plot_heatmap`.

    Returns
    -------
    Path
        The written file.
    """
    path = Path(path)
    if _suffix(path) == "png":
        return _save_png(
            plot_heatmap(hm, mode, width=width, height=height, dpi=dpi, **kwargs), path
        )
    kwargs = {k: v for k, v in kwargs.items() if k not in ("candles", "max_candles")}
    if html == "web":
        return _save_web_html(hm, path, mode, **kwargs)
    if html != "plotly":
        raise ValueError(f"html must be 'web' or 'plotly', got {html!r}")
    kwargs.pop("lmap", None)
    fig = heatmap_figure(hm, mode, width=None, height=None, **kwargs)
    return _write_html(fig, path, plotlyjs, _heatmap_title(hm, mode))


_WEB_OPTIONS: dict[str, Any] = {
    "colors": "default",
    "scale": "sqrt",
    "clip_pct": 99.5,
    "smooth": True,
    "trades": None,
    "lmap": None,
}


def _save_web_html(hm: Heatmap, path: Path, mode: str, **options: Any) -> Path:
    """The web view's static export of ``hm`` as drawn (smoothed, the PNG's colour limits)."""
    from liqsignals.web.export import write_heatmap_html

    colors, scale, clip_pct, smooth, trades, lmap = picture_options(options, _WEB_OPTIONS)
    _check_mode(mode)
    shown = _display(hm, smooth)
    limits = color_limits(shown.matrix(mode), scale, clip_pct)
    tr = _trades_in(trades, hm.times[0], hm.times[-1]) if trades is not None else None
    return write_heatmap_html(
        shown,
        path,
        mode,
        colors=colors,
        scale=scale,
        clip=clip_pct,
        limits=limits,
        trades=tr,
        lmap=lmap,
        title=_heatmap_title(hm, mode),
        note=f"{_note(hm.meta, hm.model)}; "
        f"{_resolution(shown.times, shown.shape[1], shown.row_bp, shown)}; {scale} scale",
    )


# ----------------------------------------------------------------------------- liquidation map
def _map_data(
    lmap: LiquidationMap, range_pct: float, bucket_pct: float | None, top: int
) -> dict[str, Any]:
    if not 0 < range_pct < 100:
        raise ValueError(f"range_pct must be in (0, 100), got {range_pct!r}")
    if lmap.price <= 0 or not math.isfinite(lmap.price):
        raise ValueError("the map has no current price (no candle processed)")
    lo, hi = lmap.price * (1 - range_pct / 100), lmap.price * (1 + range_pct / 100)
    bucket = bucket_pct if bucket_pct is not None else 2 * range_pct / 160
    buckets = map_buckets(lmap, bucket, price_range=(lo, hi))
    cum = cumulative_liquidations(lmap)
    cum = cum.loc[(cum["price"] >= lo) & (cum["price"] <= hi)]
    clusters = top_clusters(lmap, n=top, bucket_pct=bucket) if top > 0 else None
    if clusters is not None:
        clusters = clusters.loc[(clusters["price"] >= lo) & (clusters["price"] <= hi)]
    levels = cumulative_levels(lmap, band_pct=min(MAP_LEVEL_BAND_PCT, range_pct))
    return {"buckets": buckets, "cum": cum, "clusters": clusters, "lo": lo, "hi": hi,
            "levels": levels}  # fmt: skip


def _stack_buckets_mpl(
    ax: Any, b: pd.DataFrame, w: np.ndarray, below: np.ndarray, above: np.ndarray
) -> list[Any]:
    """The map's bars per side stacked by leverage bucket (low at the bottom, fainter above);
    returns the bucket segments' containers."""
    out = []
    for side, mask, color in (("long", below, _LONG), ("short", above, _SHORT)):
        bottom = np.zeros(int(mask.sum()))
        for j, name in enumerate(LEVERAGE_BUCKET_NAMES):
            h = b[f"{side}_{name}"].to_numpy()[mask]
            out.append(
                ax.bar(b["price"].to_numpy()[mask], h, width=w[mask], bottom=bottom, color=color,
                       alpha=_BUCKET_ALPHA[j], linewidth=0, label=f"{side} {name}")
            )  # fmt: skip
            bottom = bottom + h
    return out


def _bucket_shapes(b: pd.DataFrame, mask: pd.Series, side: str, color: str) -> list[dict]:
    """Plotly rectangles stacking one side's bars by leverage bucket (low at the bottom)."""
    sub = b.loc[mask]
    half = ((sub["high"] - sub["low"]) * 0.85 / 2).to_numpy()
    x = sub["price"].to_numpy()
    bottom = np.zeros(len(sub))
    shapes: list[dict] = []
    for j, name in enumerate(LEVERAGE_BUCKET_NAMES):
        h = sub[f"{side}_{name}"].to_numpy()
        for i in np.flatnonzero(h > 0):
            shapes.append(
                {
                    "type": "rect", "xref": "x", "yref": "y", "layer": "below",
                    "x0": x[i] - half[i], "x1": x[i] + half[i],
                    "y0": bottom[i], "y1": bottom[i] + h[i],
                    "fillcolor": color, "opacity": _BUCKET_ALPHA[j], "line": {"width": 0},
                    "name": f"{side}-{name}",
                }
            )  # fmt: skip
        bottom = bottom + h
    return shapes


def _map_title(lmap: LiquidationMap, meta: dict[str, Any]) -> str:
    """The book's instant is the close of the map's candle: ``time`` plus the timeframe
    (``meta["timeframe"]``); without a timeframe the candle is named instead."""
    from liqsignals.model import timeframe_to_timedelta

    pair = meta.get("pair") or ""
    when = ""
    if lmap.time is not None:
        try:
            step = timeframe_to_timedelta(str(meta.get("timeframe") or ""))
        except ValueError:
            when = f"at the close of the {lmap.time:%Y-%m-%d %H:%M} UTC candle"
        else:
            when = f"{lmap.time + step:%Y-%m-%d %H:%M} UTC"
    return f"{pair}  estimated liquidation map  {when}".strip()


def plot_map(
    lmap: LiquidationMap,
    *,
    range_pct: float = 15.0,
    bucket_pct: float | None = None,
    top: int = 3,
    meta: dict[str, Any] | None = None,
    title: str | None = None,
    width: int = 1600,
    height: int = 900,
    dpi: int = 100,
) -> Figure:
    """Draw a liquidation map with matplotlib.

    Parameters
    ----------
    lmap : LiquidationMap
    range_pct : float
        Price axis from ``range_pct`` % below to ``range_pct`` % above the current price.
    bucket_pct : float, optional
        Bar width in % of price (default: 160 bars over the axis).
    top : int
        Label the ``top`` largest clusters per side (0: none).
    meta : dict, optional
        ``pair``, ``exchange``, ``window`` for the title and notes.
    width, height, dpi : picture size in pixels and its resolution.

    Returns
    -------
    matplotlib.figure.Figure
        ``fig.axes[0]`` holds the bars, in two containers labelled ``"long"`` and ``"short"``;
        ``fig.axes[1]`` the cumulative curves.
    """
    from matplotlib.ticker import FuncFormatter

    meta = dict(meta or {})
    d = _map_data(lmap, range_pct, bucket_pct, top)
    b = d["buckets"]
    quote = _quote(meta)
    fig = _new_figure(width, height, dpi)
    ax = fig.add_axes(_axes_rect(width, height, right_px=96))
    _style_axes(ax)
    ax2 = ax.twinx()
    _style_axes(ax2)
    ax.set_zorder(ax2.get_zorder() + 1)  # bars and labels above the curves
    ax.patch.set_visible(False)

    w = (b["high"] - b["low"]).to_numpy() * 0.85
    below = (b["price"] < lmap.price).to_numpy()
    above = (b["price"] > lmap.price).to_numpy()
    split = f"long_{LEVERAGE_BUCKET_NAMES[0]}" in b.columns
    bucket_handles = _stack_buckets_mpl(ax, b, w, below, above) if split else []
    # the side's total per bar: filled without a split, else the outline around the stack
    fill: dict[str, Any] = {"fill": False, "linewidth": 0.7} if split else {"alpha": 0.9}
    bl = ax.bar(b["price"][below], b["long"][below], width=w[below], color=_LONG,
                edgecolor=_LONG, label="long liquidations (below price)", **fill)  # fmt: skip
    bs = ax.bar(b["price"][above], b["short"][above], width=w[above], color=_SHORT,
                edgecolor=_SHORT, label="short liquidations (above price)", **fill)  # fmt: skip
    bl.set_label("long")
    bs.set_label("short")
    cum = d["cum"]
    ax2.plot(cum["price"], cum["long_cum"], color="#ff8a9a", linewidth=1.6,
             label="cumulative long (fall to price)")  # fmt: skip
    ax2.plot(cum["price"], cum["short_cum"], color="#7fe3b7", linewidth=1.6,
             label="cumulative short (rise to price)")  # fmt: skip
    ax2.fill_between(cum["price"], cum["long_cum"].fillna(0), color="#ff8a9a", alpha=0.07)
    ax2.fill_between(cum["price"], cum["short_cum"].fillna(0), color="#7fe3b7", alpha=0.07)
    ax.axvline(lmap.price, color="#ffffff", linestyle="--", linewidth=1.0, zorder=6)
    ymax = float(max(b["long"].max(), b["short"].max(), 1.0)) if len(b) else 1.0
    ax.set_ylim(0, ymax * 1.22)
    ax2.set_ylim(0, None)
    ax.text(lmap.price, ymax * 1.17, f" price {_fmt_price(lmap.price)} ", color=_BG,
            fontsize=9, ha="center", va="center", zorder=8,
            bbox={"boxstyle": "round,pad=0.25", "fc": "#ffffff", "ec": "none"})  # fmt: skip
    clusters = d["clusters"]
    if clusters is not None:
        for i, row in enumerate(clusters.itertuples()):
            bar_top = row.notional
            ax.annotate(
                f"{_fmt_price(row.price)}\n{_fmt_money(row.notional)}",
                xy=(row.price, bar_top),
                xytext=(0, 14 + 12 * (i % 2)),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=8,
                color=_LONG if row.side == "long" else _SHORT,
                arrowprops={"arrowstyle": "-", "color": "#8a90a0", "lw": 0.6},
                bbox={"boxstyle": "round,pad=0.2", "fc": _BG, "ec": "none", "alpha": 0.75},
                zorder=9,
            )
    # per side, where a move from the price has liquidated 25 / 50 / 75 % of the side's band
    for lv in d["levels"].dropna(subset=["price"]).itertuples():
        color = _LONG if lv.side == "long" else _SHORT
        ax.axvline(lv.price, color=color, linestyle=":", linewidth=0.9, alpha=0.8, zorder=5)
        ax.text(lv.price, ymax * 1.08, f"{lv.share * 100:.0f}%", color=color, fontsize=7,
                ha="center", va="center", zorder=8, gid=f"level-{lv.side}-{lv.share:g}")  # fmt: skip
    ax.set_xlim(d["lo"], d["hi"])
    ax.xaxis.set_major_formatter(FuncFormatter(_fmt_price))
    ax.yaxis.set_major_formatter(FuncFormatter(_fmt_money))
    ax2.yaxis.set_major_formatter(FuncFormatter(_fmt_money))
    ax.set_xlabel(f"price ({quote})")
    ax.set_ylabel(f"estimated liquidations per bar ({quote})")
    ax2.set_ylabel(f"cumulative ({quote})")
    ax.grid(color=_GRID, linewidth=0.5, alpha=0.6)
    handles: list[Any] = [bl, bs, *ax2.get_lines()]
    labels = [
        "long liquidations (below price)",
        "short liquidations (above price)",
        "cumulative long (fall to price)",
        "cumulative short (rise to price)",
    ]
    # in the top margin, right of the title: inside the axes it would cover the cumulative curves
    leg = fig.legend(
        handles,
        labels,
        loc="upper right",
        bbox_to_anchor=(1 - 96 / width, 1 - 4 / height),
        ncols=2,
        fontsize=8,
        facecolor=_BG,
        edgecolor=_GRID,
        framealpha=1.0,
    )
    for text in leg.get_texts():
        text.set_color(_FG)
    note = _note(meta)
    if bucket_handles:
        note += "; bars stacked by leverage, from the bottom: " + ", ".join(_BUCKET_LABEL)
        note += " (solid to faint)"
    _titles(fig, title if title is not None else _map_title(lmap, meta), note)
    return fig


def map_figure(
    lmap: LiquidationMap,
    *,
    range_pct: float = 15.0,
    bucket_pct: float | None = None,
    top: int = 3,
    meta: dict[str, Any] | None = None,
    title: str | None = None,
    width: int | None = None,
    height: int | None = None,
) -> Any:
    """An interactive plotly liquidation map (same content as :func:`plot_map`).

    Hover follows the price under the pointer (all traces at that price), the current price is
    labelled on its line, and the title gives the book's instant (the candle's close).

    Returns
    -------
    plotly.graph_objects.Figure
        Bar traces ``"long"`` and ``"short"``, cumulative line traces on ``yaxis2``.
    """
    import plotly.graph_objects as go

    meta = dict(meta or {})
    d = _map_data(lmap, range_pct, bucket_pct, top)
    b = d["buckets"]
    quote = _quote(meta)
    below = b["price"] < lmap.price
    above = b["price"] > lmap.price
    fig = go.Figure()
    split = f"long_{LEVERAGE_BUCKET_NAMES[0]}" in b.columns
    shapes: list[dict] = []
    for name, mask, col, color in (
        ("long", below, "long", _LONG),
        ("short", above, "short", _SHORT),
    ):
        sub = b.loc[mask]
        hover = f"price %{{x:,.2f}}<br>estimated {name} notional %{{y:,.0f}} {quote}"
        extra: dict[str, Any] = {"marker": {"color": color}}
        if split:
            # the total as an outline around the bar stacked by leverage bucket (shapes)
            shapes += _bucket_shapes(b, mask, name, color)
            parts = [f"{name}_{k}" for k in LEVERAGE_BUCKET_NAMES]
            extra = {
                "marker": {"color": "rgba(0,0,0,0)", "line": {"color": color, "width": 1}},
                "customdata": sub[parts].to_numpy(),
            }
            hover += "".join(
                f"<br>{label} %{{customdata[{j}]:,.0f}}" for j, label in enumerate(_BUCKET_LABEL)
            )
        fig.add_trace(
            go.Bar(
                x=sub["price"],
                y=sub[col],
                width=(sub["high"] - sub["low"]) * 0.85,
                name=name,
                hovertemplate=hover + "<extra></extra>",
                **extra,
            )
        )
    cum = d["cum"]
    for name, col, color in (
        ("cumulative long", "long_cum", "#ff8a9a"),
        ("cumulative short", "short_cum", "#7fe3b7"),
    ):
        fig.add_trace(
            go.Scatter(
                x=cum["price"],
                y=cum[col],
                mode="lines",
                name=name,
                yaxis="y2",
                line={"color": color},
                hovertemplate=f"price %{{x:,.2f}}<br>{name} %{{y:,.0f}} {quote}<extra></extra>",
            )
        )
    # the stacked segments first (the price and level lines added below come after them)
    fig.update_layout(shapes=shapes)
    annotations: list[dict[str, Any]] = []
    if split:
        annotations.append(
            {
                "xref": "paper", "yref": "paper", "x": 1.0, "y": 1.0, "xanchor": "right",
                "showarrow": False, "font": {"size": 10},
                "text": "bars stacked by leverage: " + ", ".join(
                    f"{label} {a:.0%}" for label, a in zip(_BUCKET_LABEL, _BUCKET_ALPHA, strict=True)
                ) + " opacity",
            }
        )  # fmt: skip
    clusters = d["clusters"]
    if clusters is not None:
        for row in clusters.itertuples():
            annotations.append(
                {
                    "x": row.price,
                    "y": row.notional,
                    "text": f"{_fmt_price(row.price)}<br>{_fmt_money(row.notional)}",
                    "showarrow": True,
                    "arrowhead": 0,
                    "ay": -30,
                    "font": {"size": 10, "color": _LONG if row.side == "long" else _SHORT},
                }
            )
    fig.add_vline(
        x=lmap.price,
        line={"color": "white", "dash": "dash", "width": 1},
        annotation={
            "text": f"price {_fmt_price(lmap.price)}",
            "font": {"color": _BG, "size": 11},
            "bgcolor": "#ffffff",
            "yanchor": "bottom",
        },
        annotation_position="top",
    )
    fig.update_layout(
        template="plotly_dark",
        paper_bgcolor=_BG,
        plot_bgcolor=_BG,
        hovermode="x unified",
        title={"text": title if title is not None else _map_title(lmap, meta)},
        xaxis={
            "title": {"text": f"price ({quote})"},
            "range": [d["lo"], d["hi"]],
            "hoverformat": ",.2f",
            "tickformat": ",.0f",
        },
        yaxis={"title": {"text": f"estimated liquidations ({quote})"}, "tickformat": "~s"},
        yaxis2={
            "title": {"text": f"cumulative ({quote})"},
            "overlaying": "y",
            "side": "right",
            "showgrid": False,
            "rangemode": "tozero",
        },
        bargap=0,
        annotations=annotations,
        height=height,
        width=width,
        legend={"orientation": "h", "y": 1.06, "x": 0},
    )
    # per side, where a move from the price has liquidated 25 / 50 / 75 % of the side's band
    for lv in d["levels"].dropna(subset=["price"]).itertuples():
        fig.add_vline(
            x=lv.price,
            line={"color": _LONG if lv.side == "long" else _SHORT, "dash": "dot", "width": 1},
            annotation={"text": f"{lv.share * 100:.0f}%", "font": {"size": 9}},
            annotation_position="top",
            name=f"level-{lv.side}-{lv.share:g}",
        )
    return fig


def save_map(
    lmap: LiquidationMap,
    path: str | Path,
    *,
    width: int = 1600,
    height: int = 900,
    dpi: int = 100,
    plotlyjs: str | bool = True,
    **kwargs: Any,
) -> Path:
    """Write the liquidation map to ``path`` (``.png`` or ``.html``, see :func:`save_heatmap`);
    ``kwargs`` go to :func:`plot_map` / :func:`map_figure`.

    Returns
    -------
    Path
        The written file.
    """
    path = Path(path)
    if _suffix(path) == "png":
        return _save_png(plot_map(lmap, width=width, height=height, dpi=dpi, **kwargs), path)
    fig = map_figure(lmap, height=None, **kwargs)
    return _write_html(fig, path, plotlyjs, _map_title(lmap, kwargs.get("meta") or {}))
