"""SafeImageGenerator end to end with real moderation: NudeNet's bundled model, the image chain, and
Rekognition through boto3 against the local wire-protocol emulator. The generators are plain functions
returning fixture photos or drawn images, the way any user's generator would."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

pytest.importorskip("nudenet")
from PIL import Image, ImageDraw, ImageFilter, ImageStat  # noqa: E402

from modchain.backends.aws.rekognition_moderation import RekognitionModerationLabeler  # noqa: E402
from modchain.backends.local.nudenet import NUDENET_CATEGORIES, NudeNetLabeler  # noqa: E402
from modchain.core.callbacks import ModerationCallbackHandler  # noqa: E402
from modchain.core.errors import BackendError, ConfigurationError, InputError  # noqa: E402
from modchain.generation import (  # noqa: E402
    DEFAULT_NEGATIVE_PROMPTS,
    BlurConfig,
    GenerationResult,
    PromptGuard,
    PromptRejected,
    SafeImageGenerator,
    UnsafeGenerationError,
    blur_image,
)
from modchain.image_moderation.image_chain import ImageModerationChain  # noqa: E402
from modchain.testing.clients import local_client  # noqa: E402
from modchain.testing.rekognition_emulator import RekognitionEmulator  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "images"
PORTRAIT = Image.open(FIXTURES / "skimage_astronaut.png").convert("RGB")  # NudeNet finds a face
ROCKET = Image.open(FIXTURES / "skimage_rocket.jpg").convert("RGB")  # nothing for NudeNet


@pytest.fixture(scope="module")
def face_labeler() -> NudeNetLabeler:
    """The real NudeNet model with faces mapped to "Explicit": a stand-in policy so that a public-domain
    portrait exercises the unsafe path (the test suite ships no explicit images)."""
    categories = dict(NUDENET_CATEGORIES)
    categories["FACE_FEMALE"] = categories["FACE_MALE"] = ("Explicit", "Explicit Nudity")
    return NudeNetLabeler(categories=categories)


class Recorder:
    """A generator that returns scripted images by attempt and records what it was asked."""

    def __init__(self, *images):
        self.images, self.calls = list(images), []

    def __call__(self, prompt, negative_prompt, seed):
        self.calls.append((prompt, negative_prompt, seed))
        return self.images[min(len(self.calls), len(self.images)) - 1]


def test_safe_output_first_try(face_labeler):
    gen = Recorder(ROCKET)
    result = SafeImageGenerator(gen, face_labeler, config={"seed": 7}).invoke(
        {"prompt": "a rocket on a launch pad", "negative_prompt": "blurry"})
    assert isinstance(result, GenerationResult) and result.status == "safe" and result.safe
    assert result.image.size == ROCKET.size and result.seeds == [7] and result.seed == 7
    prompt, negative, seed = gen.calls[0]
    assert prompt == "a rocket on a launch pad" and seed == 7
    assert negative == ", ".join(("blurry", *DEFAULT_NEGATIVE_PROMPTS))
    assert result.warnings == () and result.prompt_check.allowed
    assert result.generation_ms >= 0 and result.moderation_ms > 0
    assert result.total_ms >= result.generation_ms + result.attempts[0].moderation_ms


def test_unsafe_output_is_retried_with_a_new_seed(face_labeler):
    gen = Recorder(PORTRAIT, ROCKET)
    result = SafeImageGenerator(gen, face_labeler, config={"seed": 100, "max_retries": 3}).invoke("an astronaut")
    assert result.status == "safe" and result.seeds == [100, 101] and result.seed == 101
    first, second = result.attempts
    assert not first.safe and first.categories == ("Explicit",) and first.findings[0].box is not None
    assert second.safe
    assert len(result.warnings) == 1 and "seed 100" in result.warnings[0] and "retried" in result.warnings[0]
    assert [c[2] for c in gen.calls] == [100, 101]


def _detail(image: Image.Image, box=(0.0, 0.0, 1.0, 1.0)) -> float:
    """Mean edge strength inside ``box``: what a blur or pixelation must destroy."""
    x, y, w, h = box
    crop = image.crop((int(x * image.width), int(y * image.height), int((x + w) * image.width),
                       int((y + h) * image.height)))
    return ImageStat.Stat(crop.convert("L").filter(ImageFilter.FIND_EDGES)).mean[0]


@pytest.mark.parametrize("method", ["gaussian", "pixelate"])
def test_unsafe_after_every_attempt_is_blurred_in_its_boxes(face_labeler, method):
    gen = Recorder(PORTRAIT)
    config = {"seed": 1, "max_retries": 1, "blur": {"method": method, "region": "boxes"}}
    result = SafeImageGenerator(gen, face_labeler, config=config).invoke("an astronaut")
    assert result.status == "blurred" and result.seeds == [1, 2] and len(gen.calls) == 2
    box = result.attempts[-1].findings[0].box
    assert _detail(result.image, box) < 0.5 * _detail(PORTRAIT, box)
    # outside the flagged box the picture is untouched
    assert result.image.getpixel((5, 500)) == PORTRAIT.getpixel((5, 500))
    assert "blurred" in result.warnings[-1]


def test_whole_image_blur_strength():
    assert _detail(blur_image(PORTRAIT)) < 0.2 * _detail(PORTRAIT)
    assert _detail(blur_image(PORTRAIT, config=BlurConfig(method="pixelate"))) < 0.45 * _detail(PORTRAIT)
    assert blur_image(PORTRAIT, [None]).size == PORTRAIT.size  # a finding without a box: the whole image


def test_withhold_and_raise(face_labeler):
    withheld = SafeImageGenerator(Recorder(PORTRAIT), face_labeler,
                                  config={"max_retries": 0, "on_unsafe": "withhold"}).invoke("x")
    assert withheld.status == "withheld" and withheld.image is None
    with pytest.raises(UnsafeGenerationError) as caught:
        SafeImageGenerator(Recorder(PORTRAIT), face_labeler, config={"max_retries": 1, "on_unsafe": "raise"}).invoke(
            "an astronaut portrait")
    assert caught.value.result.image is None and len(caught.value.result.attempts) == 2
    assert "Explicit" in str(caught.value) and "astronaut" not in str(caught.value)


def test_rejected_prompt_never_reaches_the_generator(face_labeler):
    gen = Recorder(ROCKET)
    with pytest.raises(PromptRejected):
        SafeImageGenerator(gen, face_labeler).invoke("a n u d e astronaut")
    assert gen.calls == []


def test_composes_after_a_prompt_guard(face_labeler):
    # PromptGuard returns a PromptCheck; piping it into a generator used to fail with InputError.
    gen = Recorder(ROCKET)
    chain = PromptGuard() | SafeImageGenerator(gen, face_labeler, prompt_guard=None, config={"seed": 2})
    assert chain.invoke("a rocket on a launch pad").status == "safe" and gen.calls[0][0] == "a rocket on a launch pad"
    with pytest.raises(PromptRejected):
        chain.invoke("a n.u.d.e rocket")
    assert len(gen.calls) == 1


def test_warned_prompt_carries_its_warnings(face_labeler):
    safe = SafeImageGenerator(Recorder(ROCKET), face_labeler, prompt_guard=PromptGuard({"action": "warn"}))
    result = safe.invoke("a nude rocket")
    assert result.status == "safe" and result.prompt_check.flagged
    assert any("action=warn" in w for w in result.warnings)


def test_image_chain_as_moderation(face_labeler):
    chain = ImageModerationChain(labeler=face_labeler)
    result = SafeImageGenerator(Recorder(PORTRAIT, ROCKET), chain, prompt_guard=None,
                                config={"seed": 5}).invoke("an astronaut")
    assert result.seeds == [5, 6] and result.status == "safe" and result.prompt_check is None
    assert result.attempts[0].categories == ("Explicit",)


def _drawn(color):
    image = Image.new("RGB", (96, 96), color)
    ImageDraw.Draw(image).ellipse((20, 20, 76, 76), outline=(0, 0, 0))
    return image


def test_rekognition_labeler_through_boto3():
    with RekognitionEmulator() as emulator:
        labeler = RekognitionModerationLabeler(local_client("rekognition", emulator.url))
        safe = SafeImageGenerator(Recorder(_drawn((250, 10, 10)), _drawn((10, 120, 250))), labeler,
                                  config={"seed": 0})
        result = safe.invoke("a circle")
        assert result.seeds == [0, 1] and result.status == "safe"
        assert result.attempts[0].categories == ("Explicit",) and result.attempts[0].findings[0].box is None
        assert [op for op, _ in emulator.requests] == ["DetectModerationLabels"] * 2


def test_moderation_failure_fails_closed_or_open(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    dead = RekognitionModerationLabeler(region_name="us-east-1", endpoint_url="http://127.0.0.1:9", max_retries=0,
                                        timeout_s=2)
    events = []

    class Audit(ModerationCallbackHandler):
        def on_after_generation(self, beacon, unique_id, **kwargs):
            events.append(beacon)

    with pytest.raises(BackendError):
        SafeImageGenerator(Recorder(ROCKET), dead, prompt_guard=None, callbacks=[Audit()]).invoke("a rocket")
    # Failing closed still leaves an audit event for the attempt (it used to raise before emitting one).
    assert len(events) == 1 and events[0]["moderation_status"] == "ERROR"
    assert events[0]["moderation_output"]["error"]
    result = SafeImageGenerator(Recorder(ROCKET), dead, prompt_guard=None, config={"fail_open": True}).invoke("a rocket")
    assert result.status == "unchecked" and result.image is not None and len(result.attempts) == 1
    assert "failed open" in result.warnings[-1]
    # A chain that fails open itself: its image was not checked, so it is not reported "safe" (it was).
    chain = ImageModerationChain(labeler=dead, fail_open=True)
    result = SafeImageGenerator(Recorder(ROCKET), chain, prompt_guard=None).invoke("a rocket")
    assert result.status == "unchecked" and result.attempts[0].error and "failed open" in result.warnings[-1]


def test_generator_failures_are_typed(face_labeler):
    def broken(prompt, negative_prompt, seed):
        raise RuntimeError(f"cuda out of memory for {prompt}")

    with pytest.raises(BackendError) as caught:
        SafeImageGenerator(broken, face_labeler, prompt_guard=None).invoke("secret prompt words")
    assert "secret" not in str(caught.value) and "RuntimeError" in str(caught.value)
    with pytest.raises(BackendError):
        SafeImageGenerator(lambda p, n, s: None, face_labeler, prompt_guard=None).invoke("x")
    with pytest.raises(InputError):
        SafeImageGenerator(lambda p, n, s: b"not an image", face_labeler, prompt_guard=None).invoke("x")


def test_bad_inputs_and_config(face_labeler):
    safe = SafeImageGenerator(Recorder(ROCKET), face_labeler, prompt_guard=None)
    with pytest.raises(InputError):
        safe.invoke({"prompt": "x", "seed": -1})
    with pytest.raises(InputError):
        safe.invoke(3)
    # An empty prompt, a bool seed and a seed past 32 bits (it wrapped to another seed) are refused.
    for bad in ("", "  \n", {"prompt": "x", "seed": True}, {"prompt": "x", "seed": 2**32}):
        with pytest.raises(InputError):
            safe.invoke(bad)
    with pytest.raises(ConfigurationError):
        SafeImageGenerator(Recorder(ROCKET), face_labeler, config={"seed": 2**32})
    assert safe.invoke({"prompt": "x", "seed": 2**32 - 1}).seed == 2**32 - 1
    with pytest.raises(ConfigurationError):
        SafeImageGenerator(Recorder(ROCKET), face_labeler, config={"on_unsafe": "shrug"})
    with pytest.raises(ConfigurationError):
        SafeImageGenerator(Recorder(ROCKET), object())


def test_async_generator_ainvoke_abatch_and_callbacks(face_labeler):
    events = []

    class Audit(ModerationCallbackHandler):
        async def on_after_generation(self, beacon, unique_id, **kwargs):
            events.append((beacon, unique_id))

    async def agen(prompt, negative_prompt, seed):
        await asyncio.sleep(0.01)
        return PORTRAIT if seed % 2 == 0 else ROCKET

    safe = SafeImageGenerator(agen, face_labeler, callbacks=[Audit()], unique_id="u1", config={"seed": 10})

    async def main():
        single = await safe.ainvoke("an astronaut")
        many = await safe.abatch([{"prompt": "a", "seed": 1}, {"prompt": "b", "seed": 3}])
        return single, many

    single, many = asyncio.run(main())
    assert single.seeds == [10, 11] and single.status == "safe"
    assert [r.seeds for r in many] == [[1], [3]]
    assert len(events) == 4 and all(uid == "u1" for _, uid in events)
    beacon = events[0][0]
    assert beacon["moderation_type"] == "ImageGeneration" and beacon["moderation_status"] == "LABELS_FOUND"
    assert beacon["moderation_input"] == {"attempt": 0, "seed": 10, "width": 512, "height": 512}
    # the sync path runs the async generator too
    assert safe.invoke({"prompt": "x", "seed": 3}).seeds == [3]
    # user_id, the text chain's other key for the caller, is honoured too
    assert safe.invoke({"prompt": "x", "seed": 3}, config={"configurable": {"user_id": "u9"}}).unique_id == "u9"
    assert events[-1][1] == "u9"


def test_a_plain_function_returning_a_coroutine_works_on_both_paths(face_labeler):
    async def agen(prompt, negative_prompt, seed):
        await asyncio.sleep(0)
        return ROCKET

    # Not an async def itself: the async path used to hand the unawaited coroutine to the image loader.
    safe = SafeImageGenerator(lambda p, n, s: agen(p, n, s), face_labeler, prompt_guard=None, config={"seed": 4})
    assert safe.invoke("a rocket").status == "safe"
    result = asyncio.run(safe.ainvoke("a rocket"))
    assert result.status == "safe" and result.image.size == ROCKET.size and result.seeds == [4]


def test_batch_runs_requests_concurrently(face_labeler):
    def slow(prompt, negative_prompt, seed):
        time.sleep(0.5)
        return ROCKET

    safe = SafeImageGenerator(slow, face_labeler, prompt_guard=None)
    safe.invoke("warm up")
    started = time.perf_counter()
    results = safe.batch(["a", "b", "c"])
    assert all(r.status == "safe" for r in results)
    # run one after another, three 0.5 s generations alone would take 1.5 s
    assert time.perf_counter() - started < 1.5
