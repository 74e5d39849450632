"""Output values are a contract: every ``liq_*`` column of every golden case reproduces the
SHA-256 hashes in ``tests/golden/liq_hashes.json``, made from the commit the file names (the
commit before a change; see ``tests/golden/make_golden.py``). An intended numeric change is its
own commit that regenerates the file and says, in ``CHANGELOG.md``, the largest change per column
and why."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent / "golden"
GOLDEN = json.loads((HERE / "liq_hashes.json").read_text())

_spec = importlib.util.spec_from_file_location("golden_cases", HERE / "cases.py")
assert _spec and _spec.loader
cases_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cases_mod)
CASES = dict(cases_mod.cases())


def test_golden_file_names_its_commit_and_covers_every_case():
    assert len(GOLDEN["commit"]) == 40
    assert set(GOLDEN["cases"]) == set(CASES)
    # 15m and 1h, BTC and ETH, windows 1d, 1w, 1M, with and without extra inputs, multi-venue
    for part in ("BTC", "ETH", "15m", "1h", "-1d-", "-1w-", "-1M-", "inputs", "candles", "multi"):
        assert any(part in name for name in CASES), part


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_hashes(name):
    frame = CASES[name]()
    got = cases_mod.hashes(frame)
    want = GOLDEN["cases"][name]
    # every golden column still exists; new columns may be added beside them
    missing = sorted(set(want) - set(got))
    assert not missing, f"{name}: columns gone: {missing}"
    changed = sorted(c for c in want if got[c] != want[c])
    assert not changed, f"{name}: values changed in {changed} (golden commit {GOLDEN['commit']})"
