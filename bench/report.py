"""Report benchmark: build time and page load in Chromium for a large run, against a small one.

A small real dataset is generated (or ``--data`` given), replicated to ``--frames`` frames (new
episode numbers, same images), and evaluated by ``--models`` (built-ins, every protocol). The report
is built twice, for the first ``--small`` frames and for all of them, and each is opened in headless
Chromium (Debian's /usr/bin/chromium) from file://. Printed side by side: build seconds, page load
(navigation to the load event), frame browser ready (tab clicked to first page listed: the frame
index loaded and filtered) and one frame opened (its chunk loaded and drawn), each the median of 3
loads in one Chromium and timed inside the page (performance.now), the kilobytes read before any
frame is opened, and the large/small ratios.

    .venv/bin/python bench/report.py                       # 1,000 frames x 5 models
    .venv/bin/python bench/report.py --frames 200 --models oracle,heuristic
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from drivechain.cli import main
from drivechain.dataset import FRAMES, sha256_file
from drivechain.report.build import build_report

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


def replicate(src: Path, dst: Path, frames: int) -> None:
    """Copy a dataset and repeat its frames under new episode numbers until it has ``frames`` frames."""
    shutil.copytree(src, dst)
    lines = (src / FRAMES).read_text(encoding="utf-8").splitlines()
    out = []
    copy = 0
    while len(out) < frames:
        for line in lines:
            if len(out) >= frames:
                break
            rec = json.loads(line)
            f = rec["frame"]
            f["episode"] = int(f["episode"]) + 1000 * copy
            f["frame_id"] = f"{f['source']}/{f['scenario']}/{f['episode']}/{f['step']}"
            out.append(json.dumps(rec, separators=(",", ":")))
        copy += 1
    (dst / FRAMES).write_text("\n".join(out) + "\n", encoding="utf-8")
    manifest = json.loads((dst / "manifest.json").read_text(encoding="utf-8"))
    manifest["frames_sha256"] = sha256_file(dst / FRAMES)
    manifest.setdefault("counts", {})["frames"] = len(out)
    (dst / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def _one_load(browser, index: Path) -> dict[str, float]:
    """Times measured inside the page (performance.now), so the driver's round trips are left out."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto(index.as_uri())
        page.wait_for_load_state("load")
        loaded = page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")
        listed = page.evaluate("""async () => {
            const t0 = performance.now();
            document.querySelector("nav a[href='#frames']").click();
            while (!document.querySelector('#frame-list li')) await new Promise(r => setTimeout(r, 2));
            return performance.now() - t0;
        }""")
        opened = page.evaluate("""async () => {
            const t0 = performance.now();
            const items = document.querySelectorAll('#frame-list li');
            items[items.length - 1].click();
            while (!document.querySelector('#node-detail h3')) await new Promise(r => setTimeout(r, 2));
            return performance.now() - t0;
        }""")
        return {"load_ms": loaded, "browser_ms": listed, "frame_ms": opened, "count": page.inner_text("#f-count")}
    finally:
        page.close()


def measure_pages(indexes: dict[str, Path], repeats: int = 3) -> dict[str, dict[str, float]]:
    """Median milliseconds to the load event, to the browser's first page and to one opened frame;
    the pages are opened in turn in one Chromium (after a warm-up load), so both see the same machine."""
    from statistics import median

    from playwright.sync_api import sync_playwright

    got: dict[str, list[dict[str, float]]] = {k: [] for k in indexes}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            _one_load(browser, next(iter(indexes.values())))  # warm-up: browser start, font cache
            for _ in range(repeats):
                for name, index in indexes.items():
                    got[name].append(_one_load(browser, index))
        finally:
            browser.close()
    return {name: {**{k: median(r[k] for r in rows) for k in ("load_ms", "browser_ms", "frame_ms")},
                   "count": rows[-1]["count"]} for name, rows in got.items()}


def _upfront_kb(site: Path) -> float:
    """What the page reads before any click on a frame: index.html, its assets and the frame index."""
    files = [site / "index.html", site / "assets" / "report.js", site / "assets" / "report.css",
             site / "data" / "index.js"]
    return sum(p.stat().st_size for p in files if p.is_file()) / 1024


def main_bench() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, help="a dataset to replicate (default: generate a small one)")
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--small", type=int, default=20, help="frames of the small report compared against")
    ap.add_argument("--models", default="oracle,heuristic,random:1,random:2,constant")
    ap.add_argument("--keep", type=Path, help="work in this folder and keep it (runs, reports)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="dc-bench-report-") as tmp:
        base = args.keep or Path(tmp)
        data = args.data
        if data is None:
            data = base / "seed-data"
            main(["generate", "--scenarios", "highway,merge", "--episodes", "1", "--steps-per-episode", "5",
                  "--image-size", "600x150", "--out", str(data)])
        sizes = {"small": args.small, "large": args.frames}
        results = {}
        for name, n in sizes.items():
            replicate(data, base / f"data-{name}", n)
            runs = []
            for spec in args.models.split(","):
                out = base / f"runs-{name}" / spec.replace(":", "-")
                try:
                    main(["eval", "--data", str(base / f"data-{name}"), "--model", spec, "--protocol", "all",
                          "--no-progress", "--out", str(out)])
                except SystemExit as exc:  # typer's standalone mode ends with SystemExit(0)
                    if exc.code:
                        raise
                runs.append(out)
            t0 = time.perf_counter()
            build_report(runs, base / f"site-{name}")
            build_s = time.perf_counter() - t0
            site = base / f"site-{name}"
            data_mb = sum(p.stat().st_size for p in (site / "data").glob("*.js")) / 1e6
            results[name] = {"frames": n, "build_s": build_s, "upfront_kb": _upfront_kb(site), "data_mb": data_mb}
        pages = measure_pages({name: base / f"site-{name}" / "index.html" for name in sizes})
        for name in sizes:
            results[name].update(pages[name])
    load = os.getloadavg()[0]
    models = len(args.models.split(","))
    print(f"report benchmark: {models} models, every protocol; 1-minute load average {load:.1f}")
    print(f"{'':26s}{'small':>12s}{'large':>12s}{'large/small':>14s}")
    for key, label in (("frames", "frames"), ("build_s", "build [s]"), ("upfront_kb", "read up front [kB]"),
                       ("data_mb", "lazy data files [MB]"), ("load_ms", "page load [ms]"),
                       ("browser_ms", "browser listed [ms]"), ("frame_ms", "one frame opened [ms]")):
        s, lg = results["small"][key], results["large"][key]
        print(f"{label:26s}{s:12.1f}{lg:12.1f}{lg / s if s else float('nan'):14.2f}")
    print(f"frame list: {results['large']['count']}")
    total = results["large"]["load_ms"] + results["large"]["browser_ms"]
    print(f"large report: page load + frame browser ready = {total:.0f} ms (target < 2,000 ms)")


if __name__ == "__main__":
    main_bench()
