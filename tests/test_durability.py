"""Durability (issue 14): a quarantine killed mid-move, bad JSON Lines rows, images no model can take.

Real crashes (SIGKILL in a subprocess at a named step of a move), the real NudeNet model, the real CLI.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import pytest

from modchain.cli import main

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = sorted((ROOT / "tests" / "fixtures" / "images").glob("skimage_*"))
ASTRONAUT = PHOTOS[0]  # the portrait: a face, flagged when faces count (below)


def _face_flagging():  # built lazily: nudenet is an optional dependency
    from modchain.backends.local.nudenet import NUDENET_CATEGORIES, NudeNetLabeler

    categories = {name: mapped or ("Swimwear or Underwear", name) for name, mapped in NUDENET_CATEGORIES.items()}
    return NudeNetLabeler(threshold=0.3, categories=categories)


#: The real model; faces count as a label so the astronaut portrait is flagged (``--moderation`` target).
FACE_FLAGGING = functools.partial(_face_flagging)


# -- 1. quarantine: crash-safe and resumable --------------------------------------------------------------
def _dataset(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    for name in ("a.png", "b.png", "sub/c.png"):
        shutil.copy(ASTRONAUT, root / name)
    shutil.copy(PHOTOS[-1], root / "d.png")  # clean: stays
    (root / "link.png").symlink_to("a.png")  # a flagged link: the copy path (then the link is removed)
    return root


FLAGGED = {"a.png", "b.png", "sub/c.png", "link.png"}

_KILLER = textwrap.dedent("""
    import importlib, os, signal, sys
    sys.path.insert(0, sys.argv[1])
    module = importlib.import_module("modchain.screening.quarantine")
    point, nth, seen = sys.argv[2], int(sys.argv[3]), []
    def hook(step):
        if step == point:
            seen.append(step)
            if len(seen) == nth:
                os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no finally: a real crash
    module._fault_hook = hook
    from modchain.cli import main
    sys.exit(main(sys.argv[4:]))
""")


def _quarantine_files(q: Path) -> list[Path]:
    return sorted(p for p in q.rglob("*") if p.is_file())


@pytest.mark.parametrize(("point", "nth"), [("linked", 2), ("unlinked", 1), ("copied", 1), ("placed", 1)])
def test_quarantine_killed_mid_move_is_settled_on_rerun(tmp_path, capsys, point, nth):
    pytest.importorskip("nudenet")
    data, out, q = _dataset(tmp_path / "d"), tmp_path / "r", tmp_path / "q"
    args = ["screen", str(data), "--out", str(out), "--moderation", f"{__name__}:FACE_FLAGGING", "--labels", "any",
            "--threshold", "0.3", "--no-progress", "--no-prompt"]
    assert main(args) == 1  # screened in-process; the killed run below resumes from the checkpoint
    capsys.readouterr()
    killed = subprocess.run([sys.executable, "-c", _KILLER, str(Path(__file__).parent), point, str(nth), *args,
                             "--move-flagged", str(q)], capture_output=True, timeout=300)
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    if point == "linked":  # the state the issue describes: b.png in the dataset and in quarantine
        assert (data / "b.png").exists() and (q / "b.png").exists()
    if point == "copied":
        assert any(p.name.endswith(".partial") for p in q.rglob(".*"))

    assert main([*args, "--move-flagged", str(q), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    # Nothing lost, nothing twice: each flagged file exactly once, in quarantine only, and no temporary files.
    files = _quarantine_files(q)
    assert len(files) == len(FLAGGED) and all(f.read_bytes() == ASTRONAUT.read_bytes() for f in files)
    assert not any(f.name.startswith(".") for f in files)
    assert not any(os.path.lexists(data / p) for p in FLAGGED) and (data / "d.png").exists()
    # Every moved file is in the final report: as the flagged item it was, and where it went.
    assert {i["path"] for i in report["items"] if i["status"] == "flagged"} == FLAGGED
    assert {e["path"] for e in report["quarantined"]} == FLAGGED
    assert {Path(e["to"]) for e in report["quarantined"]} == set(files)
    assert main(args) == 0  # reported once: the dataset as it now stands is clean


def test_a_plain_rerun_after_a_crash_settles_the_move_and_reports_it(tmp_path, capsys):
    pytest.importorskip("nudenet")
    data, out, q = _dataset(tmp_path / "d"), tmp_path / "r", tmp_path / "q"
    args = ["screen", str(data), "--out", str(out), "--moderation", f"{__name__}:FACE_FLAGGING", "--labels", "any",
            "--threshold", "0.3", "--no-progress", "--no-prompt"]
    assert main(args) == 1
    killed = subprocess.run([sys.executable, "-c", _KILLER, str(Path(__file__).parent), "linked", "2", *args,
                             "--move-flagged", str(q)], capture_output=True, timeout=300)
    assert killed.returncode == -9
    capsys.readouterr()
    assert main([*args, "--json"]) == 1  # no --move-flagged: the half-done move is still finished
    report = json.loads(capsys.readouterr().out)
    assert not (data / "b.png").exists() and (q / "b.png").exists()
    assert {e["path"] for e in report["quarantined"]} == {"link.png", "a.png", "b.png"}
    assert (data / "sub" / "c.png").exists()  # not moved yet: the next --move-flagged does it


def test_a_copy_rerun_does_not_copy_again(tmp_path):
    pytest.importorskip("nudenet")
    from modchain.screening import DatasetScreener, quarantine

    data = _dataset(tmp_path / "d")
    report = DatasetScreener(FACE_FLAGGING(), prompt_checker=None, labels=[]).screen(data, tmp_path / "r")
    first = quarantine(report, tmp_path / "q", mode="copy", state_dir=tmp_path / "r")
    assert {path for path, _ in first} == FLAGGED
    assert quarantine(report, tmp_path / "q", mode="copy", state_dir=tmp_path / "r") == []
    assert len(_quarantine_files(tmp_path / "q")) == len(FLAGGED)


# -- 2. JSON Lines: skip and report bad rows -------------------------------------------------------------
ROWS = [
    '{"text": "hello there", "id": 1}',
    "not json 123-45-6789",
    '{"id": 3, "note": "no text key, SSN 123-45-6789"}',
    '{"text": 5, "secret": "123-45-6789"}',
    '"a plain string row"',
    '{"text": "zebra \\ud800 and 123-45-6789"}',
    '{"text": "My SSN is 123-45-6789"}',
]


@pytest.mark.parametrize("workers", [1, 2])
def test_jsonl_on_error_skip_records_each_bad_row_and_exits_4(tmp_path, capsys, workers):
    rows = tmp_path / "rows.jsonl"
    rows.write_text("\n".join(ROWS) + "\n", encoding="utf-8")
    code = main(["-f", str(rows), "--json", "--on-error", "skip", "--no-progress", "--workers", str(workers)])
    captured = capsys.readouterr()
    records = [json.loads(line) for line in captured.out.splitlines()]
    assert code == 4
    assert len(records) == len(ROWS)  # one record per row, in order
    errors = {r["line"]: r["error"] for r in records if "error" in r}
    assert sorted(errors) == [2, 3, 4, 6]
    assert all(e["type"] == "InputError" and e["message"] for e in errors.values())
    assert all(set(r) == {"line", "error"} for r in records if "error" in r)
    assert records[0]["id"] == 1 and records[0]["allowed"] and records[4]["allowed"]
    assert records[6]["sanitized"] == "My SSN is ***********"
    assert "4 of 7 rows failed" in captured.err
    # No user text in the error records or the summary.
    for text in ["123-45-6789", "hello", "secret", "note", "zebra"]:
        assert text not in json.dumps(errors) and text not in captured.err


def test_jsonl_stops_at_the_first_bad_row_by_default(tmp_path, capsys):
    rows = tmp_path / "rows.jsonl"
    rows.write_text("\n".join(ROWS) + "\n", encoding="utf-8")
    assert main(["-f", str(rows), "--json", "--no-progress"]) == 2
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 1 and "line 2: not valid JSON" in captured.err


def test_jsonl_skip_in_human_output(tmp_path, capsys):
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"text": "fine"}\n[1, 2]\n', encoding="utf-8")
    assert main(["-f", str(rows), "--on-error", "skip", "--no-progress"]) == 4
    out = capsys.readouterr().out
    assert "line 1: ALLOWED" in out and "line 2: ERROR InputError" in out


# -- 3. images no model can take: an error each, recorded once -------------------------------------------
def _png_header_only(width: int, height: int) -> bytes:
    """A PNG declaring ``width x height`` pixels with almost no data: a decompression bomb's header."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def _poison_dataset(root: Path) -> Path:
    from PIL import Image

    root.mkdir()
    Image.new("RGB", (100_000, 1), (200, 100, 50)).save(root / "wide.png")
    Image.new("RGB", (1, 100_000), (200, 100, 50)).save(root / "tall.png")
    (root / "bomb.png").write_bytes(_png_header_only(100_000, 100_000))
    (root / "truncated.png").write_bytes(PHOTOS[1].read_bytes()[:2000])
    for photo in PHOTOS[1:]:
        shutil.copy(photo, root / photo.name)
    return root


