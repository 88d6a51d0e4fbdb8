"""The typed callback event (``on_event``) and its beacon adapters (``on_after_<step>``)."""

from __future__ import annotations

import asyncio
import logging
import pickle
from typing import Any

import numpy as np
import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from PIL import Image
from pydantic import ValidationError

from modchain import ModerationCallbackHandler, ModerationChain, ModerationConfig, PiiConfig, ToxicityConfig
from modchain.core.callbacks import BEACON_TYPES, CallbackDispatcher
from modchain.core.events import MODERATION_STEPS, ModerationEvent
from modchain.core.image_findings import ImageFinding
from modchain.core.regions import Detection, Segment
from modchain.core.vqa import VqaResult
from modchain.generation import PromptGuard, SafeImageGenerator
from modchain.image_moderation.image_chain import ImageModerationChain
from modchain.image_moderation.verdict import LlmVerdict
from modchain.screening.screener import DatasetScreener
from modchain.text.chain_rounds import FILTER_CLASSES
from modchain.text.documents import DocumentGuard
from modchain.text.documents.tool_guard import ToolOutputGuard
from modchain.text.streaming import StreamGuard
from modchain.visual_chain.chain import ImageChain
from modchain.visual_chain.masks import encode_mask

EMAIL = "jane.doe@example.com"
SAFE_VERDICT = '{"flag": false, "category": "none", "reason": "a plain coloured square"}'


def old_beacon(chain_id: str, step: str, found: bool, moderation_input: Any, output: Any,
               status: str | None = None) -> dict:
    """The beacon exactly as modchain built it before the typed event (a frozen copy of make_beacon)."""
    return {"moderation_chain_id": chain_id, "moderation_type": BEACON_TYPES.get(step, step),
            "moderation_status": status or ("LABELS_FOUND" if found else "LABELS_NOT_FOUND"),
            "moderation_input": moderation_input, "moderation_output": output}


