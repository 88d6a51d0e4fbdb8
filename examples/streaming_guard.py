"""Moderate a chat model's answer while it streams, offline.

    python examples/streaming_guard.py

A fake chat model streams word by word; swap in any LangChain chat model. Shown:
  1. safety_first: an SSN split across chunks is redacted before any digit of it goes out;
  2. a toxic phrase split across chunks stops the stream (both modes), with a typed violation;
  3. low_latency: chunks go out at once, windows are checked behind them;
  4. composing: ``llm | StreamGuard(guard=...)``, sync and async;
  5. a model's reasoning blocks: passed unread (default), moderated with the answer, or dropped.
"""

import asyncio

from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk

from modchain import (
    ModerationCallbackHandler,
    ModerationChain,
    ModerationConfig,
    PiiConfig,
    PromptSafetyConfig,
    ToxicityConfig,
    ToxicityViolation,
)
from modchain.text.streaming import StreamGuard


def chat(answer: str) -> GenericFakeChatModel:
    """A chat model that streams ``answer`` word by word, every time it is called."""
    return GenericFakeChatModel(messages=iter([AIMessage(content=answer)] * 10))


class Audit(ModerationCallbackHandler):
    def on_after_stream(self, beacon, unique_id, **kwargs):
        out = beacon["moderation_output"]
        labels = sorted({f["label"] for f in out["findings"] if f["score"] >= 0.5})
        print(f"    [audit] window {out['window']} chars {out['start']}-{out['end']}: "
              f"{beacon['moderation_status']} {labels} user={unique_id}")


guard = ModerationChain(ModerationConfig(filters=[
    PiiConfig(action="redact"),          # SSNs, emails, ... are masked in the stream
    ToxicityConfig(threshold=0.6),
    PromptSafetyConfig(threshold=0.8),
]), callbacks=[Audit()])

print("1. safety_first: the SSN is redacted before release")
answer = ("I found your account. The SSN on file is 123-45-6789 and the card ends in 4242. "
          "Your order shipped on Monday and should arrive by Thursday.")
guarded = StreamGuard(chat(answer), guard=guard, mode="safety_first", window_chars=60, overlap_chars=24)
chunks = [c.content for c in guarded.stream("Where is my order?", config={"configurable": {"unique_id": "user-42"}})]
print("  chunks as released: " + "|".join(chunks))

print("\n2. a toxic phrase split across chunks is caught")
toxic = ("Thanks for waiting. Honestly, you are a worthless idiot and I hate you. "
         "Anyway, here is the tracking number for your parcel.")
for mode in ("safety_first", "low_latency"):
    released = []
    try:
        for chunk in StreamGuard(chat(toxic), guard=guard, mode=mode, window_chars=80, overlap_chars=48).stream("hi"):
            released.append(chunk.content)
    except ToxicityViolation as violation:  # a StreamToxicityViolation: also a ToxicityViolation
        print(f"  {mode}: stopped: {violation}")
        print(f"    released before the stop ({violation.released_chars} chars): {''.join(released)!r}")

print("\n3. low_latency: text goes out at once; a clean answer streams through unchanged")
clean = "Your order shipped on Monday and should arrive by Thursday. Anything else I can help with?"
low = StreamGuard(chat(clean), guard=guard, mode="low_latency", window_chars=60, overlap_chars=24)
print("  " + "".join(chunk.content for chunk in low.stream("hi")))

print("\n4. composed after a model, async")


async def main() -> None:
    chain = chat(answer) | StreamGuard(guard=guard)
    parts = [chunk.content async for chunk in chain.astream("hi")]
    print(f"  {len(parts)} chunks: {''.join(parts)}")


asyncio.run(main())

print("\n5. reasoning blocks (a model's thinking), for applications that show them")
thinking = [AIMessageChunk(content=[{"type": "reasoning", "reasoning": "The SSN on file is 123-", "index": 0}]),
            AIMessageChunk(content=[{"type": "reasoning", "reasoning": "45-6789; do not repeat it. ", "index": 0}]),
            AIMessageChunk(content=[{"type": "text", "text": "Your order shipped on Monday.", "index": 1}])]
for setting in ("pass", "moderate", "drop"):
    out = StreamGuard(guard=guard, config={"reasoning": setting}, window_chars=60, overlap_chars=24).transform(
        iter(thinking))
    blocks = [block for chunk in out for block in chunk.content]
    shown = "".join(block.get("reasoning", "") for block in blocks)
    print(f"  {setting:<8} reasoning: {shown!r}")
