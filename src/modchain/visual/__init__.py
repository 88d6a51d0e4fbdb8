"""The visual chain: a text query -> boxes (Grounding DINO, OWLv2, Rekognition) -> masks (SAM).

``import modchain.visual`` is light: detectors and segmenters import torch/transformers/boto3 lazily from
``modchain.backends`` when they are built.
"""
