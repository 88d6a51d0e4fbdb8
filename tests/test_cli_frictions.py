"""What a newcomer trips over first: --version, `| head`, a byte order mark, a label typo, a large text with
no sign of life, the README's YAML config in the CLI, `modchain screen` writing into the dataset, and
`modchain serve moderation` without the serve extra."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import pytest

from modchain.cli import _Working, main
from modchain.core.config import ModerationConfig, PiiConfig, ToxicityConfig
from modchain.core.errors import ConfigurationError

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = sorted((ROOT / "tests" / "fixtures" / "images").glob("skimage_*"))[:2]
BOM = "\ufeff"

#: The first YAML example of the README, copied verbatim.
README_YAML = """\
filters:                      # run in this order; a type may repeat
  - type: pii
    labels: [SSN]             # Comprehend names; empty = all
    action: block
  - type: pii
    action: anonymize         # [EMAIL_1], reversible with guard.restorer()
  - type: toxicity
    threshold: 0.5            # the default of every filter: the offline models are calibrated so 0.5 decides
  - type: prompt_safety
    backend: bedrock          # this filter only; others use backend.name
backend:
  name: comprehend            # local | comprehend | bedrock
  region_name: us-east-1
  guardrail_id: abc123xyz     # bedrock only
fail_open: false              # on a backend error: block (default) or let content through
"""


def run(*args, stdin=None, env=None):
    return subprocess.run([sys.executable, "-m", "modchain.cli", *args], input=stdin, capture_output=True,
                          text=True, timeout=120, env=env)


# -- --version ------------------------------------------------------------------------------------------

def test_version_comes_from_package_metadata():
    proc = run("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"modchain {version('modchain')}"


# -- a closed pipe --------------------------------------------------------------------------------------

def test_a_reader_that_goes_away_ends_the_run_quietly(tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"text": f"row {i} mail u{i}@example.com"}) + "\n" for i in range(3000)))
    proc = subprocess.Popen([sys.executable, "-m", "modchain.cli", "-f", str(rows), "--json", "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline()  # like `| head -1`: read one line, then hang up
    proc.stdout.close()
    try:
        _, err_bytes = proc.communicate(timeout=120)
    finally:
        proc.kill()  # no-op once it has exited
    err = err_bytes.decode()
    assert proc.returncode == 141  # 128 + SIGPIPE, as a shell reports it
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err


# -- byte order mark ------------------------------------------------------------------------------------

def test_a_leading_bom_does_not_survive_into_the_output(tmp_path):
    # PII redaction only: the test is about the BOM, not about the classifiers' verdict on a short request
    config = tmp_path / "pii.yaml"
    config.write_text("filters:\n  - type: pii\n", encoding="utf-8")
    path = tmp_path / "note.txt"
    path.write_text(BOM + "mail me at a@b.com", encoding="utf-8")
    from_file = json.loads(run("--json", "-c", str(config), "-f", str(path)).stdout)
    from_stdin = json.loads(run("--json", "-c", str(config), stdin=BOM + "mail me at a@b.com").stdout)
    assert from_file["sanitized"] == from_stdin["sanitized"] == "mail me at *******"


def test_a_bom_before_the_first_json_line_is_not_a_bad_row(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(BOM + '{"id": 1, "text": "hello"}\n{"id": 2, "text": "hi"}\n', encoding="utf-8")
    for proc in (run("--json", "-f", str(path)), run("--jsonl", "--json", stdin=path.read_text(encoding="utf-8"))):
        assert proc.returncode == 0, proc.stderr
        assert [json.loads(line)["id"] for line in proc.stdout.splitlines()] == [1, 2]


# -- label typos ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("make, suggestion", [
    (lambda: PiiConfig(labels=["SNN"]), "did you mean 'SSN'?"),
    (lambda: ToxicityConfig(labels=["insluts"]), "did you mean 'INSULT'?"),
    (lambda: ModerationConfig.from_dict({"filters": [{"type": "pii", "labels": ["EMIAL"]}]}), "did you mean 'EMAIL'?"),
])
def test_a_label_typo_is_one_short_line_with_a_suggestion(make, suggestion):
    with pytest.raises(ConfigurationError) as info:
        make()
    message = str(info.value)
    assert suggestion in message
    assert "errors.pydantic.dev" not in message and "\n" not in message and len(message) < 160
    assert "CA_SOCIAL_INSURANCE_NUMBER" not in message  # no dump of the 36 PII labels


def test_a_label_with_no_close_match_says_where_the_labels_are():
    with pytest.raises(ConfigurationError, match="PII_LABELS"):
        PiiConfig(labels=["FAVOURITE_COLOUR"])
    with pytest.raises(ConfigurationError, match="known toxicity labels: .*INSULT"):
        ToxicityConfig(labels=["RUDE"])


def test_the_cli_shows_the_suggestion(tmp_path):
    config = tmp_path / "cfg.yaml"
    config.write_text("filters:\n  - type: pii\n    labels: [SNN]\n")
    proc = run("-c", str(config), "hello")
    assert proc.returncode == 2 and "did you mean 'SSN'?" in proc.stderr and "Traceback" not in proc.stderr


# -- progress for a large text --------------------------------------------------------------------------

def test_a_large_text_shows_elapsed_time_on_a_terminal_only(tmp_path):
    leader, follower = pty.openpty()
    with os.fdopen(follower, "w") as terminal:
        with _Working(5_000_000, terminal, interval=0.05):
            time.sleep(0.4)
        shown = os.read(leader, 4096).decode()
    os.close(leader)
    assert "moderating 5.0 MB" in shown and " s" in shown
    not_a_tty = tmp_path / "err.txt"
    with not_a_tty.open("w") as err:
        with _Working(5_000_000, err, interval=0.05):
            time.sleep(0.2)
    assert not_a_tty.read_text() == ""  # logs and pipes get no carriage-return noise
    leader, follower = pty.openpty()
    with os.fdopen(follower, "w") as terminal:
        assert not _Working(10, terminal).enabled  # small texts: nothing to wait for, even on a terminal
    os.close(leader)


# -- the README's YAML config, through the CLI ----------------------------------------------------------

def test_the_readme_yaml_config_runs_in_the_cli(tmp_path):
    from modchain.testing.bedrock_emulator import BedrockGuardrailEmulator
    from modchain.testing.comprehend_emulator import ComprehendEmulator

    config = tmp_path / "moderation.yaml"
    config.write_text(README_YAML)
    with ComprehendEmulator() as comprehend, BedrockGuardrailEmulator(guardrail_id="abc123xyz",
                                                                      version="DRAFT") as bedrock:
        # boto3's per-service endpoint variables point each backend at its emulator (never at AWS).
        env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
               "AWS_ENDPOINT_URL_COMPREHEND": comprehend.url, "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": bedrock.url}
        without = run("-c", str(config), "mail me at jane@example.com", env=env)
        assert without.returncode == 2 and "--conversation-id" in without.stderr
        proc = run("-c", str(config), "--conversation-id", "c1", "--json", "mail me at jane@example.com", env=env)
        assert proc.returncode == 0, proc.stderr
        assert re.fullmatch(r"mail me at \[EMAIL_1_\w+\]", json.loads(proc.stdout)["sanitized"])
        blocked = run("-c", str(config), "--conversation-id", "c1", "my SSN is 323-22-9980", env=env)
        assert blocked.returncode == 1 and "BLOCKED by pii" in blocked.stdout


# -- modchain screen leaves the dataset alone -----------------------------------------------------------

#: Set by the test below: the emulator the --moderation factory talks to.
REKOGNITION_URL = ""


def rekognition_labeler():
    from modchain.backends.aws.rekognition_moderation import RekognitionModerationLabeler
    from modchain.testing.clients import local_client

    return RekognitionModerationLabeler(local_client("rekognition", REKOGNITION_URL))


def test_screen_writes_its_state_beside_the_dataset_and_resumes(tmp_path, capsys):
    global REKOGNITION_URL
    import shutil

    from modchain.screening import CHECKPOINT, REPORT_JSON
    from modchain.testing.rekognition_emulator import RekognitionEmulator

    data = tmp_path / "photos"
    data.mkdir()
    for photo in PHOTOS:
        shutil.copy(photo, data / photo.name)
    before = sorted(p.name for p in data.rglob("*"))
    args = ["screen", str(data), "--moderation", f"{__name__}:rekognition_labeler", "--no-prompt", "--no-progress"]
    with RekognitionEmulator() as emulator:
        REKOGNITION_URL = emulator.url
        assert main(args) == 0
        assert sorted(p.name for p in data.rglob("*")) == before  # nothing written inside the dataset
        beside = tmp_path / "photos.modchain-screening"
        assert (beside / REPORT_JSON).exists() and (beside / CHECKPOINT).exists()
        assert f"report: {beside}" in capsys.readouterr().out
        assert main([*args, "--resume", "--json"]) == 0  # the default folder is found again: resumed
        assert json.loads(capsys.readouterr().out)["timings"]["resumed"] == len(PHOTOS)
        # A folder an earlier version left inside the dataset keeps being used, so its runs resume.
        shutil.move(str(beside), str(data / ".modchain-screening"))
        assert main([*args, "--resume", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["report_dir"] == str(data / ".modchain-screening")


# -- modchain serve moderation --------------------------------------------------------------------------

def test_serve_moderation_without_the_extra_says_what_to_install(monkeypatch, capsys):
    from modchain.cli import SERVICE_MODULE

    monkeypatch.setitem(sys.modules, SERVICE_MODULE, None)  # as when its import fails
    assert main(["serve", "moderation", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'modchain[serve]'" in err and len(err.strip().splitlines()) == 1
