"""`import modchain` and offline text moderation never import heavy libraries."""

import subprocess
import sys

HEAVY = ("boto3", "botocore", "torch", "transformers", "onnxruntime", "numpy")


def test_import_and_offline_moderation_stay_light():
    code = (
        "import sys, modchain\n"
        "modchain.ModerationChain().invoke('my ssn is 123-45-6789')\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
