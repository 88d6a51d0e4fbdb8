"""The base of every config: strict, immutable pydantic models loadable from a dict or a YAML file, with short
validation messages; and the check that a named backend is registered."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from modchain.core.errors import ConfigurationError

__all__ = ["BackendName", "StrictModel", "check_backend_name", "coerce_config", "short_validation_message"]

#: A backend registered in :mod:`modchain.core.registry` (built in: local, comprehend, bedrock).
BackendName = str


def check_backend_name(name: str | None) -> str | None:
    # Imported here: the registry imports this module.
    from modchain.core.registry import known_backends

    if name is not None and name not in known_backends():
        raise ValueError(f"unknown backend {name!r}; known: {sorted(known_backends())} (see register_backend)")
    return name


_M = TypeVar("_M", bound="StrictModel")


class StrictModel(BaseModel):
    """Base for configs: unknown keys are errors and instances are immutable (safe to share).

    ``from_dict`` / ``from_yaml`` turn validation and file errors into :class:`ConfigurationError`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)  # schemas built on first use, not at import

    @classmethod
    def from_dict(cls: type[_M], data: dict[str, Any]) -> _M:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigurationError(short_validation_message(exc, cls.__name__)) from None

    @classmethod
    def from_yaml(cls: type[_M], path: str | Path) -> _M:
        import yaml

        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigurationError(f"cannot read config file {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigurationError(f"config file {path} must hold a mapping at the top level")
        return cls.from_dict(data)

    @classmethod
    def coerce(cls: type[_M], value: Any = None, **overrides: Any) -> _M:
        """This config from whatever a constructor was given; see :func:`coerce_config`."""
        return coerce_config(cls, value, **overrides)


def coerce_config(model: type[_M], value: Any = None, **overrides: Any) -> _M:
    """The one way a component turns its ``config`` argument into a config: ``None`` -> the defaults, a
    ``model`` instance -> itself, a mapping -> :meth:`StrictModel.from_dict`, a ``str`` or ``Path`` -> the YAML
    file (:meth:`StrictModel.from_yaml`). ``overrides`` (keyword shorthands such as ``mode="block"``; ``None``
    means "not given") replace fields of the result and are validated with it.

    Raises :class:`ConfigurationError` for anything else, or for an invalid value.
    """
    if value is None:
        config = None
    elif isinstance(value, model):
        config = value
    elif isinstance(value, Mapping):
        config = model.from_dict(dict(value))
    elif isinstance(value, (str, Path)):
        config = model.from_yaml(value)
    else:
        raise ConfigurationError(f"config must be a {model.__name__}, a dict or a YAML file path, "
                                 f"not {type(value).__name__}")
    given = {name: v for name, v in overrides.items() if v is not None}
    if not given:
        return config if config is not None else model.from_dict({})
    # Re-validated as a whole (model_copy(update=...) would skip validation and cross-field checks).
    data = config.model_dump(exclude_unset=True) if config is not None else {}
    return model.from_dict({**data, **given})


def short_validation_message(exc: ValidationError, model: str) -> str:
    """One ``field: problem`` line per error, without pydantic's input echo and documentation links."""
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in error["loc"]) or "value"
        # A nested filter config already wrote its own short message: keep its text, not its "invalid X: ".
        message = re.sub(r"^invalid \w+: ", "", error["msg"].removeprefix("Value error, "))
        lines.append(f"{where}: {message}")
    return f"invalid {model}: " + "; ".join(lines)
