"""NudeNet: an offline nudity detector whose ONNX model ships in its wheel (``pip install 'modchain[image]'``).

NudeNet detects body parts (``FEMALE_BREAST_EXPOSED``, ``BUTTOCKS_COVERED``, ``FACE_MALE``, ...) with boxes.
Each detection is mapped to the Amazon Rekognition moderation taxonomy (v7) so NudeNet and Rekognition
findings mean the same thing:

* exposed genitalia, breasts, buttocks, anus -> ``Explicit`` / ``Explicit Nudity``;
* exposed male breast -> ``Non-Explicit Nudity of Intimate parts and Kissing`` / ``Non-Explicit Nudity``;
* covered genitalia or anus -> ``Non-Explicit Nudity of Intimate parts and Kissing`` / ``Obstructed Intimate Parts``;
* covered female breast or buttocks -> ``Swimwear or Underwear``;
* faces, feet, armpits, belly: not moderation categories, dropped (pass ``categories=`` to change any of this).

onnxruntime, OpenCV and nudenet are imported lazily, when the first image is labeled.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from modchain.core.errors import BackendError, ConfigurationError, ImageInputError
from modchain.core.image_findings import REKOGNITION_TOP_LEVEL_CATEGORIES, ImageFinding

_EXPLICIT = ("Explicit", "Explicit Nudity")
_NON_EXPLICIT = "Non-Explicit Nudity of Intimate parts and Kissing"

#: NudeNet class -> (top-level Rekognition category, second-level category), or None to drop it.
NUDENET_CATEGORIES: dict[str, tuple[str, str] | None] = {
    "FEMALE_GENITALIA_EXPOSED": _EXPLICIT,
    "MALE_GENITALIA_EXPOSED": _EXPLICIT,
    "ANUS_EXPOSED": _EXPLICIT,
    "FEMALE_BREAST_EXPOSED": _EXPLICIT,
    "BUTTOCKS_EXPOSED": _EXPLICIT,
    "MALE_BREAST_EXPOSED": (_NON_EXPLICIT, "Non-Explicit Nudity"),
    "FEMALE_GENITALIA_COVERED": (_NON_EXPLICIT, "Obstructed Intimate Parts"),
    "ANUS_COVERED": (_NON_EXPLICIT, "Obstructed Intimate Parts"),
    "FEMALE_BREAST_COVERED": ("Swimwear or Underwear", "Female Swimwear or Underwear"),
    "BUTTOCKS_COVERED": ("Swimwear or Underwear", "Swimwear or Underwear"),
    "BELLY_EXPOSED": None,
    "BELLY_COVERED": None,
    "ARMPITS_EXPOSED": None,
    "ARMPITS_COVERED": None,
    "FEET_EXPOSED": None,
    "FEET_COVERED": None,
    "FACE_FEMALE": None,
    "FACE_MALE": None,
}


class NudeNetLabeler:
    """``labeler.label(image) -> list[ImageFinding]`` with NudeNet's bundled model (or ``model_path``).

    ``threshold``: minimum detection score to report (NudeNet itself drops scores under 0.2).
    ``image`` is anything :func:`modchain.image_moderation.image_input.load_image` accepts; ``load_options`` are
    passed to it (``max_bytes``, ``max_pixels``, ``fetch_s3``, ...). The ONNX session is created on first
    use and shared; calls are thread-safe.

    ``intra_op_threads``: threads ONNX Runtime uses for one image, with its idle spin-waiting turned off.
    ``None`` keeps ONNX Runtime's default (every core, spinning), fastest on an idle machine; ``1`` is
    steadier where other work shares the cores (a generation service, worker processes screening in parallel).
    """

    name = "nudenet"

    def __init__(self, threshold: float = 0.4, model_path: str | None = None, *, inference_resolution: int = 320,
                 categories: Mapping[str, tuple[str, str] | None] | None = None,
                 load_options: Mapping[str, Any] | None = None, intra_op_threads: int | None = None) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ConfigurationError("threshold must be between 0 and 1")
        self.threshold = float(threshold)
        self.model_path = model_path
        self.inference_resolution = int(inference_resolution)
        self.categories = dict(NUDENET_CATEGORIES if categories is None else categories)
        for mapped in self.categories.values():
            if mapped is not None and mapped[0] not in REKOGNITION_TOP_LEVEL_CATEGORIES:
                raise ConfigurationError(
                    f"unknown category {mapped[0]!r}; known: {list(REKOGNITION_TOP_LEVEL_CATEGORIES)}")
        self.load_options = dict(load_options or {})
        if intra_op_threads is not None and intra_op_threads < 1:
            raise ConfigurationError("intra_op_threads must be a positive number of threads, or None")
        self.intra_op_threads = intra_op_threads
        self._detector: Any = None
        self._lock = threading.Lock()

    # -- public API -------------------------------------------------------------------------------------
    def label(self, image: Any) -> list[ImageFinding]:
        """Findings for one image, highest score first."""
        return self.label_batch([image])[0]

    def label_batch(self, images: Sequence[Any], batch_size: int = 4) -> list[list[ImageFinding]]:
        """Findings per image, in order; images run through the model ``batch_size`` at a time."""
        if not images:
            return []
        arrays, sizes = [], []
        for image in images:
            array, size = self._to_bgr(image)
            arrays.append(array)
            sizes.append(size)
        detector = self._get_detector()
        try:
            with self._lock:  # one ONNX session; nudenet's batching is not re-entrant-safe to rely on
                raw = detector.detect_batch(arrays, batch_size=max(1, batch_size))
        except Exception as exc:
            raise BackendError(f"nudenet detection failed: {type(exc).__name__}", backend=self.name,
                               operation="detect") from exc
        return [self.to_findings(detections, size) for detections, size in zip(raw, sizes)]

    def to_findings(self, detections: Sequence[Mapping[str, Any]], size: tuple[int, int]) -> list[ImageFinding]:
        """Map NudeNet's ``{"class", "score", "box": [x, y, w, h] in pixels}`` to findings (thresholded)."""
        width, height = size
        findings = []
        for det in detections:
            mapped = self.categories.get(str(det["class"]))
            score = float(det["score"])
            if mapped is None or score < self.threshold:
                continue
            top, second = mapped
            x, y, w, h = (float(v) for v in det["box"])
            box = (
                _clip(x / width), _clip(y / height),
                _clip(w / width), _clip(h / height),
            )
            box = (box[0], box[1], min(box[2], 1.0 - box[0]), min(box[3], 1.0 - box[1]))
            findings.append(ImageFinding(
                label=top, score=min(1.0, max(0.0, score)), backend=self.name, category=second,
                explanation=f"{top} > {second} (nudenet: {det['class']})", box=box,
            ))
        findings.sort(key=lambda f: (-f.score, f.category or "", f.box))
        return findings

    # -- internals --------------------------------------------------------------------------------------
    def _to_bgr(self, image: Any) -> tuple[Any, tuple[int, int]]:
        import numpy as np

        from modchain.core.images import load_image

        pil = load_image(image, **self.load_options)
        if pil.mode != "RGB":  # pragma: no cover - load_image always returns RGB
            raise ImageInputError("expected an RGB image")
        rgb = np.asarray(pil, dtype=np.uint8)
        return np.ascontiguousarray(rgb[:, :, ::-1]), pil.size

    def _get_detector(self) -> Any:
        if self._detector is None:
            with self._lock:
                if self._detector is None:
                    try:
                        from nudenet import NudeDetector
                    except ImportError as exc:
                        raise ConfigurationError(
                            "the nudenet labeler needs nudenet, onnxruntime and opencv: "
                            f"pip install 'modchain[image]' ({exc})") from exc
                    try:
                        detector = NudeDetector(model_path=self.model_path,
                                                inference_resolution=self.inference_resolution)
                        if self.intra_op_threads is not None:
                            detector.onnx_session = self._session()
                        self._detector = detector
                    except Exception as exc:
                        raise ConfigurationError(
                            f"cannot load the NudeNet model ({type(exc).__name__})") from exc
        return self._detector

    def _session(self) -> Any:
        """NudeNet's model in a session with our thread settings (NudeDetector takes no session options)."""
        import nudenet
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.intra_op_threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        model = self.model_path or str(Path(nudenet.__file__).parent / "320n.onnx")  # NudeDetector's default
        return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def _clip(value: float) -> float:
    return min(1.0, max(0.0, value))
