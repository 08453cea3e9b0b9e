"""What the op modules of ``fix.autodiff`` share: the refusal, attribute reading, the op record."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx

from convaudit.fix.rewrite import attribute as attr

F32 = np.float32
Array = np.ndarray


__all__ = ["F32", "Array", "Op", "Unsupported", "arg", "attr", "pair", "unbroadcast"]


class Unsupported(Exception):
    """The region holds an op (or an attribute of one) the interpreter does not cover."""


def arg(ins: Sequence[Array | None], k: int) -> Array | None:
    return ins[k] if len(ins) > k else None


def unbroadcast(g: Array, shape: tuple[int, ...]) -> Array:
    """Sum ``g`` down to ``shape`` (the inverse of numpy broadcasting)."""
    while g.ndim > len(shape):
        g = g.sum(0)
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    return g.sum(axes, keepdims=True) if axes else g


@dataclass(frozen=True)
class Op:
    """One op: forward(node, inputs) -> (outputs, saved); backward(node, inputs, outputs, saved,
    output grads[, need]) -> input grads (None where there is none)."""

    forward: Callable[[onnx.NodeProto, Sequence[Any]], tuple[list[Array], Any]]
    backward: Callable[..., list[Any]]
    partial: bool = False  # its backward takes ``need`` and skips the gradients nobody reads


def pair(fb: tuple[Callable[..., Any], Callable[..., Any]]) -> Op:
    return Op(fb[0], fb[1])
