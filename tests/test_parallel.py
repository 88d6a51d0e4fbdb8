import pytest

from modchain import ConfigurationError, ModerationChain, PiiConfig
from modchain.text.parallel import ProcessModerator, moderate_in_processes


def test_process_results_equal_single_process_results_in_order():
    texts = [f"message {i} from user{i}@example.com" if i % 2 else f"plain message number {i}" for i in range(300)]
    expected = ModerationChain().moderate_batch(texts)
    got = moderate_in_processes(None, texts, processes=2, chunk_size=64)
    assert [r.sanitized_text for r in got] == [r.sanitized_text for r in expected]
    assert [r.findings for r in got] == [r.findings for r in expected]


def test_anonymize_is_refused_and_pool_must_be_entered():
    with pytest.raises(ConfigurationError):
        ProcessModerator({"filters": [PiiConfig(action="anonymize").model_dump()]})
    with pytest.raises(RuntimeError):
        ProcessModerator().moderate_batch(["x"])
