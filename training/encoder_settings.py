"""Settings every step of the encoder trainer (``train_encoder.py``) shares: heads, window shape, batch, seed."""

from __future__ import annotations

from modchain.backends.local.encoder import EncoderScorer

__all__ = ["BATCH", "HEADS", "KINDS", "LR", "MAX_LEN", "MAX_WINDOWS", "OPSET", "SEED", "STRIDE"]

HEADS = EncoderScorer.HEADS
KINDS = ("jailbreak", "injection", "harmful")
SEED = 20240611
MAX_LEN, STRIDE, BATCH, LR = 128, 32, 32, 5e-5
MAX_WINDOWS = 3  # token windows kept per training text (first, middle, last): long jailbreaks would swamp the rest
OPSET = 17
