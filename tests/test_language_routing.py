"""Language routing: texts a filter's backend does not support go to the local backend, fail closed, or (opt-in)
are scored anyway; Comprehend PII is asked in the text's own language; results carry the detected language.

Real parts only: boto3 against the local Comprehend and Bedrock emulators (``modchain.testing``), whose
recorded requests show what reached the service. Texts were written for this test and pass the decontam check.
"""

from __future__ import annotations

import asyncio
import json
import pickle

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from modchain import ModerationChain, ModerationConfig, PiiConfig, PromptSafetyConfig, ToxicityConfig
from modchain.backends.aws.bedrock import BedrockGuardrailsBackend
from modchain.backends.aws.comprehend import ComprehendBackend
from modchain.core.config import BackendConfig
from modchain.core.errors import InputError, UnsupportedLanguageError

GERMAN = "Ich habe meine Bestellung immer noch nicht bekommen und bin wirklich sauer auf euch."
GERMAN_MAIL = "Bitte schicken Sie die Rechnung an jonas.becker@example.com, ich brauche sie für die Steuer."
SPANISH_MAIL = "Hola, mi correo es lucia.fernandez@example.com y quiero cambiar la contraseña de mi cuenta."
FRENCH = "Bonjour, je voudrais savoir quand ma commande va arriver, merci beaucoup."
ENGLISH = "Hi, I still have not received my order and I am getting a bit annoyed with this."
ENGLISH_MAIL = "Please send the receipt to sam.taylor@example.com when you have a moment."
TEXTS = [GERMAN, GERMAN_MAIL, SPANISH_MAIL, FRENCH, ENGLISH, ENGLISH_MAIL]


def dump_jsonl(path: str) -> None:
    """Write this module's texts as JSONL (``{"text": ...}``) for the decontam check."""
    with open(path, "w", encoding="utf-8") as out:
        for text in TEXTS:
            out.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")


def comprehend_chain(client, *filters, parallel=True, **backend_config):
    config = ModerationConfig(filters=list(filters), backend=BackendConfig(**backend_config))
    # As from_config builds it: "score" also sends every text as language_code.
    backend = ComprehendBackend(client, language_routing=config.backend.unsupported_language != "score")
    return ModerationChain(config, backend=backend, parallel_filters=parallel)


def sent(emulator, operation):
    return [params for op, params in emulator.requests if op == operation]


def test_default_local_chain_reports_the_language():
    chain = ModerationChain()
    assert chain.moderate(ENGLISH).language == "en"
    assert chain.moderate(GERMAN).language == "de"
    assert chain.moderate("好的").language == "zh"
    assert chain.moderate("ok").language == "und"
    # Several messages: the language of most of their characters.
    messages = [SystemMessage("Sei sempre gentile."), HumanMessage(FRENCH), HumanMessage("ok")]
    assert chain.moderate(messages).language == "fr"
    assert "language" in chain.moderate(ENGLISH).summary()


def test_german_toxicity_is_scored_locally_by_default(comprehend, comprehend_client):
    result = comprehend_chain(comprehend_client, ToxicityConfig()).moderate(GERMAN)
    assert result.language == "de"
    assert [f.backend for f in result.filters] == ["local:cascade"]
    assert all(f.backend.startswith("local") for f in result.findings)
    assert sent(comprehend, "DetectToxicContent") == []  # never read as English


def test_english_is_unchanged(comprehend, comprehend_client):
    result = comprehend_chain(comprehend_client, ToxicityConfig(action="detect")).moderate(ENGLISH)
    assert [f.backend for f in result.filters] == ["comprehend"]
    assert [p["LanguageCode"] for p in sent(comprehend, "DetectToxicContent")] == ["en"]


