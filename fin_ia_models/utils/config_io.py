"""``to_dict`` / ``from_dict`` for every config dataclass: one implementation, nested dataclasses and tuples included.

Configs travel as plain JSON (MLflow params, checkpoint headers); ``from_dict`` rebuilds the exact dataclass, turning
JSON lists back into tuples and nested dicts back into nested configs, and refuses keys the class does not have (a
checkpoint of another code version fails loudly instead of silently dropping a setting).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


def _coerce(tp: Any, value: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        for arg in typing.get_args(tp):
            if arg is not type(None) and (dataclasses.is_dataclass(arg) or typing.get_origin(arg) is tuple):
                return _coerce(arg, value)
        return value
    if dataclasses.is_dataclass(tp) and isinstance(value, dict):
        return config_from_dict(tp, value)
    if (origin is tuple or tp is tuple) and isinstance(value, (list, tuple)):
        return tuple(value)
    return value


def config_from_dict(cls: type[T], values: dict) -> T:
    """Rebuild dataclass ``cls`` from ``dataclasses.asdict`` output (nested configs, tuples)."""
    if not isinstance(values, dict):
        raise TypeError(f"{cls.__name__}.from_dict needs a dict, got {type(values).__name__}")
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"{cls.__name__} has no field(s) {unknown}: a config from another code version?")
    hints = typing.get_type_hints(cls)
    return cls(**{name: _coerce(hints[name], value) for name, value in values.items()})


class ConfigDict:
    """Mixin for config dataclasses: ``to_dict`` (plain, JSON-friendly) and ``from_dict`` (its exact inverse)."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls, values: dict):
        return config_from_dict(cls, values)
