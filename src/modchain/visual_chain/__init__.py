"""The visual chain: a text query -> boxes (Grounding DINO, OWLv2, Rekognition) -> masks (SAM).

``import modchain.visual_chain`` is light: detectors and segmenters import torch/transformers/boto3 lazily from
``modchain.backends`` when they are built (``GroundingDino.local()``, ``Sam.sagemaker(endpoint)``, ...).
"""

from modchain.core.regions import Detection, Segment, VisualPrompt
from modchain.visual_chain.chain import ImageChain, ImageChainConfig
from modchain.visual_chain.image_store import ImageStore
from modchain.visual_chain.models import GroundingDino, Owlv2, Sam
from modchain.visual_chain.redaction import RedactionResult, Redactor, redact
from modchain.visual_chain.results import ImageChainResult, StageTiming

__all__ = [
    "Detection",
    "GroundingDino",
    "ImageChain",
    "ImageChainConfig",
    "ImageChainResult",
    "ImageStore",
    "Owlv2",
    "RedactionResult",
    "Redactor",
    "Sam",
    "Segment",
    "StageTiming",
    "VisualPrompt",
    "redact",
]
