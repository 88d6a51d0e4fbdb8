"""Audit callbacks: one JSON line per moderation step, from sync or async handlers.

    python examples/audit_callbacks.py
"""

import asyncio
import json

from modchain import ModerationCallbackHandler, ModerationChain


class AuditLog(ModerationCallbackHandler):
    """Writes what was found, never the text itself (beacon["moderation_input"] holds the text)."""

    def on_after_pii(self, beacon, unique_id):
        self._write(beacon, unique_id)

    async def on_after_prompt_safety(self, beacon, unique_id):  # async handlers work too
        await asyncio.sleep(0)
        self._write(beacon, unique_id)

    @staticmethod
    def _write(beacon, unique_id):
        print(json.dumps({"user": unique_id, "chain": beacon["moderation_chain_id"][:8],
                          "step": beacon["moderation_type"], "status": beacon["moderation_status"]}))


guard = ModerationChain(callbacks=[AuditLog()])
guard.invoke("My email is sam@example.com", config={"configurable": {"unique_id": "user-7"}})


async def server():
    await guard.ainvoke("What's the weather like?", config={"configurable": {"unique_id": "user-8"}})


asyncio.run(server())
