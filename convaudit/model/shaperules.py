"""Output shapes of the common ONNX ops on fully known shapes, as ONNX's own inference gives them,
for the lite path (model/lite.py), which must not import onnx.

A rule answers only when every input it is given has a known type and a static shape, and the
node is one the rule covers at that schema version; anything else (a symbolic dim, an attribute
out of range, inputs a runtime would refuse) returns None and onnx's inference decides, with its
conflict message. Tests hold every rule to onnx's inference on the conformance models.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from convaudit.model.tensors import TensorInfo
from convaudit.model.values import FLOAT32, INT_TYPES

if TYPE_CHECKING:
    from convaudit.model.liteproto import LiteTensor


class AttributeLike(Protocol):
    """What a rule reads of an attribute object: its name and tensor."""

    @property
    def name(self) -> str: ...

    @property
    def t(self) -> LiteTensor | None: ...


class NodeLike(Protocol):
    """A LiteNode, or a node the lite path builds for a contrib op's standard op."""

    @property
    def op_type(self) -> str: ...

    @property
    def domain(self) -> str: ...

    @property
    def input(self) -> Sequence[str]: ...

    @property
    def output(self) -> Sequence[str]: ...

    @property
    def attribute(self) -> Sequence[AttributeLike]: ...


Shape = tuple[int, ...]
_BOOL, _INT32, _UINT8, _FLOAT = 9, 6, 2, 1
# element types a rule may produce or read (string and the exotic types go to onnx)
PLAIN_TYPES = frozenset({1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13})


class Node:
    """What a rule reads of a node: its inputs (None where omitted), attributes, outputs."""

    __slots__ = ("attrs", "ins", "lite", "n_out", "since")

    def __init__(
        self, lite: NodeLike, since: int, attrs: dict[str, Any], ins: Sequence[TensorInfo]
    ) -> None:
        self.lite = lite
        self.since = since
        self.attrs = attrs
        self.n_out = len(lite.output)
        self.ins: list[TensorInfo | None] = [
            info if name else None for name, info in zip(lite.input, ins, strict=True)
        ]

    def shape(self, k: int) -> Shape | None:
        info = self.ins[k] if k < len(self.ins) else None
        return None if info is None else info.static_shape

    def present(self, k: int) -> bool:
        return k < len(self.ins) and self.ins[k] is not None

    def elem(self, k: int) -> int:
        info = self.ins[k]
        assert info is not None
        return info.elem_type

    def ints(self, k: int) -> list[int] | None:
        """The constant integer value of input ``k`` (1-D or scalar), None if not known."""
        info = self.ins[k] if k < len(self.ins) else None
        value = None if info is None else info.value
        if value is None or value.elem_type not in INT_TYPES or value.ndim > 1:
            return None
        return list(value.items)

    def int_attr(self, name: str, default: int) -> int | None:
        value = self.attrs.get(name, default)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def ints_attr(self, name: str) -> list[int] | None:
        value = self.attrs.get(name)
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            return None
        return value


Out = list[TensorInfo] | None
Rule = Callable[[Node], Out]


def _one(elem: int, shape: Sequence[int]) -> Out:
    if any(d < 0 for d in shape):
        return None
    return [TensorInfo(elem_type=elem, shape=tuple(int(d) for d in shape))]


def infer(lite: NodeLike, since: int, attrs: dict[str, Any], ins: Sequence[TensorInfo]) -> Out:
    """The outputs of a default-domain node at schema version ``since``; None: ask onnx."""
    rule = RULES.get(lite.op_type)
    if rule is None:
        return None
    for name, info in zip(lite.input, ins, strict=True):
        shape = info.static_shape if name else ()
        if name and (info.kind != "tensor" or info.elem_type not in PLAIN_TYPES):
            return None
        if shape is None or min(shape, default=0) < 0:
            return None
    node = Node(lite, since, attrs, ins)
    try:
        outs = rule(node)
    except (ValueError, TypeError, IndexError, KeyError, OverflowError, ZeroDivisionError):
        return None  # whatever a rule did not foresee: onnx decides
    if outs is None or len(outs) > node.n_out:
        return None
    return outs


def broadcast(*shapes: Shape) -> Shape | None:
    """Numpy-style (multidirectional) broadcasting; None when the shapes conflict."""
    rank = max(len(s) for s in shapes)
    out = []
    for k in range(rank):
        dims = {s[len(s) - rank + k] for s in shapes if len(s) - rank + k >= 0} - {1}
        if len(dims) > 1:
            return None
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def _axis(axis: int, rank: int, negative: bool = True) -> int | None:
    if negative and -rank <= axis < 0:
        return axis + rank
    return axis if 0 <= axis < rank else None


