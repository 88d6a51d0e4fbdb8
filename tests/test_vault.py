import threading

from modchain.core.vault import AnonymizationVault


def test_same_original_same_placeholder_within_a_scope_only():
    vault = AnonymizationVault()
    a = vault.placeholder("jane@example.com", "EMAIL", "conv-1")
    assert a == "[EMAIL_1]"
    assert vault.placeholder("jane@example.com", "EMAIL", "conv-1") == a
    assert vault.placeholder("joe@example.com", "EMAIL", "conv-1") == "[EMAIL_2]"
    # Another conversation cannot restore conv-1's data.
    assert vault.restore("mail [EMAIL_1]", "conv-2") == "mail [EMAIL_1]"
    assert vault.restore("mail [EMAIL_1] and [EMAIL_2]", "conv-1") == "mail jane@example.com and joe@example.com"


def test_unknown_placeholders_stay_and_scopes_can_be_cleared():
    vault = AnonymizationVault()
    vault.placeholder("123-45-6789", "SSN", "s")
    assert vault.restore("[SSN_9] [SSN_1]", "s") == "[SSN_9] 123-45-6789"
    vault.clear("s")
    assert vault.restore("[SSN_1]", "s") == "[SSN_1]"


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
    assert placeholders == {f"[EMAIL_{i}]" for i in range(1, 201)}


def test_lru_eviction_bounds_memory():
    vault = AnonymizationVault(max_scopes=2)
    for scope in ("a", "b", "c"):
        vault.placeholder("x", "NAME", scope)
    assert vault.restore("[NAME_1]", "a") == "[NAME_1]"
    assert vault.restore("[NAME_1]", "c") == "x"
