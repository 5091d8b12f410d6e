"""What the physics-grade parameter classes share: reading their fields back from JSON."""

from __future__ import annotations

import dataclasses
from typing import Any

from ...config.sections import ConfigError

__all__ = ["fields_from_dict"]


def fields_from_dict(cls: Any, values: dict[str, Any], section: str) -> dict[str, Any]:
    """Return ``values`` as keyword arguments of dataclass ``cls`` (JSON lists become tuples).

    Raises
    ------
    ConfigError
        A key that is not a field of ``cls``, named under ``section``.
    """
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"{section}: unknown parameter(s) {', '.join(unknown)}")
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
