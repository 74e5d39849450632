"""Saving and loading a :class:`~liqsignals.engine.LiquidationEngine`'s state (``.npz``).

A state file is an uncompressed ``.npz`` archive (no pickles) with

* ``meta``: JSON with ``format`` (:data:`FORMAT`), ``version`` (:data:`FORMAT_VERSION`), the
  model's parameters, ``summaries``, ``first_date``, ``last_close`` and ``fingerprint``;
* ``factors``: the leverage mix as used (logs of the long / short liquidation factors, weights);
* the state arrays of :meth:`LiquidationEngine.state_arrays` (records, book, wipe marks, cohort
  ring, the per-leverage-bucket books ``long_buckets`` / ``short_buckets``: new in version 3).
  Version 4 keeps each cohort's log entry prices (``coh_entry``) and its mass per side and
  leverage (``coh_mass``) instead of every deposit's bin and mass; older files are refused
  with a message to rebuild from candle history.

The **fingerprint** (:func:`model_fingerprint`) is the SHA-256 of the model's canonical JSON plus
the leverage mix. :func:`load_engine` with ``model=`` refuses a file made with another model or
mix (``ValueError`` saying so); without it the file's own model is used.

Loading trusts nothing in the file: every member's header is checked against the bytes the
archive actually holds before anything is allocated, then every array's dtype and shape and every
internal index (ring head and size within its capacity, cohort deposits inside the book, deposit
counts within a cohort row) is validated. Anything wrong raises ``ValueError`` naming the file
and the problem ("... corrupt ...") instead of a crash, a huge allocation or a silently wrong
book. Saving goes through :func:`liqsignals.fileio.atomic_path` (unique temporary name, fsync,
replace), so concurrent savers to one path never see each other's half-written file.
"""

from __future__ import annotations

import hashlib
import json
import math
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from liqsignals.fileio import atomic_path
from liqsignals.model import LiquidationModel

if TYPE_CHECKING:
    from liqsignals.engine import LeverageMix, LiquidationEngine

__all__ = ["FORMAT", "FORMAT_VERSION", "MAX_STATE_BYTES", "load_engine", "model_fingerprint",
           "save_engine"]  # fmt: skip

FORMAT = "liqsignals-engine-state"
FORMAT_VERSION = 4
MAX_STATE_BYTES = 4 << 30  # no single state array may claim more than this
_MAX_ABS_BIN = 1 << 40  # absolute bins of any real price are far inside this


def _canonical_model(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, separators=(",", ":"))


def _fingerprint(params: dict[str, Any], factors: np.ndarray) -> str:
    h = hashlib.sha256(_canonical_model(params).encode())
    h.update(np.ascontiguousarray(factors, dtype="<f8").tobytes())
    return h.hexdigest()


def model_fingerprint(model: LiquidationModel, mix: LeverageMix | None = None) -> str:
    """SHA-256 (hex) of ``model``'s canonical JSON plus the leverage mix (``mix``, default the
    model's own): what a state file records and :func:`load_engine` checks."""
    from liqsignals.engine import LeverageMix

    mix = LeverageMix.of(model) if mix is None else mix
    factors = np.stack([np.log(mix.long_factors), np.log(mix.short_factors), mix.weights])
    return _fingerprint(model.to_dict(), factors)


def save_engine(engine: LiquidationEngine, path: str | Path) -> None:
    """Write ``engine``'s state to ``path`` atomically (see the module docstring)."""
    state = engine.state_dict()
    params = state.pop("model")
    meta = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "model": params,
        "summaries": bool(state.pop("summaries")),
        "first_date": state.pop("first_date"),
        "last_close": state.pop("last_close"),
        "fingerprint": _fingerprint(params, state["factors"]),
    }
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, meta=np.array(json.dumps(meta)), **state)


# ----------------------------------------------------------------------------- loading
class _Corrupt(ValueError):
    pass


def _corrupt(msg: str) -> _Corrupt:
    return _Corrupt(msg)


