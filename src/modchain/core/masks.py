"""Compact masks: COCO run-length encoding (and bit-packing) so results stay small and serializable.

A 1280x720 boolean mask is 921,600 values; its RLE is a few hundred integers. :class:`EncodedMask` holds
COCO's *uncompressed* RLE — column-major (Fortran) order, runs alternating background/foreground,
starting with background — so ``to_coco()`` output is read by pycocotools and COCO tools as is, and
``from_coco`` reads both the list form and COCO's compressed string form found in annotation files.
Area needs no decoding; everything else decodes with numpy (imported when called).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, model_validator

if TYPE_CHECKING:
    import numpy as np


class EncodedMask(BaseModel):
    """A binary mask of ``size = (height, width)`` as COCO uncompressed RLE ``counts``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    size: tuple[int, int]
    counts: tuple[int, ...]

    @model_validator(mode="after")
    def _covers_image(self) -> EncodedMask:
        height, width = self.size
        if height < 0 or width < 0:
            raise ValueError("mask size must be (height, width) >= 0")
        if any(c < 0 for c in self.counts):
            raise ValueError("RLE counts must be >= 0")
        if sum(self.counts) != height * width:
            raise ValueError(f"RLE counts sum to {sum(self.counts)}, not height*width = {height * width}")
        return self

    @property
    def area(self) -> int:
        """Foreground pixels: the odd-position runs."""
        return sum(self.counts[1::2])

    @property
    def bbox(self) -> tuple[float, float, float, float] | None:
        """Tight ``(x0, y0, x1, y1)`` pixel box (end exclusive), or None for an empty mask."""
        if self.area == 0:
            return None
        import numpy as np

        array = decode_mask(self)
        rows = np.flatnonzero(array.any(axis=1))
        cols = np.flatnonzero(array.any(axis=0))
        return (float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1))

    def to_coco(self, *, compressed: bool = True) -> dict[str, Any]:
        """``{"size": [h, w], "counts": ...}``: COCO's compressed string by default, or the list."""
        counts: Any = compress_counts(self.counts) if compressed else list(self.counts)
        return {"size": [self.size[0], self.size[1]], "counts": counts}

    @classmethod
    def from_coco(cls, rle: dict[str, Any]) -> EncodedMask:
        size = rle.get("size")
        counts = rle.get("counts")
        if not (isinstance(size, Sequence) and len(size) == 2):
            raise ValueError("a COCO RLE needs 'size': [height, width]")
        if isinstance(counts, bytes):
            counts = counts.decode("ascii")
        if isinstance(counts, str):
            counts = decompress_counts(counts)
        if not isinstance(counts, Sequence):
            raise ValueError("a COCO RLE needs 'counts': a list of ints or a compressed string")
        return cls(size=(int(size[0]), int(size[1])), counts=tuple(int(c) for c in counts))


def encode_mask(array: np.ndarray) -> EncodedMask:
    """RLE of a 2-D mask (any dtype; nonzero is foreground)."""
    import numpy as np

    mask = np.asarray(array)
    if mask.ndim != 2:
        raise ValueError(f"a mask is 2-D (height, width), not shape {mask.shape}")
    flat = mask.astype(bool).ravel(order="F")
    if flat.size == 0:
        return EncodedMask(size=mask.shape, counts=())
    # Run boundaries: where the value changes. Prepend a background run so the first count is zeros.
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], changes, [flat.size]))
    runs = np.diff(bounds).tolist()
    if flat[0]:
        runs = [0, *runs]
    return EncodedMask(size=(int(mask.shape[0]), int(mask.shape[1])), counts=tuple(int(r) for r in runs))


def decode_mask(mask: EncodedMask) -> np.ndarray:
    """The boolean ``(height, width)`` array."""
    import numpy as np

    height, width = mask.size
    values = np.zeros(len(mask.counts), dtype=bool)
    values[1::2] = True
    flat = np.repeat(values, mask.counts)
    return flat.reshape((height, width), order="F")


def pack_bits(array: np.ndarray) -> bytes:
    """One bit per pixel, row-major: a fixed-size alternative to RLE for noisy masks."""
    import numpy as np

    return np.packbits(np.asarray(array).astype(bool).ravel()).tobytes()


def unpack_bits(data: bytes, size: tuple[int, int]) -> np.ndarray:
    import numpy as np

    height, width = size
    if len(data) != (height * width + 7) // 8:
        raise ValueError(f"{len(data)} bytes cannot hold a {height}x{width} bit-packed mask")
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8), count=height * width)
    return bits.astype(bool).reshape((height, width))


# COCO's compressed counts: each count (after the second, as a difference from the count two before it)
# is written as little-endian 5-bit groups, 0x20 marks "more groups follow", 0x10 in the last group is the
# sign, and every group is offset by 48 into printable ASCII.

def compress_counts(counts: Sequence[int]) -> str:
    out: list[str] = []
    for i, count in enumerate(counts):
        x = int(count) - (int(counts[i - 2]) if i > 2 else 0)
        more = True
        while more:
            group = x & 0x1F
            x >>= 5
            more = (x != -1) if group & 0x10 else (x != 0)
            if more:
                group |= 0x20
            out.append(chr(group + 48))
    return "".join(out)


def decompress_counts(text: str) -> list[int]:
    counts: list[int] = []
    pos = 0
    while pos < len(text):
        x = shift = 0
        more = True
        while more:
            if pos >= len(text):
                raise ValueError("truncated COCO RLE string")
            group = ord(text[pos]) - 48
            if not 0 <= group < 64:
                raise ValueError("not a COCO RLE string")
            x |= (group & 0x1F) << shift
            more = bool(group & 0x20)
            pos += 1
            shift += 5
            if not more and group & 0x10:
                x |= -1 << shift
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts
