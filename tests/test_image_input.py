"""load_image: every source kind, the typed rejections, and mode/orientation normalization."""

from __future__ import annotations

import base64
import io
import struct
import zlib
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")
Image = pytest.importorskip("PIL.Image")

from modchain.core.errors import ConfigurationError, InputError  # noqa: E402
from modchain.image_moderation.errors import (  # noqa: E402
    CorruptImageError,
    DecompressionBombError,
    ImageInputError,
    ImageTooLargeError,
    UnsupportedImageFormatError,
)
from modchain.image_moderation.image_input import load_image, load_image_bytes, parse_s3_uri  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "images"
CAT = FIXTURES / "skimage_chelsea.png"
ROCKET = FIXTURES / "skimage_rocket.jpg"


def _encode(image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A ~100-byte PNG whose header declares width x height pixels (8-bit grayscale)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


# -- sources ---------------------------------------------------------------------------------------------------
def test_path_str_and_pathlib():
    for source in (CAT, str(CAT)):
        image = load_image(source)
        assert image.mode == "RGB" and image.size == (451, 300)


def test_jpeg_bytes_and_base64_forms_decode_identically():
    data = ROCKET.read_bytes()
    reference = np.asarray(load_image(data))
    b64 = base64.b64encode(data).decode()
    for source in (data, bytearray(data), memoryview(data), b64, f"data:image/jpeg;base64,{b64}",
                   base64.urlsafe_b64encode(data).decode().rstrip("=")):
        assert np.array_equal(np.asarray(load_image(source)), reference)
    assert reference.shape == (427, 640, 3)


def test_pil_image_is_copied_and_normalized():
    source = Image.new("L", (20, 10), 128)
    image = load_image(source)
    assert image.mode == "RGB" and image is not source and image.getpixel((0, 0)) == (128, 128, 128)


@pytest.mark.parametrize("shape,expected", [((8, 6), (50, 50, 50)), ((8, 6, 1), (50, 50, 50)),
                                            ((8, 6, 3), (50, 50, 50)), ((8, 6, 4), (50, 50, 50))])
def test_numpy_arrays(shape, expected):
    array = np.full(shape, 50, dtype=np.uint8)
    if len(shape) == 3 and shape[2] == 4:
        array[..., 3] = 255
    image = load_image(array)
    assert image.mode == "RGB" and image.size == (6, 8) and image.getpixel((0, 0)) == expected


def test_numpy_rgba_alpha_composited_on_white():
    array = np.zeros((4, 4, 4), dtype=np.uint8)  # black, fully transparent
    assert load_image(array).getpixel((1, 1)) == (255, 255, 255)


@pytest.mark.parametrize("array", [np.zeros((4, 4), dtype=np.float32), np.zeros((4, 4, 2), dtype=np.uint8),
                                   np.zeros((2, 4, 4, 3), dtype=np.uint8)])
def test_numpy_bad_dtype_or_shape(array):
    with pytest.raises(ImageInputError):
        load_image(array)


def test_s3_uri_through_fetch_callable():
    calls = []

    def fetch(bucket, key, *, max_bytes):
        calls.append((bucket, key, max_bytes))
        return CAT.read_bytes()

    image = load_image("s3://my-bucket/photos/cat.png", fetch_s3=fetch, max_bytes=1_000_000)
    assert image.size == (451, 300) and calls == [("my-bucket", "photos/cat.png", 1_000_000)]
    assert parse_s3_uri("s3://b/a/b/c.jpg") == ("b", "a/b/c.jpg")
    with pytest.raises(ConfigurationError):
        load_image("s3://my-bucket/cat.png")


def test_s3_through_boto3_client_with_stubber():
    pytest.importorskip("botocore")
    import boto3
    from botocore.response import StreamingBody
    from botocore.stub import Stubber

    data = CAT.read_bytes()
    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    with Stubber(client) as stub:
        stub.add_response("get_object", {"Body": StreamingBody(io.BytesIO(data), len(data)),
                                         "ContentLength": len(data)}, {"Bucket": "b", "Key": "cat.png"})
        stub.add_response("get_object", {"Body": StreamingBody(io.BytesIO(data), len(data)),
                                         "ContentLength": len(data)}, {"Bucket": "b", "Key": "cat.png"})
        assert load_image("s3://b/cat.png", s3_client=client).size == (451, 300)
        with pytest.raises(ImageTooLargeError):
            load_image("s3://b/cat.png", s3_client=client, max_bytes=1000)


# -- rejections --------------------------------------------------------------------------------------------------
def test_errors_are_typed_input_errors():
    assert issubclass(ImageInputError, InputError)
    assert issubclass(DecompressionBombError, ImageTooLargeError)


def test_unsupported_source_type_and_missing_file():
    with pytest.raises(ImageInputError, match="unsupported image source type"):
        load_image(12345)
    with pytest.raises(ImageInputError, match="neither"):
        load_image("/no/such/file.png")


def test_corrupt_data_of_an_allowed_format():
    truncated = ROCKET.read_bytes()[:2000]
    with pytest.raises(CorruptImageError):
        load_image(truncated)
    with pytest.raises(CorruptImageError):
        load_image(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)


def test_not_an_image_and_disallowed_format():
    with pytest.raises(UnsupportedImageFormatError):
        load_image(b"%PDF-1.4 not an image at all" * 4)
    ico = _encode(Image.new("RGB", (16, 16), "red"), "ICO")
    with pytest.raises(UnsupportedImageFormatError, match="ICO"):
        load_image(ico)
    png = CAT.read_bytes()
    with pytest.raises(UnsupportedImageFormatError):
        load_image(png, allowed_formats={"JPEG"})


def test_size_limits_for_bytes_files_and_base64(tmp_path):
    data = CAT.read_bytes()
    with pytest.raises(ImageTooLargeError, match="over the limit"):
        load_image(data, max_bytes=1000)
    with pytest.raises(ImageTooLargeError):
        load_image(CAT, max_bytes=1000)
    with pytest.raises(ImageTooLargeError):
        load_image(base64.b64encode(data).decode(), max_bytes=1000)


def test_decompression_bomb_header_is_rejected_before_decoding():
    bomb = _bomb_png()
    assert len(bomb) < 200
    with pytest.raises(DecompressionBombError):
        load_image(bomb)  # 10^10 pixels: Pillow's own error, mapped
    with pytest.raises(DecompressionBombError, match="over the limit"):
        load_image(_bomb_png(3000, 3000), max_pixels=1_000_000)  # under Pillow's limit, over ours
    with pytest.raises(DecompressionBombError):
        load_image(_bomb_png(10_000, 10_000))  # 10^8: Pillow's warning, turned into an error
    with pytest.raises(DecompressionBombError):
        load_image(np.zeros((2000, 1000), dtype=np.uint8), max_pixels=1000)


def test_messages_never_contain_the_data():
    secret = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"SECRET-PAYLOAD" * 20).decode()
    for source in (secret, f"data:image/png;base64,{secret}", base64.b64decode(secret)):
        with pytest.raises(ImageInputError) as info:
            load_image(source)
        message = str(info.value)
        assert secret[:40] not in message and "SECRET" not in message
        assert info.value.__cause__ is None


