"""One outcome contract (issue 15): every component's result extends core's ``Outcome``; ``invoke`` pipes the
input on or raises a ``*Violation``, ``moderate`` returns the full outcome; ``modchain.__all__`` covers every
area without making ``import modchain`` heavier."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import modchain
from modchain.core.errors import PromptRejectedViolation
from modchain.core.image_findings import ImageFinding
from modchain.core.results import FilterResult, ModerationResult, Outcome
from modchain.generation import GenerationAttempt, GenerationResult, PromptCheck, PromptGuard
from modchain.image_moderation import ImageModerationChain, ImageModerationResult, UnsafeImageViolation
from modchain.screening import ItemResult
from modchain.text.documents.report import DocumentReport, DocumentVerdict
from modchain.visual_chain import Detection, ImageChainResult, RedactionResult, StageTiming

RESULT_TYPES = [ModerationResult, ImageModerationResult, DocumentVerdict, DocumentReport, PromptCheck,
                GenerationResult, ImageChainResult, ItemResult, RedactionResult]
BASE_FIELDS = {"allowed", "findings", "errors", "timings_ms", "unique_id"}
HEAVY = ("PIL", "numpy", "boto3", "botocore", "torch", "transformers", "onnxruntime")


@pytest.mark.parametrize("result_type", RESULT_TYPES, ids=lambda t: t.__name__)
def test_every_result_extends_the_one_outcome_base(result_type):
    assert issubclass(result_type, Outcome)
    assert BASE_FIELDS <= set(result_type.model_fields)


def test_the_text_chain_result_derives_errors_and_timings_from_its_filters():
    filters = (FilterResult(filter="pii", index=0, backend="local", action="redact", elapsed_ms=1.5),
               FilterResult(filter="toxicity", index=1, backend="comprehend", action="block",
                            error="BackendTimeoutError", elapsed_ms=2.0))
    result = ModerationResult(allowed=True, filters=filters, unique_id="u-1")
    assert result.timings_ms == {"0:pii": 1.5, "1:toxicity": 2.0}
    assert result.errors == ("toxicity: BackendTimeoutError",)
    # derived fields stay out of the serialized form (the HTTP service and CLI output are unchanged)...
    data = result.model_dump()
    assert "errors" not in data and "timings_ms" not in data
    # ...and come back when it is read back
    assert ModerationResult.model_validate(data).timings_ms == result.timings_ms


def test_documents_derive_allowed_findings_and_errors_from_the_action():
    dropped = DocumentVerdict(index=3, action="drop", flags=("injection", "pii", "error"),
                              scores={"injection": 0.9, "pii": 0.7}, pii_labels=("EMAIL",))
    kept = DocumentVerdict(index=0, action="redact", flags=("pii",), scores={"pii": 0.8}, pii_labels=("SSN",))
    assert not dropped.allowed and kept.allowed
    assert {(f.filter, f.label, f.text_index) for f in dropped.findings} == {("pii", "EMAIL", 3),
                                                                            ("prompt_safety", "UNSAFE_PROMPT", 3)}
    assert dropped.errors and not kept.errors
    assert list(dropped.model_dump()) == ["index", "action", "flags", "scores", "pii_labels", "removed_spans", "doc_id"]
    report = DocumentReport(verdicts=(kept, dropped), unique_id="u-2")
    assert not report.allowed and len(report.findings) == 3 and report.errors == dropped.errors
    assert DocumentReport(verdicts=(kept,)).allowed


@pytest.mark.parametrize(("status", "allowed"), [("safe", True), ("blurred", True), ("unchecked", True),
                                                  ("withheld", False)])
def test_generation_allowed_follows_status(status, allowed):
    finding = ImageFinding(label="Explicit", score=0.9, box=(0.1, 0.1, 0.2, 0.2))
    check = PromptCheck(allowed=True, action="warn", timings_ms={"denylist": 0.5})
    result = GenerationResult(status=status, prompt_check=check, generation_ms=10.0, moderation_ms=2.0,
                              attempts=(GenerationAttempt(attempt=0, seed=1, safe=False, findings=(finding,),
                                                          error="BackendError" if status == "unchecked" else None),))
    assert result.allowed is allowed and result.findings == (finding,)
    assert result.timings_ms == {"generation": 10.0, "moderation": 2.0, "total": 0.0, "prompt_guard": 0.5}
    assert result.errors == (("moderation: BackendError",) if status == "unchecked" else ())


def test_visual_results_report_detections_as_normalized_image_findings():
    result = ImageChainResult(image_size=(200, 100), detections=(Detection(label="face", score=0.8,
                                                                           box=(20, 10, 220, 60)),),
                              timings=(StageTiming(stage="detection", ms=3.0),), unique_id="cam-1")
    (finding,) = result.findings
    assert finding.label == "face" and finding.box == pytest.approx((0.1, 0.1, 0.9, 0.5))  # clipped to the image
    assert result.allowed and result.timings_ms == {"detection": 3.0, "total": 3.0}
    assert "findings" not in result.model_dump()
    redacted = RedactionResult(image=None, result=result, redacted=1, redacted_pixels=10)
    assert redacted.findings == result.findings and redacted.unique_id == "cam-1"


def test_screening_items_keep_their_json_form():
    item = ItemResult(path="a.png", status="flagged", labels=("Explicit",), scores={"Explicit": 0.9},
                      findings=({"label": "Explicit", "category": None, "score": 0.9},), elapsed_ms=4.0)
    assert not item.allowed and item.timings_ms == {"moderation": 4.0} and item.errors == ()
    line = json.loads(item.to_json_line())
    assert list(line) == ["path", "kind", "status", "labels", "scores", "findings", "error", "transient", "size",
                          "mtime_ns", "elapsed_ms"]
    assert ItemResult.from_json_line(item.to_json_line()) == item
    assert ItemResult(path="b.png", status="clean").allowed
    assert ItemResult(path="c.png", status="error", error="BackendError: x").errors == ("BackendError: x",)


# -- invoke pipes, moderate reports ----------------------------------------------------------------------------


def test_prompt_guard_invoke_returns_the_input_and_moderate_the_check():
    guard = PromptGuard({"toxicity": None, "prompt_safety": None})  # the denylist alone: fast and offline
    request = {"prompt": "a lighthouse at dawn", "seed": 7}
    assert guard.invoke(request) is request
    check = guard.moderate("a nude figure at dawn")
    assert isinstance(check, Outcome) and not check.allowed
    with pytest.raises(PromptRejectedViolation) as caught:
        guard.invoke("a nude figure at dawn")
    assert caught.value.result.findings == check.findings


class _RedLabeler:
    """A labeler that calls a mostly-red image explicit: enough to drive the chain's decision."""

    name = "red"

    def label(self, image):
        red, green, blue = image.convert("RGB").getpixel((0, 0))
        return [ImageFinding(label="Explicit", score=0.95, backend=self.name)] if red > 200 > green else []


