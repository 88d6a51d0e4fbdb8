"""``modchain eval``: measure a backend's filter on a labelled file.

:mod:`~modchain.eval.metrics` (pure counting and span matching), :mod:`~modchain.eval.data` (reading and
validating labelled JSON Lines), :mod:`~modchain.eval.runner` (running the chain, timing, the report).
Nothing is imported here, so ``import modchain.eval.metrics`` stays as light as it looks.
"""