# -- elementwise -------------------------------------------------------------------------------
def _same(n: Node) -> Out:
    x = n.shape(0)
    return None if x is None or n.n_out != 1 else _one(n.elem(0), x)


def _softmax(n: Node) -> Out:
    x = n.shape(0)
    axis = n.int_attr("axis", -1 if n.since >= 13 else 1)
    if x is None or axis is None or n.n_out != 1 or _axis(axis, len(x)) is None:
        return None
    return _one(n.elem(0), x)


def _broadcasting(elem: Callable[[Node], int], since: int = 7) -> Rule:
    def rule(n: Node) -> Out:
        shapes = [n.shape(k) for k in range(len(n.ins))]
        if n.since < since or n.n_out != 1 or not shapes or any(s is None for s in shapes):
            return None
        out = broadcast(*[s for s in shapes if s is not None])
        return None if out is None else _one(elem(n), out)

    return rule


def _first(n: Node) -> int:
    return n.elem(0)


def _boolean(n: Node) -> int:
    return _BOOL


def _where(n: Node) -> int:
    return n.elem(1)


def _cast(n: Node) -> Out:
    to = n.int_attr("to", 0)
    x = n.shape(0)
    if x is None or to not in PLAIN_TYPES or n.n_out != 1:
        return None
    return _one(to, x)


def _clip(n: Node) -> Out:
    if n.since < 6:
        return None
    return _same(n)


