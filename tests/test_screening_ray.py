"""Screening on Ray Data, on a local Ray instance: the same report as the local path, checkpointed the same way."""

from __future__ import annotations

import functools
import json
import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("nudenet")
ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

from PIL import Image  # noqa: E402

from modchain.backends.aws.rekognition_moderation import RekognitionModerationLabeler  # noqa: E402
from modchain.backends.local.nudenet import NUDENET_CATEGORIES, NudeNetLabeler  # noqa: E402
from modchain.cli import main  # noqa: E402
from modchain.core.callbacks import ModerationCallbackHandler  # noqa: E402
from modchain.core.errors import BackendThrottledError  # noqa: E402
from modchain.screening import CHECKPOINT, REPORT_JSON, DatasetScreener, ScreeningReport  # noqa: E402
from modchain.testing.rekognition_emulator import RekognitionEmulator  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = sorted((ROOT / "tests" / "fixtures" / "images").glob("skimage_*"))
#: Faces count as a label, so the real model flags the astronaut portrait. A partial of a library class:
#: Ray pickles it by reference, and each actor builds its own ONNX session from it.
FACE_FLAGGING = functools.partial(NudeNetLabeler, threshold=0.3, categories={
    name: mapped or ("Swimwear or Underwear", name) for name, mapped in NUDENET_CATEGORIES.items()})
FAKE_AWS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": FAKE_AWS})
    yield
    ray.shutdown()


@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / "data"
    (root / "sub").mkdir(parents=True)
    for n in range(3):
        for photo in PHOTOS:
            shutil.copy(photo, root / ("sub" if n else "") / f"{n}_{photo.name}")
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 60)
    (root / "dataset_info.json").write_text(json.dumps({"instance_prompt": "a photo of sks rocket"}))
    return root


def test_ray_gives_the_same_report_as_the_local_path(dataset, tmp_path):
    local = DatasetScreener(FACE_FLAGGING, labels=[], batch_size=4).screen(dataset, tmp_path / "local")
    # `modchain screen --ray` on the running Ray instance: 2 actors, each with its own NudeNet session.
    code = main(["screen", str(dataset), "--out", str(tmp_path / "ray"), "--ray", "--workers", "2",
                 "--batch-size", "4", "--labels", "any", "--moderation", f"{__name__}:FACE_FLAGGING",
                 "--no-progress", "--json"])
    assert code == 1  # flagged images and a broken file
    on_ray = ScreeningReport.from_json(tmp_path / "ray" / REPORT_JSON)
    assert on_ray.verdicts() == local.verdicts()
    assert local.totals == {"images": 13, "clean": 9, "flagged": 3, "errors": 1, "prompt_flagged": 0,
                            "prompt_errors": 0}
    lines = (tmp_path / "ray" / CHECKPOINT).read_text().splitlines()
    assert len(lines) == 1 + 1 + 13  # header, prompt, every image: checkpointed as batches streamed back


class StopAfter(ModerationCallbackHandler):
    def __init__(self, n: int) -> None:
        self.n, self.seen = n, 0

    def on_after_screen(self, moderation_beacon, unique_id, **kwargs):
        self.seen += 1
        if self.seen >= self.n:
            raise KeyboardInterrupt


def test_a_local_run_interrupted_then_resumed_on_ray(dataset, tmp_path):
    reference = DatasetScreener(FACE_FLAGGING, labels=[], batch_size=4).screen(dataset, tmp_path / "ref")
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        DatasetScreener(FACE_FLAGGING, labels=[], batch_size=4, callbacks=[StopAfter(5)]).screen(dataset, out)
    resumed = DatasetScreener(FACE_FLAGGING, labels=[], batch_size=4).screen(dataset, out, engine="ray",
                                                                             ray_options={"concurrency": 1})
    assert resumed.timings["resumed"] == 4 and resumed.timings["screened"] == 9
    assert resumed.verdicts() == reference.verdicts()


def test_a_backend_failure_on_an_actor_fails_closed(tmp_path):
    data = tmp_path / "d"
    data.mkdir()
    Image.new("RGB", (64, 64), (250, 10, 10)).save(data / "red.jpg", "JPEG")
    shutil.copy(PHOTOS[-1], data / "rocket.jpg")
    with RekognitionEmulator() as emulator:
        factory = functools.partial(RekognitionModerationLabeler, endpoint_url=emulator.url,
                                    region_name="us-east-1", max_retries=0)
        emulator.fail_next(50, "ThrottlingException")
        with pytest.raises(BackendThrottledError):  # the actor's own typed error, as on the local path
            DatasetScreener(factory, prompt_checker=None).screen(data, tmp_path / "closed", engine="ray")
    assert emulator.requests, "the actors reached the emulator"


def test_gpu_share_lets_the_whole_actor_pool_start():
    from modchain.screening.ray_runner import gpus_per_actor

    assert gpus_per_actor(0, 4) == 0.0
    assert gpus_per_actor(8, 4) == 1.0
    assert gpus_per_actor(1, 4) == 0.25


@pytest.mark.gpu
def test_actors_get_gpus_when_the_cluster_has_them(dataset, tmp_path):
    if ray.cluster_resources().get("GPU", 0) < 1:
        pytest.skip("needs a Ray cluster with a GPU")
    local = DatasetScreener(FACE_FLAGGING, labels=[]).screen(dataset, tmp_path / "local")
    on_gpu = DatasetScreener(FACE_FLAGGING, labels=[], workers=2).screen(dataset, tmp_path / "gpu", engine="ray")
    assert on_gpu.verdicts() == local.verdicts()


def test_non_utf8_file_names_on_ray(tmp_path):
    # Arrow columns hold UTF-8 only; a Latin-1 file name must still reach the actor and come back exact.
    data = tmp_path / "d"
    data.mkdir()
    shutil.copy(PHOTOS[0], data / os.fsdecode(b"caf\xe9.png"))
    shutil.copy(PHOTOS[-1], data / "rocket.jpg")
    local = DatasetScreener(FACE_FLAGGING, labels=[], prompt_checker=None).screen(data, tmp_path / "local")
    on_ray = DatasetScreener(FACE_FLAGGING, labels=[], prompt_checker=None).screen(
        data, tmp_path / "ray", engine="ray", ray_options={"concurrency": 1})
    assert on_ray.verdicts() == local.verdicts() and local.totals["flagged"] == 1
