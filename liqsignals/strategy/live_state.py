"""Long windows in a running bot: each pair's engine state on disk, restored at start.

freqtrade caps a live bot's ``startup_candle_count`` (about five times the exchange's candle
limit), below what a window of a month or longer needs. With the pair state on, the strategy

* saves, after every candle, the pair's engine (:func:`liqsignals.persist.save_engine`: atomic,
  versioned, fingerprinted) and a sidecar file (the short tail of candles and engine rows the
  derived columns look back over, and the feature rows of the bot's frame), both under
  ``<user_data>/liqsignals_state/``;
* restores both at start and then feeds the engine only the candles after the state's last one;
* without a usable state (none yet, corrupt, another model, a gap the bot's candles do not fill)
  builds the engine from the pair's stored history in the datadir (what ``freqtrade
  download-data`` fetched) followed by the bot's candles, and logs why and how much history it
  used.

:class:`StateStream` is the stream the pair state needs: a
:class:`~liqsignals.engine.LiquidationEngine` plus that tail, deriving the feature columns with
:func:`liqsignals.features.derive_features` (the batch function), so its values are the batch
values over the same history.
"""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from liqsignals.columns import FEATURE_COLUMNS
from liqsignals.features import FeatureStream, derive_features
from liqsignals.fileio import atomic_path
from liqsignals.model import LiquidationModel
from liqsignals.persist import load_engine, model_fingerprint, save_engine

__all__ = [
    "SIDECAR_FORMAT",
    "SIDECAR_VERSION",
    "PairState",
    "StateStore",
    "StateStream",
    "datadir_history",
]

logger = logging.getLogger(__name__)

SIDECAR_FORMAT = "liqsignals-live-pair-state"
SIDECAR_VERSION = 1
_PRICE_COLUMNS = ("high", "low", "close")


class StateStream:
    """Candle-by-candle ``liq_*`` columns from an engine and a bounded tail (same values as
    :func:`liqsignals.liquidation_features` over the same history).

    ``update_arrays`` advances the engine by the new candles and derives their columns over the
    kept tail plus those candles; the tail holds ``keep`` rows (every lookback of the derived
    columns plus one)."""

    def __init__(self, model: LiquidationModel, **lookbacks: Any) -> None:
        proto = FeatureStream(model, **lookbacks)
        self.engine = proto.engine
        self.readout = proto.readout
        r = self.readout
        self.keep = int(r.intensity_lookback + r.atr_period + r.drift_lookback + 2)
        self.levels = list(self.engine.columns)
        self.tail: dict[str, np.ndarray] = {c: np.zeros(0) for c in (*_PRICE_COLUMNS, *self.levels)}

    @property
    def columns(self) -> list[str]:
        return list(FEATURE_COLUMNS)

    @property
    def fingerprint(self) -> str:
        """The engine model's fingerprint plus the lookbacks of the derived columns."""
        return f"{model_fingerprint(self.engine.model)}:{json.dumps(self.readout_key())}"

    def readout_key(self) -> dict[str, Any]:
        r = self.readout
        return {
            "atr_period": int(r.atr_period),
            "intensity_lookback": int(r.intensity_lookback),
            "drift_lookback": int(r.drift_lookback),
            "readout": repr(r),
        }

    def update_arrays(self, dates: np.ndarray, values: Mapping[str, np.ndarray]) -> np.ndarray:
        dates = np.asarray(dates, dtype=np.int64)
        n = dates.shape[0]
        if n == 0:
            return np.zeros((0, len(FEATURE_COLUMNS)))
        frame = pd.DataFrame(
            {"date": pd.to_datetime(dates, utc=True), **{c: values[c] for c in values}}
        )
        levels = self.engine.update_many(frame)[self.levels].to_numpy(dtype=np.float64)
        tail = {
            c: np.concatenate([self.tail[c], np.asarray(values[c], float)]) for c in _PRICE_COLUMNS
        }
        for i, c in enumerate(self.levels):
            tail[c] = np.concatenate([self.tail[c], levels[:, i]])
        feats = derive_features(
            pd.DataFrame({c: tail[c] for c in _PRICE_COLUMNS}),
            pd.DataFrame({c: tail[c] for c in self.levels}),
            self.readout,
        )
        self.tail = {c: v[-self.keep :].copy() for c, v in tail.items()}
        return feats[list(FEATURE_COLUMNS)].to_numpy(dtype=np.float64)[-n:]


@dataclass
class PairState:
    """What a restored pair state hands the live cache."""

    stream: StateStream
    features: np.ndarray
    dates: np.ndarray
    values: np.ndarray
    columns: tuple[str, ...]


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)


