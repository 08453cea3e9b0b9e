"""Parsing of --input-shape NAME=1x3x224x224 and --dim SYMBOL=VALUE."""

from __future__ import annotations

from collections.abc import Iterable

from convaudit.errors import ConfigError
from convaudit.safe_io import shown


def parse_input_shapes(items: Iterable[str]) -> dict[str, tuple[int, ...]]:
    """["images=1x3x640x640"] -> {"images": (1, 3, 640, 640)}."""
    out: dict[str, tuple[int, ...]] = {}
    for item in items:
        name, sep, dims = item.rpartition("=")
        try:
            shape = tuple(int(d) for d in dims.lower().replace(",", "x").split("x"))
        except ValueError:
            shape = ()
        if not sep or not name or not shape or any(d < 0 for d in shape):
            raise ConfigError(
                f"--input-shape {shown(item)}: expected NAME=AxBxC, e.g. images=1x3x224x224"
            )
        out[name] = shape
    return out


def parse_dims(items: Iterable[str]) -> dict[str, int]:
    """["batch=1"] -> {"batch": 1}."""
    out: dict[str, int] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value.strip().isdigit():
            raise ConfigError(f"--dim {shown(item)}: expected SYMBOL=VALUE, e.g. batch=1")
        out[name.strip()] = int(value)
    return out
