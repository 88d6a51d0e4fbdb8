"""Screening a batch of image files with one image moderation: the step every execution path shares.

The moderation is a *labeler* (``label_batch``/``label``, e.g. :class:`NudeNetLabeler` or Rekognition),
where :class:`ScreeningConfig`'s ``threshold`` and ``labels`` decide what flags, or an
:class:`~modchain.image_moderation.image_chain.ImageModerationChain` (``moderate_batch``), which decides itself.
It is given as an instance, or as a *factory* (a class, function or ``functools.partial`` that builds one):
worker processes and Ray actors need a factory, since each builds its own model once.

Every file is decoded here first, one at a time, so a corrupt, truncated or unreadable file, a decompression
bomb, or an image of an extreme shape (``1x100000``: more than :data:`MAX_ASPECT_RATIO` to one, which models
that resize to a fixed side cannot take) becomes an ``error`` item without failing its batch; only decodable
images of a sane shape reach the model. Should the model still fail on a batch that holds more than one image,
each image is tried alone: when some pass, those that fail alone are at fault and become permanent ``error``
items (a rerun does not try them again), and the run goes on. Only a failure of every image, the backend's
rather than an image's, follows ``backend_errors`` (stop, or a transient error a rerun retries).
"""

from __future__ import annotations

import functools
import os
import pickle
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from modchain.core.errors import BackendError, ConfigurationError, ImageInputError, InputError, ModchainError
from modchain.screening.config import ScreeningConfig
from modchain.screening.dataset import DatasetItem
from modchain.screening.report import ItemResult

#: Longest side over shortest side beyond which an image is an error item, not model input. Detectors resize
#: the long side to a few hundred pixels, so a 1x100000 strip becomes 0 pixels high and fails in the model.
MAX_ASPECT_RATIO = 100


def is_moderator(value: Any) -> bool:
    """An image moderation instance (not a class or factory that builds one)."""
    return not isinstance(value, type) and any(
        callable(getattr(value, name, None)) for name in ("label_batch", "label", "moderate_batch"))


def build_moderator(spec: Any, config: ScreeningConfig) -> Any:
    """The moderation instance for ``spec``: ``None`` -> NudeNet at the config's threshold."""
    if spec is None:
        from modchain.backends.local.nudenet import NudeNetLabeler

        return NudeNetLabeler(threshold=config.threshold, intra_op_threads=threads_per_worker(config.workers))
    if is_moderator(spec):
        return spec
    if callable(spec):
        built = spec()
        if not is_moderator(built):
            raise ConfigurationError(f"the moderation factory built a {type(built).__name__}, which has no "
                                     "label_batch, label or moderate_batch method")
        return built
    raise ConfigurationError(f"unusable image moderation {type(spec).__name__}: give a labeler, an "
                             "ImageModerationChain, or a factory that builds one")


