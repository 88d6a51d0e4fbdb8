"""Dataset screening: check every image (and the instance prompt) of a fine-tuning dataset before training.

    from modchain.screening import DatasetScreener
    report = DatasetScreener(workers=2).screen("my_dataset", out_dir="screening")

Offline by default (NudeNet's bundled model and the local text chain); resumable; parallel on one machine
(``workers=N``) or on a Ray cluster (``engine="ray"``). The CLI is ``modchain screen DIR``.
"""

from modchain.screening.checkpoint import CHECKPOINT, Checkpoint
from modchain.screening.config import DEFAULT_FLAG_LABELS, IMAGE_EXTENSIONS, ScreeningConfig
from modchain.screening.dataset import DATASET_INFO, PROMPT_ITEM, Dataset, DatasetItem
from modchain.screening.image_screen import ImageScreen
from modchain.screening.prompt_check import PromptChecker, TextChainPromptChecker
from modchain.screening.quarantine import quarantine
from modchain.screening.report import REPORT_JSON, REPORT_SUMMARY, ItemResult, ScreeningReport
from modchain.screening.screener import DEFAULT_OUT, DatasetScreener

__all__ = [
    "CHECKPOINT", "DATASET_INFO", "DEFAULT_FLAG_LABELS", "DEFAULT_OUT", "IMAGE_EXTENSIONS", "PROMPT_ITEM",
    "REPORT_JSON", "REPORT_SUMMARY", "Checkpoint", "Dataset", "DatasetItem", "DatasetScreener", "ImageScreen",
    "ItemResult", "PromptChecker", "ScreeningConfig", "ScreeningReport", "TextChainPromptChecker", "quarantine",
]
