"""Reversible anonymization: the model sees placeholders, the user gets their own data back.

    python examples/anonymize_restore.py
"""

from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.prompts import ChatPromptTemplate

from modchain import ModerationChain, ModerationConfig, PiiConfig

guard = ModerationChain(ModerationConfig(filters=[PiiConfig(action="anonymize")]))
seen_by_model = []


def show_prompt(prompt):
    seen_by_model.append(prompt.to_string())
    return prompt


# The fake model answers with the placeholder it was given, as a real model would.
model = FakeListChatModel(responses=["I have sent the report to [EMAIL_1] and will call [PHONE_1] tomorrow."])
chain = ChatPromptTemplate.from_messages([("human", "{request}")]) | guard | show_prompt | model | guard.restorer()

# Placeholders are scoped per conversation: pass its id in the config.
config = {"configurable": {"conversation_id": "ticket-1017"}}
answer = chain.invoke({"request": "Send the report to maria.garcia@example.com and call me on 206-555-0143."},
                      config=config)
print("model saw:  ", seen_by_model[0])
print("user gets:  ", answer.content)
guard.vault.clear("ticket-1017")  # forget the mapping when the conversation ends
