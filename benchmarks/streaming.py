"""Latency of a moderated stream: unguarded vs low-latency vs safety-first StreamGuard.

    python benchmarks/streaming.py [--runs 7] [--delay-ms 2] [--window 240] [--overlap 80]

A fake chat model streams a ~1,200-character answer word by word with a fixed delay per token. Each run
times, from the call to ``stream`` on:
  ttft   time to the first chunk with text (IQR over runs: the noise; +ms: over unguarded)
  total  time to the end of the stream
  hold   how long the guard held a chunk after the model produced it (max over the chunks of a run)
for the model alone, ``StreamGuard(mode="low_latency")`` and ``StreamGuard(mode="safety_first")``, runs
interleaved (one of each per round) so drift hits all alike; medians over runs are printed. "one window"
is the time the model takes to produce ``window`` characters. Bars: safety-first adds at most one window
of latency (hold <= one window + check time); low-latency ttft equals unguarded ttft within noise.

Backends: the offline ``local`` one (default chain: PII redact, toxicity, prompt safety), and the
Comprehend emulator (a real local HTTP server speaking Comprehend's protocol) with 30 ms per request, to
show what a remote backend's latency does to each mode.

CPU table first (issue 18's bar: StreamGuard CPU per KB <= 1.5x the same checks called directly): the answer
repeated ``--cpu-repeat`` times, streamed word by word as ``str`` chunks and as ``AIMessageChunk``s built
beforehand (so only the guard's own work is timed), through the default chain with no delay; against it,
``chain.moderate`` called directly on exactly the windows the guard checks. Process CPU time
(``time.process_time``, every thread counted), median of ``--runs`` interleaved rounds. The "wrapped model"
row streams from the fake chat model instead and subtracts the model's own CPU (measured alone in the same
rounds): it is noisier, since two larger numbers are subtracted.

    python benchmarks/streaming.py --only cpu      # the CPU table alone
"""

from __future__ import annotations

import argparse
import bisect
import re
import statistics
import time
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from modchain import ModerationChain, ModerationConfig, PiiConfig, ToxicityConfig
from modchain.text.streaming import StreamGuard
from modchain.text.streaming.windows import StreamWindows

ANSWER = (
    "Thanks for reaching out about your order. I checked the account and the package left our warehouse "
    "on Monday morning; the carrier expects to deliver it by Thursday afternoon. If it has not arrived by "
    "then, reply to this message and we will open a trace with the carrier and ship a replacement at no "
    "cost. You can follow the parcel on the carrier's site with the tracking number in your confirmation "
    "email. While you wait, here are a few tips for the blender you ordered: rinse the jar right after use, "
    "never run it empty, and start on the lowest speed before moving up. The warranty covers the motor for "
    "two years and the jar for one year; keep the receipt, since we need it for any claim. Our support team "
    "is available every day from eight in the morning to eight in the evening, and the chat on our website "
    "usually answers within a few minutes. Have a great week, and enjoy the smoothies! If you have any other "
    "questions about the order, the delivery or the product itself, just let us know and we will be happy "
    "to help you with anything you need."
)


class TimedFakeChat(BaseChatModel):
    """Streams ``text`` one word (token) at a time, sleeping ``delay_s`` before each; records when each
    token was produced and where it ends, so the guard's hold time per character can be measured."""

    text: str
    delay_s: float
    produced: list[tuple[int, float]] = []  # (end offset of the token, when it was produced)

    @property
    def _llm_type(self) -> str:
        return "timed-fake-chat"

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self.text))])

    def _stream(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any):
        self.produced.clear()
        end = 0
        for token in re.findall(r"\S+\s*", self.text):
            if self.delay_s:  # no sleep(0): it hands the core to another process, and the caches with it
                time.sleep(self.delay_s)
            end += len(token)
            self.produced.append((end, time.perf_counter()))
            yield ChatGenerationChunk(message=AIMessageChunk(content=token))


def one_run(runnable: Any, model: TimedFakeChat) -> tuple[float, float, float]:
    """(time to first text, total time, the longest any character was held back by the guard)."""
    started = time.perf_counter()
    first = None
    released: list[tuple[int, float]] = []  # (end offset of the text out so far, when it went out)
    offset = 0
    for chunk in runnable.stream("hi"):
        if chunk.content:
            now = time.perf_counter()
            first = first or now
            offset += len(chunk.content)
            released.append((offset, now))
    total = time.perf_counter() - started
    # A released piece's last character was produced with the first token that reaches its end offset.
    ends = [end for end, _ in model.produced]
    hold = max(at - model.produced[bisect.bisect_left(ends, end)][1] for end, at in released)
    return (first or started) - started, total, hold


