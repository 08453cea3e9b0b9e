"""Reverse-mode gradients of a convolutional ONNX region in numpy, for ``fix.tune``.

A small interpreter, not a framework: the ops that follow convolutions in exported CNNs (Conv,
ConvTranspose, BatchNormalization, activations, elementwise arithmetic, Concat/Split, pooling,
nearest Resize, reshapes), in float32, each a forward and a backward. An op outside the table
raises ``Unsupported`` naming it, and ``tune`` declines with that reason; ``tune`` also holds the
forward to onnxruntime's own output before it trusts any gradient.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import helper

F32 = np.float32
Array = np.ndarray


class Unsupported(Exception):
    """The region holds an op (or an attribute of one) the interpreter does not cover."""


def _attr(node: onnx.NodeProto, name: str, default: Any = None) -> Any:
    for a in node.attribute:
        if a.name == name:
            v = helper.get_attribute_value(a)
            return v.decode() if isinstance(v, bytes) else v
    return default


def _in(ins: Sequence[Array | None], k: int) -> Array | None:
    return ins[k] if len(ins) > k else None


def _unbroadcast(g: Array, shape: tuple[int, ...]) -> Array:
    """Sum ``g`` down to ``shape`` (the inverse of numpy broadcasting)."""
    while g.ndim > len(shape):
        g = g.sum(0)
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    return g.sum(axes, keepdims=True) if axes else g


# --- convolution geometry -------------------------------------------------------------------


@dataclass(frozen=True)
class _Geo:
    strides: tuple[int, int]
    dilations: tuple[int, int]
    pads: tuple[int, int, int, int]  # top, left, bottom, right
    group: int


def _as2d(x: Array) -> Array:
    return x[:, :, None, :] if x.ndim == 3 else x


def _conv_geo(node: onnx.NodeProto, x: Array, w: Array) -> _Geo:
    nd = w.ndim - 2
    if nd not in (1, 2):
        raise Unsupported(f"{node.op_type} with {nd} spatial dims")
    k = list(w.shape[2:])
    s = list(_attr(node, "strides", [1] * nd))
    d = list(_attr(node, "dilations", [1] * nd))
    p = list(_attr(node, "pads", [0] * 2 * nd))
    auto = _attr(node, "auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        p = [0] * 2 * nd
        for i in range(nd):
            size = x.shape[2 + i]
            out = -(-size // s[i])
            total = max(0, (out - 1) * s[i] + (k[i] - 1) * d[i] + 1 - size)
            small = total // 2
            p[i], p[i + nd] = (
                (small, total - small) if auto == "SAME_UPPER" else (total - small, small)
            )
    elif auto == "VALID":
        p = [0] * 2 * nd
    if nd == 1:
        return _Geo((1, s[0]), (1, d[0]), (0, p[0], 0, p[1]), int(_attr(node, "group", 1)))
    return _Geo((s[0], s[1]), (d[0], d[1]), (p[0], p[1], p[2], p[3]), int(_attr(node, "group", 1)))


def _taps(kh: int, kw: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(kh) for j in range(kw)]


def _window(a: Array, i: int, j: int, geo: _Geo, oh: int, ow: int) -> Any:
    """The NHWC slice tap (i, j) reads for every output position (a view)."""
    (sh, sw), (dh, dw) = geo.strides, geo.dilations
    return a[:, i * dh : i * dh + (oh - 1) * sh + 1 : sh, j * dw : j * dw + (ow - 1) * sw + 1 : sw]


def _mix(xs: Array, w: Array, group: int) -> Array:
    """[N,H,W,C] x [O, C/g] -> [N,H,W,O] for one tap, grouped."""
    n, h, wd, c = xs.shape
    if group == 1:
        return np.asarray((np.ascontiguousarray(xs).reshape(-1, c) @ w.T).reshape(n, h, wd, -1))
    o = w.shape[0]
    xg = xs.reshape(n, h, wd, group, c // group)
    wg = w.reshape(group, o // group, c // group)
    return np.asarray(np.einsum("nhwgc,goc->nhwgo", xg, wg, optimize=True).reshape(n, h, wd, o))


def _mix_t(dy: Array, w: Array, group: int) -> Array:
    """The transpose of ``_mix``: [N,H,W,O] -> [N,H,W,C]."""
    n, h, wd, o = dy.shape
    if group == 1:
        return np.asarray((np.ascontiguousarray(dy).reshape(-1, o) @ w).reshape(n, h, wd, -1))
    c = w.shape[1] * group
    dg = dy.reshape(n, h, wd, group, o // group)
    wg = w.reshape(group, o // group, c // group)
    return np.asarray(np.einsum("nhwgo,goc->nhwgc", dg, wg, optimize=True).reshape(n, h, wd, c))


def _mix_w(xs: Array, dy: Array, group: int) -> Array:
    """dL/dw for one tap: [O, C/g]."""
    c, o = xs.shape[-1], dy.shape[-1]
    if group == 1:
        return np.asarray(
            np.ascontiguousarray(dy).reshape(-1, o).T @ np.ascontiguousarray(xs).reshape(-1, c)
        )
    xg = xs.reshape(-1, group, c // group)
    dg = dy.reshape(-1, group, o // group)
    return np.asarray(np.einsum("pgo,pgc->goc", dg, xg, optimize=True).reshape(o, c // group))


# --- ops ---------------------------------------------------------------------------------------
# forward(node, ins) -> (outs, saved); backward(node, ins, outs, saved, douts) -> dins


def _conv(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    x, w, b = ins[0], ins[1], _in(ins, 2)
    geo = _conv_geo(node, x, w)
    x2, w2 = _as2d(x), _as2d(w)
    t, left, bottom, right = geo.pads
    xp = np.pad(x2.transpose(0, 2, 3, 1), ((0, 0), (t, bottom), (left, right), (0, 0)))
    kh, kw = w2.shape[2:]
    (sh, sw), (dh, dw) = geo.strides, geo.dilations
    oh = (xp.shape[1] - (kh - 1) * dh - 1) // sh + 1
    ow = (xp.shape[2] - (kw - 1) * dw - 1) // sw + 1
    y = np.zeros((x2.shape[0], oh, ow, w2.shape[0]), x.dtype)
    for i, j in _taps(kh, kw):
        y += _mix(_window(xp, i, j, geo, oh, ow), w2[:, :, i, j], geo.group)
    if b is not None:
        y += b
    out = y.transpose(0, 3, 1, 2)
    return [out[:, :, 0, :] if x.ndim == 3 else out], (geo, xp)


def _conv_back(
    node: onnx.NodeProto, ins: Any, outs: Any, saved: Any, d: list[Any], need: Sequence[bool]
) -> list[Any]:
    geo, xp = saved
    x, w = ins[0], ins[1]
    w2 = _as2d(w)
    dy = _as2d(d[0]).transpose(0, 2, 3, 1)
    oh, ow = dy.shape[1:3]
    kh, kw = w2.shape[2:]
    want_x, want_w = need[0], len(need) > 1 and need[1]
    dxp = np.zeros_like(xp) if want_x else None
    dw = np.zeros_like(w2) if want_w else None
    for i, j in _taps(kh, kw):
        if dw is not None:
            dw[:, :, i, j] = _mix_w(_window(xp, i, j, geo, oh, ow), dy, geo.group)
        if dxp is not None:
            _window(dxp, i, j, geo, oh, ow)[...] += _mix_t(dy, w2[:, :, i, j], geo.group)
    db = dy.sum((0, 1, 2)) if len(need) > 2 and need[2] else None
    if dxp is None:
        return [None, None if dw is None else dw.reshape(w.shape), db]
    t, left, bottom, right = geo.pads
    dx = dxp[:, t : dxp.shape[1] - bottom, left : dxp.shape[2] - right].transpose(0, 3, 1, 2)
    dx = dx[:, :, 0, :] if x.ndim == 3 else dx
    return [dx, None if dw is None else dw.reshape(w.shape), db]


def _convt(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    x, w, b = ins[0], ins[1], _in(ins, 2)
    if _attr(node, "auto_pad", "NOTSET") not in ("NOTSET", "VALID") or _attr(node, "output_shape"):
        raise Unsupported("ConvTranspose with auto_pad or output_shape")
    nd = w.ndim - 2
    if nd not in (1, 2):
        raise Unsupported(f"ConvTranspose with {nd} spatial dims")
    group = int(_attr(node, "group", 1))
    s = list(_attr(node, "strides", [1] * nd))
    d = list(_attr(node, "dilations", [1] * nd))
    p = list(_attr(node, "pads", [0] * 2 * nd))
    op = list(_attr(node, "output_padding", [0] * nd))
    if nd == 1:
        s, d, p, op = [1, *s], [1, *d], [0, p[0], 0, p[1]], [0, *op]
    geo = _Geo((s[0], s[1]), (d[0], d[1]), (p[0], p[1], p[2], p[3]), group)
    x2, w2 = _as2d(x), _as2d(w)
    n, _, h, wd = x2.shape
    kh, kw = w2.shape[2:]
    og = w2.shape[1]
    fh = (h - 1) * s[0] + (kh - 1) * d[0] + 1 + op[0]
    fw = (wd - 1) * s[1] + (kw - 1) * d[1] + 1 + op[1]
    xh = np.ascontiguousarray(x2.transpose(0, 2, 3, 1))
    full = np.zeros((n, fh, fw, og * group), x.dtype)
    for i, j in _taps(kh, kw):
        _window(full, i, j, geo, h, wd)[...] += _mix(xh, _t_tap(w2[:, :, i, j], group), group)
    y = full[:, p[0] : fh - p[2], p[1] : fw - p[3]]
    if b is not None:
        y = y + b
    out = y.transpose(0, 3, 1, 2)
    return [out[:, :, 0, :] if x.ndim == 3 else out], (geo, xh, (fh, fw))


def _t_tap(wt: Array, group: int) -> Array:
    """A ConvTranspose tap [C, O/g] as the [O, C/g] layout ``_mix`` uses."""
    c, og = wt.shape
    return wt.reshape(group, c // group, og).transpose(0, 2, 1).reshape(group * og, c // group)


def _convt_back(
    node: onnx.NodeProto, ins: Any, outs: Any, saved: Any, d: list[Any], need: Sequence[bool]
) -> list[Any]:
    geo, xh, (fh, fw) = saved
    x, w = ins[0], ins[1]
    w2 = _as2d(w)
    group = geo.group
    dy = _as2d(d[0]).transpose(0, 2, 3, 1)
    t, left, bottom, right = geo.pads
    dfull = np.zeros((dy.shape[0], fh, fw, dy.shape[3]), dy.dtype)
    dfull[:, t : fh - bottom, left : fw - right] = dy
    _, h, wd, c = xh.shape
    kh, kw = w2.shape[2:]
    want_w = len(need) > 1 and need[1]
    dx = np.zeros_like(xh) if need[0] else None
    dw = np.zeros_like(w2) if want_w else None
    og = w2.shape[1]
    for i, j in _taps(kh, kw):
        ds = _window(dfull, i, j, geo, h, wd)
        if dx is not None:
            dx += _mix_t(ds, _t_tap(w2[:, :, i, j], group), group)
        if dw is not None:
            g_tap = _mix_w(xh, ds, group)  # [O, C/g], the layout _t_tap makes
            dw[:, :, i, j] = g_tap.reshape(group, og, c // group).transpose(0, 2, 1).reshape(c, og)
    db = dy.sum((0, 1, 2)) if len(need) > 2 and need[2] else None
    dxo = None
    if dx is not None:
        dxo = dx.transpose(0, 3, 1, 2)
        dxo = dxo[:, :, 0, :] if x.ndim == 3 else dxo
    return [dxo, None if dw is None else dw.reshape(w.shape), db]


def _bn(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    if int(_attr(node, "training_mode", 0)):
        raise Unsupported("BatchNormalization in training mode")
    x, scale, bias, mean, var = ins[:5]
    a = (scale / np.sqrt(var + _attr(node, "epsilon", 1e-5))).astype(x.dtype)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    c = (bias - mean * a).astype(x.dtype)
    return [x * a.reshape(shape) + c.reshape(shape)], a.reshape(shape)


def _unary(
    f: Callable[[onnx.NodeProto, Array], Array], df: Callable[[onnx.NodeProto, Array, Array], Array]
) -> tuple[Callable[..., Any], Callable[..., Any]]:
    def fwd(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
        return [np.asarray(f(node, ins[0]), ins[0].dtype)], None

    def back(node: onnx.NodeProto, ins: Any, outs: Any, saved: Any, d: list[Any]) -> list[Any]:
        return [d[0] * df(node, ins[0], outs[0])]

    return fwd, back


def _sig(x: Array) -> Array:
    with np.errstate(over="ignore"):  # exp(-x) = inf gives 0, the right limit
        return np.asarray(1 / (1 + np.exp(-x)), x.dtype)


def _hs_a(n: onnx.NodeProto) -> tuple[float, float]:
    return float(_attr(n, "alpha", 0.2)), float(_attr(n, "beta", 0.5))


def _clip_bounds(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[float, float]:
    lo, hi = _in(ins, 1), _in(ins, 2)
    low = float(lo.reshape(-1)[0]) if lo is not None else float(_attr(node, "min", -math.inf))
    high = float(hi.reshape(-1)[0]) if hi is not None else float(_attr(node, "max", math.inf))
    return low, high


def _clip(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    low, high = _clip_bounds(node, ins)
    return [np.clip(ins[0], low, high).astype(ins[0].dtype)], (low, high)


def _clip_back(node: onnx.NodeProto, ins: Any, outs: Any, saved: Any, d: list[Any]) -> list[Any]:
    low, high = saved
    x = ins[0]
    return [d[0] * ((x >= low) & (x <= high))]


def _binary(op: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
    def fwd(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
        a, b = ins[0], ins[1]
        r = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}[op](a, b)
        return [np.asarray(r, np.result_type(a, b))], None

    def back(node: onnx.NodeProto, ins: Any, outs: Any, saved: Any, d: list[Any]) -> list[Any]:
        a, b, g = ins[0], ins[1], d[0]
        if op == "Add":
            ga, gb = g, g
        elif op == "Sub":
            ga, gb = g, -g
        elif op == "Mul":
            ga, gb = g * b, g * a
        else:
            ga, gb = g / b, -g * a / (b * b)
        return [_unbroadcast(ga, a.shape), _unbroadcast(gb, b.shape)]

    return fwd, back


def _concat(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    return [np.concatenate(list(ins), int(_attr(node, "axis")))], None


def _concat_back(node: onnx.NodeProto, ins: Any, outs: Any, saved: Any, d: list[Any]) -> list[Any]:
    axis = int(_attr(node, "axis")) % ins[0].ndim
    edges = np.cumsum([a.shape[axis] for a in ins])[:-1]
    return list(np.split(d[0], edges, axis))


def _split(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    x = ins[0]
    axis = int(_attr(node, "axis", 0)) % x.ndim
    sizes = _in(ins, 1)
    parts = [int(v) for v in sizes] if sizes is not None else _attr(node, "split")
    if parts is None:
        n = len(node.output)
        parts = [x.shape[axis] // n] * n
    return list(np.split(x, np.cumsum(parts)[:-1], axis)), axis


def _split_back(node: onnx.NodeProto, ins: Any, outs: Any, saved: Any, d: list[Any]) -> list[Any]:
    grads = [g if g is not None else np.zeros_like(o) for g, o in zip(d, outs, strict=True)]
    return [np.concatenate(grads, saved)]


def _gap(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    x = ins[0]
    return [x.mean(tuple(range(2, x.ndim)), keepdims=True)], None


def _gap_back(node: onnx.NodeProto, ins: Any, outs: Any, saved: Any, d: list[Any]) -> list[Any]:
    x = ins[0]
    area = math.prod(x.shape[2:])
    return [np.broadcast_to(d[0] / area, x.shape).astype(x.dtype)]


def _maxpool(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    x = ins[0]
    if len(node.output) > 1 or int(_attr(node, "ceil_mode", 0)) or x.ndim != 4:
        raise Unsupported("MaxPool with indices, ceil_mode or not 2-D")
    k = list(_attr(node, "kernel_shape"))
    fake = np.zeros((1, 1, *k), F32)
    geo = _conv_geo(node, x, fake)
    t, left, bottom, right = geo.pads
    xp = np.pad(
        x.transpose(0, 2, 3, 1),
        ((0, 0), (t, bottom), (left, right), (0, 0)),
        constant_values=-np.inf,
    )
    (sh, sw), (dh, dw) = geo.strides, geo.dilations
    oh = (xp.shape[1] - (k[0] - 1) * dh - 1) // sh + 1
    ow = (xp.shape[2] - (k[1] - 1) * dw - 1) // sw + 1
    y = np.full((x.shape[0], oh, ow, x.shape[1]), -np.inf, x.dtype)
    for i, j in _taps(k[0], k[1]):
        np.maximum(y, _window(xp, i, j, geo, oh, ow), out=y)
    return [y.transpose(0, 3, 1, 2)], (geo, xp, y, k)


def _maxpool_back(node: onnx.NodeProto, ins: Any, outs: Any, saved: Any, d: list[Any]) -> list[Any]:
    geo, xp, y, k = saved
    dy = d[0].transpose(0, 2, 3, 1)
    oh, ow = y.shape[1:3]
    dxp = np.zeros_like(xp)
    taken = np.zeros(y.shape, bool)  # a tie sends the gradient to the first maximum only
    for i, j in _taps(k[0], k[1]):
        hit = (_window(xp, i, j, geo, oh, ow) == y) & ~taken
        _window(dxp, i, j, geo, oh, ow)[...] += dy * hit
        taken |= hit
    t, left, bottom, right = geo.pads
    dx = dxp[:, t : dxp.shape[1] - bottom, left : dxp.shape[2] - right]
    return [dx.transpose(0, 3, 1, 2)]


def _nearest_index(node: onnx.NodeProto, size_in: int, size_out: int, scale: float) -> Array:
    """The source index of every output index along one axis (Resize, mode nearest)."""
    mode = _attr(node, "coordinate_transformation_mode", "half_pixel")
    rounding = _attr(node, "nearest_mode", "round_prefer_floor")
    i = np.arange(size_out, dtype=np.float64)
    if mode == "asymmetric":
        src = i / scale
    elif mode == "half_pixel":
        src = (i + 0.5) / scale - 0.5
    elif mode == "pytorch_half_pixel":
        src = (i + 0.5) / scale - 0.5 if size_out > 1 else np.zeros_like(i)
    elif mode == "align_corners":
        src = i * (size_in - 1) / (size_out - 1) if size_out > 1 else np.zeros_like(i)
    elif mode == "tf_half_pixel_for_nn":
        src = (i + 0.5) / scale
    else:
        raise Unsupported(f"Resize coordinate_transformation_mode {mode}")
    if rounding == "floor":
        idx = np.floor(src)
    elif rounding == "ceil":
        idx = np.ceil(src)
    elif rounding == "round_prefer_ceil":
        idx = np.floor(src + 0.5)
    else:  # round_prefer_floor
        idx = np.ceil(src - 0.5)
    return np.clip(idx, 0, size_in - 1).astype(np.int64)


def _resize(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    x = ins[0]
    if _attr(node, "mode", "nearest") != "nearest" or _attr(node, "axes") is not None:
        raise Unsupported("Resize other than nearest on every axis")
    scales, sizes = _in(ins, 2), _in(ins, 3)
    if sizes is not None and sizes.size:
        out = [int(v) for v in sizes]
        sc = [o / i for o, i in zip(out, x.shape, strict=True)]
    elif scales is not None and scales.size:
        sc = [float(v) for v in scales]
        out = [math.floor(i * s) for i, s in zip(x.shape, sc, strict=True)]
    else:
        raise Unsupported("Resize without scales or sizes")
    index = [
        None if o == i else _nearest_index(node, i, o, s)
        for i, o, s in zip(x.shape, out, sc, strict=True)
    ]
    y = x
    for axis, idx in enumerate(index):
        if idx is not None:
            y = np.take(y, idx, axis)
    return [np.ascontiguousarray(y)], index


def _resize_back(node: onnx.NodeProto, ins: Any, outs: Any, saved: Any, d: list[Any]) -> list[Any]:
    g = d[0]
    x = ins[0]
    for axis in reversed(range(x.ndim)):
        idx = saved[axis]
        if idx is None:
            continue
        moved = np.moveaxis(g, axis, 0)
        acc = np.zeros((x.shape[axis], *moved.shape[1:]), g.dtype)
        np.add.at(acc, idx, moved)
        g = np.moveaxis(acc, 0, axis)
    return [g]


def _reshape_like(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    x = ins[0]
    op = node.op_type
    if op == "Reshape":
        shape = [int(v) for v in ins[1]]
        if not int(_attr(node, "allowzero", 0)):
            shape = [x.shape[i] if v == 0 else v for i, v in enumerate(shape)]
        y = x.reshape(shape)
    elif op == "Flatten":
        axis = int(_attr(node, "axis", 1)) % max(x.ndim, 1)
        y = x.reshape(math.prod(x.shape[:axis]), -1)
    elif op in ("Squeeze", "Unsqueeze"):
        axes = _in(ins, 1)
        ax = [int(v) for v in axes] if axes is not None else _attr(node, "axes")
        if op == "Squeeze":
            ax = ax if ax is not None else [i for i, s in enumerate(x.shape) if s == 1]
            y = np.squeeze(x, tuple(a % x.ndim for a in ax))
        else:
            rank = x.ndim + len(ax)
            y = np.expand_dims(x, tuple(sorted(a % rank for a in ax)))
    else:  # Identity
        y = x
    return [y], None


def _reshape_back(node: onnx.NodeProto, ins: Any, outs: Any, saved: Any, d: list[Any]) -> list[Any]:
    return [d[0].reshape(ins[0].shape)]


def _transpose(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    x = ins[0]
    perm = _attr(node, "perm") or list(reversed(range(x.ndim)))
    return [x.transpose(perm)], perm


def _transpose_back(
    node: onnx.NodeProto, ins: Any, outs: Any, saved: Any, d: list[Any]
) -> list[Any]:
    return [d[0].transpose(np.argsort(saved))]


def _softmax(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    x = ins[0]
    axis = int(_attr(node, "axis", -1))
    e = np.exp(x - x.max(axis, keepdims=True))
    return [(e / e.sum(axis, keepdims=True)).astype(x.dtype)], axis


def _softmax_back(node: onnx.NodeProto, ins: Any, outs: Any, saved: Any, d: list[Any]) -> list[Any]:
    y, g = outs[0], d[0]
    return [y * (g - (g * y).sum(saved, keepdims=True))]


def _no_grad(node: onnx.NodeProto, ins: Any, outs: Any, saved: Any, d: list[Any]) -> list[Any]:
    """Shape arithmetic and constants: their outputs do not depend smoothly on any input."""
    return [None] * len(ins)


def _shape(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    dims = ins[0].shape
    start, end = int(_attr(node, "start", 0)), _attr(node, "end")
    return [np.array(dims[start : None if end is None else int(end)], np.int64)], None


def _constant_of_shape(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    value = _attr(node, "value")
    fill = np.zeros(1, F32) if value is None else onnx.numpy_helper.to_array(value).reshape(-1)
    return [np.full([int(v) for v in ins[0]], fill[0], fill.dtype)], None


def _range(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    start, limit, delta = (np.asarray(v).reshape(()) for v in ins[:3])
    kind = np.result_type(start, limit, delta)
    return [np.arange(start.item(), limit.item(), delta.item()).astype(kind)], None


_CASTS: dict[int, type[np.generic]] = {
    onnx.TensorProto.FLOAT: np.float32,
    onnx.TensorProto.DOUBLE: np.float64,
    onnx.TensorProto.FLOAT16: np.float16,
    onnx.TensorProto.INT64: np.int64,
    onnx.TensorProto.INT32: np.int32,
    onnx.TensorProto.INT8: np.int8,
    onnx.TensorProto.UINT8: np.uint8,
    onnx.TensorProto.BOOL: np.bool_,
}


def _cast(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    to = _CASTS.get(int(_attr(node, "to")))
    if to is None:
        raise Unsupported(f"Cast to element type {_attr(node, 'to')}")
    return [ins[0].astype(to)], None


def _cast_back(node: onnx.NodeProto, ins: Any, outs: Any, saved: Any, d: list[Any]) -> list[Any]:
    smooth = ins[0].dtype.kind == "f" and outs[0].dtype.kind == "f"
    return [d[0].astype(ins[0].dtype) if smooth else None]


def _slices(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[Any, ...]:
    x = ins[0]
    if len(ins) > 1:
        starts, ends = [int(v) for v in ins[1]], [int(v) for v in ins[2]]
        axes_in, steps_in = _in(ins, 3), _in(ins, 4)
        axes = [int(v) for v in axes_in] if axes_in is not None else list(range(len(starts)))
        steps = [int(v) for v in steps_in] if steps_in is not None else [1] * len(starts)
    else:  # opset < 10: attributes
        starts, ends = list(_attr(node, "starts")), list(_attr(node, "ends"))
        axes = list(_attr(node, "axes", range(len(starts))))
        steps = [1] * len(starts)
    index: list[Any] = [slice(None)] * x.ndim
    for a, b, e, st in zip(axes, starts, ends, steps, strict=True):
        index[a % x.ndim] = slice(b, e, st)  # Python's clamping is ONNX's
    return tuple(index)


def _slice(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    index = _slices(node, ins)
    return [ins[0][index]], index


def _slice_back(node: onnx.NodeProto, ins: Any, outs: Any, saved: Any, d: list[Any]) -> list[Any]:
    dx = np.zeros_like(ins[0])
    dx[saved] = d[0]
    return [dx]


def _gather(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    x, idx = ins[0], np.asarray(ins[1], np.int64)
    axis = int(_attr(node, "axis", 0)) % x.ndim
    idx = np.where(idx < 0, idx + x.shape[axis], idx)
    return [np.take(x, idx, axis)], (axis, idx)


def _gather_back(node: onnx.NodeProto, ins: Any, outs: Any, saved: Any, d: list[Any]) -> list[Any]:
    axis, idx = saved
    x = ins[0]
    if x.dtype.kind != "f":
        return [None]
    g = np.moveaxis(d[0], list(range(axis, axis + idx.ndim)), list(range(idx.ndim)))
    acc = np.zeros((x.shape[axis], *np.moveaxis(x, axis, 0).shape[1:]), x.dtype)
    np.add.at(acc, idx, g)
    return [np.moveaxis(acc, 0, axis)]


def _expand(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    x = ins[0]
    shape = np.broadcast_shapes(x.shape, tuple(int(v) for v in ins[1]))
    return [np.array(np.broadcast_to(x, shape))], None


def _expand_back(node: onnx.NodeProto, ins: Any, outs: Any, saved: Any, d: list[Any]) -> list[Any]:
    return [_unbroadcast(d[0], ins[0].shape) if ins[0].dtype.kind == "f" else None]


def _matmul(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    a, b = ins[0], ins[1]
    if a.ndim < 2 or b.ndim < 2:
        raise Unsupported("MatMul with a 1-D operand")
    return [np.matmul(a, b)], None


def _matmul_back(node: onnx.NodeProto, ins: Any, outs: Any, saved: Any, d: list[Any]) -> list[Any]:
    a, b, g = ins[0], ins[1], d[0]
    da = np.matmul(g, np.swapaxes(b, -1, -2))
    db = np.matmul(np.swapaxes(a, -1, -2), g)
    return [_unbroadcast(da, a.shape), _unbroadcast(db, b.shape)]


def _gemm(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    a, b, c = ins[0], ins[1], _in(ins, 2)
    alpha, beta = float(_attr(node, "alpha", 1.0)), float(_attr(node, "beta", 1.0))
    ta, tb = (
        a.T if int(_attr(node, "transA", 0)) else a,
        b.T if int(_attr(node, "transB", 0)) else b,
    )
    y = alpha * (ta @ tb)
    if c is not None:
        y = y + beta * c
    return [np.asarray(y, a.dtype)], (alpha, beta)


def _gemm_back(node: onnx.NodeProto, ins: Any, outs: Any, saved: Any, d: list[Any]) -> list[Any]:
    alpha, beta = saved
    a, b, c, g = ins[0], ins[1], _in(ins, 2), d[0]
    trans_a, trans_b = int(_attr(node, "transA", 0)), int(_attr(node, "transB", 0))
    ta, tb = a.T if trans_a else a, b.T if trans_b else b
    dta, dtb = alpha * (g @ tb.T), alpha * (ta.T @ g)
    dc = None if c is None else _unbroadcast(beta * g, c.shape)
    return [dta.T if trans_a else dta, dtb.T if trans_b else dtb, dc]


def _reduce_axes(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[int, ...]:
    x = ins[0]
    given = _in(ins, 1)
    axes = [int(v) for v in given] if given is not None else _attr(node, "axes")
    if not axes:
        if int(_attr(node, "noop_with_empty_axes", 0)):
            return ()
        return tuple(range(x.ndim))
    return tuple(sorted(a % x.ndim for a in axes))


def _reduce_mean(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    axes = _reduce_axes(node, ins)
    keep = bool(_attr(node, "keepdims", 1))
    x = ins[0]
    return [np.asarray(x.mean(axes, keepdims=keep) if axes else x, x.dtype)], (axes, keep)


def _reduce_mean_back(
    node: onnx.NodeProto, ins: Any, outs: Any, saved: Any, d: list[Any]
) -> list[Any]:
    axes, keep = saved
    x, g = ins[0], d[0]
    if not axes:
        return [g]
    if not keep:
        g = np.expand_dims(g, axes)
    count = math.prod(x.shape[a] for a in axes)
    return [np.broadcast_to(g / count, x.shape).astype(x.dtype)]


def _pow(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    return [np.asarray(np.power(ins[0], ins[1]), ins[0].dtype)], None


def _pow_back(node: onnx.NodeProto, ins: Any, outs: Any, saved: Any, d: list[Any]) -> list[Any]:
    x, e, y, g = ins[0], ins[1], outs[0], d[0]
    dx = g * e * np.power(x, e - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        de = g * y * np.log(np.where(x > 0, x, 1))
    return [_unbroadcast(dx, x.shape), _unbroadcast(de, e.shape)]


def _avgpool(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    x = ins[0]
    if int(_attr(node, "ceil_mode", 0)) or x.ndim != 4:
        raise Unsupported("AveragePool with ceil_mode or not 2-D")
    k = list(_attr(node, "kernel_shape"))
    geo = _conv_geo(node, x, np.zeros((1, 1, *k), F32))
    t, left, bottom, right = geo.pads
    pad = ((0, 0), (t, bottom), (left, right), (0, 0))
    xp = np.pad(x.transpose(0, 2, 3, 1), pad)
    (sh, sw), (dh, dw) = geo.strides, geo.dilations
    oh = (xp.shape[1] - (k[0] - 1) * dh - 1) // sh + 1
    ow = (xp.shape[2] - (k[1] - 1) * dw - 1) // sw + 1
    if int(_attr(node, "count_include_pad", 0)):
        count = np.full((1, oh, ow, 1), k[0] * k[1], x.dtype)
    else:
        ones = np.pad(np.ones((1, *x.shape[2:], 1), x.dtype), pad)
        count = sum(_window(ones, i, j, geo, oh, ow) for i, j in _taps(k[0], k[1]))
    y = sum(_window(xp, i, j, geo, oh, ow) for i, j in _taps(k[0], k[1])) / count
    return [np.asarray(y, x.dtype).transpose(0, 3, 1, 2)], (geo, xp.shape, count, k, oh, ow)


def _avgpool_back(node: onnx.NodeProto, ins: Any, outs: Any, saved: Any, d: list[Any]) -> list[Any]:
    geo, padded, count, k, oh, ow = saved
    g = d[0].transpose(0, 2, 3, 1) / count
    dxp = np.zeros(padded, g.dtype)
    for i, j in _taps(k[0], k[1]):
        _window(dxp, i, j, geo, oh, ow)[...] += g
    t, left, bottom, right = geo.pads
    dx = dxp[:, t : padded[1] - bottom, left : padded[2] - right]
    return [dx.transpose(0, 3, 1, 2).astype(ins[0].dtype)]


@dataclass(frozen=True)
class _Op:
    forward: Callable[[onnx.NodeProto, Sequence[Any]], tuple[list[Array], Any]]
    backward: Callable[..., list[Any]]
    partial: bool = False  # its backward takes ``need`` and skips the gradients nobody reads


def _pair(fb: tuple[Callable[..., Any], Callable[..., Any]]) -> _Op:
    return _Op(fb[0], fb[1])


OPS: dict[str, _Op] = {
    "Conv": _Op(_conv, _conv_back, partial=True),
    "ConvTranspose": _Op(_convt, _convt_back, partial=True),
    "BatchNormalization": _Op(_bn, lambda n, i, o, a, d: [d[0] * a]),
    "Relu": _pair(_unary(lambda n, x: np.maximum(x, 0), lambda n, x, y: x > 0)),
    "LeakyRelu": _pair(
        _unary(
            lambda n, x: np.where(x > 0, x, x * _attr(n, "alpha", 0.01)),
            lambda n, x, y: np.where(x > 0, 1.0, _attr(n, "alpha", 0.01)),
        )
    ),
    "Sigmoid": _pair(_unary(lambda n, x: _sig(x), lambda n, x, y: y * (1 - y))),
    "Tanh": _pair(_unary(lambda n, x: np.tanh(x), lambda n, x, y: 1 - y * y)),
    "HardSigmoid": _pair(
        _unary(
            lambda n, x: np.clip(_hs_a(n)[0] * x + _hs_a(n)[1], 0, 1),
            lambda n, x, y: ((y > 0) & (y < 1)) * _hs_a(n)[0],
        )
    ),
    "HardSwish": _pair(
        _unary(
            lambda n, x: x * np.clip(x / 6 + 0.5, 0, 1),
            lambda n, x, y: np.where(x < -3, 0, np.where(x > 3, 1, x / 3 + 0.5)),
        )
    ),
    "Clip": _Op(_clip, _clip_back),
    "Add": _pair(_binary("Add")),
    "Sub": _pair(_binary("Sub")),
    "Mul": _pair(_binary("Mul")),
    "Div": _pair(_binary("Div")),
    "Concat": _Op(_concat, _concat_back),
    "Split": _Op(_split, _split_back),
    "GlobalAveragePool": _Op(_gap, _gap_back),
    "MaxPool": _Op(_maxpool, _maxpool_back),
    "Resize": _Op(_resize, _resize_back),
    "Reshape": _Op(_reshape_like, _reshape_back),
    "Flatten": _Op(_reshape_like, _reshape_back),
    "Squeeze": _Op(_reshape_like, _reshape_back),
    "Unsqueeze": _Op(_reshape_like, _reshape_back),
    "Identity": _Op(_reshape_like, _reshape_back),
    "Transpose": _Op(_transpose, _transpose_back),
    "Softmax": _Op(_softmax, _softmax_back),
    "Exp": _pair(_unary(lambda n, x: np.exp(x), lambda n, x, y: y)),
    "Sqrt": _pair(_unary(lambda n, x: np.sqrt(x), lambda n, x, y: 0.5 / y)),
    "Neg": _pair(_unary(lambda n, x: -x, lambda n, x, y: -np.ones_like(x))),
    "Pow": _Op(_pow, _pow_back),
    "MatMul": _Op(_matmul, _matmul_back),
    "Gemm": _Op(_gemm, _gemm_back),
    "ReduceMean": _Op(_reduce_mean, _reduce_mean_back),
    "AveragePool": _Op(_avgpool, _avgpool_back),
    "Slice": _Op(_slice, _slice_back),
    "Gather": _Op(_gather, _gather_back),
    "Expand": _Op(_expand, _expand_back),
    "Cast": _Op(_cast, _cast_back),
    "Shape": _Op(_shape, _no_grad),
    "ConstantOfShape": _Op(_constant_of_shape, _no_grad),
    "Range": _Op(_range, _no_grad),
}


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
