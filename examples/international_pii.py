"""International PII and a custom recognizer on the offline local backend (no network, no model download).

    python examples/international_pii.py
"""

from __future__ import annotations

from modchain import ModerationChain
from modchain.backends.local.pii_recognizers import find_pii

# 1. Built-in international identifiers, validated by python-stdnum / phonenumbers.
messages = [
    "Payroll needs my National Insurance number, it's QQ 12 34 56 C... sorry, AB 12 34 56 C",
    "Refund to IBAN GB82-WEST-1234-5698-7654-32 please",
    "My SIN is 046 454 286 and my Aadhaar is 2345 6789 0124",
    "Call me on +44 7700 900123 or write jo [at] example [dot] com",
    "Numéro de sécurité sociale : 2 93 05 52 390 789 57",
]
for text in messages:
    found = [(m.label, text[m.start:m.end], m.score) for m in find_pii(text) if m.score >= 0.5]
    print(text, "\n   ", found)

# 2. The default chain redacts them (the same recognizers).
chain = ModerationChain({"filters": [{"type": "pii", "action": "redact"}]})
print(chain.invoke("Steuer-ID 46801535924, BSN 291696272, PESEL 38312552669"))

# 3. A custom entity from config: a linear-time pattern, a context word and a Luhn check on its digits.
config = {"filters": [{"type": "pii", "action": "anonymize", "recognizers": [
    {"label": "EMPLOYEE_ID", "pattern": r"EMP-\d{6}", "context": ["employee"], "validator": "luhn", "score": 0.9},
]}]}
guard = ModerationChain(config, unique_id="helpdesk-demo")  # anonymize keeps placeholders per conversation
print(guard.invoke("Please reset the VPN token of employee EMP-400218 (ana@example.com)"))
