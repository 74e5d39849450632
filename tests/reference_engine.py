"""A slow, obviously-correct reference of the cohort model, for checking the numba kernel.

Every position is a separate record (side, bin, mass, date); every step is written the plain way
(lists, loops, direct multiplication), with none of the kernel's tricks (global survival factor,
wipe sequence numbers, cohort ring, array offsets).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from liqsignals.model import LiquidationModel


@dataclass
class Position:
    side: str  # "long" / "short"
    k: int  # absolute bin of its liquidation price
    mass: float  # quote notional
    date: int  # ns
    bucket: str = "low"  # leverage bucket: low <= 10x < mid <= 25x < high


def _triangular_strata(low: float, high: float, mode: float, n: int) -> list[float]:
    """Inverse CDF of the triangular distribution at the stratum midpoints (i + 0.5) / n."""
    if high <= low:
        return [mode] * n
    out = []
    for i in range(n):
        u = (i + 0.5) / n
        if u < (mode - low) / (high - low):
            out.append(low + math.sqrt(u * (high - low) * (mode - low)))
        else:
            out.append(high - math.sqrt((1 - u) * (high - low) * (high - mode)))
    return out


class ReferenceEngine:
    def __init__(self, model: LiquidationModel) -> None:
        self.m = model
        self.logb = model.bin_log_width()
        f_long, f_short, w = model.liquidation_factors()
        self.f_long, self.f_short, self.w = list(f_long), list(f_short), list(w)
        self.buckets = [
            "low" if lev <= 10 else "mid" if lev <= 25 else "high" for lev in model.leverages or ()
        ]
        self.positions: list[Position] = []
        self.prev_close: float | None = None
        self.prev_date: int | None = None
        self.prev_oi = math.nan
        self.totals = dict.fromkeys(("opened", "liquidated", "closed", "expired"), 0.0)

    # bins ---------------------------------------------------------------------------------
    def centre(self, k: int) -> float:
        return math.exp((k + 0.5) * self.logb)

    def book(self, side: str) -> dict[int, float]:
        b: dict[int, float] = {}
        for p in self.positions:
            if p.side == side:
                b[p.k] = b.get(p.k, 0.0) + p.mass
        return b

    # one candle ---------------------------------------------------------------------------
    def step(
        self,
        date: int,
        o: float,
        h: float,
        lo: float,
        c: float,
        v: float,
        oi: float = math.nan,
        tb: float = math.nan,
        lsr: float = math.nan,
    ) -> dict:
        m = self.m
        window = m.window_td.value
        dt = 0 if self.prev_date is None else date - self.prev_date
        filler = v <= 0

        kept = []
        for p in self.positions:
            if date - p.date >= window:
                self.totals["expired"] += p.mass
            else:
                kept.append(p)
        self.positions = kept

        liq = {"long": 0.0, "short": 0.0}
        if not filler:
            path_lo = lo if self.prev_close is None else min(lo, self.prev_close)
            path_hi = h if self.prev_close is None else max(h, self.prev_close)
            kept = []
            for p in self.positions:
                reached = (
                    self.centre(p.k) >= path_lo if p.side == "long" else self.centre(p.k) <= path_hi
                )
                if reached:
                    liq[p.side] += p.mass
                else:
                    kept.append(p)
            self.positions = kept
        self.totals["liquidated"] += liq["long"] + liq["short"]

        have_doi = not math.isnan(oi) and not math.isnan(self.prev_oi) and self.prev_oi > 0
        hl = m.half_life_td
        frac = 0.0
        if have_doi:
            if oi < self.prev_oi:
                frac = (self.prev_oi - oi) / self.prev_oi
        elif hl is not None and dt > 0:
            frac = 1 - 0.5 ** (dt / hl.value)
        for p in self.positions:
            self.totals["closed"] += p.mass * frac
            p.mass *= 1 - frac

        opened = {"long": 0.0, "short": 0.0}
        if not filler:
            typical = (h + lo + c) / 3
            notional = (
                max(oi - self.prev_oi, 0.0) * typical if have_doi else m.participation * v * typical
            )
            if not math.isnan(tb) and v > 0:
                share = tb / v
            elif not math.isnan(lsr) and lsr > 0:
                share = lsr / (1 + lsr)
            elif h > lo:
                share = 0.5 + 0.5 * m.direction_tilt * (c - o) / (h - lo)
            else:
                share = 0.5
            share = min(max(share, 0.0), 1.0)
            opened = {"long": notional * share, "short": notional * (1 - share)}
            entries = _triangular_strata(lo, h, typical, m.entry_samples)
            for side, factors in (("long", self.f_long), ("short", self.f_short)):
                for f, w, bucket in zip(factors, self.w, self.buckets, strict=True):
                    for e in entries:
                        k = math.floor((math.log(e) + math.log(f)) / self.logb)
                        mass = opened[side] * w / len(entries)
                        if mass > 0:
                            self.positions.append(Position(side, k, mass, date, bucket))
            self.totals["opened"] += notional

        if not math.isnan(oi):
            self.prev_oi = oi
        elif not filler:
            self.prev_oi = math.nan
        self.prev_close = c
        self.prev_date = date
        row = {
            "liq_long_liquidated": liq["long"],
            "liq_short_liquidated": liq["short"],
            "liq_long_total": sum(p.mass for p in self.positions if p.side == "long"),
            "liq_short_total": sum(p.mass for p in self.positions if p.side == "short"),
            "liq_long_opened": opened["long"],
            "liq_short_opened": opened["short"],
        }
        row.update(self.summaries(c))
        return row

    # summaries ----------------------------------------------------------------------------
    def _bin(self, price: float) -> int:
        return math.floor(math.log(price) / self.logb)

    def summaries(self, close: float) -> dict:
        m = self.m

        def floor(mass: float) -> float:  # below the absolute floor a band holds only dust
            return mass if mass >= m.cluster_min_mass else 0.0

        longs, shorts = self.book("long"), self.book("short")
        kc = self._bin(close)
        kb_lo, kb_hi = (
            self._bin(close * (1 - m.band_pct / 100)),
            self._bin(close * (1 + m.band_pct / 100)),
        )
        kr_lo = self._bin(close * (1 - m.cluster_range_pct / 100))
        kr_hi = self._bin(close * (1 + m.cluster_range_pct / 100))
        out = {
            "liq_long_band": floor(sum(longs.get(k, 0.0) for k in range(kb_lo, kc + 1))),
            "liq_short_band": floor(sum(shorts.get(k, 0.0) for k in range(kc, kb_hi + 1))),
        }
        for side, a, b in (("long", kb_lo, kc), ("short", kc, kb_hi)):
            for bucket in ("low", "mid", "high"):
                mass = sum(
                    p.mass
                    for p in self.positions
                    if p.side == side and p.bucket == bucket and a <= p.k <= b
                )
                out[f"liq_{side}_band_{bucket}"] = (
                    floor(mass) if out[f"liq_{side}_band"] > 0 else 0.0
                )
        long_bins = list(range(kc, kr_lo - 1, -1))  # scanning away from price
        short_bins = list(range(kc, kr_hi + 1))
        long_total = sum(longs.get(k, 0.0) for k in long_bins)
        short_total = sum(shorts.get(k, 0.0) for k in short_bins)
        both = long_total + short_total
        best = None
        scores: list[tuple[float, float, float]] = []
        for name, book, bins, total, sign in (
            ("long", longs, long_bins, long_total, -1.0),
            ("short", shorts, short_bins, short_total, 1.0),
        ):
            for slot in ("cluster", "cluster2", "cluster3", "wall"):
                for key in ("price", "low", "high", "size"):
                    out[f"liq_{name}_{slot}_{key}"] = math.nan
            if total <= 0:
                continue
            clusters = self.clusters(book, bins, total)
            wall = None
            for i, (ks, size) in enumerate(clusters):
                centre = math.exp(sum(book.get(k, 0.0) * (k + 0.5) for k in ks) / size * self.logb)
                values = {
                    "price": centre,
                    "low": math.exp(min(ks) * self.logb),
                    "high": math.exp((max(ks) + 1) * self.logb),
                    "size": size,
                }
                if i < 3:
                    slot = ("cluster", "cluster2", "cluster3")[i]
                    for key, v in values.items():
                        out[f"liq_{name}_{slot}_{key}"] = v
                # the wall: the largest cluster with its centre within the band (nearest of equal)
                if abs(centre / close - 1) <= m.band_pct / 100 and (
                    wall is None or size > wall["size"]
                ):
                    wall = values
                dist = max(abs(centre / close - 1) * 100, 100 * (math.exp(self.logb) - 1))
                score = (size / both) / dist**m.magnet_distance_power
                scores.append((score, centre, sign))
                if best is None or score > best[0]:
                    best = (score, centre, sign)
            if wall is not None:
                for key, v in wall.items():
                    out[f"liq_{name}_wall_{key}"] = v
        out["liq_magnet_price"] = best[1] if best else math.nan
        out["liq_magnet_side"] = best[2] if best else math.nan
        out["liq_magnet_score"] = best[0] if best else math.nan
        total_score = sum(sc for sc, _, _ in scores)
        out["liq_magnet_mean_price"] = math.nan
        out["liq_magnet_pull"] = math.nan
        if total_score > 0:
            out["liq_magnet_mean_price"] = sum(sc * c for sc, c, _ in scores) / total_score
            out["liq_magnet_pull"] = sum(sc * sg for sc, _, sg in scores) / total_score
        for key in ("above_pct", "below_pct", "above_width_pct", "below_width_pct"):
            out[f"liq_gap_{key}"] = math.nan
        n_all = kr_hi - kr_lo + 1
        if both > 0:
            thr = max(m.gap_factor * both / n_all, m.cluster_min_mass)

            def meaningful(k: int) -> bool:
                mass = longs.get(k, 0.0) + shorts.get(k, 0.0)
                return mass > 0 and mass >= thr

            def lower(k: int) -> float:
                return math.exp(k * self.logb)

            for name, ks in (
                ("above", range(kc + 1, kr_hi + 1)),
                ("below", range(kc - 1, kr_lo - 1, -1)),
            ):
                flags = [meaningful(k) for k in ks]
                if True not in flags:
                    continue
                i = flags.index(True)
                k = ks[i]
                edge = lower(k) if name == "above" else lower(k + 1)  # the edge facing the close
                out[f"liq_gap_{name}_pct"] = abs(edge / close - 1) * 100
                if i > 0:  # thin bins between the close and that mass: the gap starts at the close
                    out[f"liq_gap_{name}_width_pct"] = abs(edge - close) / close * 100
                    continue
                # mass next to the close: the gap is the thin run behind it
                if False not in flags:
                    continue
                j = flags.index(False)
                if True not in flags[j:]:
                    continue
                nxt = flags.index(True, j)
                if name == "above":
                    width = lower(ks[nxt]) - lower(ks[j])
                else:
                    width = lower(ks[j] + 1) - lower(ks[nxt] + 1)
                out[f"liq_gap_{name}_width_pct"] = width / close * 100
        return out

    def clusters(self, book: dict[int, float], bins: list[int], total: float) -> list:
        """Runs of dense bins along ``bins`` (ordered away from price), bridging up to
        ``cluster_max_gap_bins`` non-dense bins; kept when they hold ``cluster_min_share``."""
        m = self.m
        thr = m.cluster_dense_factor * total / len(bins)
        dense = [book.get(k, 0.0) > 0 and book.get(k, 0.0) >= thr for k in bins]
        found = []
        i = 0
        while i < len(bins):
            if not dense[i]:
                i += 1
                continue
            run = [i]
            j = i + 1
            while j < len(bins):
                if dense[j]:
                    run.append(j)
                    j += 1
                    continue
                nxt = j
                while nxt < len(bins) and not dense[nxt] and nxt - j < m.cluster_max_gap_bins:
                    nxt += 1
                if nxt < len(bins) and dense[nxt] and nxt - j <= m.cluster_max_gap_bins:
                    run.extend(range(j, nxt + 1))
                    j = nxt + 1
                else:
                    break
            ks = [bins[x] for x in run]
            size = sum(book.get(k, 0.0) for k in ks)
            if size > 0 and size >= m.cluster_min_share * total and size >= m.cluster_min_mass:
                found.append((ks, size))
            i = j
        return found


def reference_levels(df: pd.DataFrame, model: LiquidationModel) -> pd.DataFrame:
    eng = ReferenceEngine(model)
    dates = pd.to_datetime(df["date"], utc=True).dt.as_unit("ns").astype("int64").to_numpy()
    rows = []

    def opt(name: str, i: int) -> float:
        return float(df[name].iloc[i]) if name in df.columns else math.nan

    for i in range(len(df)):
        rows.append(
            eng.step(
                int(dates[i]), float(df["open"].iloc[i]), float(df["high"].iloc[i]),
                float(df["low"].iloc[i]), float(df["close"].iloc[i]), float(df["volume"].iloc[i]),
                opt("open_interest", i), opt("taker_buy_volume", i), opt("long_short_ratio", i),
            )
        )  # fmt: skip
    out = pd.DataFrame(rows, index=df.index)
    warm = dates < dates[0] + model.window_td.value
    out.loc[warm, :] = np.nan
    return out
