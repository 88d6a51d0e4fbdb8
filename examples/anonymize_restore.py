"""Reversible anonymization: the model sees placeholders, the user gets their own data back.

    python examples/anonymize_restore.py
"""

import re

from langchain_core.messages import AIMessage
from langchain_core.prompts import ChatPromptTemplate

from modchain import ModerationChain, ModerationConfig, PiiConfig

guard = ModerationChain(ModerationConfig(filters=[PiiConfig(action="anonymize")]))
seen_by_model = []


def show_prompt(prompt):
    seen_by_model.append(prompt.to_string())
    return prompt


def model(prompt):
    """A stand-in model that answers with the placeholders it was given, as a real model would.

    Each placeholder carries a random tag (``[EMAIL_1_k3f9q2]``): only the ones this conversation minted are
    restored, so a user who types ``[EMAIL_1]`` or a model told to print one gets nobody's data.
    """
    email, phone = re.findall(r"\[(?:EMAIL|PHONE)_\d+_\w+\]", prompt.to_string())
    return AIMessage(f"I have sent the report to {email} and will call {phone} tomorrow.")


chain = ChatPromptTemplate.from_messages([("human", "{request}")]) | guard | show_prompt | model | guard.restorer()

# Placeholders are scoped per conversation: pass its id in the config.
config = {"configurable": {"conversation_id": "ticket-1017"}}
answer = chain.invoke({"request": "Send the report to maria.garcia@example.com and call me on 206-555-0143."},
                      config=config)
print("model saw:  ", seen_by_model[0])
print("user gets:  ", answer.content)
forged = guard.restorer().invoke("Typed by the user: [EMAIL_1]", config)
print("forged one: ", forged)  # not a placeholder this conversation minted: left as it is
guard.vault.clear("ticket-1017")  # forget the mapping when the conversation ends
