"""Findings for images: moved to :mod:`modchain.core.image_findings` (labeler backends share them), re-exported."""

from modchain.core.image_findings import REKOGNITION_TOP_LEVEL_CATEGORIES, Box, ImageFinding

__all__ = ["REKOGNITION_TOP_LEVEL_CATEGORIES", "Box", "ImageFinding"]
