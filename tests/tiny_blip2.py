"""The tiny BLIP-2 builders live in the package (examples and notebooks use them too)."""

from modchain.testing.tiny_models import opt_tokenizer, save_tiny_blip2, t5_tokenizer

__all__ = ["opt_tokenizer", "save_tiny_blip2", "t5_tokenizer"]
