"""Turn visited nodes into costed Layer records (convolutions and matmul-like ops)."""

from __future__ import annotations

from dataclasses import replace
from math import prod
from typing import Any

from convaudit import cost
from convaudit.errors import ShapeError
from convaudit.model.ops import ContractionOp, ConvOp, Layout, OpCost, Operands, op_cost
from convaudit.model.tensors import TensorInfo, fused_matmul_operand, to_channels_first
from convaudit.model.walkstate import Visit, bad_attribute, shown_value
from convaudit.records import Category, Layer

_INT32 = 6  # TensorProto.INT32


def _identity(v: Visit, spec: OpCost) -> Layer:
    """The layer's identity fields; readers fill in its shapes and cost."""
    return Layer(
        node_id=v.node_id,
        name=v.name,
        op_type=v.node.op_type,
        domain=v.node.domain,
        graph=v.graph,
        index=v.index,
        category=spec.category,
        inputs=tuple(v.node.input),
        outputs=tuple(v.node.output),
        multiplier=v.multiplier,
    )


def is_costed(v: Visit) -> bool:
    """True for the ops whose MACs are counted (those in the op registry)."""
    return op_cost(v.node.domain, v.node.op_type) is not None


def _input(v: Visit, i: int | None) -> TensorInfo | None:
    if i is None or i >= len(v.inputs) or not v.node.input[i]:
        return None
    return v.inputs[i]


def _ints(v: Visit, name: str, n: int, default: int) -> tuple[int, ...]:
    """Attribute ``name`` as ints (``default`` on each of ``n`` axes when absent or empty)."""
    value = v.attrs.get(name)
    if not value:
        return (default,) * n
    if not isinstance(value, list) or not all(_is_int(x) for x in value):
        raise _bad_attribute(v, name, value, "a list of ints")
    return tuple(value)


def _int(v: Visit, name: str, default: int) -> int:
    value = v.attrs.get(name, default)
    if not _is_int(value):
        raise _bad_attribute(v, name, value, "an int")
    return int(value)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _bad_attribute(v: Visit, name: str, value: Any, kind: str) -> ShapeError:
    return bad_attribute(v.name, v.node.op_type, name, shown_value(value), kind)


def _bytes(*infos: TensorInfo | None) -> int | None:
    total = 0
    for info in infos:
        if info is None:
            continue
        shape = info.static_shape
        size = None if shape is None else cost.tensor_bytes(shape, info.dtype_name)
        if size is None:
            return None
        total += size
    return total


def cost_visit(v: Visit) -> Layer | None:
    """The Layer for a costed visit (cost None where shapes are unknown); None otherwise."""
    spec = op_cost(v.node.domain, v.node.op_type)
    if isinstance(spec, ConvOp):
        return _conv(v, spec)
    if isinstance(spec, ContractionOp):
        if spec.operands is Operands.EINSUM:
            return _einsum(v, spec)
        return _matmul(v, spec)
    return None


