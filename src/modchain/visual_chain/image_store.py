"""Images by id, and a cache of segmenter embeddings so each image is encoded once per model.

    store = ImageStore.from_folder("frames/")              # id = file name without extension
    store = ImageStore.from_s3("s3://bucket/frames/")       # id = key under the prefix, without extension
    store.add("5X3349", pil_image)                         # in memory
    image = store.get("5X3349")                            # RGB PIL image (load_image's checks)
    embedding, hit = store.embedding("5X3349", segmenter)  # segmenter.embed runs once per (id, model)

SAM's image encoder is nearly all of its cost (a ViT-H pass is ~0.5 s on a GPU, the prompt decoder a few
ms), so every prompt on the same image should reuse one embedding. The cache is an LRU bounded by count
(embeddings are large: 256x64x64 floats, 4 MiB each), thread-safe, and computes each key once even when
many requests for the same image arrive together: the first computes, the others wait for its result.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modchain.core.errors import ConfigurationError
from modchain.visual_chain.errors import UnknownImageError

if TYPE_CHECKING:
    from PIL import Image as PILImage

    from modchain.core.protocols import Segmenter

#: File name endings a folder or S3 prefix is scanned for.
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
_S3_PREFIX = re.compile(r"^s3://([^/]+)/?(.*)$")


class S3Object(str):
    """An ``s3://bucket/key`` source that keeps its bucket and key as listed: S3 keys may hold any character
    (newlines, leading spaces) that parsing the URI string back would lose. Compares equal to the URI."""

    bucket: str
    key: str

    def __new__(cls, bucket: str, key: str) -> S3Object:
        uri = super().__new__(cls, f"s3://{bucket}/{key}")
        uri.bucket, uri.key = bucket, key
        return uri

    def __getnewargs__(self) -> tuple[str, str]:  # pickling (Ray workers, copies) rebuilds from bucket and key
        return (self.bucket, self.key)


@dataclass(frozen=True)
class CacheInfo:
    hits: int
    misses: int
    evictions: int
    size: int
    maxsize: int


class OnceLru:
    """An LRU map whose values are computed at most once per key, even under concurrent requests."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 0:
            raise ConfigurationError("cache size must be >= 0")
        self.maxsize = maxsize
        self._values: OrderedDict[Hashable, Any] = OrderedDict()
        self._pending: dict[Hashable, Future] = {}
        self._lock = threading.Lock()
        self.hits = self.misses = self.evictions = 0

    def get_or_compute(self, key: Hashable, compute: Callable[[], Any]) -> tuple[Any, bool]:
        """``(value, hit)``: ``hit`` is False only for the one caller that computed the value; callers that
        waited for that computation get True (they did not pay for one)."""
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                self.hits += 1
                return self._values[key], True
            pending = self._pending.get(key)
            owner = pending is None
            if owner:
                pending = self._pending[key] = Future()
                self.misses += 1
            else:
                self.hits += 1  # served by the in-flight computation, not a second one
        if not owner:
            return pending.result(), True
        try:
            value = compute()
        except BaseException as exc:
            with self._lock:
                del self._pending[key]
            pending.set_exception(exc)
            raise
        with self._lock:
            del self._pending[key]
            if self.maxsize:
                self._values[key] = value
                while len(self._values) > self.maxsize:
                    self._values.popitem(last=False)
                    self.evictions += 1
        pending.set_result(value)
        return value, False

    def discard(self, predicate: Callable[[Hashable], bool]) -> None:
        with self._lock:
            for key in [k for k in self._values if predicate(k)]:
                del self._values[key]

    def clear(self) -> None:
        with self._lock:
            self._values.clear()

    def info(self) -> CacheInfo:
        with self._lock:
            return CacheInfo(self.hits, self.misses, self.evictions, len(self._values), self.maxsize)


