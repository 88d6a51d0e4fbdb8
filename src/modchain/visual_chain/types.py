"""The values that flow between visual-chain stages, and the two stage protocols.

Both moved to ``core`` (backends share them): the values to :mod:`modchain.core.regions`, the
:class:`Detector` and :class:`Segmenter` protocols to :mod:`modchain.core.protocols`. Re-exported here so
this path keeps working.
"""

from modchain.core.protocols import Detector, Segmenter
from modchain.core.regions import Detection, PixelBox, Segment, VisualPrompt

__all__ = ["Detection", "Detector", "PixelBox", "Segment", "Segmenter", "VisualPrompt"]
