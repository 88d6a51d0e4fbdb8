"""One loader for every image source: ``load_image(source) -> PIL.Image.Image`` (mode RGB, upright).

Accepted sources: a path (``str`` or :class:`pathlib.Path`), ``bytes``/``bytearray``/``memoryview``, a base64
string (plain or a ``data:image/...;base64,`` URI), a PIL image, a numpy ``uint8`` array (HxW, HxWx1, HxWx3
RGB, HxWx4 RGBA), and ``s3://bucket/key`` URIs, fetched with an injected ``fetch_s3`` callable or a boto3
S3 client (see :mod:`modchain.backends.aws.s3_images`; this module never imports boto3).
It lives in ``core`` because image backends and components load images alike.

What is rejected, each with a typed :class:`~modchain.core.errors.ImageInputError`:

* encoded data over ``max_bytes`` (files are checked with ``stat`` before they are read);
* images declaring more than ``max_pixels`` pixels, checked from the header *before* pixel data is
  decoded, and Pillow's own decompression-bomb warning/error;
* formats other than ``allowed_formats`` (JPEG, PNG, WebP, GIF, BMP, TIFF by default);
* data that is not an image, or a truncated/damaged image.

Normalization: EXIF orientation applied (``ImageOps.exif_transpose``); the first frame of animations and
multi-page files; mode converted to RGB, transparency composited on white (``background``), 16-bit and
32-bit grayscale scaled down to 8 bits rather than clipped.

Error messages name the source kind, sizes and formats only, never bytes or base64 text.

Thread safety: turning Pillow's ``DecompressionBombWarning`` into an error uses ``warnings.catch_warnings``,
which changes process-wide warning filters while an image is opened.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import re
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modchain.core.errors import (
    ConfigurationError,
    CorruptImageError,
    DecompressionBombError,
    ImageInputError,
    ImageTooLargeError,
    UnsupportedImageFormatError,
)

if TYPE_CHECKING:
    from PIL import Image as PILImage

#: 20 MiB of encoded data.
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
#: 40 megapixels (an 8000 x 5000 photo); Pillow's own warning starts at about 89 megapixels.
DEFAULT_MAX_PIXELS = 40_000_000
#: Pillow format names. MPO is what Pillow calls multi-picture JPEGs from phones and cameras.
ALLOWED_FORMATS: frozenset[str] = frozenset({"JPEG", "MPO", "PNG", "WEBP", "GIF", "BMP", "TIFF"})

#: ``fetch_s3(bucket, key, max_bytes=...) -> bytes``
FetchS3 = Callable[..., bytes]

_S3_URI = re.compile(r"^s3://([^/]+)/(.+)$")
_DATA_URI = re.compile(r"^data:(?P<mime>[\w.+/-]*)(?P<params>(?:;[\w.+-]+=[\w.+-]+)*);base64,", re.IGNORECASE)
_BASE64_CHARS = re.compile(r"^[A-Za-z0-9+/_\-\s]+={0,2}\s*$")

# Leading bytes of the allowed formats: data that starts like one of these but does not decode is corrupt,
# anything else Pillow cannot identify is an unsupported format.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``(bucket, key)``."""
    match = _S3_URI.match(uri.strip())
    if not match:
        raise ImageInputError("not an s3://bucket/key URI")
    return match.group(1), match.group(2)


def is_s3_uri(source: Any) -> bool:
    return isinstance(source, str) and source.strip().lower().startswith("s3://")


def load_image(
    source: Any,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    allowed_formats: Iterable[str] = ALLOWED_FORMATS,
    fetch_s3: FetchS3 | None = None,
    s3_client: Any = None,
    background: tuple[int, int, int] = (255, 255, 255),
    exif_transpose: bool = True,
) -> PILImage.Image:
    """Load ``source`` as an upright RGB PIL image, or raise an :class:`ImageInputError` subclass.

    ``fetch_s3(bucket, key, max_bytes=...)`` or ``s3_client`` (a boto3 S3 client) is needed for ``s3://`` URIs.
    """
    from PIL import Image

    allowed = frozenset(f.upper() for f in allowed_formats)
    if isinstance(source, Image.Image):
        _check_pixels(source.size, max_pixels)
        try:
            source.load()
        except Exception as exc:
            raise CorruptImageError(f"the PIL image cannot be decoded ({type(exc).__name__})") from None
        return _normalize(source, background=background, exif_transpose=exif_transpose, copy=True)
    if type(source).__module__.startswith("numpy"):
        return _from_array(source, max_pixels=max_pixels, background=background)
    data = load_image_bytes(source, max_bytes=max_bytes, fetch_s3=fetch_s3, s3_client=s3_client)
    return decode_image(data, max_pixels=max_pixels, allowed_formats=allowed, background=background,
                        exif_transpose=exif_transpose)