def test_extreme_shape_bomb_and_truncated_images_are_errors_recorded_once(tmp_path, capsys):
    pytest.importorskip("nudenet")
    from modchain.screening import DatasetScreener

    data = _poison_dataset(tmp_path / "d")
    report = DatasetScreener(prompt_checker=None).screen(data, tmp_path / "r")  # the default NudeNet
    status = {item.path: item for item in report.items}
    for name in ("wide.png", "tall.png", "bomb.png", "truncated.png"):
        assert status[name].status == "error" and not status[name].transient, name
    assert status["wide.png"].error.startswith("ImageShapeError")
    assert all(status[p.name].status == "clean" for p in PHOTOS[1:])  # the run went on
    again = DatasetScreener(prompt_checker=None).screen(data, tmp_path / "r")
    assert again.timings["screened"] == 0 and again.verdicts() == report.verdicts()  # not retried
    # From the command line too: exit 1 (not clean), not 3 (stopped by a backend failure).
    assert main(["screen", str(data), "--out", str(tmp_path / "cli"), "--no-progress", "--no-prompt"]) == 1
    assert "wide.png | ImageShapeError" in capsys.readouterr().out


def test_an_image_the_model_fails_on_is_isolated_from_its_batch(tmp_path, monkeypatch):
    pytest.importorskip("nudenet")
    from modchain.screening import DatasetScreener, image_screen

    monkeypatch.setattr(image_screen, "MAX_ASPECT_RATIO", 10**9)  # let the strip reach the real model
    data = tmp_path / "d"
    data.mkdir()
    from PIL import Image

    Image.new("RGB", (100_000, 1), (200, 100, 50)).save(data / "wide.png")
    for photo in PHOTOS[1:]:
        shutil.copy(photo, data / photo.name)
    report = DatasetScreener(prompt_checker=None).screen(data, tmp_path / "r")  # backend_errors="raise"
    status = {item.path: item for item in report.items}
    assert status["wide.png"].status == "error" and not status["wide.png"].transient
    assert "failed on this image" in status["wide.png"].error
    assert all(status[p.name].status == "clean" for p in PHOTOS[1:])
