"""Dataset screening throughput with NudeNet: one process vs worker processes vs Ray Data, side by side.

    python benchmarks/screening.py                       # 96 images, 3 runs per path
    python benchmarks/screening.py --images 200 --workers 4 --runs 5

Builds a folder of N images from the public-domain fixture photos (crops and resizes, so the files differ),
screens it with every path, and prints images/s (median of the runs). Each run starts from scratch: a new
screener, so model loading and process/actor start-up are inside the time, as they are for a user running
``modchain screen`` once. ``ray.init`` itself is outside (a cluster is started once, not per dataset).
Every path must produce the same report (``verdicts()``): the script exits 1 if one differs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from modchain.screening import DatasetScreener

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "images"


def build_dataset(root: Path, count: int) -> Path:
    photos = [Image.open(p).convert("RGB") for p in sorted(FIXTURES.glob("skimage_*"))]
    for n in range(count):
        photo = photos[n % len(photos)]
        scale = 0.5 + (n % 7) * 0.1  # 0.5x .. 1.1x
        width, height = photo.size
        crop = photo.crop((n % 11, n % 13, width - n % 5, height - n % 3))
        image = crop.resize((max(32, int(crop.width * scale)), max(32, int(crop.height * scale))))
        image.save(root / f"img_{n:04d}.{'jpg' if n % 2 else 'png'}", quality=90)
    return root


def timed(make, data: Path, out: Path, **screen_kwargs) -> tuple[float, object]:
    screener = make()
    started = time.perf_counter()
    report = screener.screen(data, out, resume=False, **screen_kwargs)
    return time.perf_counter() - started, report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "data").mkdir()
        data = build_dataset(Path(tmp) / "data", args.images)
        options = {"prompt_checker": None, "batch_size": args.batch_size}
        paths = [("1 process", lambda: DatasetScreener(**options), {}),
                 (f"{args.workers} worker processes", lambda: DatasetScreener(workers=args.workers, **options), {})]
        if not args.no_ray:
            import ray

            ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
            ray.data.DataContext.get_current().enable_progress_bars = False
            paths.append((f"Ray Data, {args.workers} actors",
                          lambda: DatasetScreener(workers=args.workers, **options), {"engine": "ray"}))
        rows, reports = [], []
        for name, make, kwargs in paths:
            times = []
            for run in range(args.runs):
                elapsed, report = timed(make, data, Path(tmp) / f"out_{len(rows)}_{run}", **kwargs)
                times.append(elapsed)
                reports.append(report)
            rows.append((name, statistics.median(times), min(times), max(times)))
        if not args.no_ray:
            ray.shutdown()

    reference = reports[0].verdicts()
    same = all(r.verdicts() == reference for r in reports)
    base = rows[0][1]
    print(f"NudeNet screening, {args.images} images, batch {args.batch_size}, {args.runs} runs per path, "
          f"{os.cpu_count()} CPUs (median; each run includes model load and start-up)")
    print(f"{'path':<28} {'median s':>9} {'min s':>7} {'max s':>7} {'images/s':>9} {'speed-up':>9}")
    for name, median, low, high in rows:
        print(f"{name:<28} {median:>9.2f} {low:>7.2f} {high:>7.2f} {args.images / median:>9.1f} {base / median:>8.2f}x")
    totals = reports[0].totals
    print(f"report: {totals['images']} images, {totals['clean']} clean, {totals['flagged']} flagged, "
          f"{totals['errors']} errors; every path gave the same report: {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