def _conv(v: Visit, spec: ConvOp) -> Layer:
    layout = spec.layout
    if v.attrs.get("channels_last"):  # com.microsoft QLinearConv's NHWC form
        layout = Layout.NHWC
    transposed = spec.category is Category.CONV_TRANSPOSE
    wi, bi = spec.weight, spec.bias
    x, w, b = _input(v, spec.data), _input(v, wi), _input(v, bi)
    y = v.outputs[0] if v.outputs else None
    xs = x.static_shape if x else None
    ws = w.static_shape if w else None
    ys = y.static_shape if y else None
    group = _int(v, "group", 1)
    has_bias = b is not None
    layer = replace(
        _identity(v, spec),
        group=group,
        has_bias=has_bias,
        dtype=x.dtype_name if x else None,
        weight_dtype=w.dtype_name if w else None,
        weight_name=v.node.input[wi] if wi < len(v.node.input) else None,
        bias_name=v.node.input[bi] if b is not None and bi is not None else None,
    )
    if layout is Layout.NHWC:
        xs = None if xs is None or len(xs) < 3 else to_channels_first(xs)
        ys = None if ys is None or len(ys) < 3 else to_channels_first(ys)
    if ws is None or len(ws) < 3:
        return replace(layer, note="weight shape unknown")
    n_sp = len(ws) - 2
    kernel = _ints(v, "kernel_shape", n_sp, 0) if v.attrs.get("kernel_shape") else ws[2:]
    strides = _ints(v, "strides", n_sp, 1)
    dilations = _ints(v, "dilations", n_sp, 1)
    auto_pad = str(v.attrs.get("auto_pad", "NOTSET")) or "NOTSET"
    pads = _ints(v, "pads", 2 * n_sp, 0)
    _check_attrs(v, ws, kernel, strides, dilations, pads, auto_pad, group)
    # A data input of rank < 2 (a sequence, a 1-D Range output) has no channel axis: the
    # weight's count stands in, and the rank check below reports the input shape unknown.
    has_channels = xs is not None and len(xs) >= 2
    if not transposed:
        cout, cin = ws[0], (xs[1] if xs is not None and has_channels else ws[1] * group)
    else:
        cin, cout = ws[0], ws[1] * group
    if layout is Layout.NCHWC:
        cin = ws[1] * group  # blocked layout pads the activation's channel count
    layer = replace(
        layer,
        kernel_shape=tuple(kernel),
        strides=strides,
        dilations=dilations,
        auto_pad=auto_pad,
        weight_shape=ws,
        in_channels=cin,
        out_channels=cout,
        params=prod(ws) + (cout if has_bias else 0),
        weight_bytes=_bytes(w, b),
    )
    if xs is None or len(xs) != n_sp + 2:
        return replace(layer, pads=pads, note="input shape unknown")
    in_sp = xs[2:]
    expected = ws[0] if transposed else ws[1] * group
    if layout is not Layout.NCHWC and xs[1] != expected:  # NCHWc pads activations to its block
        raise ShapeError(
            f"node {v.name!r} ({v.node.op_type}): its weight {ws} with group {group} expects "
            f"{expected} input channels but the input {xs} has {xs[1]}: the model is invalid"
        )
    if not transposed:
        if auto_pad != "NOTSET":
            pads = cost.conv_same_pads(in_sp, kernel, strides, dilations, auto_pad)
        out_sp = cost.conv_output_spatial(in_sp, kernel, strides, pads, dilations, auto_pad)
        out_shape = (xs[0], cout, *out_sp)
    else:
        out_shape = ys if ys is not None else _transpose_out(v, xs, cout, kernel, strides, pads)
        out_sp = tuple(out_shape[2:])
        given = v.attrs.get("output_shape")
        if auto_pad != "NOTSET" or given:
            out_pad = _ints(v, "output_padding", n_sp, 0)
            wanted = _ints(v, "output_shape", 0, 0)[-n_sp:] if given else None
            pads = cost.conv_transpose_same_pads(
                in_sp, kernel, strides, dilations, out_pad, auto_pad, wanted
            )
    sizes = cost.ConvSizes(
        batch=xs[0],
        in_channels=cin,
        out_channels=cout,
        group=group,
        kernel=tuple(kernel),
        in_spatial=tuple(in_sp),
        out_spatial=tuple(out_sp),
    )
    macs = spec.macs(sizes)
    if ys is not None and not transposed and ys != out_shape:
        # ONNX inference and our formula disagree: trust neither, say so.
        return replace(
            layer,
            pads=pads,
            input_shape=xs,
            output_shape=ys,
            note=f"output shape {ys} differs from the formula's {out_shape}",
        )
    bias_adds = prod(out_shape) if has_bias else 0
    if y is None or y.static_shape is None:  # inference was silent: the formula's shape
        elem = y.elem_type if y is not None and y.elem_type else 0
        if not elem:  # ConvInteger accumulates to int32; every other conv keeps X's type
            elem = _INT32 if v.node.op_type == "ConvInteger" else (x.elem_type if x else 0)
        y = TensorInfo(elem_type=elem, shape=tuple(out_shape))
    return replace(
        layer,
        pads=pads,
        input_shape=xs,
        output_shape=tuple(out_shape),
        macs=macs,
        bias_adds=bias_adds,
        activation_bytes=_bytes(x, y),
        note="channels-last tensors: shapes shown in NCHW order" if layout is Layout.NHWC else None,
    )


_AUTO_PAD = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


