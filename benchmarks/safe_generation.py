"""Moderation overhead of SafeImageGenerator on a 1.6 s generation, with the offline moderation stack.

    python benchmarks/safe_generation.py [--runs 10] [--sleep 1.6] [--image tests/fixtures/images/skimage_coffee.png]

The generator sleeps ``--sleep`` seconds (a stand-in for a GPU diffusion call) and returns a fixture photo.
Side by side, interleaved in one run (so machine load affects both alike):

  alone    the generator called directly, plus decoding its image (what an unguarded service does)
  guarded  SafeImageGenerator.invoke: PromptGuard (denylist + offline toxicity + prompt safety), negative
           prompts, the generator, NudeNet on the output (the real bundled ONNX model, stock session)
  1-thread the same with ``NudeNetLabeler(intra_op_threads=1)``: ONNX Runtime on one thread without
           spin-waiting, which on a busy machine does not fight other processes for the cores

Models are loaded and warmed before timing. Every run uses a distinct prompt (the text classifiers cache
per text). Prints medians: wall time of each, the overhead (guarded - alone) in ms and in % of the
generation, and the guarded run's own split (prompt guard, output moderation). Bar: overhead <= 5% (80 ms).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from PIL import Image

from modchain.backends.local.nudenet import NudeNetLabeler
from modchain.generation import PromptGuard, SafeImageGenerator
from modchain.image_moderation.image_input import load_image

ROOT = Path(__file__).resolve().parent.parent
SUBJECTS = ["a lighthouse", "a red fox", "a mountain lake", "a bowl of ramen", "a vintage car", "a robot",
            "a sailing boat", "a cup of coffee", "a city skyline", "a cat on a windowsill", "a forest path",
            "a hot air balloon"]
STYLES = ["watercolor", "oil painting", "photograph", "pencil sketch", "3d render"]


def prompts(n: int) -> list[str]:
    return [f"{SUBJECTS[i % len(SUBJECTS)]}, {STYLES[i % len(STYLES)]}, variation {i}" for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--sleep", type=float, default=1.6)
    parser.add_argument("--image", default=str(ROOT / "tests/fixtures/images/skimage_coffee.png"))
    args = parser.parse_args()

    fixture = Path(args.image).read_bytes()  # a generator hands back encoded bytes or an image

    def generator(prompt: str, negative_prompt: str, seed: int) -> bytes:
        time.sleep(args.sleep)
        return fixture

    variants = {"guarded": SafeImageGenerator(generator, NudeNetLabeler(), prompt_guard=PromptGuard(),
                                              config={"seed": 0}),
                "1-thread": SafeImageGenerator(generator, NudeNetLabeler(intra_op_threads=1),
                                               prompt_guard=PromptGuard(), config={"seed": 0})}
    warm = Image.open(args.image).convert("RGB")
    for safe in variants.values():  # load the ONNX sessions and the text models outside the timings
        for _ in range(3):
            safe.moderator.check(warm)
        safe.prompt_guard.check("warm up the text classifiers")

    alone: list[float] = []
    totals: dict[str, list[float]] = {name: [] for name in variants}
    guard_ms: dict[str, list[float]] = {name: [] for name in variants}
    output_ms: dict[str, list[float]] = {name: [] for name in variants}
    statuses = set()
    for i, prompt in enumerate(prompts(args.runs)):
        started = time.perf_counter()
        load_image(generator(prompt, "", i))
        alone.append((time.perf_counter() - started) * 1000)
        for name, safe in variants.items():
            started = time.perf_counter()
            result = safe.invoke({"prompt": f"{prompt} ({name})", "seed": i})
            totals[name].append((time.perf_counter() - started) * 1000)
            guard_ms[name].append(result.timings_ms["prompt_guard"])
            output_ms[name].append(sum(a.moderation_ms for a in result.attempts))
            statuses.add(result.status)

    base = statistics.median(alone)
    bar = 0.05 * args.sleep * 1000
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"safe generation overhead: {args.runs} runs, generator sleeps {args.sleep:.2f} s, image "
          f"{Path(args.image).name} {warm.size}, statuses {sorted(statuses)}, {os.cpu_count()} CPUs, load {load:.1f}")
    print(f"{'path':<12}{'median ms':>11}{'prompt guard':>14}{'output mod.':>13}{'overhead ms':>13}{'overhead %':>12}"
          f"{'bar 5%':>8}")
    print(f"{'alone':<12}{base:>11.1f}")
    for name in variants:
        total = statistics.median(totals[name])
        overhead = total - base
        print(f"{name:<12}{total:>11.1f}{statistics.median(guard_ms[name]):>14.2f}"
              f"{statistics.median(output_ms[name]):>13.1f}{overhead:>13.1f}{100 * overhead / base:>11.2f}%"
              f"{'PASS' if overhead <= bar else 'FAIL':>8}")
    print(f"bar: overhead <= 5% of {args.sleep:.1f} s = {bar:.0f} ms")


if __name__ == "__main__":
    main()
