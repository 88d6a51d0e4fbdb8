"""Backends that run a Hugging Face model in this process (transformers, diffusers, torch).

Install with ``pip install 'modchain[local]'``. torch and transformers are imported lazily, through
:func:`.common.require_hf`; models load on first use from a model id or a local path, onto ``device``.
"""
