"""How findings are identified across scans: a model's key and a layer finding's fingerprint.

Shared by the rule engine (which stamps findings) and baselines (which match them), so that
neither depends on the other.
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from convaudit.records import Layer


def sha256_hex(data: bytes) -> str:
    """The SHA-256 hex digest of ``data``, as ``hashlib.sha256(data).hexdigest()``.

    From CPython's own SHA-256 module when it has one: ``import hashlib`` loads OpenSSL's
    ``_hashlib`` (and every other algorithm's module) first, 3-6 ms of a scan's start-up for
    the few short digests a scan takes. Builds without it (or FIPS ones) get hashlib's.
    """
    return str(_sha256()(data).hexdigest())


@functools.cache
def _sha256() -> Callable[[bytes], Any]:
    for name in ("_sha2", "_sha256"):  # CPython 3.12+, then 3.11 and before
        try:
            constructor: Callable[[bytes], Any] = importlib.import_module(name).sha256
        except (ImportError, AttributeError):
            continue
        return constructor
    import hashlib

    return hashlib.sha256


def model_key(path: str, root: str | None = None) -> str:
    """The model path as findings and baselines name it: relative to the config file's folder
    (``root``) when below it, so a baseline matches from any cwd; else relative to the cwd."""
    p = Path(path)
    full = Path(os.path.abspath(p))
    for base in ([Path(os.path.abspath(root))] if root is not None else []) + [Path.cwd()]:
        try:
            return full.relative_to(base).as_posix()
        except ValueError:
            continue
    return p.as_posix()


def fingerprint(rule_id: str, model: str, layer: Layer) -> str:
    """Stable across re-exports: no node index, no MACs (which change with input shapes)."""
    node = layer.name
    if not node or node == f"{layer.op_type}_{layer.index}" or _auto_name(layer):
        node = layer.outputs[0] if layer.outputs else layer.name
    parts = (
        rule_id,
        model,
        layer.graph,
        node,
        layer.op_type,
        "x".join(map(str, layer.kernel_shape or ())),
        f"{layer.in_channels}->{layer.out_channels}",
        str(layer.group),
    )
    return sha256_hex("\x1f".join(parts).encode("utf-8"))[:16]


def _auto_name(layer: Layer) -> bool:
    """Names the walker invented for unnamed nodes: "<op_type>_<position>"."""
    prefix = f"{layer.op_type}_"
    return layer.name.startswith(prefix) and layer.name[len(prefix) :].isdigit()
