"""DiffusersGenerator with a REAL tiny Stable Diffusion pipeline of random weights (UNet, VAE, CLIP text
encoder, a CLIP tokenizer from a local vocab, DDIM), saved and loaded through from_pretrained. Offline."""

from __future__ import annotations

import asyncio
import json
import string

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
np = pytest.importorskip("numpy")

from modchain.backends.hf.diffusers_generator import DiffusersGenerator  # noqa: E402
from modchain.core.errors import BackendError, ConfigurationError  # noqa: E402
from modchain.generation import SafeImageGenerator  # noqa: E402

CALL = {"num_inference_steps": 1, "height": 32, "width": 32, "guidance_scale": 7.5}


def save_tiny_stable_diffusion(path) -> str:
    """A tiny StableDiffusionPipeline of the real architecture, saved with save_pretrained to ``path``."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for char in string.ascii_lowercase + string.digits + ",.!?'-":
        vocab.setdefault(char, len(vocab))
        vocab.setdefault(char + "</w>", len(vocab))
    (path / "vocab.json").write_text(json.dumps(vocab))
    (path / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(path / "vocab.json"), str(path / "merges.txt"), model_max_length=16)
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=16, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, norm_num_groups=8, attention_head_dim=4)
    vae = AutoencoderKL(block_out_channels=[16, 32], in_channels=3, out_channels=3, latent_channels=4,
                        down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
                        norm_num_groups=8, sample_size=32)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=32, intermediate_size=37, num_attention_heads=4,
        num_hidden_layers=2, vocab_size=len(vocab), max_position_embeddings=16))
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    pipeline = StableDiffusionPipeline(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                                       scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                       requires_safety_checker=False)
    out = path / "tiny-sd"
    pipeline.save_pretrained(str(out))
    return str(out)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_stable_diffusion(tmp_path_factory.mktemp("sd"))


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    # Tiny models gain nothing from threads, and on a shared CI box spare threads only contend.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def generator(model_dir):
    return DiffusersGenerator.from_pretrained(model_dir, device="cpu", **CALL)


def _pixels(image):
    return np.asarray(image, dtype=np.int16)


def test_seed_decides_the_image(generator):
    first = generator.generate("a red circle", "blurry", 3)
    assert first.size == (32, 32) and first.mode == "RGB"
    assert np.array_equal(_pixels(first), _pixels(generator.generate("a red circle", "blurry", 3)))
    assert not np.array_equal(_pixels(first), _pixels(generator.generate("a red circle", "blurry", 4)))


def test_negative_prompt_reaches_the_pipeline(generator):
    # classifier-free guidance uses the negative prompt's embedding: same seed, other negative prompt -> other image
    one = generator.generate("a red circle", "blurry", 3)
    other = generator.generate("a red circle", "nsfw, gore", 3)
    assert not np.array_equal(_pixels(one), _pixels(other))


def test_guarded_end_to_end_sync_and_async(generator):
    pytest.importorskip("nudenet")
    from modchain.backends.local.nudenet import NudeNetLabeler

    safe = SafeImageGenerator(generator, NudeNetLabeler(), config={"seed": 11})
    result = safe.invoke("a red circle on a white wall")
    assert result.status == "safe" and result.seeds == [11] and result.image.size == (32, 32)
    assert result.negative_prompt.startswith("nsfw") and result.generation_ms > 0
    again = asyncio.run(safe.ainvoke({"prompt": "a red circle on a white wall", "seed": 11}))
    assert np.array_equal(_pixels(again.image), _pixels(result.image))


def test_errors(model_dir, tmp_path):
    with pytest.raises(ConfigurationError):
        DiffusersGenerator.from_pretrained(str(tmp_path / "missing"), device="cpu")
    with pytest.raises(ConfigurationError):
        DiffusersGenerator(object())
    with pytest.raises(ConfigurationError):
        DiffusersGenerator(lambda **kw: None, generator=1)
    broken = DiffusersGenerator.from_pretrained(model_dir, device="cpu", num_inference_steps=1, height=33, width=32)
    with pytest.raises(BackendError):
        broken.generate("a circle", "", 1)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_fp16(model_dir):
    generator = DiffusersGenerator.from_pretrained(model_dir, device="cuda", **CALL)
    assert generator.pipeline.unet.dtype == torch.float16
    image = generator.generate("a red circle", "blurry", 3)
    assert image.size == (32, 32)
    assert np.array_equal(_pixels(image), _pixels(generator.generate("a red circle", "blurry", 3)))


def test_served_as_a_jumpstart_endpoint(generator):
    """The tiny pipeline behind the project's JumpStart handler, reached with boto3 sagemaker-runtime: the
    request's width/height/steps reach the pipeline, and the endpoint reproduces the local image for a seed."""
    from modchain.backends.aws.sagemaker_stable_diffusion import SageMakerStableDiffusion
    from modchain.serving.server import LocalEndpoint
    from modchain.serving.stable_diffusion_handler import StableDiffusionHandler
    from modchain.testing.clients import local_client

    with LocalEndpoint(StableDiffusionHandler(generator)) as endpoint:
        remote = SageMakerStableDiffusion("sd", local_client("sagemaker-runtime", endpoint.url), width=48, height=32,
                                          num_inference_steps=1, guidance_scale=7.5, accept="application/json")
        image = remote.generate("a red circle", "blurry", 3)
    assert image.size == (48, 32)
    local = generator.generate("a red circle", "blurry", 3, width=48, height=32)
    assert np.array_equal(_pixels(image), _pixels(local))  # RGB arrays: lossless over the wire
