"""The backend protocols of ``modchain.core.protocols`` match the backends, and moved names keep their old paths."""

from __future__ import annotations

import importlib
import pickle

import pytest

from modchain.core import errors, protocols


def test_each_kind_of_backend_implements_its_protocol():
    """Checked on backends that build without a model or a network call (clients and models load lazily)."""
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    from modchain.backends.aws.rekognition_moderation import RekognitionModerationLabeler
    from modchain.backends.aws.sagemaker_blip2 import Blip2SageMakerVQA
    from modchain.backends.aws.sagemaker_stable_diffusion import SageMakerStableDiffusion
    from modchain.backends.aws.sagemaker_visual import SageMakerDetector, SageMakerSegmenter
    from modchain.backends.hf.grounding_dino import GroundingDino
    from modchain.backends.hf.sam import Sam
    from modchain.backends.local.backend import LocalBackend

    client = object()  # never called: nothing is scored here
    assert isinstance(LocalBackend(), protocols.TextDetector)
    assert isinstance(RekognitionModerationLabeler(client), protocols.ImageLabeler)
    assert isinstance(Blip2SageMakerVQA("endpoint", client), protocols.VisualQuestionAnswerer)
    assert isinstance(FakeListChatModel(responses=["{}"]), protocols.JudgeModel)
    assert isinstance(GroundingDino("unused-model-id"), protocols.Detector)
    assert isinstance(SageMakerDetector("endpoint", client), protocols.Detector)
    assert isinstance(Sam("unused-model-id"), protocols.Segmenter)
    assert isinstance(SageMakerSegmenter("endpoint", client), protocols.Segmenter)
    assert isinstance(SageMakerStableDiffusion("endpoint", client), protocols.ImageGenerator)
    assert not isinstance(object(), protocols.Detector)


MOVED = [
    ("modchain.visual_chain.types", "modchain.core.regions", ["Detection", "Segment", "VisualPrompt", "PixelBox"]),
    ("modchain.visual_chain.types", "modchain.core.protocols", ["Detector", "Segmenter"]),
    ("modchain.visual_chain.masks", "modchain.core.masks", ["EncodedMask", "encode_mask", "decode_mask", "pack_bits"]),
    ("modchain.image_moderation.vqa_types", "modchain.core.vqa", ["VqaResult"]),
    ("modchain.image_moderation.policy", "modchain.core.vqa", ["ImageEvidence", "QuestionAnswer"]),
    ("modchain.image_moderation.results", "modchain.core.image_findings", ["ImageFinding", "REKOGNITION_TOP_LEVEL_CATEGORIES"]),
    ("modchain.image_moderation.errors", "modchain.core.errors", ["ImageInputError", "CorruptImageError", "ImageTooLargeError",
                                                        "UnsupportedImageFormatError", "DecompressionBombError"]),
    ("modchain.image_moderation.image_input", "modchain.core.images", ["load_image", "load_image_bytes", "decode_image",
                                                             "DEFAULT_MAX_BYTES", "sniff_format", "parse_s3_uri"]),
    ("modchain.text.splitting", "modchain.core.text_splitting", ["overlapping_windows", "split_spans", "pack"]),
    ("modchain.text.streaming.violations", "modchain.core.errors", ["StreamViolation", "StreamPiiViolation",
                                                                 "STREAM_VIOLATION_BY_FILTER"]),
    ("modchain.generation.generators", "modchain.core.protocols", ["ImageGenerator"]),
    ("modchain.generation.errors", "modchain.core.errors", ["PromptRejectedViolation", "UnsafeGenerationViolation"]),
]


@pytest.mark.parametrize(("old", "new", "names"), MOVED, ids=[m[0] for m in MOVED])
def test_old_import_paths_name_the_same_objects(old, new, names):
    old_module, new_module = importlib.import_module(old), importlib.import_module(new)
    for name in names:
        assert getattr(old_module, name) is getattr(new_module, name), f"{old}.{name}"


def test_renamed_generation_violations_keep_their_old_names():
    from modchain.generation import PromptRejected, UnsafeGenerationError

    assert PromptRejected is errors.PromptRejectedViolation
    assert UnsafeGenerationError is errors.UnsafeGenerationViolation
    assert issubclass(PromptRejected, errors.ModerationViolation)


def test_moved_violations_still_pickle_with_their_details():
    stopped = errors.StreamToxicityViolation(window=(2, 40, 80), released_chars=40, mode="low_latency")
    copy = pickle.loads(pickle.dumps(stopped))
    assert type(copy) is errors.StreamToxicityViolation and isinstance(copy, errors.ToxicityViolation)
    assert (copy.window, copy.released_chars, copy.mode, str(copy)) == ((2, 40, 80), 40, "low_latency", str(stopped))
    rejected = pickle.loads(pickle.dumps(errors.PromptRejectedViolation()))
    assert type(rejected) is errors.PromptRejectedViolation and "image prompt" in str(rejected)