class ImageStore:
    """Image sources by id (paths, ``s3://`` URIs, bytes, PIL images), loaded with ``load_image``.

    Args:
        images: ``{image_id: source}``; any source :func:`~modchain.image_moderation.image_input.load_image` takes.
        s3_client / fetch_s3: how ``s3://`` sources are fetched (a boto3 S3 client or a fetcher callable).
        embedding_cache_size: embeddings kept (LRU by count); 0 disables caching.
        image_cache_size: decoded images kept, so repeated requests skip decoding.
        load_options: extra ``load_image`` options (``max_bytes``, ``max_pixels``, ...).
    """

    def __init__(self, images: Mapping[str, Any] | None = None, *, s3_client: Any = None, fetch_s3: Any = None,
                 embedding_cache_size: int = 16, image_cache_size: int = 8,
                 load_options: Mapping[str, Any] | None = None) -> None:
        self._sources: dict[str, Any] = {}
        # Bumped when an id is replaced. Cache keys carry it, so an embedding still being computed for the old
        # image when ``add`` replaces it lands under a dead key instead of being served for the new image.
        self._versions: dict[str, int] = {}
        self._sources_lock = threading.Lock()
        self.s3_client, self.fetch_s3 = s3_client, fetch_s3
        self.load_options = dict(load_options or {})
        self._embeddings = OnceLru(embedding_cache_size)
        self._images = OnceLru(image_cache_size)
        for image_id, source in (images or {}).items():
            self.add(image_id, source)

    # -- building ------------------------------------------------------------------------------------------

    @classmethod
    def from_folder(cls, folder: str | Path, *, recursive: bool = False,
                    extensions: Iterable[str] = IMAGE_EXTENSIONS, **options: Any) -> ImageStore:
        """Every image file in ``folder``; its id is the file name without extension (with ``recursive``,
        the relative path without extension, ``/``-separated). Two files with one id is an error."""
        root = Path(folder)
        if not root.is_dir():
            raise ConfigurationError(f"not a folder: {root}")
        endings = tuple(e.lower() for e in extensions)
        files = sorted(p for p in (root.rglob("*") if recursive else root.iterdir())
                       if p.is_file() and p.suffix.lower() in endings)
        images: dict[str, Path] = {}
        for path in files:
            image_id = path.relative_to(root).with_suffix("").as_posix()
            if image_id in images:
                raise ConfigurationError(f"two images with id {image_id!r} in {root}")
            images[image_id] = path
        return cls(images, **options)

    @classmethod
    def from_s3(cls, uri: str, *, s3_client: Any = None, region_name: str | None = None,
                endpoint_url: str | None = None, extensions: Iterable[str] = IMAGE_EXTENSIONS,
                max_keys: int = 100_000, **options: Any) -> ImageStore:
        """Every image object under ``s3://bucket/prefix`` (ListObjectsV2, paginated); id = the key after
        the prefix, without extension. Objects are fetched when first used."""
        from modchain.backends.aws.common import call_aws
        from modchain.backends.aws.s3_images import S3ImageFetcher

        match = _S3_PREFIX.match(uri.strip())
        if not match:
            raise ConfigurationError("not an s3://bucket/prefix URI")
        bucket, prefix = match.group(1), match.group(2)
        if prefix and not prefix.endswith("/"):
            prefix += "/"  # a folder: "frames" must not also list "frames-old/..."
        fetcher = S3ImageFetcher(s3_client, region_name=region_name, endpoint_url=endpoint_url)
        endings = tuple(e.lower() for e in extensions)
        images: dict[str, str] = {}
        token: str | None = None
        while True:
            params: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
            if token:
                params["ContinuationToken"] = token
            page = call_aws("s3", "ListObjectsV2", fetcher.client.list_objects_v2, **params)
            for item in page.get("Contents", []):
                key = item["Key"]
                stem, dot, ext = key[len(prefix):].rpartition(".")
                if dot and f".{ext.lower()}" in endings and stem:
                    if stem in images:  # as from_folder: "a.jpg" and "a.png" cannot both be image "a"
                        raise ConfigurationError(f"two images with id {stem[:80]!r} under s3://{bucket}/{prefix}")
                    images[stem] = S3Object(bucket, key)
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token or len(images) >= max_keys:
                break
        return cls(images, fetch_s3=fetcher, **options)

    def add(self, image_id: str, image: Any) -> None:
        """Register (or replace) an image: a PIL image, numpy array, bytes, path or ``s3://`` URI.
        Replacing an id drops its cached image and embeddings."""
        if not isinstance(image_id, str) or not image_id.strip():
            raise ConfigurationError("an image id is a non-empty string")
        with self._sources_lock:
            replaced = image_id in self._sources
            self._sources[image_id] = image
            if replaced:
                self._versions[image_id] = self._versions.get(image_id, 0) + 1
        if replaced:  # free the old entries now (the version in the keys already keeps them from being served)
            self._images.discard(lambda key: key[0] == image_id)
            self._embeddings.discard(lambda key: key[0] == image_id)

    # -- reading ---------------------------------------------------------------------------------------------

    def __contains__(self, image_id: object) -> bool:
        return image_id in self._sources

    def __len__(self) -> int:
        return len(self._sources)

    def ids(self) -> list[str]:
        return sorted(self._sources)

    def source(self, image_id: str) -> Any:
        return self._versioned(image_id)[0]

    def _versioned(self, image_id: str) -> tuple[Any, int]:
        """The source and its version, read together (``add`` may replace the id concurrently)."""
        try:
            with self._sources_lock:
                return self._sources[image_id], self._versions.get(image_id, 0)
        except (KeyError, TypeError):
            raise UnknownImageError(f"no image with id {str(image_id)[:80]!r} in the store "
                                    f"({len(self._sources)} images)") from None

    def get(self, image_id: str) -> PILImage.Image:
        """The image as RGB PIL (typed :class:`ImageInputError` for a missing or corrupt file)."""
        return self._get(image_id)[0]

    def _get(self, image_id: str) -> tuple[PILImage.Image, int]:
        source, version = self._versioned(image_id)
        image, _ = self._images.get_or_compute((image_id, version), lambda: self.load(source))
        return image, version

    def load(self, source: Any) -> PILImage.Image:
        """Load any image source with this store's S3 access and ``load_options`` (not stored, not cached)."""
        from modchain.core.images import DEFAULT_MAX_BYTES, load_image

        if isinstance(source, S3Object):  # fetch by the exact key; the bytes are then checked and decoded
            if self.fetch_s3 is None and self.s3_client is None:
                raise ConfigurationError("an s3:// image needs fetch_s3= or s3_client= (a boto3 S3 client)")
            max_bytes = self.load_options.get("max_bytes", DEFAULT_MAX_BYTES)
            if self.fetch_s3 is not None:
                source = self.fetch_s3(source.bucket, source.key, max_bytes=max_bytes)
            else:
                from modchain.backends.aws.s3_images import fetch_s3_image

                source = fetch_s3_image(self.s3_client, source.bucket, source.key, max_bytes=max_bytes)
        return load_image(source, fetch_s3=self.fetch_s3, s3_client=self.s3_client, **self.load_options)

    # -- embeddings ------------------------------------------------------------------------------------------

    def embedding(self, image_id: str, segmenter: Segmenter) -> tuple[Any, bool]:
        """``(embedding, cache_hit)`` of a stored image for ``segmenter``, computed once per (id, model)."""
        source, version = self._versioned(image_id)

        def compute() -> Any:  # a cache hit needs no image: decode (or take the decoded one) only to embed
            image, _ = self._images.get_or_compute((image_id, version), lambda: self.load(source))
            return segmenter.embed(image)

        return self._embeddings.get_or_compute((image_id, version, segmenter.name), compute)

    def embedding_for_image(self, image: PILImage.Image, segmenter: Segmenter) -> tuple[Any, bool]:
        """The same for an image given directly (no id): cached under a digest of its pixels."""
        key = ("#" + image_digest(image), 0, segmenter.name)
        return self._embeddings.get_or_compute(key, lambda: segmenter.embed(image))

    def cache_info(self) -> CacheInfo:
        """Embedding cache counters: hits, misses, evictions, size, maxsize."""
        return self._embeddings.info()

    def clear_cache(self) -> None:
        self._embeddings.clear()
        self._images.clear()


def image_digest(image: PILImage.Image) -> str:
    """A content key for an image: size, mode and a BLAKE2 digest of its pixels."""
    digest = hashlib.blake2b(image.tobytes(), digest_size=16).hexdigest()
    return f"{image.width}x{image.height}:{image.mode}:{digest}"
