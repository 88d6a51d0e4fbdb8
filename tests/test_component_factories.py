"""One front door per model component: ``X.local(path, device=...)`` and ``X.sagemaker(endpoint, client=...)``
give the same answers (tiny random models of the real architectures; the SageMaker side is the project's own
handler behind LocalEndpoint, or the runtime emulator for Llama, reached by real boto3 clients); and one
config per component, loadable from a dict or a YAML file."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("boto3")

from langchain_core.language_models.fake_chat_models import FakeListChatModel  # noqa: E402
from PIL import Image  # noqa: E402
from test_transformers_chat import MESSAGES, tiny_llama  # noqa: E402, F401 - the tiny Llama fixture
from tiny_blip2 import save_tiny_blip2  # noqa: E402

from modchain import StreamGuard  # noqa: E402
from modchain.core.config_base import coerce_config  # noqa: E402
from modchain.core.errors import ConfigurationError  # noqa: E402
from modchain.generation import SafeImageGenerator, StableDiffusion  # noqa: E402
from modchain.generation.config import SafeGenerationConfig  # noqa: E402
from modchain.image_moderation import Blip2VQA, ImageModerationChain, ImageModerationConfig, LlmVerdict  # noqa: E402
from modchain.image_moderation.policy import ImageEvidence  # noqa: E402
from modchain.serving import Blip2Handler, LocalEndpoint  # noqa: E402
from modchain.serving.stable_diffusion_handler import StableDiffusionHandler  # noqa: E402
from modchain.serving.visual_handler import VisualHandler  # noqa: E402
from modchain.testing.clients import local_client  # noqa: E402
from modchain.testing.sagemaker_runtime_emulator import FakeLlama3Handler, SageMakerRuntimeEmulator  # noqa: E402
from modchain.testing.tiny_visual_models import save_tiny_grounding_dino, save_tiny_sam  # noqa: E402
from modchain.text.streaming.windows import StreamConfig  # noqa: E402
from modchain.visual_chain import GroundingDino, ImageChain, ImageStore, Owlv2, Sam  # noqa: E402

QUESTIONS = ["Is there a weapon in the image?", "Are there drugs?"]
VERDICT = '{"flag": true, "category": "Gambling", "reason": "slot machines"}'


def frame() -> Image.Image:
    import numpy as np

    return Image.fromarray(np.random.default_rng(3).integers(0, 256, (72, 112, 3), dtype=np.uint8))


# -- BLIP-2 ----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def blip2_dir(tmp_path_factory):
    return save_tiny_blip2(tmp_path_factory.mktemp("factory-blip2"), "opt")


def test_blip2_local_and_sagemaker_answer_alike(blip2_dir):
    local = Blip2VQA.local(blip2_dir, device="cpu", max_new_tokens=4)
    assert type(local).__name__ == "Blip2LocalVQA" and isinstance(local, Blip2VQA)
    assert local.model_name == blip2_dir
    with LocalEndpoint(Blip2Handler(blip2_dir, device="cpu", max_new_tokens=4).load(), endpoint_name="blip2") as ep:
        remote = Blip2VQA.sagemaker("blip2", client=local_client("sagemaker-runtime", ep.url), image_format="PNG")
        assert type(remote).__name__ == "Blip2SageMakerVQA" and isinstance(remote, Blip2VQA)
        assert remote.answer(frame(), QUESTIONS) == local.answer(frame(), QUESTIONS)
    # Either one plugs into the image chain the same way.
    chain = ImageModerationChain(vqa=local, judge=LlmVerdict(FakeListChatModel(responses=[VERDICT])))
    assert chain.moderate(frame()).category == "Gambling"


def test_factories_are_the_only_way_to_build_and_default_to_the_real_models():
    for factory in (Blip2VQA, GroundingDino, Owlv2, Sam, StableDiffusion):
        with pytest.raises(ConfigurationError, match=rf"{factory.__name__}\.local\(.*\.sagemaker\("):
            factory()
        assert "/" in factory.default_model       # a hub id; tests pass local paths instead
    assert not isinstance(object(), Blip2VQA)
    # Nothing is loaded before first use: the real default model is only named.
    assert Blip2VQA.local(device="cpu").model_name == "Salesforce/blip2-opt-2.7b"
    assert LlmVerdict.local(device="cpu").llm.model_id_or_path == "meta-llama/Llama-3.1-8B-Instruct"


# -- Grounding DINO / OWLv2 / SAM --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def visual_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("factory-visual")
    save_tiny_grounding_dino(root / "detector")
    save_tiny_sam(root / "segmenter")
    return root


def test_visual_chain_switches_from_local_models_to_an_endpoint_by_one_call(visual_dir):
    options = {"box_threshold": 0.0, "text_threshold": 0.0, "max_detections": 3}
    detector = GroundingDino.local(str(visual_dir / "detector"), device="cpu", **options)
    segmenter = Sam.local(str(visual_dir / "segmenter"), device="cpu")
    assert type(detector).__name__ == "GroundingDino" and isinstance(detector, GroundingDino)
    assert type(segmenter).__name__ == "Sam" and isinstance(segmenter, Sam)
    store = ImageStore({"5X3349": frame()})
    local = ImageChain.from_visual_pipeline([detector, segmenter], store).run("All silver cars", image_id="5X3349")
    with LocalEndpoint(VisualHandler(detector, segmenter), endpoint_name="visual") as ep:
        client = local_client("sagemaker-runtime", ep.url)
        stages = [GroundingDino.sagemaker("visual", client=client), Sam.sagemaker("visual", client=client)]
        assert isinstance(stages[0], GroundingDino) and isinstance(stages[1], Sam)
        assert type(Owlv2.sagemaker("visual", client)).__name__ == "SageMakerDetector"
        remote = ImageChain.from_visual_pipeline(stages, store).run("All silver cars", image_id="5X3349")
    assert [(d.label, d.box) for d in remote.detections] == [(d.label, d.box) for d in local.detections]
    assert [s.mask for s in remote.segments] == [s.mask for s in local.segments]


def test_sam_local_keeps_its_size_aliases():
    assert Sam.local("vit_h", device="cpu").model_name == "facebook/sam-vit-huge"


# -- the Llama verdict -------------------------------------------------------------------------------------------

def test_llm_verdict_local_runs_a_transformers_chat_model(tiny_llama):  # noqa: F811 - the imported fixture
    verdict = LlmVerdict.local(tiny_llama, device="cpu", max_new_tokens=4, max_attempts=1)
    assert type(verdict.llm).__name__ == "TransformersChatModel" and verdict.max_attempts == 1
    assert verdict.llm.device == "cpu" and verdict.llm.max_new_tokens == 4
    assert isinstance(verdict.llm.invoke(MESSAGES).content, str)  # loaded from the path, generated locally


def test_llm_verdict_sagemaker_judges_through_a_jumpstart_endpoint():
    with SageMakerRuntimeEmulator() as emulator:
        emulator.add_endpoint("llama-3", FakeLlama3Handler([VERDICT]))
        verdict = LlmVerdict.sagemaker("llama-3", client=local_client("sagemaker-runtime", emulator.url),
                                       format="llama3", policy=None)
        result = verdict.invoke(ImageEvidence(caption="a row of slot machines", qa=[]))
    assert type(verdict.llm).__name__ == "SageMakerChatModel" and verdict.llm.format == "llama3"
    assert result.flag and result.category == "Gambling"


# -- Stable Diffusion --------------------------------------------------------------------------------------------

def painter(prompt, negative_prompt, seed, width=64, height=64, num_inference_steps=None, guidance_scale=None):
    return Image.new("RGB", (width, height), (10, 60, 250))


def test_stable_diffusion_sagemaker_generates_through_the_projects_handler():
    with LocalEndpoint(StableDiffusionHandler(painter), endpoint_name="sd") as ep:
        generator = StableDiffusion.sagemaker("sd", client=local_client("sagemaker-runtime", ep.url), width=16,
                                              height=24)
        assert type(generator).__name__ == "SageMakerStableDiffusion" and isinstance(generator, StableDiffusion)
        assert generator.generate("a lighthouse", "", 3).size == (16, 24)


def test_stable_diffusion_local_loads_a_diffusers_pipeline(tmp_path):
    pytest.importorskip("diffusers")
    from test_diffusers_generator import CALL, save_tiny_stable_diffusion

    generator = StableDiffusion.local(save_tiny_stable_diffusion(tmp_path), device="cpu", **CALL)
    assert type(generator).__name__ == "DiffusersGenerator" and isinstance(generator, StableDiffusion)
    assert generator.generate("a lighthouse", "", 3).size == (32, 32)


# -- configs -----------------------------------------------------------------------------------------------------

def test_coerce_config_takes_none_a_model_a_dict_or_a_yaml_path(tmp_path):
    path = tmp_path / "stream.yaml"
    path.write_text("mode: low_latency\nwindow_chars: 120\n")
    given = StreamConfig(mode="low_latency")
    assert coerce_config(StreamConfig, None) == StreamConfig()
    assert coerce_config(StreamConfig, given) is given
    assert coerce_config(StreamConfig, {"mode": "low_latency"}) == given
    assert coerce_config(StreamConfig, path) == StreamConfig.coerce(str(path)) == \
        StreamConfig(mode="low_latency", window_chars=120)
    assert coerce_config(StreamConfig, path, window_chars=None, overlap_chars=30).overlap_chars == 30
    with pytest.raises(ConfigurationError, match="overlap_chars"):          # overrides are validated with the rest
        coerce_config(StreamConfig, path, overlap_chars=500)
    with pytest.raises(ConfigurationError, match="StreamConfig, a dict or a YAML file path, not list"):
        coerce_config(StreamConfig, ["mode"])
    with pytest.raises(ConfigurationError, match="invalid StreamConfig"):
        coerce_config(StreamConfig, {"mod": "low_latency"})


def test_image_moderation_chain_takes_one_config_loadable_from_yaml(tmp_path):
    from modchain.backends.local.nudenet import NudeNetLabeler

    path = tmp_path / "image.yaml"
    path.write_text("mode: block\ncascade: {flag_at: 0.9, clear_below: 0.1}\nchecklist: [\"Is there a dog?\"]\n"
                    "load_options: {max_pixels: 1000000}\n")
    config = ImageModerationConfig.from_yaml(path)
    vqa, judge = Blip2VQA.local(device="cpu"), LlmVerdict(FakeListChatModel(responses=[VERDICT]))
    chain = ImageModerationChain(config=path, labeler=NudeNetLabeler(), vqa=vqa, judge=judge)
    assert chain.config == config and chain.mode == "block" and chain.checklist == ("Is there a dog?",)
    assert chain.cascade.flag_at == 0.9 and chain.load_options == {"max_pixels": 1000000}
    # The keywords of before still work: they build the config, and win over the same field of a config given.
    chain = ImageModerationChain(config={"mode": "block"}, labeler=NudeNetLabeler(), mode="detect", fail_open=True)
    assert chain.config == ImageModerationConfig(mode="detect", fail_open=True)
    with pytest.raises(ConfigurationError, match="invalid ImageModerationConfig: modes"):
        ImageModerationChain(config={"modes": "block"}, labeler=NudeNetLabeler())
    with pytest.raises(ConfigurationError, match="cascade needs"):
        ImageModerationChain(config=ImageModerationConfig(cascade={"flag_at": 0.9}), labeler=NudeNetLabeler())


def test_stream_guard_reads_one_config_built_by_its_keywords(tmp_path):
    path = tmp_path / "stream.yaml"
    path.write_text("mode: low_latency\nwindow_chars: 120\noverlap_chars: 40\n")
    guard = StreamGuard(config=path, overlap_chars=30)
    assert guard.config == StreamConfig(mode="low_latency", window_chars=120, overlap_chars=30)
    assert StreamGuard(mode="low_latency").config == StreamGuard(config={"mode": "low_latency"}).config


def test_safe_image_generator_and_image_chain_configs_load_from_yaml(tmp_path):
    path = tmp_path / "generation.yaml"
    path.write_text("max_retries: 1\non_unsafe: withhold\n")
    from modchain.backends.local.nudenet import NudeNetLabeler

    safe = SafeImageGenerator(painter, NudeNetLabeler(), prompt_guard=None, config=str(path))
    assert safe.config == SafeGenerationConfig(max_retries=1, on_unsafe="withhold")
    chain_path = tmp_path / "chain.yaml"
    chain_path.write_text("center_points: true\n")
    assert ImageChain(segmenter=Sam.local(device="cpu"), config=Path(chain_path)).config.center_points


def test_isinstance_matches_the_backend_class_by_its_full_path_not_its_name():
    from modchain.image_moderation import Blip2VQA

    class Blip2LocalVQA:  # same name as the backend class, unrelated
        pass

    assert not isinstance(Blip2LocalVQA(), Blip2VQA)


def test_every_class_a_factory_names_exists_at_that_path():
    # The paths are strings (so isinstance imports nothing): a backend move must update them, or this fails.
    import importlib

    from modchain.generation import StableDiffusion
    from modchain.image_moderation import Blip2VQA
    from modchain.visual_chain import GroundingDino, Owlv2, Sam

    for factory in (Blip2VQA, GroundingDino, Owlv2, Sam, StableDiffusion):
        for path in factory.builds:
            module, _, name = path.rpartition(".")
            assert isinstance(getattr(importlib.import_module(module), name), type), path