def test_image_chain_invoke_pipes_the_image_and_raises_only_in_block_mode():
    Image = pytest.importorskip("PIL.Image")
    red, blue = Image.new("RGB", (8, 8), (250, 0, 0)), Image.new("RGB", (8, 8), (0, 0, 250))
    detect = ImageModerationChain(labeler=_RedLabeler())
    assert detect.invoke(red) is red  # detect mode reports, never blocks
    assert detect.moderate(red).flagged and not detect.moderate(red).allowed
    block = ImageModerationChain(labeler=_RedLabeler(), mode="block")
    assert block.invoke({"image": blue}) == {"image": blue}
    with pytest.raises(UnsafeImageViolation) as caught:
        block.invoke(red)
    assert isinstance(caught.value.result, ImageModerationResult) and caught.value.result.category == "Explicit"


def test_text_chain_moderate_is_an_outcome():
    chain = modchain.ModerationChain()
    assert chain.invoke("hello there") == "hello there"
    assert isinstance(chain.moderate("hello there"), Outcome)


# -- the public API --------------------------------------------------------------------------------------------


def test_every_exported_name_resolves():
    assert len(modchain.__all__) == len(set(modchain.__all__))
    missing = [name for name in modchain.__all__ if getattr(modchain, name, None) is None]
    assert not missing
    for name in ("ImageModerationChain", "ImageChain", "Redactor", "PromptGuard", "SafeImageGenerator",
                 "StreamGuard", "DocumentGuard", "DatasetScreener", "Outcome", "evaluate"):
        assert name in modchain.__all__
    assert set(modchain.__all__) <= set(dir(modchain))


def test_import_modchain_stays_light():
    code = ("import sys, modchain\n"
            f"print([m for m in {HEAVY + ('modchain.image_moderation', 'modchain.visual_chain', 'modchain.generation')!r} "
            "if m in sys.modules])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
