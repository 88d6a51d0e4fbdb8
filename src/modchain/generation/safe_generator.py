"""SafeImageGenerator: guard any image generator with prompt checks, negative prompts, output moderation,
blurring or withholding, and retries with a new seed.

    safe = SafeImageGenerator(my_generator, NudeNetLabeler())          # or an ImageModerationChain
    result = safe.invoke("a lighthouse at dawn")                       # GenerationResult
    result.image, result.status, result.warnings, result.timings_ms    # safe | blurred | withheld | unchecked

One request:

1. the :class:`PromptGuard` checks the prompt (a rejected prompt raises :class:`PromptRejectedViolation` before
   the generator runs; with ``action="warn"`` its warnings go into the result);
2. the configured negative prompts are appended to the request's own negative prompt;
3. the generator runs with a seed (the request's, the config's, else a random one);
4. the output is moderated; an unsafe image from a safe prompt is retried with a new seed, up to
   ``max_retries`` times (``on_after_generation`` fires after every attempt);
5. if every attempt was unsafe, ``on_unsafe`` decides: ``blur`` the last image, ``withhold`` it, or ``raise``
   :class:`UnsafeGenerationViolation`.

Generation time and moderation overhead are measured separately. A moderation backend error fails
closed (raises) unless ``fail_open``, in which case the image comes back ``unchecked`` with a warning.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.runnables import Runnable, RunnableConfig

from modchain.core.callbacks import CallbackDispatcher
from modchain.core.caller import caller_id
from modchain.core.config_base import coerce_config
from modchain.core.errors import BackendError, InputError, PromptRejectedViolation, UnsafeGenerationViolation
from modchain.core.events import ModerationEvent
from modchain.generation.blur import blur_image
from modchain.generation.config import SafeGenerationConfig
from modchain.generation.generators import as_generator, generator_failed
from modchain.generation.image_moderators import ImageCheck, as_image_moderator
from modchain.generation.prompt_guard import PromptGuard, prompt_of
from modchain.generation.results import GenerationAttempt, GenerationResult, PromptCheck

_DEFAULT = object()


@dataclass
class _Run:
    """The state of one request while attempts run."""

    prompt: str
    negative_prompt: str
    first_seed: int
    uid: str | None
    started: float = field(default_factory=time.perf_counter)
    run_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    check: PromptCheck | None = None
    guard_ms: float = 0.0
    attempts: list[GenerationAttempt] = field(default_factory=list)
    image: Any = None
    verdict: ImageCheck | None = None
    moderation_error: str | None = None


def _timed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


class SafeImageGenerator(Runnable[Any, GenerationResult]):
    """Guard ``generator`` with ``moderation`` on its output.

    Args:
        generator: a callable ``(prompt, negative_prompt, seed) -> image`` (sync or async) or an object with
            ``generate`` / ``agenerate`` (diffusers pipeline, SageMaker endpoint wrappers).
        moderation: an :class:`ImageModerationChain` (its ``flagged`` decides) or a labeler with
            ``label(image)`` (NudeNet, Rekognition: findings over ``threshold`` in ``unsafe_categories``
            decide). Default: :class:`~modchain.backends.local.nudenet.NudeNetLabeler` (offline).
        prompt_guard: a :class:`PromptGuard`; default ``PromptGuard()``; ``None`` skips prompt checks.
        config: a :class:`SafeGenerationConfig`, a dict in its shape, or a YAML file path.
        callbacks: audit handlers; ``on_after_generation`` fires after every attempt.

    Input: a prompt string or ``{"prompt", "negative_prompt"?, "seed"?}``. Output: :class:`GenerationResult`.
    """

    def __init__(self, generator: Any, moderation: Any = _DEFAULT, *, prompt_guard: Any = _DEFAULT,
                 config: SafeGenerationConfig | dict[str, Any] | str | None = None, callbacks: Sequence[Any] = (),
                 unique_id: str | None = None) -> None:
        self.config = config = coerce_config(SafeGenerationConfig, config)
        self.generator = as_generator(generator)
        if moderation is _DEFAULT:
            from modchain.backends.local.nudenet import NudeNetLabeler

            moderation = NudeNetLabeler()
        self.moderator = as_image_moderator(moderation, threshold=config.threshold,
                                            unsafe_categories=config.unsafe_categories)
        self.prompt_guard = PromptGuard(callbacks=callbacks, unique_id=unique_id) if prompt_guard is _DEFAULT \
            else prompt_guard
        self.dispatcher = CallbackDispatcher(callbacks)
        self.unique_id = unique_id

    # -- request handling ---------------------------------------------------------------------------------

    def _start(self, value: Any, config: RunnableConfig | None) -> _Run:
        prompt = prompt_of(value)
        if not prompt.strip():  # an empty prompt asks the model for anything at all (and JumpStart refuses it)
            raise InputError("the image prompt is empty")
        own_negative, seed = "", None
        if isinstance(value, dict):
            own_negative = value.get("negative_prompt") or ""
            seed = value.get("seed")
            # bool is an int; a seed past 32 bits would silently wrap to another seed in seed_for
            bad_seed = seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)
                                             or not 0 <= seed < 2**32)
            if not isinstance(own_negative, str) or bad_seed:
                raise InputError("negative_prompt must be a string and seed an integer in [0, 2**32)")
        if seed is None:
            seed = self.config.seed if self.config.seed is not None else random.SystemRandom().randrange(2**31)
        negative = ", ".join(part for part in (own_negative.strip(), *self.config.negative_prompts) if part)
        return _Run(prompt=prompt, negative_prompt=negative, first_seed=int(seed),
                    uid=caller_id(config, self.unique_id))

    def _checked_prompt(self, run: _Run, check: PromptCheck | None, started: float) -> None:
        run.check, run.guard_ms = check, _timed_ms(started)
        if check is not None and not check.allowed:
            raise PromptRejectedViolation(result=check)

    def seed_for(self, run: _Run, attempt: int) -> int:
        """Attempt ``attempt`` (0-based) uses the first seed plus ``attempt``: reproducible and distinct."""
        return (run.first_seed + attempt) % 2**32

    def _load(self, raw: Any) -> Any:
        from modchain.image_moderation.image_input import load_image

        if raw is None:
            raise BackendError(f"image generator {self.generator.name!r} returned no image",
                               backend=self.generator.name, operation="generate")
        return load_image(raw)

    def _record(self, run: _Run, attempt: int, seed: int, image: Any, generation_ms: float,
                verdict: ImageCheck | None, moderation_ms: float, error: BaseException | None) -> GenerationAttempt:
        run.image, run.verdict = image, verdict
        run.moderation_error = type(error).__name__ if error is not None else None
        if verdict is not None and verdict.safe and verdict.errors:
            # A fail-open chain let the image through with a step failed: report it unchecked, not safe.
            run.moderation_error = ", ".join(verdict.errors)
        record = GenerationAttempt(attempt=attempt, seed=seed,
                                   safe=verdict.safe and not verdict.errors if verdict else False,
                                   categories=verdict.categories if verdict else (),
                                   findings=verdict.findings if verdict else (), generation_ms=generation_ms,
                                   moderation_ms=moderation_ms, error=run.moderation_error)
        run.attempts.append(record)
        return record

    def _event(self, run: _Run, record: GenerationAttempt) -> ModerationEvent:
        described = {"attempt": record.attempt, "seed": record.seed, "width": run.image.width,
                     "height": run.image.height}
        output = {"safe": record.safe, "categories": list(record.categories), "error": record.error,
                  "findings": [f.model_dump(exclude_none=True) for f in record.findings]}
        return ModerationEvent.of("generation", run.run_id, not record.safe, described, output, unique_id=run.uid,
                                  error=bool(record.error))

    def _done(self, record: GenerationAttempt) -> bool:
        return record.safe or record.error is not None or record.attempt >= self.config.max_retries

    def _finish(self, run: _Run) -> GenerationResult:
        warnings = list(run.check.warnings) if run.check else []
        for record in run.attempts:
            if not record.safe and record.error is None:
                retried = "retried with a new seed" if record.attempt < self.config.max_retries else "no retries left"
                warnings.append(f"attempt {record.attempt + 1} (seed {record.seed}) was unsafe "
                                f"({', '.join(record.categories) or 'flagged'}); {retried}")
        last = run.attempts[-1]
        image, extra_ms = run.image, 0.0
        if last.error is not None:
            status = "unchecked"
            warnings.append(f"output moderation failed open ({last.error}); the image was not checked")
        elif last.safe:
            status = "safe"
        elif self.config.on_unsafe == "blur":
            started = time.perf_counter()
            image = blur_image(run.image, [f.box for f in last.findings if f.label in last.categories],
                               self.config.blur)
            status, extra_ms = "blurred", _timed_ms(started)
            warnings.append("the image was blurred: every attempt was unsafe")
        else:
            status, image = "withheld", None
            warnings.append("the image was withheld: every attempt was unsafe")
        generation_ms = sum(a.generation_ms for a in run.attempts)
        moderation_ms = run.guard_ms + sum(a.moderation_ms for a in run.attempts) + extra_ms
        result = GenerationResult(image=image, status=status, seed=last.seed, attempts=tuple(run.attempts),
                                  warnings=tuple(warnings), prompt_check=run.check, negative_prompt=run.negative_prompt,
                                  generation_ms=generation_ms, moderation_ms=moderation_ms,
                                  total_ms=_timed_ms(run.started), unique_id=run.uid)
        if status == "withheld" and self.config.on_unsafe == "raise":
            raise UnsafeGenerationViolation(result=result)
        return result

    # -- sync and async loops ------------------------------------------------------------------------------

    def generate(self, value: Any, config: RunnableConfig | None = None) -> GenerationResult:
        """Run one guarded generation (what ``invoke`` does)."""
        run = self._start(value, config)
        started = time.perf_counter()
        self._checked_prompt(run, self.prompt_guard.moderate(run.prompt, config) if self.prompt_guard else None, started)
        for attempt in range(self.config.max_retries + 1):
            seed = self.seed_for(run, attempt)
            started = time.perf_counter()
            try:
                image = self._load(self.generator.generate(run.prompt, run.negative_prompt, seed))
            except Exception as exc:
                error = generator_failed(self.generator.name, exc)
                if error is exc:
                    raise
                raise error from exc
            generation_ms, started = _timed_ms(started), time.perf_counter()
            verdict, error = None, None
            try:
                verdict = self.moderator.check(image)
            except BackendError as exc:
                error = exc
            record = self._record(run, attempt, seed, image, generation_ms, verdict, _timed_ms(started), error)
            if self.dispatcher.wants("generation"):
                self.dispatcher.emit(self._event(run, record))
            if error is not None and not self.config.fail_open:
                raise error  # fail closed, after the audit event for the attempt (status ERROR)
            if self._done(record):
                break
        return self._finish(run)

    async def agenerate(self, value: Any, config: RunnableConfig | None = None) -> GenerationResult:
        """The async twin of :meth:`generate`; sync generators and moderators run in worker threads."""
        import asyncio

        run = self._start(value, config)
        started = time.perf_counter()
        check = await self.prompt_guard.amoderate(run.prompt, config) if self.prompt_guard else None
        self._checked_prompt(run, check, started)
        for attempt in range(self.config.max_retries + 1):
            seed = self.seed_for(run, attempt)
            started = time.perf_counter()
            try:
                raw = await self.generator.agenerate(run.prompt, run.negative_prompt, seed)
                image = await asyncio.to_thread(self._load, raw)
            except Exception as exc:
                error = generator_failed(self.generator.name, exc)
                if error is exc:
                    raise
                raise error from exc
            generation_ms, started = _timed_ms(started), time.perf_counter()
            verdict, error = None, None
            try:
                verdict = await self.moderator.acheck(image)
            except BackendError as exc:
                error = exc
            record = self._record(run, attempt, seed, image, generation_ms, verdict, _timed_ms(started), error)
            if self.dispatcher.wants("generation"):
                await self.dispatcher.aemit(self._event(run, record))
            if error is not None and not self.config.fail_open:
                raise error  # fail closed, after the audit event for the attempt (status ERROR)
            if self._done(record):
                break
        return self._finish(run)

    # -- Runnable -------------------------------------------------------------------------------------------

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> GenerationResult:
        return self._call_with_config(self.generate, input, config, run_type="chain")

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> GenerationResult:
        return await self._acall_with_config(self.agenerate, input, config, run_type="chain")


__all__ = ["SafeImageGenerator"]
