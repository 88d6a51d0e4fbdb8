"""Peak memory of moderating one long text, in bytes per input byte, against issue 18's bar.

Issue 18's bar: ``ModerationChain().moderate(text)`` on a 2 MB text peaks at <= 15 bytes per input byte
(measured before the fix: ~47). Each row runs in a fresh subprocess (so caches and earlier rows do not count):
the models are loaded and warmed on a short text, then ``tracemalloc`` measures the peak of Python
allocations during the one call, above what was allocated before it. RSS growth (``ru_maxrss`` after the
call minus the RSS before it) is shown beside it; it also counts memory the allocator keeps.

Rows: the default chain, then each of its filters alone (to show which one sets the peak), and
``DocumentGuard()`` on one long document. The text is benign prose built as benchmarks/long_documents.py
builds it (training/prose.py, the held-out half), cut to the size.

Run:  python benchmarks/memory_peak.py [--sizes 200000,2000000] [--rows chain,pii,toxicity,prompt_safety,documents]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BAR = 15.0

CHILD = r"""
import json, random, resource, sys, tracemalloc
sys.path[:0] = [sys.argv[1] + "/src", sys.argv[1] + "/training"]
import prose
row, size = sys.argv[2], int(sys.argv[3])
about_attacks = {"ai_safety", "prompting"}
paragraphs = [t for k, t in prose.rag_passages()["dev"] if k not in about_attacks] + prose.pydoc_paragraphs()["dev"]
text = prose.concatenate(paragraphs, random.Random(f"memory:{size}"), size)[:size]
if row == "documents":
    from langchain_core.documents import Document
    from modchain.text.documents import DocumentGuard
    guard = DocumentGuard()
    guard.invoke([Document(page_content="Warm up. The models load on first use.")])
    run = lambda: guard.invoke([Document(page_content=text)])
else:
    from modchain import ModerationChain, ModerationConfig
    config = None if row == "chain" else ModerationConfig(filters=[{"type": row}])
    chain = ModerationChain(config)
    chain.moderate("Warm up: the models load on first use. 模型在第一次使用时加载。")  # every model, Chinese too
    run = lambda: chain.moderate(text)
def rss_kb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
rss_before = rss_kb()
tracemalloc.start()
base = tracemalloc.get_traced_memory()[0]
run()
peak = tracemalloc.get_traced_memory()[1] - base
tracemalloc.stop()
grown = max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) * 1024
print(json.dumps({"bytes": len(text.encode("utf-8")), "peak": peak, "rss": grown}))
"""


def measure(row: str, size: int) -> dict[str, int]:
    out = subprocess.run([sys.executable, "-c", CHILD, str(HERE.parent), row, str(size)], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="200000,2000000")
    ap.add_argument("--rows", default="chain,pii,toxicity,prompt_safety,documents")
    args = ap.parse_args(argv)
    print(f"Peak memory per input byte (tracemalloc, fresh process per row); bar: chain <= {BAR:.0f} B/byte on 2 MB")
    print(f"{'what':<16}{'size':>10}{'peak MB':>9}{'peak B/byte':>13}{'RSS growth B/byte':>19}{'vs bar':>8}")
    for size in (int(s) for s in args.sizes.split(",")):
        for row in args.rows.split(","):
            if row == "documents" and size > 500_000:
                continue  # a retrieved document is rarely this long; the sentence windows make it slow
            m = measure(row, size)
            per_byte = m["peak"] / m["bytes"]
            print(f"{row:<16}{m['bytes']:>10}{m['peak'] / 1e6:>9.1f}{per_byte:>13.1f}{m['rss'] / m['bytes']:>19.1f}"
                  f"{per_byte / BAR:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
