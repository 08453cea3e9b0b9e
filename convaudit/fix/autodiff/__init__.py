"""Reverse-mode gradients of a convolutional ONNX region in numpy, for ``fix.tune``.

A small interpreter, not a framework: the ops that follow convolutions in exported CNNs, each a
forward and a backward in the dtype it is given (float32 in ``fix``; the tests check gradients in
float64): convolutions and pooling (``conv``), activations, arithmetic, normalisation, reductions
and matrix products (``pointwise``), and ops that only move values or compute shapes
(``shapes``). An op outside ``OPS`` raises ``Unsupported`` naming it, and ``tune`` declines with
that reason; ``tune`` also holds the forward to onnxruntime's own output before it trusts any
gradient.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx

from convaudit.fix.autodiff import conv, pointwise, shapes
from convaudit.fix.autodiff.base import Array, Op, Unsupported

# Every op the interpreter runs, by ONNX op type (default domain): registered here, explicitly.
OPS: dict[str, Op] = {**conv.OPS, **pointwise.OPS, **shapes.OPS}


# --- the region --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Region:
    """Nodes in topological order, with what they read from outside: ``consts`` (weights and
    other initializers, by name) and ``boundary`` (activations fed each run)."""

    nodes: tuple[onnx.NodeProto, ...]
    consts: Mapping[str, Array] = field(repr=False)
    boundary: tuple[str, ...]
    outputs: tuple[str, ...]


def check(region: Region) -> None:
    """Raise ``Unsupported`` naming the first node whose op the interpreter lacks."""
    for node in region.nodes:
        if node.domain not in ("", "ai.onnx") or node.op_type not in OPS:
            raise Unsupported(f"{node.op_type} ({node.name or node.output[0]})")


@dataclass
class Tape:
    """One forward pass: every value, and what each node saved for its backward."""

    values: dict[str, Array]
    saved: list[Any]


def forward(region: Region, params: Mapping[str, Array], feed: Mapping[str, Array]) -> Tape:
    """Run the region on ``feed`` (its boundary tensors), with ``params`` over its constants."""
    values: dict[str, Array] = {**region.consts, **params, **feed}
    saved: list[Any] = []
    for node in region.nodes:
        ins = [values[i] if i else None for i in node.input]
        outs, keep = OPS[node.op_type].forward(node, ins)
        for name, v in zip(node.output, outs, strict=False):
            if name:
                values[name] = v
        saved.append(keep)
    return Tape(values, saved)


def backward(
    region: Region, tape: Tape, grad_out: Mapping[str, Array], wanted: Sequence[str]
) -> dict[str, Array]:
    """dL/d(each of ``wanted``), given dL/d(region outputs)."""
    grads: dict[str, Array] = {k: np.asarray(v) for k, v in grad_out.items()}
    frozen = set(region.consts) - set(wanted)
    boundary = set(region.boundary)
    for node, keep in zip(reversed(region.nodes), reversed(tape.saved), strict=True):
        d = [grads.pop(o, None) for o in node.output]
        if all(g is None for g in d):
            continue
        ins = [tape.values[i] if i else None for i in node.input]
        outs = [tape.values.get(o) for o in node.output]
        op = OPS[node.op_type]
        need = [bool(i) and i not in frozen and i not in boundary for i in node.input]
        if not any(need):
            continue
        dins = (
            op.backward(node, ins, outs, keep, d, need)
            if op.partial
            else op.backward(node, ins, outs, keep, d)
        )
        for name, g, wanted_here in zip(node.input, dins, need, strict=False):
            if g is None or not wanted_here:
                continue
            g = np.asarray(g, tape.values[name].dtype)
            grads[name] = grads[name] + g if name in grads else g
    return {k: grads[k] for k in wanted if k in grads}


__all__ = ["OPS", "Op", "Region", "Tape", "Unsupported", "backward", "check", "forward"]