# -- normalization -----------------------------------------------------------------------------------------------
def test_exif_orientation_is_applied():
    source = Image.new("RGB", (40, 20), (255, 0, 0))
    source.paste((0, 0, 255), (0, 0, 10, 20))  # left quarter blue
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    data = _encode(source, "JPEG", exif=exif.tobytes(), quality=95)
    image = load_image(data)
    assert image.size == (20, 40)
    top = image.getpixel((10, 2))
    assert top[2] > 200 and top[0] < 60  # the blue side is now on top
    assert load_image(data, exif_transpose=False).size == (40, 20)


def test_rgba_png_composited_on_white():
    source = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    source.putpixel((5, 5), (255, 0, 0, 255))
    image = load_image(_encode(source, "PNG"))
    assert image.mode == "RGB"
    assert image.getpixel((0, 0)) == (255, 255, 255) and image.getpixel((5, 5)) == (255, 0, 0)


def test_palette_gif_first_frame_and_transparency():
    frames = [Image.new("P", (8, 8), 1), Image.new("P", (8, 8), 2)]
    for frame in frames:
        frame.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * (256 * 3 - 9))
    data = _encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    image = load_image(data)
    assert image.mode == "RGB" and image.getpixel((0, 0)) == (255, 0, 0)  # first frame, red
    transparent = Image.new("P", (8, 8), 0)
    transparent.putpalette([0, 0, 0, 255, 0, 0] + [0] * (256 * 3 - 6))
    data = _encode(transparent, "GIF", transparency=0)
    assert load_image(data).getpixel((3, 3)) == (255, 255, 255)


def test_sixteen_bit_png_is_scaled_not_clipped():
    array = np.full((6, 6), 32768, dtype=np.uint16)  # mid gray in 16 bits
    data = _encode(Image.fromarray(array), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    value = load_image(data).getpixel((0, 0))
    assert value == (128, 128, 128)


@pytest.mark.parametrize("fmt", ["WEBP", "BMP", "TIFF", "PNG", "JPEG", "GIF"])
def test_allowed_formats_round_trip(fmt):
    data = _encode(Image.new("RGB", (16, 12), (10, 200, 30)), fmt)
    image = load_image(data)
    assert image.size == (16, 12) and image.mode == "RGB"


def test_cmyk_jpeg_becomes_rgb():
    data = _encode(Image.new("CMYK", (8, 8), (0, 0, 0, 0)), "JPEG")
    assert load_image(data).mode == "RGB"


def test_load_image_bytes_returns_encoded_data():
    assert load_image_bytes(CAT) == CAT.read_bytes()
    with pytest.raises(ImageInputError):
        load_image_bytes(Image.new("RGB", (2, 2)))
