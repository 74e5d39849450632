"""Web view: first paint in the browser and data payload for one year of 15m candles.

Starts ``liqsignals serve`` and the system Chromium (headless, through chromedriver) inside a
private network namespace with only loopback when ``unshare`` allows it, opens the page on one
year of BTC/USDT:USDT 15m and prints

* first paint: ``performance.now()`` when the heatmap is drawn, measured inside the browser from
  the start of navigation (page, meta, heatmap computation and transfer, decoding, drawing);
* payload: bytes of the heatmap response the page received;
* a redraw after changing the model window (a new computation, not cached);
* the static export of the same year (``liqsignals heatmap --out year.html``, the same renderer
  with the data inline): file size, the command's wall time, first paint over ``file://``.

Data: ``../shared/data/binance`` next to the project when it exists (a full year of 15m), else the
bundled sample (its whole 15m range). Usage: ``python benchmarks/bench_web.py``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def _datadir() -> Path:
    shared = ROOT.parent / "shared" / "data" / "binance"
    if (shared / "futures" / "BTC_USDT_USDT-15m-futures.feather").exists():
        return shared
    from liqsignals import sample

    return sample.datadir()


def _export(driver: object, datadir: Path) -> dict[str, float | int | str]:
    """``liqsignals heatmap --out year.html`` (the static export) of the same year, opened over
    file://: its size, the command's wall time and the first paint of the file."""
    import tempfile
    import time

    import pandas as pd
    import test_web_browser as tb

    from liqsignals.data.datadir import load_candles

    last = pd.Timestamp(load_candles(datadir, "BTC/USDT:USDT", "15m")["date"].iloc[-1])
    start = (last - pd.Timedelta(days=365)).strftime("%Y%m%d")
    out = Path(tempfile.mkdtemp(prefix="liqsignals-bench-")) / "year.html"
    cmd = [sys.executable, "-m", "liqsignals", "heatmap", "--datadir", str(datadir),
           "-p", "BTC/USDT:USDT", "-t", "15m", "--timerange", f"{start}-", "--no-progress",
           "--out", str(out)]  # fmt: skip
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    driver.get(out.as_uri())  # type: ignore[attr-defined]
    tb.wait_js(driver, "return window.liqsignals && window.liqsignals.loads >= 1", 60)
    paint = driver.execute_script("return window.liqsignals.firstPaintMs")  # type: ignore[attr-defined]
    size = out.stat().st_size
    shutil.rmtree(out.parent, ignore_errors=True)
    return {"export_bytes": size, "export_s": round(wall, 1), "export_paint_ms": round(paint)}


def inner() -> dict[str, float | int | str]:
    """The measurement (run inside the namespace)."""
    import test_web_browser as tb

    datadir = _datadir()
    proc = tb.start_server(["--datadir", str(datadir)])
    base = f"http://127.0.0.1:{tb.PORT}"
    driver = None
    paints: list[float] = []
    try:
        tb.wait_http(base + "/healthz", proc)
        driver = tb.browser()
        # one fresh (uncached) computation per mode: each page load is a first paint
        for mode in ("combined", "long", "short"):
            driver.get(f"{base}/?pair=BTC/USDT:USDT&timeframe=15m&span=1y&mode={mode}")
            tb.wait_js(driver, "return window.liqsignals && window.liqsignals.loads >= 1", 60)
            paints.append(driver.execute_script("return window.liqsignals.firstPaintMs"))
        s = driver.execute_script("return window.liqsignals")
        hm = driver.execute_script(
            "const h = window.liqsignals.hm; return [h.cols, h.rows, h.times[0], h.times[h.cols-1]]"
        )
        tb.select(driver, "window", "2w")
        redraw = driver.execute_script("return window.liqsignals.lastPaintMs")
        days = (hm[3] - hm[2]) / 86_400_000
        export = _export(driver, datadir)
        return {
            "data": "shared" if "shared" in str(datadir) else "sample",
            "days": round(days, 1),
            "matrix": f"{hm[0]} x {hm[1]}",
            "first_paint_ms": ", ".join(str(round(p)) for p in paints),
            "median_ms": round(sorted(paints)[1]),
            "payload_bytes": int(s["payloadBytes"]),
            "redraw_ms": round(redraw),
            **export,
        }
    finally:
        if driver is not None:
            driver.quit()
        proc.terminate()
        proc.wait(10)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--inner":
        print(json.dumps(inner()), flush=True)
        return 0
    for path in ("/usr/bin/chromium", "/usr/bin/chromedriver"):
        if not Path(path).exists():
            print(f"bench_web: {path} missing; run scripts/install_browser.sh")
            return 1
    cmd = [sys.executable, str(Path(__file__)), "--inner"]
    if shutil.which("unshare") and shutil.which("ip"):
        probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
        if probe.returncode == 0:
            cmd = ["unshare", "-n", "sh", "-c", f"ip link set lo up && exec {' '.join(cmd)}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        print(proc.stdout[-2000:], proc.stderr[-2000:])
        return 1
    r = json.loads(lines[-1])
    print(f"web view, BTC/USDT:USDT 15m, {r['days']} days ({r['data']} data), matrix {r['matrix']}")
    print(
        f"  first paint in the browser: median {r['median_ms']} ms of {r['first_paint_ms']} ms"
        " (target < 2000)"
    )
    print(f"  heatmap payload:            {r['payload_bytes'] / 1e6:.2f} MB (target < 3 MB)")
    print(f"  redraw after a window change: {r['redraw_ms']} ms in the page")
    print(
        f"  static export (heatmap --out year.html): {r['export_bytes'] / 1e6:.2f} MB, "
        f"written in {r['export_s']} s, first paint over file:// {r['export_paint_ms']} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
