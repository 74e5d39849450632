"""The model's log price grid, in one place.

Bin ``k`` covers prices ``[B**k, B**(k+1))`` with ``B = 1 + bin_bp/1e4``: the grid is anchored
at price 1, so two models (or two exchanges) with the same ``bin_bp`` share their bins.
:class:`PriceGrid` turns prices into bins and bins (single or grouped ``step`` at a time) back
into edges and centres; the engine, the heatmaps, the maps and the pictures all use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["PriceGrid"]


@dataclass(frozen=True)
class PriceGrid:
    """Log-spaced absolute price bins of ``bin_bp`` basis points.

    >>> g = PriceGrid(10.0)
    >>> int(g.price_to_bin(100.0))
    4607
    >>> bool(g.bin_to_price(4607, 0.0) <= 100.0 < g.bin_to_price(4607, 1.0))
    True
    """

    bin_bp: float
    #: Natural log of the ratio between neighbouring bin edges, ``log1p(bin_bp / 1e4)``.
    log_base: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        bp = float(self.bin_bp)
        if not (math.isfinite(bp) and bp > 0):
            raise ValueError(f"bin_bp must be a positive finite number, got {self.bin_bp!r}")
        object.__setattr__(self, "log_base", math.log1p(bp / 10_000.0))

    def price_to_bin(self, price: float | np.ndarray) -> np.ndarray:
        """Absolute bin index of a price: bin ``k`` covers ``[B**k, B**(k+1))``."""
        return np.floor(np.log(price) / self.log_base).astype(np.int64)

    def centre_to_bin(self, centre: float | np.ndarray) -> np.ndarray:
        """Bin index of a bin's geometric centre (the inverse of ``bin_to_price(k)``), rounded
        so the floating-point error of the centre does not move it to a neighbour."""
        return np.rint(np.log(centre) / self.log_base - 0.5).astype(np.int64)

    def bin_to_price(self, k: np.ndarray | float, where: float = 0.5) -> np.ndarray:
        """Price of bin ``k`` (``where=0``: lower edge, ``0.5``: geometric centre, ``1``: upper);
        ``k`` may be fractional (a position on the grid in bins)."""
        return np.exp((np.asarray(k, dtype=np.float64) + where) * self.log_base)

    def edges(self, k_lo: int, n: int, step: int = 1) -> np.ndarray:
        """The ``n + 1`` edges of ``n`` rows of ``step`` bins each, the first starting at bin
        ``k_lo``: ``B ** (k_lo + step * i)`` for ``i = 0 .. n``."""
        row = np.arange(n + 1, dtype=np.float64)
        return np.exp((k_lo + step * row) * self.log_base)

    def centres(self, k_lo: int, n: int, step: int = 1) -> np.ndarray:
        """Geometric centres of the same ``n`` rows as :meth:`edges`."""
        row = np.arange(n, dtype=np.float64)
        return np.exp((k_lo + step * (row + 0.5)) * self.log_base)

    def span_bp(self, bins: int) -> float:
        """Height of ``bins`` neighbouring bins in basis points of price: ``(B**bins - 1) * 1e4``."""
        return float(((1 + self.bin_bp / 1e4) ** bins - 1) * 1e4)
