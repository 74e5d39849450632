"""Engine state files: each known failure of the old save/load, one test per failure."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from synthetic import random_candles

from liqsignals import LiquidationEngine, LiquidationModel, liquidation_levels
from liqsignals.engine import LeverageMix
from liqsignals.persist import FORMAT_VERSION, model_fingerprint

SMALL = {"window": "1d", "bin_bp": 20.0, "entry_samples": 3}
ROOT = Path(__file__).resolve().parents[1]


def saved(tmp_path: Path, n: int = 150, name: str = "state.npz") -> Path:
    eng = LiquidationEngine(**SMALL)
    eng.update_many(random_candles(3, n, open_interest=True))
    path = tmp_path / name
    eng.save(path)
    return path


def members(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k].copy() for k in data.files}


def rewrite(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """A hand edit: the same archive layout with some arrays changed."""
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def state_of(path: Path) -> dict[str, np.ndarray]:
    return members(path)


# ----------------------------------------------------------------------------- hand edits
def test_hand_edited_ring_head_beyond_capacity_is_corrupt_not_a_segfault(tmp_path):
    path = saved(tmp_path)
    arr = members(path)
    arr["state"][0]["head"] = arr["coh_date"].shape[0] + 5
    rewrite(path, arr)
    with pytest.raises(ValueError, match="corrupt.*head"):
        LiquidationEngine.load(path)


def test_hand_edited_ring_size_beyond_capacity_is_corrupt(tmp_path):
    path = saved(tmp_path)
    arr = members(path)
    arr["state"][0]["size"] = arr["coh_date"].shape[0] + 1
    rewrite(path, arr)
    with pytest.raises(ValueError, match="corrupt.*size"):
        LiquidationEngine.load(path)


def live_cohorts(arr: dict[str, np.ndarray]) -> np.ndarray:
    """Ring slots of the live cohorts that hold deposits, oldest first."""
    st = arr["state"][0]
    live = (int(st["head"]) + np.arange(int(st["size"]))) % arr["coh_date"].shape[0]
    return live[arr["coh_n"][live] > 0]


def test_hand_edited_cohort_bin_outside_the_book_is_corrupt(tmp_path):
    path = saved(tmp_path)
    arr = members(path)
    live = live_cohorts(arr)[-1]
    # an entry price 10,000 bins (of 20 bp) up puts the cohort's deposits far above the book
    arr["coh_entry"][live, 0] += 10_000 * math.log1p(20e-4)
    rewrite(path, arr)
    with pytest.raises(ValueError, match="corrupt.*outside the book"):
        LiquidationEngine.load(path)


def test_hand_edited_non_finite_entry_price_is_corrupt(tmp_path):
    path = saved(tmp_path)
    arr = members(path)
    arr["coh_entry"][live_cohorts(arr)[0], 1] = np.nan
    rewrite(path, arr)
    with pytest.raises(ValueError, match="corrupt.*entry price is not finite"):
        LiquidationEngine.load(path)


def test_a_state_of_the_previous_format_is_refused_with_a_rebuild_hint(tmp_path):
    path = saved(tmp_path)
    arr = members(path)
    meta = json.loads(str(arr["meta"]))
    assert meta["version"] == FORMAT_VERSION == 4
    meta["version"] = 3  # the layout that kept every deposit's bin and mass
    arr["meta"] = np.array(json.dumps(meta))
    rewrite(path, arr)
    with pytest.raises(ValueError, match="version 3 is not supported.*rebuild the state"):
        LiquidationEngine.load(path)


def test_hand_edited_book_start_moving_deposits_out_of_the_book_is_corrupt(tmp_path):
    path = saved(tmp_path)
    arr = members(path)
    arr["state"][0]["k0"] += 100_000
    rewrite(path, arr)
    with pytest.raises(ValueError, match="corrupt.*outside the book"):
        LiquidationEngine.load(path)


def test_hand_edited_deposit_count_is_corrupt(tmp_path):
    path = saved(tmp_path)
    arr = members(path)
    arr["coh_n"][int(arr["state"][0]["head"])] = 10**6
    rewrite(path, arr)
    with pytest.raises(ValueError, match="corrupt.*deposit count"):
        LiquidationEngine.load(path)


def test_hand_edited_shape_header_claiming_terabytes_is_corrupt_before_allocating(tmp_path):
    """A member header that claims 1.5e12 float64 (10.9 TiB) with a few bytes behind it."""
    path = saved(tmp_path)
    out = io.BytesIO()
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "long_book.npy":
                body = io.BytesIO()
                header = {"descr": "<f8", "fortran_order": False, "shape": (1_500_000_000_000,)}
                np.lib.format.write_array_header_2_0(body, header)
                data = body.getvalue() + b"\0" * 64
            dst.writestr(info.filename, data)
    path.write_bytes(out.getvalue())
    with pytest.raises(ValueError, match="corrupt.*long_book.*claims shape"):
        LiquidationEngine.load(path)


def test_hand_edited_dtype_is_corrupt(tmp_path):
    path = saved(tmp_path)
    arr = members(path)
    arr["long_wipe"] = arr["long_wipe"].astype(np.int32)
    rewrite(path, arr)
    with pytest.raises(ValueError, match="corrupt.*long_wipe.*int32"):
        LiquidationEngine.load(path)


def test_hand_edited_model_without_fingerprint_update_is_corrupt(tmp_path):
    import json

    path = saved(tmp_path)
    arr = members(path)
    meta = json.loads(str(arr["meta"]))
    meta["model"]["window"] = "2d"
    arr["meta"] = np.array(json.dumps(meta))
    rewrite(path, arr)
    with pytest.raises(ValueError, match="corrupt.*fingerprint"):
        LiquidationEngine.load(path)


# ----------------------------------------------------------------------------- foreign files
def test_random_bytes_give_a_clear_error_not_the_allow_pickle_hint(tmp_path):
    path = tmp_path / "noise.npz"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ValueError, match="not a readable liqsignals engine state") as info:
        LiquidationEngine.load(path)
    assert "allow_pickle" not in str(info.value)


def test_truncated_file_gives_a_clear_error(tmp_path):
    path = saved(tmp_path)
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 30, 100):
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="corrupt|truncated"):
            LiquidationEngine.load(path)


def test_plain_npy_and_old_format_are_refused(tmp_path):
    path = tmp_path / "old.npz"
    with open(path, "wb") as fh:
        np.savez(fh, meta=np.array('{"model": {}}'), _ist=np.zeros(8, np.int64))
    with pytest.raises(ValueError, match="corrupt.*format"):
        LiquidationEngine.load(path)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        LiquidationEngine.load(tmp_path / "absent.npz")


# ----------------------------------------------------------------------------- model check
def test_file_from_a_different_model_is_refused_when_a_model_is_given(tmp_path):
    path = saved(tmp_path)
    same = LiquidationModel(**SMALL)
    assert LiquidationEngine.load(path, model=same).model == same
    other = LiquidationModel(**{**SMALL, "window": "2d"})
    with pytest.raises(ValueError, match="different model"):
        LiquidationEngine.load(path, model=other)
    # a different leverage mix for the same model is a mismatch too
    fl, fs, w = same.liquidation_factors()
    heavy = np.zeros_like(w)
    heavy[0] = 1.0
    with pytest.raises(ValueError, match="different model or leverage mix"):
        LiquidationEngine.load(path, model=same, mix=LeverageMix(fl, fs, heavy))
    # without a model, the file's model is used (documented)
    assert LiquidationEngine.load(path).model == same


def test_fingerprint_depends_on_model_and_mix():
    m = LiquidationModel(**SMALL)
    fl, fs, w = m.liquidation_factors()
    assert model_fingerprint(m) == model_fingerprint(LiquidationModel(**SMALL))
    assert model_fingerprint(m) != model_fingerprint(m.replace(gap_factor=0.7))
    assert model_fingerprint(m) != model_fingerprint(m, LeverageMix(fl, fs, w[::-1].copy()))
    assert len(model_fingerprint(m)) == 64 and FORMAT_VERSION >= 2


# ----------------------------------------------------------------------------- concurrency
SAVER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    from synthetic import random_candles
    from liqsignals import LiquidationEngine
    n, path = int(sys.argv[1]), sys.argv[2]
    eng = LiquidationEngine(window="1d", bin_bp=20.0, entry_samples=3)
    eng.update_many(random_candles(3, n, open_interest=True))
    for _ in range(150):
        eng.save(path)
    print("done")
    """
)