def bench(label: str, guard: ModerationChain, args: argparse.Namespace) -> None:
    model = TimedFakeChat(text=ANSWER, delay_s=args.delay_ms / 1000)
    contenders = {
        "unguarded": model,
        "low_latency": StreamGuard(model, guard=guard, mode="low_latency", window_chars=args.window,
                                   overlap_chars=args.overlap),
        "safety_first": StreamGuard(model, guard=guard, mode="safety_first", window_chars=args.window,
                                    overlap_chars=args.overlap),
    }
    for runnable in contenders.values():  # warm up: the offline models load on first use
        one_run(runnable, model)
    samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in contenders}
    for _ in range(args.runs):
        for name, runnable in contenders.items():
            samples[name].append(one_run(runnable, model))
    tokens = len(re.findall(r"\S+\s*", ANSWER))
    base = {k: statistics.median(s[k] for s in samples["unguarded"]) for k in (0, 1)}
    window_s = args.window / len(ANSWER) * base[1]  # at the rate the model really streamed
    print(f"\n{label}: {len(ANSWER)} chars, {tokens} tokens, {args.delay_ms} ms/token, window {args.window} "
          f"/ overlap {args.overlap} chars; one window = {window_s * 1000:.0f} ms; median of {args.runs} runs")
    print(f"{'mode':<13}{'ttft ms':>9}{'(IQR)':>7}{'+ms':>9}{'total ms':>10}{'vs unguarded':>14}"
          f"{'max hold ms':>13}{'hold/window':>13}")
    for name, runs in samples.items():
        ttfts = sorted(r[0] for r in runs)
        ttft = statistics.median(ttfts)
        quartiles = statistics.quantiles(ttfts, n=4) if len(ttfts) > 1 else [ttft, ttft, ttft]
        total = statistics.median(r[1] for r in runs)
        hold = statistics.median(r[2] for r in runs)
        print(f"{name:<13}{ttft * 1000:>9.2f}{(quartiles[2] - quartiles[0]) * 1000:>7.2f}"
              f"{(ttft - base[0]) * 1000:>+9.2f}{total * 1000:>10.1f}{total / base[1]:>13.3f}x"
              f"{hold * 1000:>13.1f}{hold / window_s:>13.2f}")


def window_texts(text: str, guard: StreamGuard) -> list[str]:
    """The windows a guard checks over ``text`` (they depend on the text only, never on the chunking)."""
    windows = StreamWindows(guard.config)
    windows.append(text)
    out = []
    while (window := windows.next_window(final=True)) is not None:
        windows.schedule(window)
        out.append(window.text)
    return out


def cpu_ms(fn: Any) -> float:
    started = time.process_time()
    fn()
    return (time.process_time() - started) * 1000


def cpu_table(args: argparse.Namespace) -> None:
    chain = ModerationChain()
    text = " ".join([ANSWER] * args.cpu_repeat)
    kb = len(text) / 1000
    tokens = re.findall(r"\S+\s*", text)
    sources = {"str chunks": tokens, "message chunks": [AIMessageChunk(content=t) for t in tokens]}
    model = TimedFakeChat(text=text, delay_s=0)
    rows: dict[str, Any] = {}
    for mode in ("safety_first", "low_latency"):
        kw = {"mode": mode, "window_chars": args.window, "overlap_chars": args.overlap}
        guard = StreamGuard(guard=chain, **kw)
        wrapped = StreamGuard(model, guard=chain, **kw)
        windows = window_texts(text, guard)
        for name, chunks in sources.items():
            rows[(mode, name)] = (lambda g=guard, c=chunks: list(g.transform(iter(c))), windows, None)
        rows[(mode, "wrapped model")] = (lambda g=wrapped: list(g.stream("hi")), windows,
                                         lambda: list(model.stream("hi")))
    samples: dict[Any, list[tuple[float, float, float]]] = {key: [] for key in rows}
    for run, _, _ in rows.values():  # warm up
        run()
    for _ in range(args.runs):
        for key, (run, direct_windows, alone) in rows.items():
            guarded = cpu_ms(run)
            direct = cpu_ms(lambda w=direct_windows: [chain.moderate(t) for t in w])
            model_cpu = cpu_ms(alone) if alone else 0.0
            samples[key].append((guarded - model_cpu, direct, model_cpu))
    print(f"\nCPU per KB: {len(text)} chars, {len(tokens)} chunks, window {args.window} / overlap {args.overlap}, "
          f"default chain (offline); median of {args.runs} rounds")
    print(f"{'mode':<14}{'chunks':<16}{'windows':>8}{'StreamGuard ms/KB':>19}{'direct ms/KB':>14}{'ratio':>8}"
          f"{'  (bar <= 1.5x)':<15}")
    for (mode, name), runs in samples.items():
        guarded = statistics.median(r[0] for r in runs) / kb
        direct = statistics.median(r[1] for r in runs) / kb
        note = f"  (model alone {statistics.median(r[2] for r in runs) / kb:.1f} ms/KB, subtracted)" if name == \
            "wrapped model" else ""
        print(f"{mode:<14}{name:<16}{len(rows[(mode, name)][1]):>8}{guarded:>19.2f}{direct:>14.2f}"
              f"{guarded / direct:>7.2f}x{note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--delay-ms", type=float, default=2.0)
    parser.add_argument("--window", type=int, default=240)
    parser.add_argument("--overlap", type=int, default=80)
    parser.add_argument("--remote-latency-ms", type=float, default=30.0)
    parser.add_argument("--cpu-repeat", type=int, default=4, help="copies of the answer in the CPU table's text")
    parser.add_argument("--only", choices=["cpu", "latency"], help="print only one of the tables")
    args = parser.parse_args()
    if args.only != "latency":
        cpu_table(args)
    if args.only == "cpu":
        return
    bench("local backend (offline default chain)", ModerationChain(), args)

    from modchain.backends.aws.comprehend import ComprehendBackend
    from modchain.testing.clients import local_client
    from modchain.testing.comprehend_emulator import ComprehendEmulator

    with ComprehendEmulator(latency_s=args.remote_latency_ms / 1000) as emulator:
        remote = ModerationChain(ModerationConfig(filters=[PiiConfig(), ToxicityConfig()]),
                                 backend=ComprehendBackend(local_client("comprehend", emulator.url)))
        bench(f"Comprehend emulator, {args.remote_latency_ms:.0f} ms per request (PII + toxicity)", remote, args)


if __name__ == "__main__":
    main()