class StateStore:
    """The pair state files of one bot: ``<root>/<PAIR>-<timeframe>.engine.npz`` and
    ``.tail.npz``."""

    def __init__(self, root: str | Path, timeframe: str) -> None:
        self.root = Path(root)
        self.timeframe = timeframe

    def paths(self, pair: str) -> tuple[Path, Path]:
        stem = f"{_safe(pair)}-{_safe(self.timeframe)}"
        return self.root / f"{stem}.engine.npz", self.root / f"{stem}.tail.npz"

    def save(
        self,
        pair: str,
        stream: StateStream,
        features: np.ndarray,
        dates: np.ndarray,
        values: np.ndarray,
        columns: tuple[str, ...],
    ) -> None:
        """Engine first, then the sidecar that names the engine's last candle (a crash between
        the two leaves files that disagree, which :meth:`load` refuses)."""
        self.root.mkdir(parents=True, exist_ok=True)
        engine_path, tail_path = self.paths(pair)
        save_engine(stream.engine, engine_path)
        meta = {
            "format": SIDECAR_FORMAT,
            "version": SIDECAR_VERSION,
            "pair": pair,
            "timeframe": self.timeframe,
            "fingerprint": stream.fingerprint,
            "candles_processed": int(stream.engine.candles_processed),
            "last_date": int(dates[-1]) if len(dates) else None,
            "columns": list(columns),
            "tail": list(stream.tail),
        }
        arrays: dict[str, Any] = {f"tail_{i}": v for i, v in enumerate(stream.tail.values())}
        with atomic_path(tail_path) as tmp, open(tmp, "wb") as fh:
            np.savez(
                fh,
                meta=np.array(json.dumps(meta)),
                features=np.asarray(features, dtype=np.float64),
                dates=np.asarray(dates, dtype=np.int64),
                values=np.asarray(values, dtype=np.float64),
                **arrays,
            )

    def load(self, pair: str, stream: StateStream) -> PairState:
        """The saved state of ``pair`` on top of ``stream`` (a fresh stream of the current
        model). ``FileNotFoundError`` when there is none; ``ValueError`` saying why when the
        files are corrupt, disagree, or were made with another model or lookbacks."""
        engine_path, tail_path = self.paths(pair)
        if not engine_path.exists() and not tail_path.exists():
            raise FileNotFoundError(engine_path)
        engine = load_engine(engine_path, model=stream.engine.model)  # ValueError on mismatch
        try:
            with np.load(tail_path, allow_pickle=False) as npz:
                members = {k: np.asarray(npz[k]) for k in npz.files}
        except FileNotFoundError:
            raise ValueError(f"{tail_path}: missing (the engine file has no sidecar)") from None
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            raise ValueError(f"{tail_path}: corrupt pair state sidecar ({exc})") from None
        try:
            meta = json.loads(str(members["meta"][()]))
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"{tail_path}: corrupt pair state sidecar (meta: {exc})") from None
        if not isinstance(meta, dict) or meta.get("format") != SIDECAR_FORMAT:
            raise ValueError(f"{tail_path}: not a liqsignals pair state sidecar")
        if meta.get("version") != SIDECAR_VERSION:
            raise ValueError(f"{tail_path}: sidecar version {meta.get('version')!r} unsupported")
        if meta.get("fingerprint") != stream.fingerprint:
            raise ValueError(f"{tail_path}: saved with another model or lookbacks")
        if meta.get("pair") != pair or meta.get("timeframe") != self.timeframe:
            raise ValueError(f"{tail_path}: saved for another pair or timeframe")
        columns = tuple(str(c) for c in meta.get("columns", []))
        names = [str(c) for c in meta.get("tail", [])]
        if names != list(stream.tail):
            raise ValueError(f"{tail_path}: corrupt pair state sidecar (tail columns)")
        feats, dates, values = (members.get(k) for k in ("features", "dates", "values"))
        n = -1 if dates is None else dates.shape[0]
        ok = (
            dates is not None
            and feats is not None
            and values is not None
            and dates.dtype == np.int64
            and dates.ndim == 1
            and n > 0
            and feats.shape == (n, len(FEATURE_COLUMNS))
            and values.shape == (n, len(columns))
            and bool(np.all(np.diff(dates) > 0))
        )
        if not ok or feats is None or dates is None or values is None:
            raise ValueError(f"{tail_path}: corrupt pair state sidecar (frame arrays)")
        tail = {}
        for i, c in enumerate(names):
            arr = members.get(f"tail_{i}")
            if arr is None or arr.dtype != np.float64 or arr.ndim != 1 or len(arr) > stream.keep:
                raise ValueError(f"{tail_path}: corrupt pair state sidecar (tail {c!r})")
            tail[c] = arr
        if len({len(v) for v in tail.values()}) > 1:
            raise ValueError(f"{tail_path}: corrupt pair state sidecar (tail lengths)")
        last = engine.last_date
        last_ns = None if last is None else int(last.value)
        if (
            meta.get("candles_processed") != engine.candles_processed
            or meta.get("last_date") != last_ns
            or last_ns != int(dates[-1])
        ):
            raise ValueError(
                f"{engine_path}: the engine file and its sidecar describe different candles"
            )
        stream.engine = engine
        stream.tail = tail
        return PairState(stream, feats, dates, values, columns)


def datadir_history(
    datadir: str | Path | None, pair: str, timeframe: str, candle_type: str
) -> pd.DataFrame | None:
    """The pair's stored candles (``date, open, high, low, close, volume``) in a freqtrade
    datadir, or ``None`` when there is no file."""
    if not datadir:
        return None
    from liqsignals.data.datadir import data_path, read_frame

    path = data_path(datadir, pair, timeframe, candle_type)
    if not path.exists():
        return None
    df = read_frame(path)
    return df[["date", "open", "high", "low", "close", "volume"]].reset_index(drop=True)
