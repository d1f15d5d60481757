"""Reading ``params.yaml`` and turning its sections into typed, frozen configs.

Covers: loading the YAML file, and a strict ``from_dict`` that builds a dataclass from a
mapping (unknown or missing keys are errors; lists become tuples for tuple fields; ints
become floats for float fields). Does not cover: nested dataclasses, or any default
values (those belong to each config class).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from pipelines import paths

T = TypeVar("T")


def load_params(path: str | Path = paths.PARAMS) -> dict[str, Any]:
    """Parse the parameters file; raises ValueError unless it holds a mapping."""
    with Path(path).open(encoding="utf-8") as f:
        params = yaml.safe_load(f)
    if not isinstance(params, dict):
        raise ValueError(f"{path}: expected a mapping of sections, got {type(params).__name__}")
    return params


def _is_tuple_type(hint: Any) -> bool:
    if hint is tuple or typing.get_origin(hint) is tuple:
        return True
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(_is_tuple_type(arg) for arg in typing.get_args(hint))
    return False


def _coerce(value: Any, hint: Any, where: str) -> Any:
    if isinstance(value, list) and _is_tuple_type(hint):
        return tuple(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float) and isinstance(value, str):
        # YAML 1.1 (PyYAML, `dvc exp run -S`) reads 1e-6 as a string: only 1.0e-6 is a float there.
        try:
            return hint(value)
        except ValueError:
            raise ValueError(f"{where} must be {'an integer' if hint is int else 'a number'}, "
                             f"got {value!r}") from None
    return value


def from_dict(cls: type[T], mapping: Mapping[str, Any], *, where: str | None = None) -> T:
    """Build dataclass ``cls`` from ``mapping``, strictly.

    Raises ValueError naming unknown keys (with the valid ones) or missing required keys;
    ``where`` (default: the class name) prefixes the message, e.g. ``"params.yaml: data"``.
    Validation of the values themselves is the dataclass's own ``__post_init__``.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    where = where or cls.__name__
    if not isinstance(mapping, Mapping):
        raise ValueError(f"{where}: expected a mapping of keys, got {type(mapping).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(str(key) for key in mapping if key not in fields)
    if unknown:
        raise ValueError(
            f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(fields)}"
        )
    missing = [
        name
        for name, f in fields.items()
        if name not in mapping
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ValueError(f"{where}: missing key(s) {', '.join(missing)}")
    hints = typing.get_type_hints(cls)
    return cls(**{key: _coerce(value, hints[key], f"{where}: {key}") for key, value in mapping.items()})