class Everything(ModerationCallbackHandler):
    """``on_event`` plus every ``on_after_<step>`` (added below), recording calls in the order they came."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, Any]] = []

    def on_event(self, event: ModerationEvent) -> None:
        self.calls.append(("event", event, None))


def _beacon_hook(step: str):
    def hook(self, moderation_beacon, unique_id, **kwargs):
        self.calls.append((step, moderation_beacon, unique_id))
    hook.__name__ = f"on_after_{step}"
    return hook


for _step in MODERATION_STEPS:
    setattr(Everything, f"on_after_{_step}", _beacon_hook(_step))


class EventsOnly(ModerationCallbackHandler):
    def __init__(self) -> None:
        self.events: list[ModerationEvent] = []

    def on_event(self, event: ModerationEvent) -> None:
        self.events.append(event)


class AsyncEvents(ModerationCallbackHandler):
    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []

    async def on_event(self, event: ModerationEvent) -> None:
        await asyncio.sleep(0)  # yield to the loop: order must hold anyway
        self.seen.append((event.step, event.unique_id))


# -- small implementations of the image protocols (no model needed to see the events) ----------------------

class RedLabeler:
    name = "red-labeler"

    def label(self, image):
        red = np.asarray(image.convert("RGB"))[..., 0].mean() / 255
        return [ImageFinding(label="Explicit", score=round(float(red) * 0.5, 3), backend=self.name)]


class CaptionVqa:
    def answer(self, images, questions, *, caption=True):
        return [VqaResult(caption="a square", answers=[(q, "no") for q in questions], vision_passes=1)
                for _ in images]


class OneBoxDetector:
    name = "one-box"

    def detect(self, image, queries):
        return [Detection(label=queries[0], score=0.9, box=(2.0, 2.0, 10.0, 10.0), backend=self.name)]


class BoxSegmenter:
    name = "box-seg"

    def embed(self, image):
        return None

    def segment(self, image, prompts, *, embedding=None):
        mask = np.zeros((image.height, image.width), dtype=bool)
        mask[2:10, 2:10] = True
        return [[Segment(mask=encode_mask(mask), score=0.8, prompt_index=0)] for _ in prompts]


def square(rgb=(40, 90, 160)) -> Image.Image:
    return Image.new("RGB", (24, 24), rgb)


def run_every_component(handler: Any, tmp_path) -> None:
    """One call of every component, all reporting to ``handler``: all 14 steps."""
    callbacks = [handler]
    text = ModerationChain(ModerationConfig(filters=[PiiConfig(labels=["EMAIL"], action="redact"), ToxicityConfig(),
                                                     {"type": "prompt_safety"}]), callbacks=callbacks)
    text.invoke(f"write to {EMAIL} about the meeting", config={"configurable": {"unique_id": "u1"}})
    DocumentGuard(callbacks=callbacks).invoke([Document("The museum opens at nine on weekdays.")])
    ToolOutputGuard(callbacks=callbacks).moderate_text("Sunny, 21 degrees.", tool="weather")
    stream = StreamGuard(guard=ModerationChain(), callbacks=callbacks)
    assert "".join(stream.transform(iter(["The train ", "leaves at noon."]))) == "The train leaves at noon."
    ImageModerationChain(labeler=RedLabeler(), vqa=CaptionVqa(),
                         judge=LlmVerdict(FakeListChatModel(responses=[SAFE_VERDICT])),
                         cascade={"flag_at": 0.9, "clear_below": 0.01}, callbacks=callbacks).moderate(square())
    guard = PromptGuard(callbacks=callbacks)
    SafeImageGenerator(lambda prompt, negative, seed: square(), RedLabeler(), prompt_guard=guard,
                       callbacks=callbacks).invoke("a blue square on a table")
    data = tmp_path / "data"
    data.mkdir()
    square().save(data / "a.png")
    DatasetScreener(RedLabeler(), prompt_checker=None, callbacks=callbacks).screen(data, tmp_path / "report")
    ImageChain.from_visual_pipeline([OneBoxDetector(), BoxSegmenter()], callbacks=callbacks).run(
        "box", image=square())


# -- the model --------------------------------------------------------------------------------------------

def test_the_steps_are_the_hooks_and_the_beacon_types():
    assert set(MODERATION_STEPS) == set(BEACON_TYPES)
    hooks = {name[len("on_after_"):] for name in vars(ModerationCallbackHandler) if name.startswith("on_after_")}
    assert hooks == set(MODERATION_STEPS)
    assert set(FILTER_CLASSES) <= set(MODERATION_STEPS)  # a new text filter needs a step (or emitting fails)


def test_the_event_is_frozen_pickles_and_keeps_text_out_of_its_repr():
    event = ModerationEvent.of("pii", "run-1", True, [f"mail {EMAIL}"], [{"Entities": []}], unique_id="u1",
                               elapsed_ms=1.5)
    assert event.found and not event.failed and event.status == "LABELS_FOUND"
    assert event.moderation_type == "PII"
    with pytest.raises(ValidationError):
        event.status = "ERROR"  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(event)) == event
    assert EMAIL not in repr(event) and EMAIL not in str(event)
    assert event.to_beacon() == old_beacon("run-1", "pii", True, [f"mail {EMAIL}"], [{"Entities": []}])
    failed = ModerationEvent.of("toxicity", "run-1", True, ["x"], {"error": "Throttled"}, error=True)
    assert failed.failed and not failed.found
    assert failed.to_beacon()["moderation_status"] == "ERROR"
    with pytest.raises(ValueError):
        ModerationEvent.of("no_such_step", "run-1", False, None, None)


# -- every component, every step --------------------------------------------------------------------------

def test_every_step_emits_a_typed_event_and_the_same_beacon_as_before(tmp_path):
    handler = Everything()
    run_every_component(handler, tmp_path)
    calls = handler.calls
    events = [event for kind, event, _ in calls if kind == "event"]
    assert {e.step for e in events} == set(MODERATION_STEPS)
    assert len(calls) == 2 * len(events)
    for (kind, event, _), (step, beacon, unique_id) in zip(calls[::2], calls[1::2]):
        # on_event comes first, then the step's beacon hook with exactly the dict the beacon always was
        assert kind == "event" and step == event.step and unique_id == event.unique_id
        assert beacon == old_beacon(event.chain_id, event.step, event.found, event.input, event.output,
                                    status="ERROR" if event.failed else None)
        assert beacon["moderation_input"] is event.input and beacon["moderation_output"] is event.output
    text_steps = [e for e in events if e.step in ("pii", "toxicity", "prompt_safety")]
    assert [e.step for e in text_steps[:3]] == ["pii", "toxicity", "prompt_safety"]
    assert text_steps[0].found and text_steps[0].unique_id == "u1" and text_steps[0].elapsed_ms is not None
    assert text_steps[1].input == ["write to ******************** about the meeting"]  # after redaction
    assert len({e.chain_id for e in text_steps[:3]}) == 1  # one chain run


def test_a_handler_with_only_on_event_sees_every_step(tmp_path):
    handler = EventsOnly()
    run_every_component(handler, tmp_path)
    assert {e.step for e in handler.events} == set(MODERATION_STEPS)
    assert all(isinstance(e, ModerationEvent) for e in handler.events)


def test_no_listener_builds_no_event():
    assert not CallbackDispatcher([ModerationCallbackHandler()]).wants("pii")
    assert CallbackDispatcher([EventsOnly()]).wants("segmentation")

    class PiiOnly(ModerationCallbackHandler):
        def on_after_pii(self, moderation_beacon, unique_id, **kwargs):
            pass

    dispatcher = CallbackDispatcher([PiiOnly()])
    assert dispatcher.wants("pii") and not dispatcher.wants("toxicity")


# -- delivery: sync and async, order, failures -------------------------------------------------------------

def _text_chain(handler: Any) -> ModerationChain:
    return ModerationChain(ModerationConfig(filters=[PiiConfig(labels=["EMAIL"], action="redact"),
                                                     ToxicityConfig()]), callbacks=[handler])


def test_async_on_event_in_order_from_sync_and_async_calls():
    handler = AsyncEvents()
    chain = _text_chain(handler)
    chain.invoke("first message", config={"configurable": {"unique_id": "a"}})

    async def serve():
        await chain.ainvoke("second message", config={"configurable": {"unique_id": "b"}})
        chain.invoke("third message", config={"configurable": {"unique_id": "c"}})  # sync inside a loop

    asyncio.run(serve())
    assert handler.seen == [(step, user) for user in "abc" for step in ("pii", "toxicity")]


def test_events_keep_registration_order_across_handlers():
    seen: list[str] = []

    class First(ModerationCallbackHandler):
        async def on_event(self, event):
            await asyncio.sleep(0.01)
            seen.append(f"first.event.{event.step}")

        def on_after_pii(self, moderation_beacon, unique_id, **kwargs):
            seen.append("first.pii")

    class Second(ModerationCallbackHandler):
        def on_event(self, event):
            seen.append(f"second.event.{event.step}")

    ModerationChain(ModerationConfig(filters=[PiiConfig(), ToxicityConfig()]),
                    callbacks=[First(), Second()]).invoke("hello there")
    assert seen == ["first.event.pii", "first.pii", "second.event.pii", "first.event.toxicity",
                    "second.event.toxicity"]


def test_a_failing_on_event_is_logged_and_the_beacon_hook_still_runs(caplog):
    class Broken(ModerationCallbackHandler):
        def __init__(self):
            self.beacons = []

        def on_event(self, event):
            raise RuntimeError(f"cannot store {event.input}")

        def on_after_pii(self, moderation_beacon, unique_id, **kwargs):
            self.beacons.append(moderation_beacon)

    broken = Broken()
    with caplog.at_level(logging.WARNING, logger="modchain.callbacks"):
        out = ModerationChain(ModerationConfig(filters=[PiiConfig(labels=["EMAIL"], action="redact")]),
                              callbacks=[broken]).invoke(f"mail {EMAIL}")
    assert out == "mail " + "*" * len(EMAIL) and len(broken.beacons) == 1
    assert "Broken.on_event failed with RuntimeError" in caplog.text and EMAIL not in caplog.text
    with pytest.raises(RuntimeError):
        CallbackDispatcher([Broken()], raise_errors=True).emit(ModerationEvent.of("pii", "r", False, [], []))


def test_the_older_emit_form_passes_its_beacon_on_unchanged():
    handler = Everything()
    beacon = old_beacon("r-9", "documents", True, ["doc"], {"dropped": 1}, status="ERROR")
    CallbackDispatcher([handler]).emit("documents", beacon, "u9")
    (_, event, _), (step, passed, uid) = handler.calls
    assert passed is beacon and step == "documents" and uid == "u9"
    assert event.failed and event.chain_id == "r-9" and event.input == ["doc"] and event.unique_id == "u9"


# -- LangChain's callback system and pickling --------------------------------------------------------------

def test_langchain_custom_events_match_the_typed_events():
    class Tracer(BaseCallbackHandler):
        def __init__(self):
            self.events = []

        def on_custom_event(self, name, data, **kwargs):
            self.events.append((name, data))

    handler, tracer = EventsOnly(), Tracer()
    _text_chain(handler).invoke(f"mail {EMAIL}", config={"callbacks": [tracer],
                                                          "configurable": {"unique_id": "u5"}})
    assert [name for name, _ in tracer.events] == [f"modchain.{e.step}" for e in handler.events]
    for (_, data), event in zip(tracer.events, handler.events):
        assert data["run_id"] == event.chain_id and data["unique_id"] == event.unique_id
    assert EMAIL not in repr(tracer.events)  # the tracer never gets the text; the audit handler does
    assert handler.events[0].input == [f"mail {EMAIL}"]


def test_a_chain_with_an_on_event_handler_pickles_and_still_reports():
    chain = pickle.loads(pickle.dumps(_text_chain(EventsOnly())))
    chain.invoke("hello there")
    assert [e.step for e in chain.callbacks[0].events] == ["pii", "toxicity"]
