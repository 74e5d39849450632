"""The static export of the web view: one self-contained ``.html`` file, no server, no CDN.

``liqsignals heatmap --out x.html`` writes the page of ``liqsignals serve``: the package's own
``static/index.html`` with ``static/style.css`` and ``static/app.js`` inlined (the same files the
server sends), and the data in a ``<script type="application/json" id="liqsignals-data">``
element in the server's encoding (:func:`liqsignals.web.payload.encode_heatmap`: base64 uint8
colour intensities, one candle per column), plus the float32 cells (gzip, base64) for the exact
hover notional, the trades to overlay and optionally the liquidation map at the last column.
``app.js`` sees that element and draws from it instead of asking a server. Needs neither
starlette nor plotly.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from liqsignals.fileio import atomic_write_text
from liqsignals.heatmap import Heatmap
from liqsignals.web.payload import encode_heatmap, pack_values, rows_top_first

__all__ = ["STATIC", "heatmap_html", "renderer_sources", "trades_payload", "write_heatmap_html"]

STATIC = Path(__file__).resolve().parent / "static"
_CSS_TAG = '<link rel="stylesheet" href="static/style.css">'
_JS_TAG = '<script src="static/app.js"></script>'
_COLORS = ("default", "cividis", "viridis", "magma")


def renderer_sources() -> dict[str, str]:
    """The page, stylesheet and script of the web view, as the server serves them."""
    return {name: (STATIC / name).read_text(encoding="utf-8") for name in ("index.html", "style.css", "app.js")}  # fmt: skip


def _script_safe(text: str) -> str:
    """Text that cannot close the ``<script>``/``<style>`` element it is inlined in."""
    return re.sub(r"</(script|style)", r"<\\/\1", text, flags=re.IGNORECASE)


def trades_payload(trades: pd.DataFrame | None) -> list[dict[str, Any]]:
    """Trades (:func:`liqsignals.plotting.load_trades` rows) as the page overlays them."""
    if trades is None or not len(trades):
        return []
    out = []
    for row in trades.itertuples(index=False):
        pr = float(row.profit_ratio) if hasattr(row, "profit_ratio") else float("nan")
        out.append(
            {
                "open": int(pd.Timestamp(row.open_date).value // 1_000_000),
                "close": int(pd.Timestamp(row.close_date).value // 1_000_000),
                "open_rate": float(row.open_rate),
                "close_rate": float(row.close_rate),
                "is_short": bool(row.is_short),
                "profit_ratio": pr if np.isfinite(pr) else None,
            }
        )
    return out


def heatmap_html(
    hm: Heatmap,
    mode: str = "combined",
    *,
    colors: str = "default",
    scale: str = "sqrt",
    clip: float = 99.5,
    limits: tuple[float, float] | None = None,
    trades: pd.DataFrame | None = None,
    lmap: dict[str, Any] | None = None,
    title: str | None = None,
    note: str | None = None,
) -> str:
    """The self-contained page of ``hm`` (already smoothed/thinned as it should be drawn).

    ``lmap``: a :func:`liqsignals.web.payload.map_payload` to show beside the heatmap (the
    panel is hidden without it). ``title``, ``note``: the page title and the line in its header.
    ``colors``: the colour scale selected when the page opens;
    ``scale``, ``clip``, ``limits``: the colour intensity (:func:`liqsignals.web.payload.quantise`).
    """
    if colors not in _COLORS:
        raise ValueError(f"colors must be one of {_COLORS}, got {colors!r}")
    meta = hm.meta
    pair = str(meta.get("pair", "?"))
    tf = str(meta.get("timeframe", "?"))
    window = str(meta.get("window", hm.model.window))
    exchange = str(meta.get("exchange", "data"))
    payload = {
        **encode_heatmap(hm, mode, scale=scale, clip=clip, limits=limits),
        "pair": pair,
        "timeframe": tf,
    }
    t0, t1 = pd.Timestamp(hm.times[0]), pd.Timestamp(hm.times[-1])
    title = title or f"liqsignals: {pair} {tf} liquidation heatmap ({mode})"
    note = note or (
        f"{exchange} {pair} {tf}, {t0:%Y-%m-%d %H:%M} .. {t1:%Y-%m-%d %H:%M} UTC, window "
        f"{window}, {hm.shape[0]} columns x {hm.shape[1]} rows of {hm.row_bp:.0f} bp, "
        f"{scale} scale clipped at the {clip:g}th percentile (static export)"
    )
    data = {
        "title": title,
        "note": note,
        "meta": {
            "catalogue": {exchange: {pair: [tf]}},
            "presets": [str(meta.get("leverage", "default"))],
            "windows": [window],
            "spans": [f"{t0:%Y-%m-%d} .. {t1:%Y-%m-%d}"],
            "modes": [mode],
            "colors": list(_COLORS),
            "color": colors,
            "trades": trades is not None and len(trades) > 0,
        },
        "heatmap": payload,
        "values": pack_values(rows_top_first(hm, mode)),
        "trades": trades_payload(trades),
        "map": lmap,
    }
    src = renderer_sources()
    page = src["index.html"]
    if _CSS_TAG not in page or _JS_TAG not in page:  # pragma: no cover - guards an edit
        raise RuntimeError("static/index.html no longer links style.css and app.js as expected")
    blob = json.dumps(data, separators=(",", ":"), allow_nan=False)
    page = page.replace(
        "<title>liqsignals: liquidation heatmap</title>", f"<title>{html.escape(title)}</title>"
    )
    page = page.replace(_CSS_TAG, f"<style>\n{_script_safe(src['style.css'])}</style>")
    page = page.replace(
        _JS_TAG,
        f'<script type="application/json" id="liqsignals-data">{_script_safe(blob)}</script>\n'
        f"<script>\n{_script_safe(src['app.js'])}</script>",
    )
    return page


def write_heatmap_html(
    hm: Heatmap, path: str | Path, mode: str = "combined", **kwargs: Any
) -> Path:
    """Write :func:`heatmap_html` to ``path`` atomically; returns the path."""
    path = Path(path)
    atomic_write_text(path, heatmap_html(hm, mode, **kwargs))
    return path
