"""PriceGrid: the one log price grid (bin k covers [B**k, B**(k+1)), B = 1 + bin_bp/1e4)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from liqsignals.grid import PriceGrid
from liqsignals.model import LiquidationModel


def test_bins_hold_their_prices() -> None:
    g = PriceGrid(10.0)
    # 1.001 ** 4607 = 99.94.., 1.001 ** 4608 = 100.04..: 100 lies in bin 4607
    assert int(g.price_to_bin(100.0)) == 4607
    assert g.bin_to_price(4607, 0.0) == pytest.approx(1.001**4607, rel=1e-12)
    assert g.bin_to_price(4607, 1.0) == pytest.approx(1.001**4608, rel=1e-12)
    assert g.bin_to_price(4607) == pytest.approx(math.sqrt(1.001**4607 * 1.001**4608), rel=1e-12)
    assert g.log_base == pytest.approx(math.log(1.001), rel=1e-12)


def test_centre_to_bin_inverts_centres() -> None:
    g = PriceGrid(7.5)
    k = np.arange(-300, 9000, 37)
    assert np.array_equal(g.centre_to_bin(g.bin_to_price(k)), k)


def test_edges_and_centres_of_grouped_rows() -> None:
    g = PriceGrid(25.0)
    edges = g.edges(100, 4, step=3)
    assert edges.shape == (5,)
    np.testing.assert_allclose(edges, 1.0025 ** np.array([100, 103, 106, 109, 112]), rtol=1e-12)
    centres = g.centres(100, 4, step=3)
    np.testing.assert_allclose(centres, np.sqrt(edges[:-1] * edges[1:]), rtol=1e-12)
    assert g.span_bp(3) == pytest.approx((1.0025**3 - 1) * 1e4, rel=1e-12)


def test_model_uses_the_grid() -> None:
    m = LiquidationModel(bin_bp=12.0)
    assert m.grid == PriceGrid(12.0)
    assert m.bin_log_width() == m.grid.log_base
    assert int(m.price_to_bin(50_000.0)) == int(math.floor(math.log(50_000.0) / math.log(1.0012)))


@pytest.mark.parametrize("bp", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_bin_bp(bp: float) -> None:
    with pytest.raises(ValueError, match="bin_bp"):
        PriceGrid(bp)
