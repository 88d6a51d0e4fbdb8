"""The judge core (modchain.core.verdict): one verdict base, one re-ask loop, one error, for both LLM judges."""

from __future__ import annotations

import asyncio
import pickle

import pytest
from pydantic import Field

from modchain.core.errors import BackendError, BackendTimeoutError, ConfigurationError
from modchain.core.verdict import (
    Verdict,
    VerdictAttempt,
    VerdictError,
    VerdictParseError,
    aask_for_verdict,
    ask_for_verdict,
    verdict_text,
)
from modchain.core.verdict_json import parse_json_verdict


class Labelled(Verdict):
    """A thin verdict subclass, as a judge with its own answer format defines one."""

    label: str | None = Field(None)


def _parse(answer: str) -> Labelled:
    return parse_json_verdict(answer, Labelled)


def _re_ask(conversation: list[str], answer: str, error: VerdictParseError) -> list[str]:
    return [*conversation, answer, f"again: {error}"]


class Script:
    """A model as a plain callable: answers in order, and the conversations it was asked."""

    def __init__(self, *answers: object) -> None:
        self.answers = list(answers)
        self.asked: list[list[str]] = []

    def __call__(self, conversation: list[str]) -> object:
        self.asked.append(list(conversation))
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    async def ainvoke(self, conversation: list[str]) -> object:
        await asyncio.sleep(0)
        return self(conversation)


def test_the_loop_re_asks_in_the_same_conversation_until_an_answer_parses():
    model = Script("no json here", '```json\n{"flag": "yes", "label": "x", "reason": " why "}\n```')
    verdict = ask_for_verdict(model, ["policy + content"], parse=_parse, re_ask=_re_ask, max_attempts=3,
                              backend="test-judge")
    assert verdict == Labelled(flag=True, label="x", reason="why") and verdict.categories == ()
    assert model.asked == [["policy + content"],
                           ["policy + content", "no json here", "again: no JSON object was found in the answer"]]


def test_running_out_of_attempts_raises_one_error_with_every_answer():
    model = Script("first SECRET", '{"flag": "maybe", "reason": "SECRET"}')
    with pytest.raises(VerdictError) as info:
        ask_for_verdict(model, [], parse=_parse, re_ask=_re_ask, max_attempts=2, backend="test-judge")
    err = info.value
    assert isinstance(err, BackendError) and (err.backend, err.operation) == ("test-judge", "parse")
    assert str(err).startswith("test-judge: no valid verdict after 2 attempt(s); last error: ")
    assert err.outputs == ["first SECRET", '{"flag": "maybe", "reason": "SECRET"}'] and len(model.asked) == 2
    assert "SECRET" not in str(err) and "SECRET" not in repr(err.attempts)
    clone = pickle.loads(pickle.dumps(err))
    assert type(clone) is VerdictError and clone.attempts == err.attempts and clone.backend == "test-judge"


def test_model_failures_become_backend_errors_and_are_not_retried():
    for failure, kind in [(TimeoutError("slow"), BackendTimeoutError), (asyncio.TimeoutError(), BackendTimeoutError),
                          (RuntimeError("reset"), BackendError)]:
        model = Script(failure, '{"flag": false, "reason": "ok"}')
        with pytest.raises(kind, match="test-judge: the model call failed") as info:
            ask_for_verdict(model, [], parse=_parse, re_ask=_re_ask, max_attempts=3, backend="test-judge")
        assert info.value.__cause__ is failure and not isinstance(info.value, VerdictError)
        assert len(model.asked) == 1
    own = BackendError("already mapped", backend="sdk")
    with pytest.raises(BackendError) as info:
        ask_for_verdict(Script(own), [], parse=_parse, re_ask=_re_ask, max_attempts=3, backend="test-judge")
    assert info.value is own


def test_async_loop_and_budget_validation():
    model = Script("nope", '{"flag": 0, "reason": "fine"}')
    verdict = asyncio.run(aask_for_verdict(model.ainvoke, [], parse=_parse, re_ask=_re_ask, max_attempts=2,
                                           backend="test-judge"))
    assert verdict.flag is False and len(model.asked) == 2
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ConfigurationError, match="max_attempts"):
            ask_for_verdict(Script(), [], parse=_parse, re_ask=_re_ask, max_attempts=bad, backend="x")


def test_answer_text_in_any_shape():
    class Message:
        content = [{"type": "reasoning", "text": "hidden"}, {"type": "text", "text": "visible"}]

    class Generation:
        text = "generated"

    assert verdict_text("plain") == "plain"
    assert verdict_text(Message()) == "visible"
    assert verdict_text(Generation()) == "generated"
    with pytest.raises(VerdictParseError, match="the model returned int"):
        verdict_text(42)


def test_both_judges_share_the_core_types():
    from modchain.backends import llm_judge
    from modchain.image_moderation import errors_verdict, verdict

    assert issubclass(verdict.Verdict, Verdict) and issubclass(llm_judge.Verdict, Verdict)
    assert verdict.VerdictParseError is llm_judge.VerdictParseError is VerdictParseError
    assert errors_verdict.VerdictError is VerdictError and errors_verdict.VerdictAttempt is VerdictAttempt
    image = verdict.parse_verdict('{"flag": true, "category": "alcohol", "reason": "beer"}')
    text = llm_judge.parse_verdict("unsafe\nS2", llm_judge.DEFAULT_CATEGORIES)
    assert [(v.flag, v.categories) for v in (image, text)] == [(True, ("Alcohol",)), (True, ("S2",))]
    assert verdict.parse_verdict('{"flag": false, "reason": "ok"}').categories == ()
    assert verdict.LlmVerdict is not None  # old import paths keep working


def test_errors_pickled_under_the_old_module_still_load():
    old = pickle.dumps(VerdictError("m", attempts=[VerdictAttempt("a", "b")]))
    assert pickle.loads(old).attempts == (VerdictAttempt("a", "b"),)
    from modchain.image_moderation.errors_verdict import _rebuild

    assert _rebuild(VerdictError, "m", (), "llm-verdict", "parse").backend == "llm-verdict"
