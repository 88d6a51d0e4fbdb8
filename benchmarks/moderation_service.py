"""Load on the HTTP moderation service over loopback: latency percentiles and throughput.

    python benchmarks/moderation_service.py [--requests 400] [--concurrency 16] [--max-seconds 60]

Starts the service in process on 127.0.0.1 (a free port; never another host), warms it up, then sends
``--requests`` POST /v1/moderations requests (short chat messages, one in five toxic) from
``--concurrency`` client threads through one pooled httpx client, and prints p50 / p95 / p99 latency and
requests per second for each endpoint mix. Bounded: at most 2,000 requests and ``--max-seconds`` per row.
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from modchain.serving.moderation import ServiceLimits, create_app, serve_in_thread

KEY = "bench-key"
MESSAGES = [
    "Hi team, the quarterly report is attached; please review the numbers before Thursday.",
    "Can you help me write a polite reply to a customer asking about our refund policy?",
    "Summarize these notes in three bullet points: budget approved, hiring paused, new office.",
    "What time does the pharmacy on Main Street open on Sundays?",
    "You are a worthless idiot and I will kill you",
]


def run_load(url: str, path: str, bodies: list[dict], concurrency: int, max_seconds: float) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {KEY}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + max_seconds
    with httpx.Client(base_url=url, headers=headers, limits=limits, timeout=30) as client:
        def one(body: dict) -> tuple[float, int]:
            if time.monotonic() > deadline:
                return -1.0, 0
            started = time.perf_counter()
            status = client.post(path, json=body).status_code
            return time.perf_counter() - started, status

        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            for latency, status in pool.map(one, bodies):
                if latency < 0:
                    continue
                latencies.append(latency)
                errors += status != 200
        wall = time.perf_counter() - started
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    return {"n": len(latencies), "errors": errors, "p50": statistics.median(latencies) * 1000,
            "p95": pct(0.95), "p99": pct(0.99), "rps": len(latencies) / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    args = parser.parse_args()
    n = max(1, min(args.requests, 2000))
    app = create_app(api_keys=[KEY], limits=ServiceLimits(max_concurrency=max(64, args.concurrency)))
    rows = [
        ("/v1/moderations", "1 text", [{"input": f"{MESSAGES[i % 5]} #{i}"} for i in range(n)]),
        ("/v1/moderations", "8 texts", [{"input": [f"{m} #{i}" for m in MESSAGES[:4] * 2]} for i in range(n)]),
        ("/v1/moderate", "1 text", [{"input": f"{MESSAGES[i % 5]} #{i}"} for i in range(n)]),
    ]
    with serve_in_thread(app, host="127.0.0.1") as url:
        run_load(url, "/v1/moderations", [{"input": "warm up"}] * 20, 4, 10)
        print(f"{n} requests per row, {args.concurrency} concurrent clients, loopback {url}\n")
        print(f"{'endpoint':<17} {'body':<8} {'n':>5} {'errors':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'req/s':>8}")
        for path, label, bodies in rows:
            r = run_load(url, path, bodies, args.concurrency, args.max_seconds)
            print(f"{path:<17} {label:<8} {r['n']:>5} {r['errors']:>6} {r['p50']:>8.1f} {r['p95']:>8.1f} "
                  f"{r['p99']:>8.1f} {r['rps']:>8.1f}")


if __name__ == "__main__":
    main()
