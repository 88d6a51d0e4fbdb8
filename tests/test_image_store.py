"""ImageStore: images by id (folder, S3 via botocore Stubber, memory) and the once-per-key embedding cache."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from modchain.core.errors import ConfigurationError
from modchain.image_moderation.errors import CorruptImageError, ImageInputError
from modchain.visual_chain.errors import UnknownImageError
from modchain.visual_chain.image_store import ImageStore, OnceLru, image_digest

FIXTURES = Path(__file__).parent / "fixtures" / "images"


class CountingSegmenter:
    """Embeds by averaging pixels (a real, cheap computation) and counts how often it ran."""

    def __init__(self, name: str = "counting", delay: float = 0.0) -> None:
        self.name, self.delay, self.calls = name, delay, 0
        self._lock = threading.Lock()

    def embed(self, image):
        with self._lock:
            self.calls += 1
        time.sleep(self.delay)
        return image.convert("L").resize((4, 4)).tobytes()

    def segment(self, image, prompts, *, embedding=None):
        return [[] for _ in prompts]


def _png(color=(200, 10, 10), size=(8, 6)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def test_folder_ids_are_file_names_without_extension(tmp_path):
    (tmp_path / "5X3349.png").write_bytes(_png())
    (tmp_path / "frame_2.JPG").write_bytes(FIXTURES.joinpath("skimage_rocket.jpg").read_bytes())
    (tmp_path / "notes.txt").write_text("not an image")
    store = ImageStore.from_folder(tmp_path)
    assert store.ids() == ["5X3349", "frame_2"] and "5X3349" in store and len(store) == 2
    assert store.get("5X3349").size == (8, 6) and store.get("5X3349").mode == "RGB"
    assert store.get("frame_2").size == Image.open(FIXTURES / "skimage_rocket.jpg").size


def test_folder_recursive_and_duplicate_ids(tmp_path):
    (tmp_path / "cam1").mkdir()
    (tmp_path / "cam1" / "a.png").write_bytes(_png())
    (tmp_path / "a.png").write_bytes(_png())
    assert ImageStore.from_folder(tmp_path, recursive=True).ids() == ["a", "cam1/a"]
    (tmp_path / "a.jpg").write_bytes(_png())
    with pytest.raises(ConfigurationError, match="two images"):
        ImageStore.from_folder(tmp_path)
    with pytest.raises(ConfigurationError):
        ImageStore.from_folder(tmp_path / "missing")


def test_unknown_id_and_corrupt_image_are_typed(tmp_path):
    (tmp_path / "broken.png").write_bytes(_png()[:40])
    store = ImageStore.from_folder(tmp_path)
    with pytest.raises(UnknownImageError, match="no image with id") as info:
        store.get("nope")
    assert isinstance(info.value, ImageInputError) and isinstance(info.value, KeyError)
    with pytest.raises(CorruptImageError):
        store.get("broken")


def test_in_memory_add_replaces_and_invalidates_embeddings():
    store = ImageStore()
    seg = CountingSegmenter()
    store.add("x", Image.new("RGB", (10, 10), "red"))
    first, hit = store.embedding("x", seg)
    assert not hit and seg.calls == 1
    assert store.embedding("x", seg) == (first, True) and seg.calls == 1
    store.add("x", Image.new("RGB", (10, 10), "blue"))
    second, hit = store.embedding("x", seg)
    assert not hit and second != first and seg.calls == 2
    with pytest.raises(ConfigurationError):
        store.add("", Image.new("RGB", (2, 2)))


def test_embedding_cache_is_per_model_and_counts():
    store = ImageStore({"a": Image.new("RGB", (4, 4), "red")})
    sam_b, sam_h = CountingSegmenter("sam-b"), CountingSegmenter("sam-h")
    for _ in range(3):
        store.embedding("a", sam_b)
        store.embedding("a", sam_h)
    assert (sam_b.calls, sam_h.calls) == (1, 1)
    info = store.cache_info()
    assert (info.hits, info.misses, info.size) == (4, 2, 2)


def test_embedding_cache_is_lru_bounded():
    store = ImageStore({str(i): Image.new("RGB", (4, 4), (i, 0, 0)) for i in range(4)}, embedding_cache_size=2)
    seg = CountingSegmenter()
    for image_id in ["0", "1", "0", "2", "1"]:  # "1" is evicted by "2" (LRU: "0" was used more recently)
        store.embedding(image_id, seg)
    assert seg.calls == 4 and store.cache_info().evictions == 2 and store.cache_info().size == 2
    store.embedding("0", seg)  # "0" was evicted by "1"'s return
    assert seg.calls == 5


def test_concurrent_requests_compute_each_key_once():
    store = ImageStore({"a": Image.new("RGB", (16, 16), "green"), "b": Image.new("RGB", (16, 16), "blue")})
    seg = CountingSegmenter(delay=0.05)
    results: list = []
    barrier = threading.Barrier(8)

    def worker(i):
        barrier.wait()
        results.append(store.embedding("ab"[i % 2], seg))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seg.calls == 2
    assert sum(1 for _, hit in results if not hit) == 2 and len(results) == 8


def test_failed_computation_is_not_cached_and_waiters_see_the_error():
    cache = OnceLru(4)
    calls = []

    def boom():
        calls.append(1)
        raise RuntimeError("model crashed")

    for _ in range(2):
        with pytest.raises(RuntimeError):
            cache.get_or_compute("k", boom)
    assert len(calls) == 2 and cache.info().size == 0
    assert cache.get_or_compute("k", lambda: 7) == (7, False)


def test_embedding_for_direct_image_is_keyed_by_content():
    store = ImageStore()
    seg = CountingSegmenter()
    red = Image.new("RGB", (5, 5), "red")
    assert store.embedding_for_image(red, seg)[1] is False
    assert store.embedding_for_image(red.copy(), seg)[1] is True
    assert store.embedding_for_image(Image.new("RGB", (5, 5), "blue"), seg)[1] is False
    assert image_digest(red) != image_digest(Image.new("RGB", (5, 4), "red"))


def test_s3_prefix_listing_and_fetch_with_stubber():
    pytest.importorskip("botocore")
    import boto3
    from botocore.response import StreamingBody
    from botocore.stub import Stubber

    data = _png((0, 0, 255), (7, 3))
    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    with Stubber(client) as stub:
        stub.add_response("list_objects_v2", {
            "IsTruncated": True, "NextContinuationToken": "t1", "KeyCount": 2,
            "Contents": [{"Key": "frames/5X3349.png", "Size": len(data)}, {"Key": "frames/readme.txt", "Size": 3}]},
            {"Bucket": "cams", "Prefix": "frames/"})
        stub.add_response("list_objects_v2", {"IsTruncated": False, "KeyCount": 1,
                                              "Contents": [{"Key": "frames/day2/b.jpg", "Size": 10}]},
                          {"Bucket": "cams", "Prefix": "frames/", "ContinuationToken": "t1"})
        stub.add_response("get_object", {"Body": StreamingBody(io.BytesIO(data), len(data)),
                                         "ContentLength": len(data)}, {"Bucket": "cams", "Key": "frames/5X3349.png"})
        store = ImageStore.from_s3("s3://cams/frames", s3_client=client)
        assert store.ids() == ["5X3349", "day2/b"]
        assert store.source("day2/b") == "s3://cams/frames/day2/b.jpg"
        assert store.get("5X3349").size == (7, 3)
        assert store.get("5X3349").size == (7, 3)  # decoded image cached: no second GetObject
        stub.assert_no_pending_responses()


def test_replacing_an_image_while_its_embedding_is_computed_never_serves_the_old_one():
    store = ImageStore({"x": Image.new("RGB", (8, 8), "red")})
    seg = CountingSegmenter(delay=0.3)
    started = threading.Event()
    original_embed = seg.embed

    def embed(image):
        started.set()
        return original_embed(image)

    seg.embed = embed
    worker = threading.Thread(target=store.embedding, args=("x", seg))
    worker.start()
    assert started.wait(5)
    store.add("x", Image.new("RGB", (8, 8), "blue"))  # replaced while the red one is being embedded
    worker.join()
    embedding, hit = store.embedding("x", seg)
    assert not hit and seg.calls == 2
    assert embedding == Image.new("RGB", (8, 8), "blue").convert("L").resize((4, 4)).tobytes()
    assert store.get("x").getpixel((0, 0)) == (0, 0, 255)


def test_s3_listing_refuses_two_objects_with_one_id():
    pytest.importorskip("botocore")
    import boto3
    from botocore.stub import Stubber

    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    with Stubber(client) as stub:
        stub.add_response("list_objects_v2", {"IsTruncated": False, "KeyCount": 2, "Contents": [
            {"Key": "f/a b+é.jpg", "Size": 1}, {"Key": "f/a b+é.png", "Size": 1}]}, {"Bucket": "cams", "Prefix": "f/"})
        with pytest.raises(ConfigurationError, match="two images"):
            ImageStore.from_s3("s3://cams/f/", s3_client=client)


def test_s3_keys_with_any_characters_are_fetched_by_their_exact_key():
    pytest.importorskip("botocore")
    import boto3
    from botocore.response import StreamingBody
    from botocore.stub import Stubber

    data = _png((0, 9, 0), (5, 4))
    key = "f/new\nline  +é?#%20.png"  # legal S3 key; its s3:// URI string does not parse back
    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    with Stubber(client) as stub:
        stub.add_response("list_objects_v2", {"IsTruncated": False, "KeyCount": 1, "Contents": [{"Key": key, "Size": 9}]},
                          {"Bucket": "cams", "Prefix": "f/"})
        stub.add_response("get_object", {"Body": StreamingBody(io.BytesIO(data), len(data)),
                                         "ContentLength": len(data)}, {"Bucket": "cams", "Key": key})
        store = ImageStore.from_s3("s3://cams/f", s3_client=client)
        assert store.ids() == ["new\nline  +é?#%20"] and store.source("new\nline  +é?#%20") == f"s3://cams/{key}"
        assert store.get("new\nline  +é?#%20").size == (5, 4)
        stub.assert_no_pending_responses()
    import pickle

    source = pickle.loads(pickle.dumps(store.source("new\nline  +é?#%20")))  # e.g. shipped to a Ray worker
    assert (source.bucket, source.key) == ("cams", key)


def test_an_embedding_cache_hit_does_not_load_the_image_again(tmp_path):
    (tmp_path / "a.png").write_bytes(_png())
    store = ImageStore.from_folder(tmp_path, image_cache_size=0)  # no decoded images kept
    loads = []
    original = store.load
    store.load = lambda source: loads.append(source) or original(source)
    seg = CountingSegmenter()
    store.embedding("a", seg)
    assert store.embedding("a", seg)[1] is True and len(loads) == 1 and seg.calls == 1
    with pytest.raises(UnknownImageError):
        store.embedding("b", seg)