# -- convolution and pooling -------------------------------------------------------------------
def _spatial(n: Node, x: Shape, kernel: Sequence[int], *, dilations_attr: bool) -> list[int] | None:
    """Output spatial sizes of a conv or pool (ONNX's convPoolShapeInference)."""
    n_sp = len(x) - 2
    strides = n.ints_attr("strides") if "strides" in n.attrs else [1] * n_sp
    dilations = n.ints_attr("dilations") if "dilations" in n.attrs else [1] * n_sp
    pads = n.ints_attr("pads") if "pads" in n.attrs else [0] * (2 * n_sp)
    auto_pad = n.attrs.get("auto_pad", "NOTSET")
    if not dilations_attr and "dilations" in n.attrs:
        return None
    if strides is None or dilations is None or pads is None or not isinstance(auto_pad, str):
        return None
    if len(kernel) != n_sp or len(strides) != n_sp or len(dilations) != n_sp:
        return None
    if len(pads) != 2 * n_sp or min(pads, default=0) < 0:
        return None
    if min((*strides, *dilations, *kernel), default=1) < 1:
        return None
    out = []
    for k in range(n_sp):
        size, s = x[2 + k], strides[k]
        effective = (kernel[k] - 1) * dilations[k] + 1
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            out.append((size + s - 1) // s)
            continue
        if auto_pad == "VALID":
            total = size - effective
        elif auto_pad in ("NOTSET", ""):
            total = size + pads[k] + pads[n_sp + k] - effective
        else:
            return None
        if total < 0:
            return None
        out.append(total // s + 1)
    return out


def _conv(n: Node) -> Out:
    x, w = n.shape(0), n.shape(1)
    group = n.int_attr("group", 1)
    if x is None or w is None or group is None or group < 1 or n.n_out != 1:
        return None
    if len(x) < 3 or len(w) != len(x) or x[1] != w[1] * group or w[0] % group:
        return None
    if n.lite.op_type == "Conv" and n.present(2) and n.shape(2) != (w[0],):
        return None
    kernel = n.ints_attr("kernel_shape") if "kernel_shape" in n.attrs else list(w[2:])
    if kernel is None or list(kernel) != list(w[2:]):
        return None
    out = _spatial(n, x, kernel, dilations_attr=True)
    if out is None:
        return None
    elem = _INT32 if n.lite.op_type == "ConvInteger" else n.elem(0)
    return _one(elem, (x[0], w[0], *out))


def _conv_transpose(n: Node) -> Out:
    x, w = n.shape(0), n.shape(1)
    group = n.int_attr("group", 1)
    if x is None or w is None or group is None or group < 1 or n.n_out != 1:
        return None
    if len(x) < 3 or len(w) != len(x) or x[1] != w[0]:
        return None
    for unsupported in ("output_shape", "auto_pad"):
        if unsupported in n.attrs and n.attrs[unsupported] not in ("NOTSET", ""):
            return None
    n_sp = len(x) - 2
    kernel = n.ints_attr("kernel_shape") if "kernel_shape" in n.attrs else list(w[2:])
    strides = n.ints_attr("strides") if "strides" in n.attrs else [1] * n_sp
    dilations = n.ints_attr("dilations") if "dilations" in n.attrs else [1] * n_sp
    pads = n.ints_attr("pads") if "pads" in n.attrs else [0] * (2 * n_sp)
    out_pad = n.ints_attr("output_padding") if "output_padding" in n.attrs else [0] * n_sp
    if kernel is None or strides is None or dilations is None or pads is None or out_pad is None:
        return None
    if list(kernel) != list(w[2:]) or len(strides) != n_sp or len(dilations) != n_sp:
        return None
    if len(pads) != 2 * n_sp or len(out_pad) != n_sp or min((*pads, *out_pad), default=0) < 0:
        return None
    if min((*strides, *dilations), default=1) < 1:
        return None
    out = []
    for k in range(n_sp):
        size = (
            strides[k] * (x[2 + k] - 1)
            + out_pad[k]
            + (kernel[k] - 1) * dilations[k]
            + 1
            - pads[k]
            - pads[n_sp + k]
        )
        if size < 1:
            return None
        out.append(size)
    return _one(n.elem(0), (x[0], w[1] * group, *out))


def _pool(n: Node) -> Out:
    x = n.shape(0)
    kernel = n.ints_attr("kernel_shape")
    if x is None or kernel is None or len(x) < 3 or n.n_out != 1:
        return None
    if n.attrs.get("ceil_mode", 0) != 0:
        return None
    op = n.lite.op_type
    dilations = (op == "MaxPool" and n.since >= 10) or (op == "AveragePool" and n.since >= 19)
    out = _spatial(n, x, kernel, dilations_attr=dilations)
    return None if out is None else _one(n.elem(0), (x[0], x[1], *out))


def _global_pool(n: Node) -> Out:
    x = n.shape(0)
    if x is None or len(x) < 2 or n.n_out != 1:
        return None
    return _one(n.elem(0), (x[0], x[1], *([1] * (len(x) - 2))))


def _batch_norm(n: Node) -> Out:
    x = n.shape(0)
    if n.since < 9 or x is None or len(x) < 2 or n.n_out != 1:
        return None
    if n.attrs.get("training_mode", 0) != 0:
        return None
    if any(n.shape(k) != (x[1],) for k in range(1, 5)):
        return None
    return _one(n.elem(0), x)


# -- shape and layout ------------------------------------------------------------------------
def _concat(n: Node) -> Out:
    shapes = [n.shape(k) for k in range(len(n.ins))]
    axis = n.int_attr("axis", 0)
    if n.since < 4 or "axis" not in n.attrs or axis is None or n.n_out != 1 or not shapes:
        return None
    if any(s is None for s in shapes):
        return None
    ranks = {len(s) for s in shapes if s is not None}
    rank = ranks.pop()
    if ranks or rank == 0:
        return None
    k = _axis(axis, rank, negative=n.since >= 11)
    if k is None:
        return None
    first = shapes[0]
    assert first is not None
    total = 0
    for s in shapes:
        assert s is not None
        if s[:k] != first[:k] or s[k + 1 :] != first[k + 1 :]:
            return None
        total += s[k]
    return _one(n.elem(0), (*first[:k], total, *first[k + 1 :]))


def _reshape(n: Node) -> Out:
    x, target = n.shape(0), n.ints(1)
    allowzero = n.int_attr("allowzero", 0) if n.since >= 14 else 0
    if n.since < 5 or x is None or target is None or allowzero is None or n.n_out != 1:
        return None
    if n.shape(1) != (len(target),):
        return None
    out: list[int] = []
    infer_at = None
    for i, d in enumerate(target):
        if d == -1 and infer_at is None:
            infer_at = i
            out.append(1)
        elif d == 0 and not allowzero:
            if i >= len(x):
                return None
            out.append(x[i])
        elif d < 0:
            return None
        else:
            out.append(d)
    if allowzero and infer_at is not None and 0 in target:
        return None
    total = math.prod(x)
    if infer_at is not None:
        known = math.prod(out)
        if known == 0 or total % known:
            return None
        out[infer_at] = total // known
    if math.prod(out) != total:
        return None
    return _one(n.elem(0), out)


def _flatten(n: Node) -> Out:
    x = n.shape(0)
    axis = n.int_attr("axis", 1)
    if x is None or axis is None or n.n_out != 1:
        return None
    if n.since >= 11 and -len(x) <= axis < 0:
        axis += len(x)
    if not 0 <= axis <= len(x):
        return None
    return _one(n.elem(0), (math.prod(x[:axis]), math.prod(x[axis:])))


def _transpose(n: Node) -> Out:
    x = n.shape(0)
    if x is None or n.n_out != 1:
        return None
    perm = n.ints_attr("perm") if "perm" in n.attrs else list(range(len(x)))[::-1]
    if perm is None or sorted(perm) != list(range(len(x))):
        return None
    return _one(n.elem(0), [x[p] for p in perm])


def _axes(n: Node, input_from: int) -> tuple[bool, list[int] | None]:
    """(given, axes): from input 1 from schema version ``input_from`` on, else the attribute."""
    if n.since >= input_from:
        if not n.present(1):
            return False, None
        return True, n.ints(1)
    if "axes" not in n.attrs:
        return False, None
    return True, n.ints_attr("axes")


def _squeeze(n: Node) -> Out:
    x = n.shape(0)
    given, axes = _axes(n, 13)
    if x is None or n.n_out != 1 or (given and axes is None):
        return None
    if not given:
        return _one(n.elem(0), [d for d in x if d != 1])
    assert axes is not None
    picked = {_axis(a, len(x), negative=n.since >= 11) for a in axes}
    if (
        None in picked
        or len(picked) != len(axes)
        or any(x[a] != 1 for a in picked if a is not None)
    ):
        return None
    return _one(n.elem(0), [d for k, d in enumerate(x) if k not in picked])


def _unsqueeze(n: Node) -> Out:
    x = n.shape(0)
    given, axes = _axes(n, 13)
    if x is None or not given or axes is None or n.n_out != 1:
        return None
    rank = len(x) + len(axes)
    picked = {_axis(a, rank, negative=n.since >= 11) for a in axes}
    if None in picked or len(picked) != len(axes):
        return None
    rest = iter(x)
    return _one(n.elem(0), [1 if k in picked else next(rest) for k in range(rank)])


def _slice(n: Node) -> Out:
    x = n.shape(0)
    if n.since < 10 or x is None or n.n_out != 1:
        return None
    starts, ends = n.ints(1), n.ints(2)
    axes = n.ints(3) if n.present(3) else None
    steps = n.ints(4) if n.present(4) else None
    if starts is None or ends is None or len(starts) != len(ends):
        return None
    if (n.present(3) and axes is None) or (n.present(4) and steps is None):
        return None
    axes = list(range(len(starts))) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    if len(axes) != len(starts) or len(steps) != len(starts):
        return None
    out = list(x)
    seen = set()
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        k = _axis(axis, len(x), negative=n.since >= 11)
        if k is None or k in seen or step == 0:
            return None
        seen.add(k)
        dim = x[k]
        start = start + dim if start < 0 else start
        end = end + dim if end < 0 else end
        if step < 0:
            start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
        else:
            start, end = min(max(start, 0), dim), min(max(end, 0), dim)
        out[k] = max(0, -((start - end) // step) if step > 0 else -((end - start) // -step))
    return _one(n.elem(0), out)


def _gather(n: Node) -> Out:
    data, indices = n.shape(0), n.shape(1)
    axis = n.int_attr("axis", 0)
    if data is None or indices is None or axis is None or n.n_out != 1 or not data:
        return None
    k = _axis(axis, len(data), negative=n.since >= 11)
    if k is None:
        return None
    return _one(n.elem(0), (*data[:k], *indices, *data[k + 1 :]))


def _split(n: Node) -> Out:
    x = n.shape(0)
    axis = n.int_attr("axis", 0)
    if n.since < 2 or x is None or axis is None:
        return None
    k = _axis(axis, len(x), negative=n.since >= 11)
    if k is None:
        return None
    if n.since >= 13:
        parts = n.ints(1) if n.present(1) else None
        if n.present(1) and parts is None:
            return None
    else:
        parts = n.ints_attr("split") if "split" in n.attrs else None
        if "split" in n.attrs and parts is None:
            return None
    if parts is None:
        if n.since >= 18:
            if n.int_attr("num_outputs", -1) != n.n_out:
                return None
        elif "num_outputs" in n.attrs:
            return None
        if x[k] % n.n_out:
            return None
        parts = [x[k] // n.n_out] * n.n_out
    if len(parts) != n.n_out or sum(parts) != x[k] or min(parts, default=0) < 0:
        return None
    return [TensorInfo(elem_type=n.elem(0), shape=(*x[:k], p, *x[k + 1 :])) for p in parts]


def _resize(n: Node) -> Out:
    x = n.shape(0)
    if n.since < 10 or x is None or n.n_out != 1:
        return None
    if n.attrs.get("axes") or n.attrs.get("keep_aspect_ratio_policy", "stretch") != "stretch":
        return None
    scales_at, sizes_at = (1, None) if n.since == 10 else (2, 3)
    sizes = n.shape(sizes_at) if sizes_at is not None else None
    if sizes_at is not None and n.present(sizes_at) and sizes != (0,):
        if n.present(scales_at) and n.shape(scales_at) != (0,):
            return None
        values = n.ints(sizes_at)
        if values is None or len(values) != len(x) or min(values, default=0) < 0:
            return None
        return _one(n.elem(0), values)
    info = n.ins[scales_at] if n.present(scales_at) else None
    scales = None if info is None else info.value
    if scales is None or scales.elem_type != FLOAT32 or scales.shape != (len(x),):
        return None
    if not all(s > 0 for s in scales.items):
        return None
    # the float32 scales times the dims in double precision, floored, as ONNX's inference
    # computes them (20 x float32(0.7) gives 13)
    out = [math.floor(float(d) * s) for d, s in zip(x, scales.items, strict=True)]
    return _one(n.elem(0), out)


def _pad(n: Node) -> Out:
    x = n.shape(0)
    if n.since < 2 or x is None or n.n_out != 1:
        return None
    if n.since >= 11:
        pads = n.ints(1)
        if n.present(3):
            return None
    else:
        pads = n.ints_attr("pads")
    if pads is None or len(pads) != 2 * len(x):
        return None
    out = [d + pads[k] + pads[len(x) + k] for k, d in enumerate(x)]
    if min(out, default=1) < 1:
        return None
    return _one(n.elem(0), out)


def _expand(n: Node) -> Out:
    x, target = n.shape(0), n.ints(1)
    if x is None or target is None or n.n_out != 1 or min(target, default=1) < 1:
        return None
    out = broadcast(x, tuple(target))
    return None if out is None else _one(n.elem(0), out)


def _tile(n: Node) -> Out:
    x, reps = n.shape(0), n.ints(1)
    if n.since < 6 or x is None or reps is None or len(reps) != len(x) or n.n_out != 1:
        return None
    if min(reps, default=0) < 0:
        return None
    return _one(n.elem(0), [d * r for d, r in zip(x, reps, strict=True)])


def _constant_of_shape(n: Node) -> Out:
    target = n.ints(0)
    if target is None or n.n_out != 1 or n.shape(0) != (len(target),):
        return None
    elem = _FLOAT
    for attr in n.lite.attribute:
        if attr.name == "value":
            if attr.t is None or attr.t.data_type not in PLAIN_TYPES:
                return None
            elem = attr.t.data_type
    return _one(elem, target)


# -- contractions, reductions, recurrences -------------------------------------------------
def _matmul(n: Node) -> Out:
    a, b = n.shape(0), n.shape(1)
    if a is None or b is None or not a or not b or n.n_out != 1:
        return None
    a2 = a if len(a) >= 2 else (1, *a)
    b2 = b if len(b) >= 2 else (*b, 1)
    if a2[-1] != b2[-2]:
        return None
    batch = broadcast(a2[:-2], b2[:-2]) if len(a2) > 2 or len(b2) > 2 else ()
    if batch is None:
        return None
    out = (*batch, *(a2[-2:-1] if len(a) >= 2 else ()), *(b2[-1:] if len(b) >= 2 else ()))
    elem = _INT32 if n.lite.op_type == "MatMulInteger" else n.elem(0)
    return _one(elem, out)


def _gemm(n: Node) -> Out:
    a, b = n.shape(0), n.shape(1)
    ta, tb = n.int_attr("transA", 0), n.int_attr("transB", 0)
    if n.since < 7 or a is None or b is None or ta is None or tb is None or n.n_out != 1:
        return None
    if len(a) != 2 or len(b) != 2:
        return None
    m, k = (a[1], a[0]) if ta else a
    k2, cols = (b[1], b[0]) if tb else b
    if k != k2:
        return None
    return _one(n.elem(0), (m, cols))


def _reduce(input_from: int) -> Rule:
    def rule(n: Node) -> Out:
        x = n.shape(0)
        keep = n.int_attr("keepdims", 1)
        noop = n.int_attr("noop_with_empty_axes", 0)
        if x is None or keep is None or noop is None or n.n_out != 1:
            return None
        given, axes = _axes(n, input_from)
        if given and axes is None:
            return None
        if not axes:
            if noop and n.since >= input_from:
                return _one(n.elem(0), x)
            axes = list(range(len(x)))
        picked = {_axis(a, len(x)) for a in axes}
        if None in picked or len(picked) != len(axes):
            return None
        out = [1 if k in picked else d for k, d in enumerate(x) if keep or k not in picked]
        return _one(n.elem(0), out)

    return rule


def _recurrent(n: Node) -> Out:
    """RNN, GRU, LSTM (ONNX's RNNShapeInference)."""
    x = n.shape(0)
    hidden = n.int_attr("hidden_size", -1)
    layout = n.int_attr("layout", 0) if n.since >= 14 else 0
    directions = {"forward": 1, "reverse": 1, "bidirectional": 2}.get(
        n.attrs.get("direction", "forward")
    )
    if x is None or len(x) != 3 or hidden is None or hidden <= 0 or directions is None:
        return None
    if layout not in (0, 1):
        return None
    seq, batch = (x[0], x[1]) if layout == 0 else (x[1], x[0])
    y = (seq, directions, batch, hidden) if layout == 0 else (batch, seq, directions, hidden)
    state = (directions, batch, hidden) if layout == 0 else (batch, directions, hidden)
    elem = n.elem(0)
    outs = [TensorInfo(elem_type=elem, shape=y)]
    outs += [TensorInfo(elem_type=elem, shape=state)] * (min(n.n_out, 3) - 1)
    return outs[: n.n_out]


def _dynamic_quantize(n: Node) -> Out:
    x = n.shape(0)
    if x is None or n.n_out != 3:
        return None
    return [
        TensorInfo(elem_type=_UINT8, shape=x),
        TensorInfo(elem_type=_FLOAT, shape=()),
        TensorInfo(elem_type=_UINT8, shape=()),
    ]


def _identity(n: Node) -> Out:
    return _same(n)


RULES: dict[str, Rule] = {
    "Identity": _identity,
    "Relu": _same,
    "Sigmoid": _same,
    "HardSigmoid": _same,
    "HardSwish": _same,
    "Tanh": _same,
    "LeakyRelu": _same,
    "Sqrt": _same,
    "Floor": _same,
    "Ceil": _same,
    "Neg": _same,
    "Abs": _same,
    "Exp": _same,
    "Erf": _same,
    "Not": _same,
    "Clip": _clip,
    "Cast": _cast,
    "Softmax": _softmax,
    "LogSoftmax": _softmax,
    "Add": _broadcasting(_first),
    "Sub": _broadcasting(_first),
    "Mul": _broadcasting(_first),
    "Div": _broadcasting(_first),
    "Pow": _broadcasting(_first),
    "Max": _broadcasting(_first, 8),
    "Min": _broadcasting(_first, 8),
    "Equal": _broadcasting(_boolean),
    "Less": _broadcasting(_boolean),
    "Greater": _broadcasting(_boolean),
    "And": _broadcasting(_boolean),
    "Or": _broadcasting(_boolean),
    "Where": _broadcasting(_where, 9),
    "Conv": _conv,
    "ConvInteger": _conv,
    "ConvTranspose": _conv_transpose,
    "MaxPool": _pool,
    "AveragePool": _pool,
    "GlobalAveragePool": _global_pool,
    "GlobalMaxPool": _global_pool,
    "BatchNormalization": _batch_norm,
    "Concat": _concat,
    "Reshape": _reshape,
    "Flatten": _flatten,
    "Transpose": _transpose,
    "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze,
    "Slice": _slice,
    "Gather": _gather,
    "Split": _split,
    "Resize": _resize,
    "Pad": _pad,
    "Expand": _expand,
    "Tile": _tile,
    "ConstantOfShape": _constant_of_shape,
    "MatMul": _matmul,
    "MatMulInteger": _matmul,
    "Gemm": _gemm,
    "ReduceMean": _reduce(18),
    "ReduceMax": _reduce(18),
    "ReduceMin": _reduce(18),
    "ReduceProd": _reduce(18),
    "ReduceSum": _reduce(13),
    "LSTM": _recurrent,
    "GRU": _recurrent,
    "RNN": _recurrent,
    "DynamicQuantizeLinear": _dynamic_quantize,
}
