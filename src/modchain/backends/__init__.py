"""Backends, grouped by where they run; each implements a protocol of :mod:`modchain.core.protocols`.

- ``local/``: pure Python and ONNX, offline, no model download (the default text backend, NudeNet).
- ``hf/``: Hugging Face models in this process (transformers, diffusers, torch): ``pip install 'modchain[local]'``.
- ``aws/``: AWS services and SageMaker endpoints through boto3: ``pip install 'modchain[aws]'``.
- here: what every tier shares: :mod:`.base` (the text backend base class), :mod:`.detection` (query checks,
  box arithmetic), and the LLM judge (:mod:`.llm_judge`), which runs on any LangChain chat model.

The old flat paths (``modchain.backends.comprehend``, ...) still import, with a DeprecationWarning: see
:mod:`modchain._old_paths`. Nothing heavy is imported at ``import modchain.backends``: heavy libraries load on
first use.
"""
