"""``modchain eval TASK FILE``: measure a filter on a labelled JSON Lines file (toxicity, prompt-safety,
pii), or masks against COCO ground truth (segmentation, in :mod:`modchain.cli.segmentation_eval`)."""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO

from modchain.cli.common import EXIT_OK, add_backend_arguments, moderation_config, positive_int

#: Every task's options, as an epilog: without it `modchain eval --help` would list the tasks but no options.
_EVAL_OPTIONS = """\
options (every task):
  --backend NAME      local (default), comprehend, bedrock, or a registered backend
  --tier TIER         local backend: cascade (default), fast or accurate (see README, "Tiers")
  --region, --endpoint-url, --guardrail-id, --guardrail-version   as for `modchain moderate`
  --model, --device   model id or path and torch device, for model-backed backends
  -c, --config FILE   take the backend settings from this ModerationConfig YAML (options above override)
  --threshold X       minimum finding score, 0-1 (default 0.5)
  --labels A,B        act on these labels only (toxicity, pii; repeatable or comma-separated);
                      for pii, gold spans and predictions of other labels are ignored
  --limit N           evaluate the first N labelled rows only

Files are JSON Lines. toxicity / prompt-safety rows: {"text": ..., "unsafe": 0|1} (null: row skipped).
pii rows: {"text": ..., "spans": [[start, end, LABEL], ...]} with Comprehend label names; a prediction is a
true positive when it overlaps an unmatched gold span of its label with IoU >= 0.5 (greedy by IoU).
Output: one JSON object with n, tp, fp, tn, fn, precision, recall, f1, fpr (over texts: negative texts
flagged / negative texts), latency_ms_median (backend call, one text at a time), throughput_per_s
(batched pass); pii adds per_label. Exit codes: 0 done, 2 usage or input error, 3 backend failure.
"""


def add_parser(sub: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("file", help="labelled JSON Lines file")
    add_backend_arguments(common, "local, comprehend, bedrock, or a registered backend (default: local)")
    common.add_argument("--model", help="model id or path, for model-backed backends")
    common.add_argument("--device", help="torch device (cpu, cuda, ...), for model-backed backends")
    common.add_argument("-c", "--config", help="YAML ModerationConfig to take the backend settings from")
    common.add_argument("--threshold", type=float, default=0.5, help="minimum finding score, 0-1 (default 0.5)")
    common.add_argument("--labels", action="append", default=[],
                        help="comma-separated labels to evaluate (repeatable); default: all")
    common.add_argument("--limit", type=positive_int, help="evaluate the first N labelled rows only")
    ev = sub.add_parser("eval", help="measure a backend on a labelled file",
                        description="Measure a filter on a labelled JSON Lines file and print one JSON object "
                        "(counts, precision, recall, f1, fpr, latency, throughput).",
                        epilog=_EVAL_OPTIONS, formatter_class=argparse.RawDescriptionHelpFormatter)
    tasks = ev.add_subparsers(dest="task", required=True, metavar="{toxicity,prompt-safety,pii,segmentation}")
    for task, what in (("toxicity", "toxic or not, per text"), ("prompt-safety", "unsafe prompt or not, per text"),
                       ("pii", "PII spans, matched by label and IoU")):
        tasks.add_parser(task, parents=[common], help=what, description=f"Evaluate {task}: {what}.",
                         epilog=_EVAL_OPTIONS, formatter_class=argparse.RawDescriptionHelpFormatter)
    from modchain.cli.segmentation_eval import add_parser as add_segmentation_parser

    add_segmentation_parser(tasks)


def run(args: argparse.Namespace, out: TextIO) -> int:
    if args.task == "segmentation":
        from modchain.cli.segmentation_eval import run as run_segmentation

        return run_segmentation(args, out)
    from modchain.eval.runner import evaluate as run_eval

    labels = [label for value in args.labels for label in value.split(",") if label.strip()]
    report = run_eval(args.task, args.file, backend=moderation_config(args).backend, threshold=args.threshold,
                      labels=labels, limit=args.limit)
    out.write(json.dumps(report, ensure_ascii=False) + "\n")
    return EXIT_OK