def threads_per_worker(workers: int) -> int | None:
    """ONNX Runtime threads for one of ``workers`` model copies: a share of the cores, so parallel workers
    do not oversubscribe them (each session would otherwise start a thread per core); ``None`` (ONNX
    Runtime's default) for a single process."""
    if workers <= 1:
        return None
    return max(1, (os.cpu_count() or 1) // workers)


def portable_factory(spec: Any, workers: int = 1) -> Callable[[], Any] | None:
    """A picklable factory for ``workers`` worker processes or Ray actors (``None`` means the default NudeNet).

    A :class:`NudeNetLabeler` instance becomes a factory of an identical labeler (its ONNX session cannot
    be pickled), given its share of the cores as the default NudeNet is, unless it names its own thread
    count; other instances must pickle as they are, or be given as factories.
    """
    if spec is None:
        return None
    from modchain.backends.local.nudenet import NudeNetLabeler

    if isinstance(spec, NudeNetLabeler):
        return functools.partial(NudeNetLabeler, threshold=spec.threshold, model_path=spec.model_path,
                                 inference_resolution=spec.inference_resolution, categories=spec.categories,
                                 load_options=spec.load_options,
                                 intra_op_threads=spec.intra_op_threads or threads_per_worker(workers))
    try:
        pickle.dumps(spec)
    except Exception as exc:  # noqa: BLE001 - any pickling failure means the same thing here
        raise ConfigurationError(
            f"a {type(spec).__name__} instance cannot be sent to worker processes ({type(exc).__name__}); "
            "pass a factory instead, e.g. functools.partial(MyLabeler, threshold=0.5)") from None
    return spec if not is_moderator(spec) else functools.partial(_same, spec)


def _same(value: Any) -> Any:
    return value


def describe_moderator(spec: Any, config: ScreeningConfig) -> str:
    """A stable description for the settings fingerprint (class names and settings, no addresses)."""
    if spec is None:
        return f"nudenet(threshold={config.threshold})"
    if isinstance(spec, functools.partial):
        args = [repr(a) for a in spec.args] + [f"{k}={v!r}" for k, v in sorted(spec.keywords.items())]
        return f"{describe_moderator(spec.func, config)}({', '.join(args)})"
    target = spec if isinstance(spec, type) or not is_moderator(spec) else type(spec)
    name = f"{getattr(target, '__module__', '')}.{getattr(target, '__qualname__', type(spec).__name__)}"
    if is_moderator(spec):
        settings = {k: v for k in _VERDICT_SETTINGS if (v := _setting(getattr(spec, k, None))) is not None}
        # An ImageModerationChain: its steps decide, so they are part of what the verdicts depend on.
        steps = {k: describe_moderator(getattr(spec, k), config) for k in ("labeler", "vqa", "judge")
                 if getattr(spec, k, None) is not None}
        name += repr(sorted(settings.items())) + (repr(sorted(steps.items())) if steps else "")
    return name


#: Attributes of a moderation instance that change its verdicts (NudeNet's class -> category mapping too).
_VERDICT_SETTINGS = ("threshold", "model_path", "inference_resolution", "categories", "mode", "min_confidence")


def _setting(value: Any) -> Any:
    if isinstance(value, (str, int, float)):
        return value
    if isinstance(value, Mapping):  # order-independent
        return repr(sorted((repr(k), repr(v)) for k, v in value.items()))
    return None


class ImageScreen:
    """``screen(root, items) -> list[ItemResult]`` with one moderation instance (built once)."""

    def __init__(self, moderator: Any, config: ScreeningConfig) -> None:
        self.moderator = build_moderator(moderator, config)
        self.config = config

    def screen(self, root: str | Path, items: Sequence[DatasetItem]) -> list[ItemResult]:
        from modchain.core.images import load_image

        root = Path(root)
        results: list[ItemResult | None] = [None] * len(items)
        images, live = [], []
        for index, item in enumerate(items):
            try:
                image = load_image(root.joinpath(*item.path.split("/")))
            except ImageInputError as exc:  # messages name sizes and formats only
                # The content is not at fault when the file could not be read at all (gone, no permission):
                # a resumed run tries again, since a chmod leaves the size and mtime in the key unchanged.
                unread = type(exc) is ImageInputError
                results[index] = self._error(item, f"{type(exc).__name__}: {exc}", transient=unread)
                continue
            width, height = image.size
            if max(width, height) > MAX_ASPECT_RATIO * max(1, min(width, height)):
                results[index] = self._error(item, f"ImageShapeError: {width}x{height} pixels, more than "
                                             f"{MAX_ASPECT_RATIO}:1")
                continue
            images.append(image)
            live.append(index)
        if images:
            started = time.perf_counter()
            outputs = self._run_isolating(images)
            if len(outputs) != len(images):  # never let an image drop out of the report unnoticed
                raise BackendError(f"the image moderation returned {len(outputs)} results for {len(images)} images",
                                   backend=type(self.moderator).__name__, operation="screen")
            share = (time.perf_counter() - started) * 1000 / len(images)
            for index, output in zip(live, outputs):
                results[index] = self._verdict(items[index], output, share)
        return [r for r in results if r is not None]

    # -- internals -------------------------------------------------------------------------------------
    def _run_isolating(self, images: list[Any]) -> list[Any]:
        """Outputs per image; a failing batch is retried image by image to find the image at fault."""
        try:
            return self._run_typed(images)
        except InputError as exc:  # the moderation refused an input: some image is at fault
            failure: BackendError | InputError = exc
        except BackendError as exc:
            failure = exc
        if len(images) == 1 and isinstance(failure, InputError):
            return [_ImageFault(failure)]
        # A retryable error (timeout, throttling, outage) is the service's, whatever the images: no retry here.
        if len(images) > 1 and not getattr(failure, "retryable", False):
            alone: list[Any] = []
            for image in images:
                try:
                    alone.extend(self._run_typed([image]))
                except InputError as exc:
                    alone.append(_ImageFault(exc))
                except BackendError as exc:
                    alone.append(exc if exc.retryable else _ImageFault(exc))
            if any(not isinstance(output, (BackendError, _ImageFault)) for output in alone) or any(
                    isinstance(output, _ImageFault) and isinstance(output.error, InputError) for output in alone):
                return alone  # some images pass alone: those that fail are at fault, not the backend
        if isinstance(failure, InputError):  # every image refused alone: each one's own error
            return [_ImageFault(failure)] * len(images)
        if self.config.backend_errors == "raise":
            raise failure
        return [failure] * len(images)

    def _run_typed(self, images: list[Any]) -> list[Any]:
        try:
            return self._run(images)
        except ModchainError:
            raise
        except Exception as exc:  # a plug-in moderation's own bug: typed, and the image isolated like any failure
            raise BackendError(f"the image moderation raised {type(exc).__name__}",
                               backend=type(self.moderator).__name__, operation="screen") from exc

    def _run(self, images: list[Any]) -> list[Any]:
        moderator = self.moderator
        if callable(getattr(moderator, "moderate_batch", None)):
            return list(moderator.moderate_batch(images))
        if callable(getattr(moderator, "label_batch", None)):
            return list(moderator.label_batch(images))
        return [moderator.label(image) for image in images]

    def _error(self, item: DatasetItem, error: str, transient: bool = False) -> ItemResult:
        return ItemResult(path=item.path, status="error", error=error, size=item.size, mtime_ns=item.mtime_ns,
                          transient=transient)

    def _verdict(self, item: DatasetItem, output: Any, elapsed_ms: float) -> ItemResult:
        if isinstance(output, _ImageFault):  # this image fails where others pass: recorded once, not retried
            return self._error(item, f"{type(output.error).__name__}: image moderation failed on this image")
        if isinstance(output, BackendError):
            return self._error(item, f"{type(output).__name__}: image moderation failed", transient=True)
        if hasattr(output, "flagged"):  # an ImageModerationResult: the chain decided
            findings = list(output.findings)
            if output.errors and not output.flagged:
                return self._error(item, f"moderation step failed open: {', '.join(output.errors)}", transient=True)
            status = "flagged" if output.flagged else "clean"
            labels = (output.category,) if output.flagged and output.category else ()
        else:
            findings = list(output)
            hits = {f.label for f in findings if f.score >= self.config.threshold
                    and (not self.config.labels or f.label in self.config.labels)}
            status, labels = ("flagged" if hits else "clean"), tuple(sorted(hits))
        scores: dict[str, float] = {}
        for finding in findings:
            scores[finding.label] = max(scores.get(finding.label, 0.0), round(finding.score, 4))
        records = tuple(_finding_record(f) for f in findings)
        return ItemResult(path=item.path, status=status, labels=labels, scores=scores, findings=records,
                          size=item.size, mtime_ns=item.mtime_ns, elapsed_ms=round(elapsed_ms, 3))


class _ImageFault:
    """The moderation failed on this image alone while others of its batch passed."""

    def __init__(self, error: BackendError | InputError) -> None:
        self.error = error


def _finding_record(finding: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"label": finding.label, "category": finding.category, "score": round(finding.score, 4)}
    box = getattr(finding, "box", None)
    if box is not None:
        record["box"] = [round(v, 4) for v in box]
    return record
