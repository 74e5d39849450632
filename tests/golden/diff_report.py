"""Largest absolute and relative change per ``liq_*`` column between two commits' outputs on
the golden cases (``cases.py``).

    python tests/golden/diff_report.py <before> <after>

``before`` / ``after`` are commits (checked out into temporary ``git worktree``\\ s, removed
afterwards) or paths of existing checkouts. Each side runs the golden cases of its own checkout
in a child process (``PYTHONPATH`` set to that checkout) and the outputs are compared row by
row: a NaN on one side only counts as a change (reported in ``nan_flips``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

CHILD = """
import importlib.util, sys
import numpy as np
from liqsignals.fileio import atomic_path
spec = importlib.util.spec_from_file_location("golden_cases", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
out = {}
for name, make in mod.cases():
    frame = make()
    for col in frame.columns:
        if col.startswith("liq_"):
            out[name + "/" + col] = frame[col].to_numpy(dtype=np.float64, na_value=np.nan)
with atomic_path(sys.argv[2]) as tmp, open(tmp, "wb") as fh:
    np.savez(fh, **out)
"""


def _outputs(checkout: Path, dest: Path) -> dict[str, np.ndarray]:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    cases = checkout / "tests" / "golden" / "cases.py"
    subprocess.run([sys.executable, "-c", CHILD, str(cases), str(dest)], check=True, env=env)
    with np.load(dest, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _checkout(ref: str, tmp: Path, worktrees: list[Path]) -> Path:
    if Path(ref).is_dir():
        return Path(ref)
    path = tmp / f"wt-{len(worktrees)}"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(path), ref],
                   check=True, capture_output=True)  # fmt: skip
    worktrees.append(path)
    return path


def compare(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Per column (over all cases): largest absolute / relative change and NaN flips."""
    report: dict[str, dict[str, float]] = {}
    for key in sorted(set(a) & set(b)):
        col = key.split("/", 1)[1]
        x, y = a[key], b[key]
        if x.shape != y.shape:
            raise ValueError(f"{key}: {x.shape} rows before, {y.shape} after")
        both = ~np.isnan(x) & ~np.isnan(y)
        diff = np.abs(y[both] - x[both])
        scale = np.maximum(np.abs(x[both]), np.abs(y[both]))
        with np.errstate(invalid="ignore", divide="ignore"):
            rel = np.where(diff > 0, diff / scale, 0.0)
        r = report.setdefault(col, {"abs": 0.0, "rel": 0.0, "nan_flips": 0, "rows": 0})
        r["abs"] = max(r["abs"], float(diff.max(initial=0.0)))
        r["rel"] = max(r["rel"], float(rel.max(initial=0.0)))
        r["nan_flips"] += int(np.sum(np.isnan(x) != np.isnan(y)))
        r["rows"] += int(np.sum(diff > 0) + np.sum(np.isnan(x) != np.isnan(y)))
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before")
    ap.add_argument("after")
    args = ap.parse_args()
    worktrees: list[Path] = []
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        try:
            a = _outputs(_checkout(args.before, tmp, worktrees), tmp / "before.npz")
            b = _outputs(_checkout(args.after, tmp, worktrees), tmp / "after.npz")
        finally:
            for wt in worktrees:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(wt)],
                               check=False, capture_output=True)  # fmt: skip
    report = compare(a, b)
    print(f"{'column':32s} {'max abs change':>16s} {'max rel change':>15s} {'NaN flips':>10s} "
          f"{'rows changed':>13s}")  # fmt: skip
    for col, r in report.items():
        print(f"{col:32s} {r['abs']:16.6g} {r['rel']:15.3g} {r['nan_flips']:10d} {r['rows']:13d}")


if __name__ == "__main__":
    main()