def _read_members(path: Path) -> dict[str, np.ndarray]:
    """Every ``.npy`` member, each header checked against the member's real size first."""
    out: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                raise _corrupt(f"unexpected member {info.filename!r}")
            with zf.open(info) as fh:
                version = np.lib.format.read_magic(fh)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
                elif version == (2, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
                else:
                    raise _corrupt(f"member {info.filename!r}: npy version {version}")
                if dtype.hasobject:
                    raise _corrupt(f"member {info.filename!r} holds Python objects")
                count = math.prod(int(n) for n in shape)
                nbytes = count * dtype.itemsize
                header = fh.tell()
                if nbytes > MAX_STATE_BYTES or header + nbytes != info.file_size:
                    raise _corrupt(
                        f"member {info.filename!r} claims shape {shape} of {dtype} "
                        f"({nbytes:,} bytes) in {info.file_size - header:,} bytes of data"
                    )
                data = fh.read(nbytes)
                if fh.read(1):  # also makes zipfile check the member's CRC
                    raise _corrupt(f"member {info.filename!r} has trailing bytes")
            arr = np.frombuffer(data, dtype=dtype, count=count)
            arr = arr.reshape(shape, order="F" if fortran else "C")
            out[info.filename[: -len(".npy")]] = np.array(arr, order="C")  # a writable copy
    return out


def _meta(members: dict[str, np.ndarray]) -> dict[str, Any]:
    raw = members.pop("meta", None)
    if raw is None or raw.shape != () or raw.dtype.kind != "U":
        raise _corrupt("no 'meta' record")
    try:
        meta = json.loads(str(raw[()]))
    except json.JSONDecodeError as exc:
        raise _corrupt(f"'meta' is not JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _corrupt("'meta' does not name the liqsignals engine state format")
    if meta.get("version") != FORMAT_VERSION:
        raise ValueError(
            f"state format version {meta.get('version')!r} is not supported (this liqsignals "
            f"reads version {FORMAT_VERSION}); rebuild the state from candle history"
        )
    for key in ("model", "summaries", "first_date", "last_close", "fingerprint"):
        if key not in meta:
            raise _corrupt(f"'meta' has no {key!r}")
    if not isinstance(meta["model"], dict) or not isinstance(meta["summaries"], bool):
        raise _corrupt("'meta' model / summaries have the wrong type")
    fd = meta["first_date"]
    if fd is not None and not isinstance(fd, int):
        raise _corrupt("'meta' first_date is not an integer")
    if not isinstance(meta["last_close"], int | float):
        raise _corrupt("'meta' last_close is not a number")
    return meta


def _expect(arrays: dict[str, np.ndarray], name: str, dtype: Any, shape: tuple[int, ...]) -> None:
    arr = arrays.get(name)
    if arr is None:
        raise _corrupt(f"array {name!r} is missing")
    if arr.dtype != np.dtype(dtype) or arr.shape != shape:
        raise _corrupt(
            f"array {name!r} is {arr.dtype} {arr.shape}, expected {np.dtype(dtype)} {shape}"
        )


def _check_arrays(
    arrays: dict[str, np.ndarray], factors: np.ndarray, model: LiquidationModel
) -> None:
    """dtypes, shapes and every index the kernel follows (``factors``: the stored mix)."""
    from liqsignals import _kernels as k

    _expect(arrays, "state", k.STATE_DTYPE, (1,))
    nb = arrays["long_book"].shape[0] if "long_book" in arrays else -1
    cap = arrays["coh_date"].shape[0] if "coh_date" in arrays else -1
    for side in ("long", "short"):
        _expect(arrays, f"{side}_book", np.float64, (nb,))
        _expect(arrays, f"{side}_wipe", np.int64, (nb,))
        _expect(arrays, f"{side}_acc", k.SIDE_DTYPE, (1,))
    for name in ("date", "seq", "n"):
        _expect(arrays, f"coh_{name}", np.int64, (cap,))
    n_lev, n_e = factors.shape[1], int(model.entry_samples)
    n_dep = 2 * n_lev * n_e
    _expect(arrays, "coh_entry", np.float64, (cap, n_e))
    _expect(arrays, "coh_mass", np.float64, (cap, 2 * n_lev))
    for side in ("long", "short"):
        _expect(arrays, f"{side}_buckets", np.float64, (k.N_BUCKETS, max(nb, 0)))
        bk = arrays[f"{side}_buckets"]
        if not np.all(np.isfinite(bk)) or np.any(bk < 0):
            raise _corrupt(f"the {side} bucket books hold negative or non-finite mass")
    st = arrays["state"][0]
    k0, head, size, seq = (int(st[f]) for f in ("k0", "head", "size", "seq"))
    if abs(k0) > _MAX_ABS_BIN or (nb == 0 and size):
        raise _corrupt(f"book start bin {k0} / size {nb} is impossible")
    if not (0 <= size <= cap and (0 <= head < cap or (cap == 0 and head == 0))):
        raise _corrupt(f"cohort ring head {head} / size {size} outside its capacity {cap}")
    if (
        seq < 0
        or st["has_prev"] not in (0, 1)
        or not (math.isfinite(st["scale"]) and st["scale"] > 0)
    ):
        raise _corrupt("state scalars (seq, has_prev, scale) are out of range")
    counts = arrays["coh_n"]
    if np.any((counts != 0) & (counts != n_dep)):
        raise _corrupt(f"a cohort holds a deposit count other than 0 or {n_dep}")
    live = (head + np.arange(size)) % max(cap, 1)
    entry = arrays["coh_entry"][live][counts[live] == n_dep]
    if not np.all(np.isfinite(entry)):
        raise _corrupt("a live cohort's entry price is not finite")
    # the deposits' bins as the kernel computes them (entry + log factor, over log(B))
    inv_logb = 1.0 / model.bin_log_width()
    flogs = factors[:2].reshape(-1)
    with np.errstate(over="ignore", invalid="ignore"):
        bins = np.floor((entry[:, :, None] + flogs[None, None, :]) * inv_logb)
    if bins.size and (bins.min() < k0 or bins.max() >= k0 + nb):
        raise _corrupt(
            f"a live cohort deposit lies in bin {bins.min():.0f}..{bins.max():.0f}, outside "
            f"the book {k0}..{k0 + nb - 1}"
        )
    for side, sign in (("long", k.LONG), ("short", k.SHORT)):
        edge = int(arrays[f"{side}_acc"][0]["edge"])
        if edge != sign * k.NONE and abs(edge) > _MAX_ABS_BIN:
            raise _corrupt(f"the {side} side's edge bin {edge} is impossible")
        book = arrays[f"{side}_book"]
        if not np.all(np.isfinite(book)) or np.any(book < 0):
            raise _corrupt(f"the {side} book holds negative or non-finite mass")
        wipe = arrays[f"{side}_wipe"]
        if wipe.size and (wipe.min() < -1 or wipe.max() >= max(seq, 1)):
            raise _corrupt(f"the {side} wipe marks name candles not yet processed")
    if not np.all(np.isfinite(arrays["coh_mass"])):
        raise _corrupt("a cohort deposit mass is not finite")


def load_engine(
    path: str | Path, model: LiquidationModel | None = None, mix: LeverageMix | None = None
) -> LiquidationEngine:
    """Load an engine saved by :func:`save_engine`.

    With ``model`` (and optionally ``mix``, default the model's own leverage mix) the file must
    have been saved by an engine with exactly that model and mix, else ``ValueError``; without
    ``model`` the file's own model and mix are used. A corrupt, truncated, foreign or hand-edited
    file raises ``ValueError``.
    """
    from liqsignals.engine import LiquidationEngine

    path = Path(path)
    try:
        members = _read_members(path)
        meta = _meta(members)
        factors = members.pop("factors", None)
        if factors is None or factors.dtype != np.float64 or factors.ndim != 2:
            raise _corrupt("the leverage mix ('factors') is missing or malformed")
        if factors.shape[0] != 3 or factors.shape[1] == 0 or not np.all(np.isfinite(factors)):
            raise _corrupt(f"the leverage mix has shape {factors.shape} or non-finite values")
        if _fingerprint(meta["model"], factors) != meta["fingerprint"]:
            raise _corrupt("the model fingerprint does not match the stored model and mix")
        try:
            params = dict(meta["model"])
            for key in ("leverages", "leverage_weights"):
                if params.get(key) is not None:
                    params[key] = tuple(params[key])
            file_model = LiquidationModel(**params)
        except (TypeError, ValueError) as exc:
            raise _corrupt(f"the stored model is invalid ({exc})") from None
        _check_arrays(members, factors, file_model)
    except _Corrupt as exc:
        raise ValueError(f"{path}: engine state file is corrupt: {exc}") from None
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        if isinstance(exc, FileNotFoundError | IsADirectoryError | PermissionError):
            raise
        if isinstance(exc, ValueError) and "not supported" in str(exc):
            raise
        raise ValueError(
            f"{path}: not a readable liqsignals engine state file (corrupt or truncated): {exc}"
        ) from None
    if model is not None:
        want = model_fingerprint(model, mix)
        if want != meta["fingerprint"]:
            raise ValueError(
                f"{path} was saved with a different model or leverage mix than the one given "
                f"(fingerprint {meta['fingerprint'][:12]} in the file, {want[:12]} expected); "
                "load it without model= to use the file's model"
            )
    state: dict[str, Any] = dict(members)
    state.update(
        model=meta["model"],
        summaries=meta["summaries"],
        factors=factors,
        first_date=meta["first_date"],
        last_close=float(meta["last_close"]),
    )
    return LiquidationEngine.from_state(state)
