"""Custom PII recognizers: the Python protocol, the config form, linear-time patterns, and the chain end to end."""

from __future__ import annotations

import time

import pytest

from modchain import ModerationChain
from modchain.backends.local.pii_custom import PatternRecognizer, PiiRecognizer
from modchain.backends.local.pii_recognizers import PiiMatch, find_pii
from modchain.core.config import ModerationConfig, PiiConfig, PiiRecognizerConfig
from modchain.core.errors import BackendError, ConfigurationError
from modchain.core.pattern_safety import check_linear_pattern

EMPLOYEE = {"label": "EMPLOYEE_ID", "pattern": r"EMP-\d{6}", "context": ["employee"], "validator": "luhn",
            "score": 0.9}


def spans(text, recognizers, labels=None, threshold=0.5):
    return [(m.label, text[m.start:m.end]) for m in find_pii(text, labels, recognizers) if m.score >= threshold]


def test_pattern_recognizer_validator_and_context():
    rec = PatternRecognizer(**{k: v for k, v in EMPLOYEE.items() if k != "pattern"}, pattern=EMPLOYEE["pattern"])
    assert isinstance(rec, PiiRecognizer)
    # EMP-123455 passes Luhn on its digits, EMP-123456 does not.
    assert spans("employee EMP-123455 moved desks", [rec]) == [("EMPLOYEE_ID", "EMP-123455")]
    assert spans("employee EMP-123456 moved desks", [rec]) == []
    # Without a context word the score is score_without_context (0.4): below the default threshold.
    assert spans("badge EMP-123455 found", [rec]) == []
    assert spans("badge EMP-123455 found", [rec], threshold=0.3) == [("EMPLOYEE_ID", "EMP-123455")]


def test_value_group_is_what_the_validator_checks():
    rec = PatternRecognizer("MEMBER_ID", r"M(?P<value>\d{11})", validator="stdnum:de.idnr")
    assert spans("member M46801535924 joined", [rec]) == [("MEMBER_ID", "M46801535924")]
    assert spans("member M46801535925 joined", [rec]) == []


def test_custom_and_builtin_recognizers_share_normalization_and_overlap_rules():
    rec = PatternRecognizer("CASE_ID", r"CASE \d{4}-\d{4}", score=0.8)
    text = "CASE 2024\u20130117 and ssn 536/22/1234"
    assert spans(text, [rec]) == [("CASE_ID", "CASE 2024\u20130117"), ("SSN", "536/22/1234")]
    assert spans(text, [rec], labels=["CASE_ID"]) == [("CASE_ID", "CASE 2024\u20130117")]
    assert spans(text, [rec], labels=["SSN"]) == [("SSN", "536/22/1234")]


def test_python_protocol_recognizer():
    class Tickets:
        labels = frozenset({"TICKET_HOLDER"})

        def find(self, text):
            at = text.find("seat ")
            if at != -1:
                yield PiiMatch("TICKET_HOLDER", at, at + 8, 0.95, "tickets")

    assert spans("row 7 seat 12B tonight", [Tickets()]) == [("TICKET_HOLDER", "seat 12B")]
    config = PiiConfig(recognizers=[Tickets()], labels=["TICKET_HOLDER"])
    assert config.custom_labels == {"TICKET_HOLDER"}


def test_a_failing_recognizer_raises_without_the_text():
    class Broken:
        labels = frozenset({"X_ID"})

        def find(self, text):
            raise ValueError(f"cannot parse {text}")

    with pytest.raises(BackendError) as caught:
        find_pii("my secret 536-22-1234", recognizers=[Broken()])
    assert "536" not in str(caught.value) and "secret" not in str(caught.value)


@pytest.mark.parametrize(("pattern", "why"), [
    (r"(a+)+$", "unbounded"),
    (r"\d+x", "unbounded"),
    (r"EMP-\d*", "unbounded"),
    (r"(\w)\1{3}", "backreference"),
    (r"(?<=EMP-)\d{6}", "lookahead and lookbehind"),
    (r"\d{3}(?!\d)", "lookahead and lookbehind"),
    (r"(?:\d{1,3}){1,5}", "inside another quantifier"),
    (r"(?:a|ab){1,20}", "alternation inside a quantifier"),
    (r"\d{0,4}", "empty string"),
    (r"\d{0,100}\d{0,100}\d{0,100}x", "backtrack"),
    (r"[", "not a valid regular expression"),
])
def test_patterns_that_could_backtrack_are_rejected(pattern, why):
    with pytest.raises(ValueError, match=why):
        check_linear_pattern(pattern)
    with pytest.raises(ConfigurationError):
        PiiConfig.from_dict({"type": "pii", "recognizers": [{"label": "X_ID", "pattern": pattern}]})