def load_image_bytes(
    source: Any,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    fetch_s3: FetchS3 | None = None,
    s3_client: Any = None,
) -> bytes:
    """The encoded bytes of a path, bytes, base64 or ``s3://`` source (not decoded, size-checked only)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        _check_bytes(len(data), max_bytes, "image bytes")
        return data
    if isinstance(source, Path):
        return _read_file(source, max_bytes)
    if isinstance(source, str):
        text = source.strip()
        if not text:
            raise ImageInputError("empty string is not an image source")
        if is_s3_uri(text):
            return _fetch_s3(text, max_bytes, fetch_s3, s3_client)
        match = _DATA_URI.match(text)
        if match:
            return _decode_base64(text[match.end():], max_bytes)
        if len(text) < 4096 and "\n" not in text and os.path.exists(text):
            return _read_file(Path(text), max_bytes)
        if len(text) >= 64 and _BASE64_CHARS.match(text):
            return _decode_base64(text, max_bytes)
        raise ImageInputError("string is neither an existing file, an s3:// URI, nor base64 image data")
    raise ImageInputError(
        f"unsupported image source type {type(source).__name__}; expected a path, bytes, base64 string, "
        "PIL image, numpy uint8 array or s3:// URI"
    )


def decode_image(
    data: bytes,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    allowed_formats: Iterable[str] = ALLOWED_FORMATS,
    background: tuple[int, int, int] = (255, 255, 255),
    exif_transpose: bool = True,
) -> PILImage.Image:
    """Decode encoded image bytes with the checks of :func:`load_image` (no size check on ``data`` itself)."""
    from PIL import Image, UnidentifiedImageError

    allowed = frozenset(f.upper() for f in allowed_formats)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise DecompressionBombError("image declares too many pixels (decompression bomb)") from None
        except UnidentifiedImageError:
            kind = sniff_format(data)
            if kind is not None:
                raise CorruptImageError(f"{kind} data ({len(data)} bytes) cannot be decoded") from None
            raise UnsupportedImageFormatError(
                f"data ({len(data)} bytes) is not an image in an allowed format ({', '.join(sorted(allowed))})"
            ) from None
        except Exception as exc:  # damaged headers raise all sorts (SyntaxError, ValueError, struct.error)
            raise CorruptImageError(f"image data ({len(data)} bytes) cannot be decoded ({type(exc).__name__})") from None
        fmt = (image.format or "").upper()
        if fmt not in allowed:
            raise UnsupportedImageFormatError(
                f"image format {fmt or 'unknown'} is not allowed ({', '.join(sorted(allowed))})"
            )
        # Header only so far: refuse oversized images before any pixel data is decoded.
        _check_pixels(image.size, max_pixels)
        try:
            if getattr(image, "n_frames", 1) > 1:
                image.seek(0)
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise DecompressionBombError("image declares too many pixels (decompression bomb)") from None
        except Exception as exc:
            raise CorruptImageError(f"{fmt} image ({len(data)} bytes) cannot be decoded ({type(exc).__name__})") from None
    return _normalize(image, background=background, exif_transpose=exif_transpose, copy=False)


# -- helpers -------------------------------------------------------------------------------------------------
def _check_bytes(size: int, max_bytes: int, what: str) -> None:
    if size > max_bytes:
        raise ImageTooLargeError(f"{what} is {size} bytes, over the limit of {max_bytes} bytes")


def _check_pixels(size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise CorruptImageError(f"image has an empty size {width}x{height}")
    if width * height > max_pixels:
        raise DecompressionBombError(
            f"image is {width}x{height} ({width * height} pixels), over the limit of {max_pixels} pixels"
        )


def _read_file(path: Path, max_bytes: int) -> bytes:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ImageInputError(f"image file not found: {path}") from None
    except OSError as exc:
        raise ImageInputError(f"cannot read image file {path} ({type(exc).__name__})") from None
    if not path.is_file():
        raise ImageInputError(f"not a file: {path}")
    _check_bytes(size, max_bytes, f"image file {path}")
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise ImageInputError(f"cannot read image file {path} ({type(exc).__name__})") from None
    _check_bytes(len(data), max_bytes, f"image file {path}")  # it may have grown since stat
    return data


def _decode_base64(text: str, max_bytes: int) -> bytes:
    text = re.sub(r"\s+", "", text)
    # 4 base64 characters carry 3 bytes: refuse oversized payloads before decoding them.
    _check_bytes(len(text) * 3 // 4 - text.count("="), max_bytes, "base64 image data")
    try:
        if "-" in text or "_" in text:
            data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        else:
            data = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ImageInputError("invalid base64 image data") from None
    _check_bytes(len(data), max_bytes, "base64 image data")
    return data


def _fetch_s3(uri: str, max_bytes: int, fetch_s3: FetchS3 | None, s3_client: Any) -> bytes:
    bucket, key = parse_s3_uri(uri)
    if fetch_s3 is None:
        if s3_client is None:
            raise ConfigurationError("an s3:// image needs fetch_s3= or s3_client= (a boto3 S3 client)")
        from modchain.core.registry import s3_fetcher  # core names backend modules only in the registry

        data = s3_fetcher()(s3_client, bucket, key, max_bytes=max_bytes)
    else:
        data = fetch_s3(bucket, key, max_bytes=max_bytes)
    _check_bytes(len(data), max_bytes, f"s3://{bucket}/{key}")
    return bytes(data)




def sniff_format(data: bytes) -> str | None:
    """The allowed format ``data`` starts like (JPEG, PNG, GIF, BMP, TIFF, WEBP), from its leading bytes."""
    head = data[:16]
    for signature, kind in _SIGNATURES:
        if head.startswith(signature):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return None


def _from_array(array: Any, *, max_pixels: int, background: tuple[int, int, int]) -> PILImage.Image:
    import numpy as np
    from PIL import Image

    if not isinstance(array, np.ndarray):
        raise ImageInputError(f"unsupported image source type {type(array).__name__}")
    if array.dtype != np.uint8:
        raise ImageInputError(f"numpy images must be uint8, got {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise ImageInputError(f"numpy image shape {array.shape} is not HxW, HxWx3 or HxWx4")
    _check_pixels((array.shape[1], array.shape[0]), max_pixels)
    image = Image.fromarray(np.ascontiguousarray(array))  # L, RGB or RGBA from the shape
    return _normalize(image, background=background, exif_transpose=False, copy=False)


def _normalize(image: PILImage.Image, *, background: tuple[int, int, int], exif_transpose: bool,
               copy: bool) -> PILImage.Image:
    from PIL import Image, ImageOps

    if exif_transpose:
        try:
            transposed = ImageOps.exif_transpose(image)
        except Exception:  # noqa: BLE001 - a damaged EXIF block must not make a decodable image unusable
            transposed = None
        if transposed is not None and transposed is not image:
            image, copy = transposed, False
    mode = image.mode
    if mode == "RGB":
        return image.copy() if copy else image
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # Scale to 8 bits: convert("L") would clip every value above 255 to white.
        image = image.convert("I")
        low, high = image.getextrema()
        shift = 8 if high > 255 or mode.startswith("I;16") else 0
        if mode == "I" and high > 65535:
            shift = 24
        image = image.point(lambda value: value / (1 << shift)).convert("L")
        return image.convert("RGB")
    if mode == "F":
        return image.convert("L").convert("RGB")
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode in ("P", "L", "RGB") and "transparency" in image.info)
    if has_alpha:
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, background)
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return image.convert("RGB")