def test_block_policy_fails_closed_with_a_typed_error(comprehend, comprehend_client):
    chain = comprehend_chain(comprehend_client, ToxicityConfig(fail_open=True), unsupported_language="block")
    with pytest.raises(UnsupportedLanguageError) as caught:
        chain.invoke(GERMAN)
    error = caught.value
    assert isinstance(error, InputError)
    assert (error.filter, error.backend, error.language) == ("toxicity", "comprehend", "de")
    assert "Bestellung" not in str(error)  # no text in the message
    assert sent(comprehend, "DetectToxicContent") == []
    with pytest.raises(UnsupportedLanguageError):
        chain.moderate(GERMAN)
    # Per input in a batch: the English one is still moderated.
    out = chain.batch([GERMAN, ENGLISH], return_exceptions=True)
    assert isinstance(out[0], UnsupportedLanguageError) and out[1] == ENGLISH
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.filter, copy.language, str(copy)) == ("toxicity", "de", str(error))


def test_score_policy_keeps_the_old_behaviour(comprehend, comprehend_client):
    chain = comprehend_chain(comprehend_client, PiiConfig(action="redact"), ToxicityConfig(action="detect"),
                             unsupported_language="score")
    result = chain.moderate(SPANISH_MAIL)
    assert [f.backend for f in result.filters] == ["comprehend", "comprehend"]
    assert [p["LanguageCode"] for p in sent(comprehend, "DetectPiiEntities")] == ["en"]
    # (asked again after the redaction, as overlapping filters do: see text/filter_rounds.py)
    assert {p["LanguageCode"] for p in sent(comprehend, "DetectToxicContent")} == {"en"}


def test_spanish_pii_goes_to_comprehend_as_spanish(comprehend, comprehend_client):
    chain = comprehend_chain(comprehend_client, PiiConfig(action="redact"), ToxicityConfig(action="detect"))
    result = chain.moderate(SPANISH_MAIL)
    assert result.language == "es"
    assert "lucia.fernandez@example.com" not in result.output
    assert [(f.filter, f.backend) for f in result.filters] == [("pii", "comprehend"), ("toxicity", "local:cascade")]
    assert [p["LanguageCode"] for p in sent(comprehend, "DetectPiiEntities")] == ["es"]
    assert sent(comprehend, "DetectToxicContent") == []


def test_a_mixed_batch_is_split_per_filter_and_merged_in_order(comprehend, comprehend_client):
    filters = (PiiConfig(action="redact"), ToxicityConfig(action="detect"), PromptSafetyConfig(action="detect"))
    parallel = comprehend_chain(comprehend_client, *filters).moderate_batch(TEXTS)
    assert [r.language for r in parallel] == ["de", "de", "es", "fr", "en", "en"]
    backends = [[f.backend for f in r.filters] for r in parallel]
    local = "local:cascade"  # the offline fallback, on its default tier
    assert backends == [[local] * 3, [local] * 3, ["comprehend", local, local], [local] * 3,
                        ["comprehend"] * 3, ["comprehend"] * 3]
    for result, text in zip(parallel, TEXTS):  # every address redacted, by whichever backend read it
        assert "@" not in result.output and result.output.split()[0] == text.split()[0]
    pii_languages = sorted(p["LanguageCode"] for p in sent(comprehend, "DetectPiiEntities"))
    assert pii_languages == ["en", "es"]  # one packed document per language
    toxic = [s["Text"] for p in sent(comprehend, "DetectToxicContent") for s in p["TextSegments"]]
    assert all(t.startswith(("Hi,", "Please")) for t in toxic)
    # Overlapping filters decide exactly what one-after-another filters decide.
    sequential = comprehend_chain(comprehend_client, *filters, parallel=False).moderate_batch(TEXTS)
    assert [(r.output, r.allowed, [f.backend for f in r.filters]) for r in sequential] == [
        (r.output, r.allowed, b) for r, b in zip(parallel, backends)]