def _check_attrs(
    v: Visit,
    ws: tuple[int, ...],
    kernel: tuple[int, ...],
    strides: tuple[int, ...],
    dilations: tuple[int, ...],
    pads: tuple[int, ...],
    auto_pad: str,
    group: int,
) -> None:
    """Attributes no runtime would accept are an invalid model, never a guessed cost."""
    n_sp = len(ws) - 2
    problem = None
    lengths = {"kernel_shape": kernel, "strides": strides, "dilations": dilations}
    for attr, values in lengths.items():
        if len(values) != n_sp:
            problem = f"{attr} {list(values)} does not have one value per spatial axis ({n_sp})"
    if len(pads) != 2 * n_sp:
        problem = f"pads {list(pads)} does not have a begin and an end per spatial axis ({n_sp})"
    elif tuple(kernel) != ws[2:] and len(kernel) == n_sp:
        problem = f"kernel_shape {list(kernel)} does not match the weight {ws}"
    elif min(strides, default=1) < 1 or min(dilations, default=1) < 1:
        problem = "strides and dilations must be at least 1"
    elif min(pads, default=0) < 0:
        problem = "pads must not be negative"
    elif group < 1:
        problem = f"group {group} must be at least 1"
    elif auto_pad not in _AUTO_PAD:
        problem = f"auto_pad {auto_pad!r} is not one of {', '.join(_AUTO_PAD)}"
    elif v.node.op_type == "ConvTranspose" and ws[0] % group:
        problem = f"its {ws[0]} input channels do not split into {group} groups"
    if problem is not None:
        raise ShapeError(f"node {v.name!r} ({v.node.op_type}): {problem}: the model is invalid")


def _transpose_out(
    v: Visit,
    xs: tuple[int, ...],
    cout: int,
    kernel: tuple[int, ...],
    strides: tuple[int, ...],
    pads: tuple[int, ...],
) -> tuple[int, ...]:
    """ConvTranspose output shape when inference left it unknown (ONNX's three ways to say it)."""
    in_sp = xs[2:]
    n_sp = len(in_sp)
    if v.attrs.get("output_shape"):
        out_sp = _ints(v, "output_shape", 0, 0)[-n_sp:]
    elif str(v.attrs.get("auto_pad", "NOTSET")) in ("SAME_UPPER", "SAME_LOWER"):
        out_sp = tuple(i * s for i, s in zip(in_sp, strides, strict=True))
    else:
        out_pad = _ints(v, "output_padding", n_sp, 0)
        dilations = _ints(v, "dilations", n_sp, 1)
        out_sp = cost.conv_transpose_output_spatial(
            in_sp, kernel, strides, pads, dilations, out_pad
        )
    return (xs[0], cout, *out_sp)


def _matmul(v: Visit, spec: ContractionOp) -> Layer:
    y = v.outputs[0] if v.outputs else None
    ys = y.static_shape if y else None
    ai, bi, ci = spec.data, spec.weight, spec.bias
    a, b, c = _input(v, ai), _input(v, bi), _input(v, ci)
    a_s = a.static_shape if a else None
    b_s = b.static_shape if b else None
    if spec.operands is Operands.NBITS:
        kk, nn = _int(v, "K", 0), _int(v, "N", 0)
        b_s = (kk, nn) if kk and nn else None
    layer = replace(
        _identity(v, spec),
        dtype=a.dtype_name if a else None,
        input_shape=a_s,
        output_shape=ys,
        has_bias=c is not None,
        bias_name=v.node.input[ci] if c is not None and ci is not None else None,
    )
    # Params: a constant operand is a weight (usually B; W @ x puts it first); an activation x
    # activation product has none.
    is_weight = b is not None and b.constant
    w, w_s, wi = b, b_s, bi
    if not is_weight and a is not None and a.constant and a_s is not None:
        is_weight, w, w_s, wi = True, a, a_s, ai
    if w is not None:
        layer = replace(
            layer,
            weight_shape=w_s,
            weight_dtype=w.dtype_name,
            weight_name=v.node.input[wi] if is_weight else None,
        )
    if a_s is None or b_s is None or ys is None:
        return replace(layer, note="operand shapes unknown")
    # Ranks no runtime accepts (a 1-D Gemm operand, a 0-D MatMul one) leave the sizes unknown:
    # the formulas below index the last two axes. Inference has reported the conflict.
    low = 2 if spec.operands is Operands.GEMM else 1
    high = 2 if spec.operands is Operands.GEMM else None
    if any(len(s) < low or (high is not None and len(s) > high) for s in (a_s, b_s)):
        return replace(layer, note=f"operand shapes {a_s} and {b_s} do not fit {v.node.op_type}")
    if spec.operands is Operands.GEMM:
        ta, tb = _int(v, "transA", 0), _int(v, "transB", 0)
        m, kd = (a_s[1], a_s[0]) if ta else (a_s[0], a_s[1])
        n = b_s[0] if tb else b_s[1]
        sizes = cost.ContractionSizes(out_shape=(m, n), reduced=(kd,))
        layer = replace(layer, in_channels=kd, out_channels=n)
    else:
        if spec.operands is Operands.FUSED_MATMUL:  # A may be read transposed: K moves
            trans, batch = bool(v.attrs.get("transA")), bool(v.attrs.get("transBatchA"))
            a_s = tuple(d for d in fused_matmul_operand(a_s, trans, batch) if isinstance(d, int))
        kd = a_s[-1] if a_s else 1
        sizes = cost.ContractionSizes(out_shape=ys, reduced=(kd,))
        layer = replace(layer, in_channels=kd, out_channels=ys[-1] if ys else None)
    c_s = c.static_shape if c else None
    bias_elems = prod(c_s) if c_s is not None else 0
    params = (prod(w_s) if is_weight and w_s is not None else 0) + bias_elems
    return replace(
        layer,
        macs=spec.macs(sizes),
        params=params,
        bias_adds=prod(ys) if c is not None else 0,
        weight_bytes=_bytes(w, c) if is_weight else _bytes(c),
        activation_bytes=_bytes(a, y),
    )


