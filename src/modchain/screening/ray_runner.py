"""Dataset screening on Ray Data, for datasets that outgrow one machine (``pip install 'modchain[ray]'``).

The file list becomes a Ray dataset; ``map_batches`` runs a callable class, so Ray keeps a pool of
``concurrency`` actors (``ActorPoolStrategy(size=concurrency)``; Ray 2.51 deprecated the
``concurrency=`` argument of ``map_batches`` itself), each building its image moderation (NudeNet, ...) once in ``__init__`` and then
screening batch after batch. Actors ask for ``num_gpus`` each; by default one GPU per actor when the cluster
has GPUs (a share of one when there are more actors than GPUs), none otherwise. Every actor runs the same :class:`~modchain.screening.image_screen.ImageScreen` as
the local path, so the report is the same; the parent checkpoints each batch as it streams back.

The files must be readable at the same path on every node (a shared file system) when the cluster has
more than one. ray is imported here only, lazily. This is a screening runner (it drives the screening
component's own :class:`ImageScreen`), not a backend, so it lives in the screening package.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from modchain.core.errors import BackendError, ConfigurationError, ModchainError
from modchain.screening.config import ScreeningConfig
from modchain.screening.dataset import DatasetItem
from modchain.screening.image_screen import ImageScreen
from modchain.screening.report import ItemResult


class ScreenActor:
    """One Ray actor: builds the moderation once, then screens batches of ``{path, size, mtime_ns}`` rows.

    Our own typed errors (a backend failing, a model that cannot load) travel back as data in an ``error``
    column, since Ray Data re-raises exceptions from user code as its own ``UserCodeException`` without
    them; the driver raises the same typed error the local path would.
    """

    def __init__(self, factory: Any, config_data: dict[str, Any], root: str) -> None:
        self.factory, self.config = factory, ScreeningConfig.model_validate(config_data)
        self.root = Path(root)
        self.screen: ImageScreen | None = None

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        items = [DatasetItem(_path_from_bytes(p), int(s), int(m))
                 for p, s, m in zip(batch["path"], batch["size"], batch["mtime_ns"])]
        try:
            if self.screen is None:
                self.screen = ImageScreen(self.factory, self.config)
            records = [result.to_json_line() for result in self.screen.screen(self.root, items)]
        except (BackendError, ConfigurationError) as exc:
            error = json.dumps({"type": type(exc).__name__, "message": str(exc),
                                "backend": getattr(exc, "backend", ""), "operation": getattr(exc, "operation", "")})
            return {"record": np.array([""], dtype=object), "error": np.array([error], dtype=object)}
        return {"record": np.array(records, dtype=object), "error": np.array([""] * len(records), dtype=object)}


def _path_to_bytes(path: str) -> bytes:
    # Arrow strings must be UTF-8; a file name that is not (a lone surrogate in Python) travels as its bytes.
    return path.encode("utf-8", "surrogateescape")


def _path_from_bytes(data: Any) -> str:
    return bytes(data).decode("utf-8", "surrogateescape")


def _raise_actor_error(data: str) -> None:
    from modchain.core import errors

    error = json.loads(data)
    cls = getattr(errors, error["type"], None)
    if isinstance(cls, type) and issubclass(cls, BackendError):
        raise cls(error["message"], backend=error["backend"], operation=error["operation"])
    if isinstance(cls, type) and issubclass(cls, ConfigurationError):
        raise cls(error["message"])
    raise BackendError(error["message"], backend=error["backend"] or "ray", operation=error["operation"])


def _modchain_cause(exc: BaseException) -> ModchainError | None:
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ModchainError) and type(current).__module__.startswith("modchain."):
            return current
        todo += [getattr(current, "cause", None), current.__cause__, current.__context__]
    return None


def gpus_per_actor(cluster_gpus: float, actors: int) -> float:
    """One GPU per actor where there are enough; else an equal share, so the whole pool can start
    (asking for a whole GPU each, a pool of 4 on a 1-GPU machine would wait forever for actors 2-4)."""
    if cluster_gpus <= 0:
        return 0.0
    return min(1.0, cluster_gpus / max(1, actors))


def screen_with_ray(root: Path, items: Sequence[DatasetItem], factory: Any, config: ScreeningConfig, *,
                    concurrency: int | None = None, num_gpus: float | None = None, address: str | None = None,
                    show_progress: bool = False) -> Iterator[list[ItemResult]]:
    """Yield the results of ``items`` batch by batch, screened by a pool of Ray actors.

    Uses the running Ray instance (or ``ray.init(address)``; one started here is shut down at the end).
    ``concurrency``: actors (default: ``config.workers``). ``num_gpus``: per actor (default: one GPU each
    when the cluster has enough, an equal share when it has fewer, none without GPUs).
    """
    try:
        import ray
    except ImportError as exc:
        raise ConfigurationError(f"screening on Ray needs ray[data]: pip install 'modchain[ray]' ({exc})") from exc
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    context = ray.data.DataContext.get_current()
    saved_progress = context.enable_progress_bars
    try:
        actors = concurrency or config.workers
        if num_gpus is None:
            num_gpus = gpus_per_actor(ray.cluster_resources().get("GPU", 0), actors)
        context.enable_progress_bars = show_progress
        rows = [{"path": _path_to_bytes(item.path), "size": item.size, "mtime_ns": item.mtime_ns} for item in items]
        dataset = ray.data.from_items(rows).map_batches(
            ScreenActor,
            fn_constructor_kwargs={"factory": factory, "config_data": config.model_dump(mode="json"),
                                   "root": str(root)},
            batch_size=config.batch_size, compute=ray.data.ActorPoolStrategy(size=actors),
            num_gpus=num_gpus or None, batch_format="numpy")
        try:
            for batch in dataset.iter_batches(batch_size=config.batch_size, batch_format="numpy"):
                for error in batch["error"]:
                    if error:
                        _raise_actor_error(error)
                yield [ItemResult.from_json_line(record) for record in batch["record"]]
        except ray.exceptions.RayError as exc:
            # Ray wraps what an actor raised (RayTaskError -> UserCodeException -> ours): surface our own
            # typed error (a model's BackendThrottledError, ...) so callers see the same error as locally.
            cause = _modchain_cause(exc)
            if cause is not None:
                raise cause from None
            raise BackendError(f"screening on Ray failed ({type(exc).__name__})", backend="ray",
                               operation="map_batches") from exc
    finally:
        context.enable_progress_bars = saved_progress
        if started_here:
            ray.shutdown()