@pytest.mark.parametrize("bad", [
    {"label": "X_ID", "pattern": r"X\d{4}", "validator": "sha256"},
    {"label": "X_ID", "pattern": r"X\d{4}", "validator": "stdnum:no.such.module"},
    {"label": "x id", "pattern": r"X\d{4}"},
    {"label": "X_ID", "pattern": r"X\d{4}", "score": 1.5},
    {"label": "X_ID", "pattern": r"X\d{4}", "unknown_key": 1},
])
def test_bad_recognizer_configs_are_configuration_errors(bad):
    with pytest.raises(ConfigurationError):
        ModerationConfig.from_dict({"filters": [{"type": "pii", "recognizers": [bad]}]})


def test_labels_may_name_custom_labels_and_typos_are_still_caught():
    config = PiiConfig.from_dict({"type": "pii", "labels": ["employee_id", "SSN"], "recognizers": [EMPLOYEE]})
    assert config.labels == ("EMPLOYEE_ID", "SSN")
    assert isinstance(config.recognizers[0], PiiRecognizerConfig)
    with pytest.raises(ConfigurationError, match="did you mean 'EMPLOYEE_ID'"):
        PiiConfig.from_dict({"type": "pii", "labels": ["EMPLOYE_ID"], "recognizers": [EMPLOYEE]})


def test_custom_recognizer_from_config_redacts_through_the_chain():
    config = ModerationConfig.from_dict({"filters": [{"type": "pii", "recognizers": [EMPLOYEE]}]})
    chain = ModerationChain(config)
    text = "Reset the laptop of employee EMP-400218, ticket 5521"
    assert chain.invoke(text) == "Reset the laptop of employee **********, ticket 5521"
    result = chain.moderate(text)
    assert [(f.label, f.start, f.end) for f in result.findings] == [("EMPLOYEE_ID", 29, 39)]
    # Selected by label too, next to a built-in label.
    labelled = ModerationChain({"filters": [{"type": "pii", "labels": ["EMPLOYEE_ID", "EMAIL"],
                                             "recognizers": [EMPLOYEE]}]})
    assert labelled.invoke("employee EMP-400218 is ana@example.com") == "employee ********** is ***************"


def test_custom_recognizers_on_a_backend_that_cannot_run_them_fail_closed():
    from modchain.backends.base import Scored, TextBackend

    class Elsewhere(TextBackend):  # a backend of our own that has no custom recognizers (as Comprehend's)
        name = "elsewhere"

        def _pii(self, texts, config):
            return [Scored([]) for _ in texts]

    chain = ModerationChain({"filters": [{"type": "pii", "recognizers": [EMPLOYEE]}]}, backend=Elsewhere())
    with pytest.raises(ConfigurationError, match="custom PII recognizers"):
        chain.invoke("employee EMP-400218")


@pytest.mark.parametrize("text", ["EMP-" * 10000, "EMP-1" * 8000, "employee " * 5000, "1" * 40000,
                                  "EMP-12345" * 4000])
def test_custom_recognizer_stays_linear(text):
    rec = PatternRecognizer("EMPLOYEE_ID", r"EMP-[0-9]{1,12}(?:-[A-Z]{1,3})?", context=["employee"],
                            validator="luhn")

    def seconds(n: int) -> float:
        sample = text[:n]
        runs = []
        for _ in range(3):  # the fastest of three: the machine's load only ever adds time
            t0 = time.perf_counter()
            find_pii(sample, recognizers=[rec])
            runs.append(time.perf_counter() - t0)
        return min(runs)

    seconds(1000)
    small, large = seconds(len(text) // 10), seconds(len(text))
    assert large < 1.0
    assert large < 25 * small + 0.05
