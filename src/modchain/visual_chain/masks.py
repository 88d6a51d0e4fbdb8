"""Compact masks (COCO run-length encoding): moved to :mod:`modchain.core.masks`, re-exported here.

Backends and components share the mask value type, so it lives in ``core``; this path keeps working.
"""

from modchain.core.masks import (
    EncodedMask,
    compress_counts,
    decode_mask,
    decompress_counts,
    encode_mask,
    pack_bits,
    unpack_bits,
)

__all__ = ["EncodedMask", "compress_counts", "decode_mask", "decompress_counts", "encode_mask", "pack_bits",
           "unpack_bits"]
