"""StreamGuard and reasoning blocks (a model's thinking): passed on unread, moderated as text, or dropped."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.messages import AIMessageChunk

from modchain import ConfigurationError, ModerationChain
from modchain.text.streaming import StreamGuard
from modchain.text.streaming.chunks import chunk_text, join_chunks, split_chunk
from modchain.text.streaming.violations import StreamToxicityViolation

SSN = "123-45-6789"
GUARD = ModerationChain()  # redact PII, block toxicity and unsafe prompts, offline
ANSWER = " Paris is the capital of France, known for its museums and the gardens along the river."


def thinking(text: str, **extra: Any) -> AIMessageChunk:
    """A LangChain standard reasoning block, as chat models stream it (one index for the whole block)."""
    return AIMessageChunk(content=[{"type": "reasoning", "reasoning": text, "index": 0, **extra}], id="m1")


def answer(text: str) -> AIMessageChunk:
    return AIMessageChunk(content=[{"type": "text", "text": text, "index": 1}], id="m1")


def stream(reasoning: str, chunks: list[AIMessageChunk], mode: str = "safety_first") -> list[Any]:
    guard = StreamGuard(guard=GUARD, config={"reasoning": reasoning, "mode": mode}, window_chars=60,
                        overlap_chars=20)
    return list(guard.transform(iter(chunks)))


def reasoning_text(chunks: list[Any]) -> str:
    return "".join(p.get("reasoning", "") for c in chunks for p in c.content if isinstance(p, dict))


def answer_text(chunks: list[Any]) -> str:
    return "".join(p.get("text", "") for c in chunks for p in c.content if isinstance(p, dict))


PRIVATE_THOUGHTS = [thinking("The user's SSN is 123-"), thinking("45-6789, so I should not repeat it.")]


def test_by_default_reasoning_passes_unread_and_the_answer_is_still_moderated():
    out = stream("pass", PRIVATE_THOUGHTS + [answer(f"Noted {SSN}." + ANSWER)])
    assert reasoning_text(out) == f"The user's SSN is {SSN}, so I should not repeat it."
    assert answer_text(out) == "Noted ***********." + ANSWER


def test_moderated_reasoning_is_redacted_before_release_even_split_across_chunks():
    out = stream("moderate", PRIVATE_THOUGHTS + [answer(ANSWER)])
    assert reasoning_text(out) == "The user's SSN is ***********, so I should not repeat it."
    assert answer_text(out) == ANSWER
    assert SSN[:4] not in "".join(str(c.content) for c in out)  # no half of it went out either


@pytest.mark.parametrize("mode", ["safety_first", "low_latency"])
def test_a_toxic_phrase_split_across_reasoning_chunks_stops_a_moderated_stream(mode):
    chunks = [thinking("Draft: you are a worthless "), thinking("idiot and I hate you."), answer(ANSWER)]
    with pytest.raises(StreamToxicityViolation):
        stream("moderate", chunks, mode)
    assert answer_text(stream("pass", chunks, mode)) == ANSWER  # unread: the same stream goes through


def test_dropped_reasoning_never_leaves_and_is_not_checked():
    chunks = [thinking("you are a worthless idiot and I hate you."), answer(f"Noted {SSN}." + ANSWER)]
    out = stream("drop", chunks)
    assert reasoning_text(out) == "" and not any(p.get("type") == "reasoning" for c in out for p in c.content)
    assert answer_text(out) == "Noted ***********." + ANSWER
    assert all(isinstance(c, AIMessageChunk) and c.id == "m1" for c in out)


def test_moderated_reasoning_blocks_add_up_with_their_signature_once():
    chunks = [thinking("Short plan: answer the question about Paris. ", signature="sig-abc"),
              answer(ANSWER * 3)]
    out = stream("moderate", chunks)
    merged = join_chunks(out)
    blocks = [p for p in merged.content if isinstance(p, dict) and p.get("type") == "reasoning"]
    assert len(blocks) == 1 and blocks[0]["signature"] == "sig-abc"  # held whole: never cut and re-added
    assert blocks[0]["reasoning"] == "Short plan: answer the question about Paris. "


def test_anthropic_thinking_and_summary_shapes_are_read():
    chunks = [AIMessageChunk(content=[{"type": "thinking", "thinking": f"SSN {SSN} seen.", "index": 0}]),
              AIMessageChunk(content=[{"type": "reasoning", "index": 1,
                                       "summary": [{"type": "summary_text", "text": f"Again {SSN}."}]}]),
              AIMessageChunk(content=ANSWER)]
    out = stream("moderate", chunks)
    assert out[0].content[0]["thinking"] == "SSN *********** seen."
    assert out[1].content[0]["summary"][0]["text"] == "Again ***********."
    assert chunks[0].content[0]["thinking"] == f"SSN {SSN} seen."  # the caller's chunks are not mutated


PROVIDER_SHAPES = {  # where providers put reasoning besides LangChain's standard block
    "reasoning_content kwarg (Ollama, DeepSeek, xAI, Groq)":
        lambda text: AIMessageChunk(content="", additional_kwargs={"reasoning_content": text}),
    "reasoning kwarg (older OpenAI)":
        lambda text: AIMessageChunk(content="", additional_kwargs={"reasoning": {"summary": [{"text": text}]}}),
    "Bedrock reasoning_content block":
        lambda text: AIMessageChunk(content=[{"type": "reasoning_content", "reasoning_content": {"text": text,
                                                                                               "signature": "s"}}]),
    "Mistral thinking list": lambda text: AIMessageChunk(content=[{"type": "thinking",
                                                                   "thinking": [{"type": "text", "text": text}]}]),
}


@pytest.mark.parametrize("shape", PROVIDER_SHAPES, ids=str)
@pytest.mark.parametrize("mode", ["safety_first", "low_latency"])
def test_every_provider_shape_is_moderated_or_dropped(shape, mode):
    make = PROVIDER_SHAPES[shape]
    chunks = [make(f"Their SSN is {SSN}; keep it private. "), answer(ANSWER)]
    if mode == "safety_first":
        moderated = stream("moderate", chunks, mode)
        assert SSN not in repr(moderated) and "*" * 11 in repr(moderated)
    else:  # low latency: the SSN went out before its check, so the stream stops
        with pytest.raises(Exception, match="PII"):
            stream("moderate", chunks, mode)
    dropped = stream("drop", chunks, mode)
    assert SSN not in repr(dropped) and "keep it private" not in repr(dropped)
    assert answer_text(dropped) == ANSWER
    assert SSN in repr(stream("pass", chunks, "safety_first"))  # the default: unread


def test_a_cut_text_block_keeps_its_annotations_once_and_blocks_keep_their_order():
    cite = {"type": "url_citation", "url": "https://example.org"}
    chunk = AIMessageChunk(content=[{"type": "reasoning", "reasoning": "plan", "index": 0},
                                    {"type": "text", "text": "abcdef", "index": 1, "annotations": [cite]}], id="m")
    for at in range(7):
        head, tail = split_chunk(chunk, at)
        merged = head + tail
        assert chunk_text(merged) == "abcdef" and [b["type"] for b in merged.content] == ["reasoning", "text"]
        assert merged.content[1]["annotations"] == [cite] and merged.content[0]["reasoning"] == "plan"


def test_astream_moderates_reasoning():
    async def source():
        for chunk in PRIVATE_THOUGHTS + [answer(ANSWER)]:
            yield chunk

    async def collect():
        guard = StreamGuard(guard=GUARD, config={"reasoning": "moderate"}, window_chars=60, overlap_chars=20)
        return [c async for c in guard.atransform(source())]

    out = asyncio.run(collect())
    assert reasoning_text(out) == "The user's SSN is ***********, so I should not repeat it."


def test_an_unknown_reasoning_setting_is_a_configuration_error():
    with pytest.raises(ConfigurationError):
        StreamGuard(guard=GUARD, config={"reasoning": "hide"})