def test_two_processes_saving_to_one_path_both_finish_and_the_file_loads(tmp_path):
    path = tmp_path / "shared.npz"
    script = SAVER.format(tests=str(Path(__file__).resolve().parent))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(n), str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in (100, 130)
    ]
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
        assert out.strip() == "done" and "Error" not in err
    final = LiquidationEngine.load(path)
    assert final.candles_processed in (100, 130)
    want = LiquidationEngine(**SMALL)
    want.update_many(random_candles(3, final.candles_processed, open_interest=True))
    for name, arr in want.state_arrays().items():
        np.testing.assert_array_equal(final.state_arrays()[name], arr)
    assert not [p.name for p in tmp_path.iterdir() if p.name != "shared.npz"]  # no temp left


# ----------------------------------------------------------------------------- round trip
def test_round_trip_continues_bit_for_bit(tmp_path):
    df = random_candles(10, 300, open_interest=True, taker=True)
    batch = liquidation_levels(df, **SMALL)
    eng = LiquidationEngine(**SMALL)
    eng.update_many(df.iloc[:170])
    eng.save(tmp_path / "s.npz")
    restored = LiquidationEngine.load(tmp_path / "s.npz", model=LiquidationModel(**SMALL))
    assert restored.last_date == pd.Timestamp(df["date"].iloc[169])
    rest = restored.update_many(df.iloc[170:])
    np.testing.assert_array_equal(rest.to_numpy(), batch.iloc[170:].to_numpy())


def test_round_trip_keeps_a_custom_mix_bit_for_bit(tmp_path):
    model = LiquidationModel(**SMALL)
    fl, fs, w = model.liquidation_factors()
    mix = LeverageMix(fl * 0.999, fs * 1.001, np.full_like(w, 1 / len(w)))
    df = random_candles(12, 200)
    whole = LiquidationEngine(model, mix=mix).update_many(df)
    eng = LiquidationEngine(model, mix=mix)
    eng.update_many(df.iloc[:90])
    eng.save(tmp_path / "m.npz")
    with pytest.raises(ValueError, match="different model"):
        LiquidationEngine.load(tmp_path / "m.npz", model=model)
    again = LiquidationEngine.load(tmp_path / "m.npz", model=model, mix=mix)
    rows = [again.update(r) for r in df.iloc[90:].to_dict("records")]
    got = pd.DataFrame(rows, index=df.index[90:])
    np.testing.assert_array_equal(got.to_numpy(), whole.iloc[90:].to_numpy())
