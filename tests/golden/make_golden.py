"""Write ``liq_hashes.json``: per-column SHA-256 of every golden case.

Run it from a checkout of the commit whose outputs become the contract::

    git worktree add ../golden-base <commit> && cd ../golden-base
    python <this checkout>/tests/golden/make_golden.py --commit <commit> --out <this checkout>/tests/golden/liq_hashes.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--commit", required=True, help="the commit the hashes are made from")
    ap.add_argument("--out", default=str(HERE / "liq_hashes.json"))
    args = ap.parse_args()
    spec = importlib.util.spec_from_file_location("golden_cases", HERE / "cases.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out: dict[str, dict[str, str]] = {}
    for name, make in mod.cases():
        frame = make()
        out[name] = mod.hashes(frame)
        print(f"{name}: {len(frame)} rows, {len(out[name])} columns", file=sys.stderr)
    doc = {"commit": args.commit, "cases": out}
    Path(args.out).write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
