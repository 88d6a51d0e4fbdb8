"""The SageMaker Stable Diffusion generator (JumpStart text-to-image contract), through boto3's
sagemaker-runtime client against the project's own handler served locally (LocalEndpoint)."""

from __future__ import annotations

import base64
import json

import pytest
from PIL import Image, ImageDraw

from modchain.backends.aws.sagemaker_stable_diffusion import SageMakerStableDiffusion
from modchain.core.errors import BackendError, ConfigurationError
from modchain.generation import SafeImageGenerator
from modchain.serving.server import LocalEndpoint
from modchain.serving.stable_diffusion_handler import StableDiffusionHandler
from modchain.serving.toolkit import InvocationError
from modchain.testing.clients import local_client


class ShapePainter:
    """A generator that draws: a red square for even seeds, a blue circle for odd ones, at the asked size.
    It records every call, so tests see exactly what crossed the wire."""

    def __init__(self):
        self.calls = []

    def __call__(self, prompt, negative_prompt, seed, width=64, height=64, num_inference_steps=None,
                 guidance_scale=None):
        self.calls.append({"prompt": prompt, "negative_prompt": negative_prompt, "seed": seed, "width": width,
                           "height": height, "steps": num_inference_steps, "guidance": guidance_scale})
        image = Image.new("RGB", (width, height), "white")
        draw = ImageDraw.Draw(image)
        if seed % 2 == 0:
            draw.rectangle((0, 0, width - 1, height - 1), fill=(250, 10, 10))
        else:
            draw.ellipse((width // 4, height // 4, 3 * width // 4, 3 * height // 4), fill=(10, 60, 250))
        return image


@pytest.fixture
def painter():
    return ShapePainter()


@pytest.fixture
def endpoint(painter):
    with LocalEndpoint(StableDiffusionHandler(painter), endpoint_name="sd") as served:
        yield served


@pytest.fixture
def client(endpoint):
    return local_client("sagemaker-runtime", endpoint.url)


def test_jumpstart_payload_and_jpeg_response(client, painter):
    generator = SageMakerStableDiffusion("sd", client, width=96, height=64, num_inference_steps=20,
                                         guidance_scale=6.0)
    image = generator.generate("a blue circle", "blurry, text", 7)
    assert image.size == (96, 64) and image.mode == "RGB"
    assert image.getpixel((48, 32))[2] > 200  # the circle's blue survived the JPEG round trip
    assert painter.calls == [{"prompt": "a blue circle", "negative_prompt": "blurry, text", "seed": 7, "width": 96,
                              "height": 64, "steps": 20, "guidance": 6.0}]


def test_raw_boto3_request_matches_jumpstart(client):
    body = {"prompt": "a square", "negative_prompt": "nsfw", "seed": 4, "num_images_per_prompt": 2, "width": 32,
            "height": 32, "num_inference_steps": 5, "guidance_scale": 7.5}
    response = client.invoke_endpoint(EndpointName="sd", ContentType="application/json",
                                      Accept="application/json;jpeg", Body=json.dumps(body))
    assert response["ContentType"] == "application/json;jpeg"
    data = json.loads(response["Body"].read())
    assert data["prompt"] == "a square" and len(data["generated_images"]) == 2
    assert base64.b64decode(data["generated_images"][0])[:3] == b"\xff\xd8\xff"


def test_rgb_array_response(client):
    generator = SageMakerStableDiffusion("sd", client, width=16, height=16, accept="application/json")
    image = generator.generate("a square", "", 2)
    assert image.size == (16, 16) and image.getpixel((8, 8)) == (250, 10, 10)


def test_endpoint_errors_are_typed(client, endpoint):
    with pytest.raises(BackendError):  # an empty prompt: the container answers 400, boto3 raises ModelError
        SageMakerStableDiffusion("sd", client, width=16, height=16).generate("   ", "", 1)
    with pytest.raises(BackendError):
        SageMakerStableDiffusion("other-endpoint", client).generate("a square", "", 1)
    with pytest.raises(ConfigurationError):
        SageMakerStableDiffusion("sd", client, width=30)
    with pytest.raises(ConfigurationError):
        SageMakerStableDiffusion("sd", client, accept="image/png")  # type: ignore[arg-type]


def test_malformed_response_is_a_backend_error(client):
    generator = SageMakerStableDiffusion("sd", client)
    for body in (b"{}", b'{"generated_images": []}', b'{"generated_images": ["not base64!"]}', b"oops"):
        with pytest.raises(BackendError):
            generator.decode(body)


def test_handler_validation_names_fields_not_prompts(painter):
    handler = StableDiffusionHandler(painter)
    bad = [{"prompt": ""}, {"prompt": "secret words", "width": 30}, {"prompt": "secret words", "seed": -1},
           {"prompt": "secret words", "num_images_per_prompt": 9}, {"prompt": "secret words", "guidance_scale": "x"},
           {"prompt": "secret words", "extra": 1}]
    for body in bad:
        with pytest.raises(InvocationError) as caught:
            handler.invocations(json.dumps(body).encode(), "application/json", "application/json;jpeg")
        assert caught.value.status == 400 and "secret" not in caught.value.message
    with pytest.raises(InvocationError) as caught:
        handler.invocations(b"{}", "image/png", None)
    assert caught.value.status == 415
    with pytest.raises(InvocationError) as caught:
        handler.invocations(b'{"prompt": "x"}', "application/json", "image/png")
    assert caught.value.status == 406 and painter.calls == []
    out, media = handler.invocations(b"a plain text prompt", "application/x-text", None)
    assert media == "application/json;jpeg" and json.loads(out)["prompt"] == "a plain text prompt"


def test_guarded_generation_over_the_endpoint_retries_with_new_seeds(client, painter):
    from modchain.backends.aws.rekognition_moderation import RekognitionModerationLabeler
    from modchain.testing.rekognition_emulator import RekognitionEmulator

    # Rekognition's local emulator flags red-dominated images: even seeds draw red squares, odd ones blue circles.
    with RekognitionEmulator() as rekognition:
        labeler = RekognitionModerationLabeler(local_client("rekognition", rekognition.url))
        safe = SafeImageGenerator(SageMakerStableDiffusion("sd", client, width=64, height=64), labeler,
                                  config={"seed": 10})
        result = safe.invoke({"prompt": "a shape", "negative_prompt": "blurry"})
    assert result.status == "safe" and result.seeds == [10, 11]
    assert [c["seed"] for c in painter.calls] == [10, 11]
    assert painter.calls[0]["negative_prompt"].startswith("blurry, nsfw")
