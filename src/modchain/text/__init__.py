"""Text moderation: the text chain and its filters, and the two components built on it.

- here: :class:`~modchain.text.chain.ModerationChain` (:mod:`.chain`, :mod:`.chain_rounds`, :mod:`.filter_rounds`),
  its filters (:mod:`.pii`, :mod:`.toxicity`, :mod:`.prompt_safety`), message shapes (:mod:`.messages`),
  PII restore (:mod:`.restore`) and process-parallel batches (:mod:`.parallel`);
- :mod:`.streaming`: :class:`~modchain.text.streaming.StreamGuard`, moderation while a model streams;
- :mod:`.documents`: retrieved documents (RAG) and tool results (agents).
"""