def test_async_path_routes_the_same(comprehend, comprehend_client):
    chain = comprehend_chain(comprehend_client, PiiConfig(action="redact"), ToxicityConfig(action="detect"))
    results = asyncio.run(chain.amoderate_batch([GERMAN_MAIL, SPANISH_MAIL, ENGLISH]))
    assert [[f.backend for f in r.filters] for r in results] == [
        ["local:cascade", "local:cascade"], ["comprehend", "local:cascade"], ["comprehend", "comprehend"]]
    assert "@" not in results[0].output and "@" not in results[1].output


def test_undetermined_counts_as_the_configured_language(comprehend, comprehend_client):
    text = "ok thx"
    as_english = comprehend_chain(comprehend_client, ToxicityConfig(action="detect")).moderate(text)
    assert as_english.language == "und" and as_english.filters[0].backend == "comprehend"
    as_spanish = comprehend_chain(comprehend_client, ToxicityConfig(action="detect"), language_code="es")
    assert as_spanish.moderate(text).filters[0].backend == "local:cascade"  # toxicity has no Spanish on Comprehend
    # A text detected as English still reaches DetectToxicContent, as English (the one code it accepts).
    assert as_spanish.moderate(ENGLISH).filters[0].backend == "comprehend"
    assert {p["LanguageCode"] for p in sent(comprehend, "DetectToxicContent")} == {"en"}


def test_fallback_that_cannot_run_the_filter_fails_closed(comprehend_client):
    # Comprehend detects PASSWORD; the local recognizers do not: a German text cannot be checked for it.
    chain = comprehend_chain(comprehend_client, PiiConfig(labels=["PASSWORD"]))
    assert chain.invoke(ENGLISH) == ENGLISH
    with pytest.raises(UnsupportedLanguageError):
        chain.invoke(GERMAN)


def test_comprehend_backend_sends_each_text_in_its_language(comprehend, comprehend_client):
    backend = ComprehendBackend(comprehend_client)
    scored = backend.run("pii", [ENGLISH_MAIL, SPANISH_MAIL], PiiConfig())
    assert [[f.label for f in s.findings] for s in scored] == [["EMAIL"], ["EMAIL"]]
    assert sorted(p["LanguageCode"] for p in sent(comprehend, "DetectPiiEntities")) == ["en", "es"]
    assert backend.supported_languages("toxicity") == frozenset({"en"})
    old = ComprehendBackend(comprehend_client, language_routing=False)
    old.run("pii", [SPANISH_MAIL], PiiConfig())
    assert sent(comprehend, "DetectPiiEntities")[-1]["LanguageCode"] == "en"
    config = BackendConfig(name="comprehend", region_name="us-east-1", unsupported_language="score")
    assert ComprehendBackend.from_config(config).language_routing is False
    assert ComprehendBackend.from_config(config.model_copy(update={"unsupported_language": "local"})).language_routing


def test_bedrock_classic_tier_reads_french_and_routes_german(bedrock, bedrock_client):
    backend = BedrockGuardrailsBackend("gr1", "1", client=bedrock_client)
    chain = ModerationChain(ModerationConfig(filters=[ToxicityConfig(action="detect")]), backend=backend)
    results = chain.moderate_batch([FRENCH, GERMAN])
    assert [r.filters[0].backend for r in results] == ["bedrock", "local:cascade"]
    assert bedrock.count("ApplyGuardrail") == 1
    standard = BedrockGuardrailsBackend("gr1", "1", client=bedrock_client, tier="standard")
    assert "de" in standard.supported_languages("toxicity")


def test_a_chat_in_two_languages_names_both_backends(comprehend, comprehend_client):
    chain = comprehend_chain(comprehend_client, ToxicityConfig(action="detect"))
    result = chain.moderate([HumanMessage(ENGLISH), HumanMessage(GERMAN)])
    assert result.filters[0].backend == "comprehend+local:cascade"
    segments = [s["Text"] for p in sent(comprehend, "DetectToxicContent") for s in p["TextSegments"]]
    assert segments and all(not s.startswith("Ich") for s in segments)  # only the English message went out
