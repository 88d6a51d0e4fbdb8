"""Screen a fine-tuning dataset before training, offline: NudeNet on every image, text filters on the prompt.

    python examples/screen_dataset.py

Builds a small DreamBooth-style dataset in a temporary folder (public-domain fixture photos, one damaged
file, a dataset_info.json with an instance prompt), screens it, prints the summary, shows that a rerun
resumes instead of starting over, and copies flagged files to a quarantine folder. The same from a shell:
``modchain screen DIR --out REPORT_DIR --workers 2 --copy-flagged QUARANTINE``.
"""

import functools
import json
import shutil
import tempfile
from pathlib import Path

from modchain.backends.local.nudenet import NUDENET_CATEGORIES, NudeNetLabeler
from modchain.core.callbacks import ModerationCallbackHandler
from modchain.screening import DatasetScreener, quarantine

PHOTOS = sorted((Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "images").glob("skimage_*"))

#: A stricter policy (step 3): every NudeNet class counts, faces included. A factory, so worker processes
#: (or Ray actors) can each build their own model from it.
FACES_COUNT = functools.partial(NudeNetLabeler, threshold=0.3, categories={
    name: mapped or ("Swimwear or Underwear", name) for name, mapped in NUDENET_CATEGORIES.items()})


class AuditLog(ModerationCallbackHandler):
    """One audit event per screened item (paths and verdicts; never pixels or the prompt's text)."""

    def on_after_screen(self, moderation_beacon, unique_id, **kwargs):
        item = moderation_beacon["moderation_output"]
        print(f"  audit[{unique_id}] {item['path']:<36} {item['status']}")


def main() -> None:
    work = Path(tempfile.mkdtemp())
    dataset = work / "my_dataset"
    (dataset / "extra").mkdir(parents=True)
    for photo in PHOTOS:
        shutil.copy(photo, dataset / photo.name)
    shutil.copy(PHOTOS[-1], dataset / "extra" / "launch.jpg")
    (dataset / "extra" / "damaged.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 64)  # a truncated download
    (dataset / "dataset_info.json").write_text(json.dumps({"instance_prompt": "a photo of sks rocket"}))

    # 1. The default: NudeNet's bundled model, nudity labels flag; the offline text chain checks the prompt.
    report = DatasetScreener(callbacks=[AuditLog()], unique_id="dataset-42").screen(dataset, work / "report")
    print()
    print(report.summary())

    # 2. A rerun skips everything the checkpoint already holds (a crash or Ctrl-C would lose no finished work).
    again = DatasetScreener().screen(dataset, work / "report")
    print(f"rerun: screened {again.timings['screened']:.0f}, resumed {again.timings['resumed']:.0f} from the checkpoint")

    # 3. The stricter policy, to see flagging and quarantine at work: the real model finds the astronaut's face.
    #    Two worker processes, each loading the model once (on a cluster: .screen(..., engine="ray")).
    strict = DatasetScreener(FACES_COUNT, labels=[], workers=2).screen(dataset, work / "strict")
    print(f"\nstrict policy: {strict.totals}")
    for source, target in quarantine(strict, work / "quarantine", mode="copy"):
        print(f"  copied {source} -> {target.relative_to(work)}")
    print(f"\nreport folder: {sorted(p.name for p in (work / 'report').iterdir())}")
    shutil.rmtree(work)


if __name__ == "__main__":  # worker processes start with "spawn" and re-import this file
    main()
