"""The caller's id a component reads per call: ``unique_id`` (alias ``user_id``) in ``config["configurable"]``.

Every component reads it the same way and checks its type here, before it reaches a typed result or event: a
pydantic error on a wrong type would echo the value (``input_value=42``), and a user id is personal data that
must not land in logs. The message names the type only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modchain.core.errors import ConfigurationError

__all__ = ["CALLER_ID_KEYS", "caller_id"]

#: The ``configurable`` keys holding the caller's id, first set wins.
CALLER_ID_KEYS = ("unique_id", "user_id")


def caller_id(config: Mapping[str, Any] | None, default: Any = None) -> str | None:
    """The caller's id for this call: ``configurable["unique_id"]``, else ``["user_id"]``, else ``default``
    (the component's own ``unique_id``); an empty per-call id counts as unset.

    Raises :class:`ConfigurationError` (naming the key and the type, never the value) when it is not a ``str``.
    """
    configurable = (config or {}).get("configurable") or {}
    for key in CALLER_ID_KEYS:
        value = configurable.get(key)
        if value is not None and value != "":
            return _checked(key, value)
    return None if default is None else _checked("unique_id", default)


def _checked(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigurationError(f"{key} must be a str, not {type(value).__name__}: pass str(id) if that is the "
                                 "id you mean")
    return value