def _einsum(v: Visit, spec: ContractionOp) -> Layer | None:
    layer = _identity(v, spec)
    eq = str(v.attrs.get("equation", "")).replace(" ", "")
    lhs = eq.split("->")[0].split(",")
    if len(lhs) == 1:
        return None  # a transpose, diagonal or reduction of one operand: no MACs
    if len(lhs) != 2 or len(v.inputs) != 2:
        return replace(layer, note="einsum of more than two operands: cost not counted")
    a_s, b_s = (tin.static_shape for tin in v.inputs)
    if a_s is None or b_s is None:
        return replace(layer, note="operand shapes unknown")
    shapes = (a_s, b_s)
    terms = _einsum_terms(lhs, shapes)
    if terms is None:
        return replace(layer, note="einsum equation does not match its operands")
    sizes: dict[str, int] = {}
    for term, shape in zip(terms, shapes, strict=True):
        for letter, d in zip(term, shape, strict=True):
            sizes[letter] = d if sizes.get(letter, 1) == 1 else sizes[letter]  # broadcast 1s
    if "->" in eq:
        rhs = eq.split("->")[1].replace("...", _ellipsis_letters(terms, lhs))
    else:  # implicit output: broadcast dims, then the letters used once, sorted
        once = sorted(c for c in sizes if "".join(lhs).count(c) == 1 and c.isalpha())
        rhs = _ellipsis_letters(terms, lhs) + "".join(once)
    if set(rhs) - set(sizes):
        return replace(layer, note="einsum equation does not match its operands")
    if not set(sizes) - set(rhs):
        return None  # an outer or element-wise product, not a contraction
    out = v.outputs[0].static_shape if v.outputs else None
    weights = [
        (name, tin, shape)
        for name, tin, shape in zip(v.node.input, v.inputs, shapes, strict=True)
        if tin.constant
    ]
    if weights:
        name, tin, shape = weights[0]
        layer = replace(layer, weight_name=name, weight_shape=shape, weight_dtype=tin.dtype_name)
    index = cost.ContractionSizes(
        out_shape=tuple(d for c, d in sizes.items() if c in rhs),
        reduced=tuple(d for c, d in sizes.items() if c not in rhs),
    )
    return replace(
        layer,
        input_shape=a_s,
        output_shape=out,
        macs=spec.macs(index),
        params=sum(prod(shape) for _, _, shape in weights),
        bias_adds=0,
    )


# Letters for the dims an einsum "..." stands for (ONNX equations use only a-z, A-Z).
_ELLIPSIS = "0123456789"


def _einsum_terms(
    lhs: list[str], shapes: tuple[tuple[int, ...], tuple[int, ...]]
) -> list[str] | None:
    """Operand terms with "..." replaced by one letter per broadcast dim (right-aligned)."""
    out = []
    for term, shape in zip(lhs, shapes, strict=True):
        if "..." in term:
            n = len(shape) - (len(term) - 3)
            if n < 0 or n > len(_ELLIPSIS):
                return None
            term = term.replace("...", _ELLIPSIS[len(_ELLIPSIS) - n :])
        if len(term) != len(shape):
            return None
        out.append(term)
    return out


def _ellipsis_letters(terms: list[str], lhs: list[str]) -> str:
    """The letters "..." became in the operand with the most broadcast dims."""
    counts = [len(t) - (len(raw) - 3) for t, raw in zip(terms, lhs, strict=True) if "..." in raw]
    n = max(counts, default=0)
    return _ELLIPSIS[len(_ELLIPSIS) - n :] if n else ""
