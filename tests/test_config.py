import pytest

from modchain import ConfigurationError, ModerationConfig, PiiConfig, ToxicityConfig


def test_defaults_are_offline_and_ordered():
    config = ModerationConfig()
    assert [f.type for f in config.filters] == ["pii", "toxicity", "prompt_safety"]
    assert config.backend.name == "local"
    assert config.fail_open is False


def test_from_dict_with_repeated_filter_types():
    config = ModerationConfig.from_dict({"filters": [
        {"type": "pii", "labels": ["ssn"], "action": "block"},
        {"type": "pii", "labels": ["EMAIL"], "action": "redact", "mask_character": "#"},
        {"type": "toxicity", "threshold": 0.7},
    ]})
    assert isinstance(config.filters[1], PiiConfig) and config.filters[1].mask_character == "#"
    assert config.filters[0].labels == ("SSN",)
    assert isinstance(config.filters[2], ToxicityConfig)


@pytest.mark.parametrize("bad", [
    {"filters": [{"type": "pii", "lables": ["SSN"]}]},        # typo: extra=forbid
    {"filters": [{"type": "pii", "threshold": 1.5}]},
    {"filters": [{"type": "nudity"}]},
    {"backend": {"name": "azure"}},
    {"filters": [{"type": "pii", "mask_character": "**"}]},
])
def test_invalid_configs_are_typed_errors(bad):
    with pytest.raises(ConfigurationError):
        ModerationConfig.from_dict(bad)


def test_from_yaml(tmp_path):
    path = tmp_path / "moderation.yaml"
    path.write_text("filters:\n  - type: pii\n    action: anonymize\nbackend:\n  name: comprehend\n"
                    "  region_name: eu-west-1\nfail_open: true\n")
    config = ModerationConfig.from_yaml(path)
    assert config.filters[0].action == "anonymize"
    assert config.backend.region_name == "eu-west-1" and config.fail_open
    path.write_text("- just a list\n")
    with pytest.raises(ConfigurationError):
        ModerationConfig.from_yaml(path)
