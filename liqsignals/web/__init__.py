"""Web view of the liquidation heatmap and map (``liqsignals serve``): Starlette + uvicorn, plain
JavaScript and canvas served from the package (no CDN). See docs/web.md."""

from __future__ import annotations

__all__ = ["app", "cli"]
