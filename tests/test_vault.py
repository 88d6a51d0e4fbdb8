import pickle
import re
import threading

import pytest

from modchain.core.errors import ConfigurationError
from modchain.core.vault import PLACEHOLDER_RE, TAG_LENGTH, AnonymizationVault

SHAPE = re.compile(rf"\[(EMAIL|SSN|NAME)_(\d+)_[a-z0-9]{{{TAG_LENGTH}}}\]")


def number(placeholder: str) -> int:
    match = SHAPE.fullmatch(placeholder)
    assert match, placeholder
    return int(match.group(2))


def test_same_original_same_placeholder_within_a_scope_only():
    vault = AnonymizationVault()
    a = vault.placeholder("jane@example.com", "EMAIL", "conv-1")
    assert number(a) == 1 and PLACEHOLDER_RE.fullmatch(a)
    assert vault.placeholder("jane@example.com", "EMAIL", "conv-1") == a
    b = vault.placeholder("joe@example.com", "EMAIL", "conv-1")
    assert number(b) == 2
    # Another conversation cannot restore conv-1's data.
    assert vault.restore(f"mail {a}", "conv-2") == f"mail {a}"
    assert vault.restore(f"mail {a} and {b}", "conv-1") == "mail jane@example.com and joe@example.com"


def test_unknown_placeholders_stay_and_scopes_can_be_cleared():
    vault = AnonymizationVault()
    ssn = vault.placeholder("123-45-6789", "SSN", "s")
    assert vault.restore(f"[SSN_9] [SSN_1] {ssn}", "s") == "[SSN_9] [SSN_1] 123-45-6789"
    vault.clear("s")
    assert vault.restore(ssn, "s") == ssn


def test_thread_safe_numbering():
    vault = AnonymizationVault()
    values = [f"user{i}@example.com" for i in range(200)]

    def work(chunk):
        for v in chunk:
            vault.placeholder(v, "EMAIL", "shared")

    threads = [threading.Thread(target=work, args=(values[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    placeholders = {vault.placeholder(v, "EMAIL", "shared") for v in values}
    assert sorted(number(p) for p in placeholders) == list(range(1, 201))


def test_lru_eviction_bounds_memory():
    vault = AnonymizationVault(max_scopes=2)
    minted = {scope: vault.placeholder("x", "NAME", scope) for scope in ("a", "b", "c")}
    assert vault.restore(minted["a"], "a") == minted["a"]
    assert vault.restore(minted["c"], "c") == "x"


def test_labels_are_normalized_and_bounded():
    vault = AnonymizationVault()
    assert vault.placeholder("x", "credit card", "s").startswith("[CREDIT_CARD_1_")
    assert vault.placeholder("x", "9LIVES", "s").startswith("[PII_9LIVES_1_")
    long = vault.placeholder("y", "A" * 500, "s")
    assert PLACEHOLDER_RE.fullmatch(long) and vault.restore(long, "s") == "y"


def test_vault_state_pickles_with_its_scopes():
    vault = AnonymizationVault(max_scopes=7)
    a = vault.placeholder("jane@example.com", "EMAIL", "conv-1")
    vault.anonymize("typed [EMAIL_2_abcdef]", [], "conv-1")
    copy = pickle.loads(pickle.dumps(vault))
    assert copy.max_scopes == 7 and len(copy) == 1
    assert copy.restore(a, "conv-1") == "jane@example.com"
    assert copy.placeholder("jane@example.com", "EMAIL", "conv-1") == a  # same mapping, numbering goes on
    assert number(copy.placeholder("joe@example.com", "EMAIL", "conv-1")) == 2
    assert copy.restore("[EMAIL_2_abcdef]", "conv-1") == "[EMAIL_2_abcdef]"  # the reservation survived too
    copy.placeholder("z", "NAME", "other")  # and its lock works
    assert vault.restore(a, "conv-1") == "jane@example.com"


def test_non_str_scopes_are_refused_everywhere():
    vault = AnonymizationVault()
    for call in (lambda: vault.placeholder("x", "NAME", 1), lambda: vault.restore("[x]", 1),
                 lambda: vault.anonymize("x", [(0, 1, "NAME")], 1), lambda: vault.clear(1)):
        with pytest.raises(ConfigurationError, match="must be a str, not int"):
            call()
