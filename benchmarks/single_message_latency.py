"""Latency of one message, all three filters on Comprehend: modchain vs langchain_experimental's chain.

What is measured: a chat app moderating one message at a time. Each message goes through sequential
``invoke`` calls (no batching) with PII (redact), toxicity and prompt safety, all on Amazon Comprehend,
through real boto3 clients talking to one local Comprehend emulator (``modchain.testing.comprehend_emulator``,
in its own process) that adds a fixed latency to every request (default 50 ms), as a stand-in for the network
round trip to AWS. Rows, interleaved message by message so machine noise hits all of them alike:

  old chain                  langchain_experimental's AmazonComprehendModerationChain, same three filters
  modchain, sequential       ModerationChain(parallel_filters=False): each filter waits for the previous one
  modchain                   ModerationChain(): the filters' requests overlap (see modchain/text/chain.py)

The table gives median and p90 milliseconds per message, Comprehend requests per message (counted by the
emulator) and the ratio to the old chain's median. Verdicts (allowed, or which filter blocked) are compared
message by message. A last row times the offline default chain (``local`` backend, the same three filters) on
the same messages: overlapping must not cost the offline path anything (its bar: <= 2 ms median).

About ~20% of the messages carry an SSN/email/phone (redacted: modchain then asks toxicity and prompt safety
again about the redacted text, so those messages cost two round trips), ~5% a jailbreak and ~10% an insult.

The old chain's toxicity filter splits sentences with NLTK's punkt model, which it downloads at run time; with
no network (or no NLTK), a regex sentence splitter stands in for ``nltk.sent_tokenize`` (the table says which).
Messages here are a few sentences, one DetectToxicContent call either way.

Run:  python benchmarks/single_message_latency.py [--messages 200] [--latency-ms 50]
      (needs langchain-experimental: pip install langchain-experimental)

The bar (from the issue): modchain <= 0.6x the old chain's median time per message, same verdicts; the
offline default chain's median stays <= 2 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import time
import types
import warnings

import modchain
from modchain.backends.aws.comprehend import ComprehendBackend

warnings.filterwarnings("ignore", category=DeprecationWarning)  # langchain-experimental's sunset notice
try:
    from comprehend_throughput import EmulatorProcess, make_client, make_messages
    from langchain_experimental.comprehend_moderation import (
        AmazonComprehendModerationChain,
        BaseModerationConfig,
        ModerationPiiConfig,
        ModerationPromptSafetyConfig,
        ModerationToxicityConfig,
    )
except ImportError as exc:  # pragma: no cover - depends on the benchmark environment
    raise SystemExit(f"this benchmark compares with langchain-experimental ({exc}); "
                     "pip install langchain-experimental") from None

_INSULTS = ["Honestly you are a moron.", "What an idiot answer that was.", "Stop being so stupid about it."]
OLD_KINDS = {"ModerationPiiError": "pii", "ModerationToxicityError": "toxicity",
             "ModerationPromptSafetyError": "prompt_safety"}


def sentence_splitter() -> str:
    """Make ``nltk.sent_tokenize`` usable offline for the old chain; says what it uses."""
    try:
        import nltk

        nltk.data.find("tokenizers/punkt")
        return "NLTK punkt"
    except (ImportError, LookupError):
        stand_in = types.ModuleType("nltk")
        stand_in.data = types.SimpleNamespace(find=lambda name: name)  # type: ignore[attr-defined]
        stand_in.sent_tokenize = lambda text: [s for s in re.split(r"(?<=[.!?])\s+", text) if s]  # type: ignore[attr-defined]
        sys.modules["nltk"] = stand_in
        return "regex stand-in for nltk.sent_tokenize (no punkt data offline)"


def messages_for(n: int) -> list[str]:
    rng = random.Random(11)
    return [m + " " + rng.choice(_INSULTS) if rng.random() < 0.1 else m for m in make_messages(n)]


def build(url: str) -> dict:
    """name -> function(message) -> verdict: "allowed" or the kind of filter that blocked."""
    filters = [modchain.PiiConfig(action="redact"), modchain.ToxicityConfig(), modchain.PromptSafetyConfig()]

    def new_chain(parallel: bool):  # type: ignore[no-untyped-def]
        chain = modchain.ModerationChain(modchain.ModerationConfig(filters=filters), parallel_filters=parallel,
                                         backend=ComprehendBackend(make_client(url, 64)))

        def run(message: str) -> str:
            try:
                chain.invoke(message)
            except modchain.ModerationViolation as exc:
                return exc.result.blocked_by
            return "allowed"
        return run

    old = AmazonComprehendModerationChain(
        moderation_config=BaseModerationConfig(
            filters=[ModerationPiiConfig(redact=True), ModerationToxicityConfig(), ModerationPromptSafetyConfig()]),
        client=make_client(url, 64))

    def run_old(message: str) -> str:
        try:
            old.invoke({"input": message})
        except Exception as exc:  # noqa: BLE001 - the old chain's violations share no base class but Exception
            if type(exc).__name__ not in OLD_KINDS:
                raise
            return OLD_KINDS[type(exc).__name__]
        return "allowed"

    return {"old chain": run_old, "modchain, sequential": new_chain(False), "modchain": new_chain(True)}


def offline_latency(messages: list[str]) -> float:
    chain = modchain.ModerationChain()
    for message in messages[:50]:  # warm-up: model loading, caches
        chain.moderate(message)
    times = []
    for message in messages:
        started = time.perf_counter()
        try:
            chain.invoke(message)
        except modchain.ModerationViolation:
            pass
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args()
    splitter = sentence_splitter()
    messages = messages_for(args.messages)

    with EmulatorProcess(latency_s=args.latency_ms / 1000) as emu:
        systems = build(emu.url)
        for run in systems.values():  # warm-up: connections, lazy imports, the thread pool
            for message in messages[:5]:
                run(message)
        times: dict[str, list[float]] = {name: [] for name in systems}
        requests = dict.fromkeys(systems, 0)
        verdicts: dict[str, list[str]] = {name: [] for name in systems}
        for message in messages:
            for name, run in systems.items():
                before = emu.count()
                started = time.perf_counter()
                verdicts[name].append(run(message))
                times[name].append((time.perf_counter() - started) * 1000)
                requests[name] += emu.count() - before

    offline_ms = offline_latency(messages)
    n = len(messages)
    old_median = statistics.median(times["old chain"])
    print(f"\n{n} messages, one sequential invoke each, PII (redact) + toxicity + prompt safety on the Comprehend "
          f"emulator at {args.latency_ms:g} ms per request; {os.cpu_count()} CPUs; old chain's sentence "
          f"splitter: {splitter}\n")
    header = f"{'system':<24} {'median ms':>10} {'p90 ms':>8} {'req/msg':>8} {'vs old':>7}"
    print(header)
    print("-" * len(header))
    for name in systems:
        median = statistics.median(times[name])
        p90 = sorted(times[name])[int(0.9 * (n - 1))]
        print(f"{name:<24} {median:>10.1f} {p90:>8.1f} {requests[name] / n:>8.2f} {median / old_median:>6.2f}x")
    print(f"{'modchain offline (local)':<24} {offline_ms:>10.3f} {'':>8} {0:>8.2f} {'':>7}")

    counts = {name: dict(sorted({v: verdicts[name].count(v) for v in set(verdicts[name])}.items()))
              for name in systems}
    print("\nverdicts:")
    for name, count in counts.items():
        print(f"  {name:<24} {count}")
    same_old = sum(a == b for a, b in zip(verdicts["old chain"], verdicts["modchain"]))
    same_seq = sum(a == b for a, b in zip(verdicts["modchain, sequential"], verdicts["modchain"]))
    print(f"  same verdict as the old chain: {same_old}/{n}; as modchain sequential: {same_seq}/{n}")

    ratio = statistics.median(times["modchain"]) / old_median
    met = ratio <= 0.6 and same_old == n and offline_ms <= 2.0
    print(f"\nmodchain / old chain, median per message: {ratio:.2f}x (bar <= 0.6x, same verdicts); offline "
          f"median {offline_ms:.3f} ms (bar <= 2 ms): {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
