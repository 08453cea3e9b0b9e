"""Convolutions and pooling, forward and backward, as per-tap matrix products in NHWC."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx

from convaudit.cost import conv_same_pads
from convaudit.fix.autodiff.base import Array, Op, Unsupported, arg, attr
from convaudit.fix.layerfit import as_2d

# --- convolution geometry -------------------------------------------------------------------


@dataclass(frozen=True)
class _Geo:
    strides: tuple[int, int]
    dilations: tuple[int, int]
    pads: tuple[int, int, int, int]  # top, left, bottom, right
    group: int


def _conv_geo(node: onnx.NodeProto, x: Array, kernel: Sequence[int]) -> _Geo:
    """A Conv's or a pool's strides, dilations, explicit pads (auto_pad resolved) and group."""
    nd = len(kernel)
    if nd not in (1, 2):
        raise Unsupported(f"{node.op_type} with {nd} spatial dims")
    s = list(attr(node, "strides", [1] * nd))
    d = list(attr(node, "dilations", [1] * nd))
    p = list(attr(node, "pads", [0] * 2 * nd))
    auto = attr(node, "auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER", "VALID"):
        p = list(conv_same_pads(x.shape[2:], kernel, s, d, auto))
    if nd == 1:
        return _Geo((1, s[0]), (1, d[0]), (0, p[0], 0, p[1]), int(attr(node, "group", 1)))
    return _Geo((s[0], s[1]), (d[0], d[1]), (p[0], p[1], p[2], p[3]), int(attr(node, "group", 1)))


def _padded(x2: Array, geo: _Geo, kernel: Sequence[int], fill: float = 0) -> tuple[Array, int, int]:
    """[N,C,H,W] padded as NHWC, and the output's height and width over it."""
    t, left, bottom, right = geo.pads
    pad = ((0, 0), (t, bottom), (left, right), (0, 0))
    xp = np.pad(x2.transpose(0, 2, 3, 1), pad, constant_values=fill)
    (sh, sw), (dh, dw) = geo.strides, geo.dilations
    oh = (xp.shape[1] - (kernel[0] - 1) * dh - 1) // sh + 1
    ow = (xp.shape[2] - (kernel[1] - 1) * dw - 1) // sw + 1
    return xp, oh, ow


def _unpadded(dxp: Array, geo: _Geo) -> Array:
    """The gradient of ``_padded``: the padding cut off, back to [N,C,H,W]."""
    t, left, bottom, right = geo.pads
    return dxp[:, t : dxp.shape[1] - bottom, left : dxp.shape[2] - right].transpose(0, 3, 1, 2)


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
    x, w, b = ins[0], ins[1], arg(ins, 2)
    geo = _conv_geo(node, x, w.shape[2:])
    x2, w2 = as_2d(x), as_2d(w)
    kh, kw = w2.shape[2:]
    xp, oh, ow = _padded(x2, geo, (kh, kw))
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
    w2 = as_2d(w)
    dy = as_2d(d[0]).transpose(0, 2, 3, 1)
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
    dx = None
    if dxp is not None:
        dx = _unpadded(dxp, geo)
        dx = dx[:, :, 0, :] if x.ndim == 3 else dx
    return [dx, None if dw is None else dw.reshape(w.shape), db]


def _convt(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    x, w, b = ins[0], ins[1], arg(ins, 2)
    if attr(node, "auto_pad", "NOTSET") not in ("NOTSET", "VALID") or attr(node, "output_shape"):
        raise Unsupported("ConvTranspose with auto_pad or output_shape")
    nd = w.ndim - 2
    if nd not in (1, 2):
        raise Unsupported(f"ConvTranspose with {nd} spatial dims")
    group = int(attr(node, "group", 1))
    s = list(attr(node, "strides", [1] * nd))
    d = list(attr(node, "dilations", [1] * nd))
    p = list(attr(node, "pads", [0] * 2 * nd))
    op = list(attr(node, "output_padding", [0] * nd))
    if nd == 1:
        s, d, p, op = [1, *s], [1, *d], [0, p[0], 0, p[1]], [0, *op]
    geo = _Geo((s[0], s[1]), (d[0], d[1]), (p[0], p[1], p[2], p[3]), group)
    x2, w2 = as_2d(x), as_2d(w)
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
    w2 = as_2d(w)
    group = geo.group
    dy = as_2d(d[0]).transpose(0, 2, 3, 1)
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


def _gap(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    x = ins[0]
    return [x.mean(tuple(range(2, x.ndim)), keepdims=True)], None


def _gap_back(node: onnx.NodeProto, ins: Any, outs: Any, saved: Any, d: list[Any]) -> list[Any]:
    x = ins[0]
    area = math.prod(x.shape[2:])
    return [np.broadcast_to(d[0] / area, x.shape).astype(x.dtype)]


def _maxpool(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    x = ins[0]
    if len(node.output) > 1 or int(attr(node, "ceil_mode", 0)) or x.ndim != 4:
        raise Unsupported("MaxPool with indices, ceil_mode or not 2-D")
    k = list(attr(node, "kernel_shape"))
    geo = _conv_geo(node, x, k)
    xp, oh, ow = _padded(x, geo, k, fill=-np.inf)
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
    return [_unpadded(dxp, geo)]


def _avgpool(node: onnx.NodeProto, ins: Sequence[Any]) -> tuple[list[Array], Any]:
    x = ins[0]
    if int(attr(node, "ceil_mode", 0)) or x.ndim != 4:
        raise Unsupported("AveragePool with ceil_mode or not 2-D")
    k = list(attr(node, "kernel_shape"))
    geo = _conv_geo(node, x, k)
    xp, oh, ow = _padded(x, geo, k)
    if int(attr(node, "count_include_pad", 0)):
        count = np.full((1, oh, ow, 1), k[0] * k[1], x.dtype)
    else:
        ones = _padded(np.ones((1, 1, *x.shape[2:]), x.dtype), geo, k)[0]
        count = sum(_window(ones, i, j, geo, oh, ow) for i, j in _taps(k[0], k[1]))
    y = sum(_window(xp, i, j, geo, oh, ow) for i, j in _taps(k[0], k[1])) / count
    return [np.asarray(y, x.dtype).transpose(0, 3, 1, 2)], (geo, xp.shape, count, k, oh, ow)


def _avgpool_back(node: onnx.NodeProto, ins: Any, outs: Any, saved: Any, d: list[Any]) -> list[Any]:
    geo, padded, count, k, oh, ow = saved
    g = d[0].transpose(0, 2, 3, 1) / count
    dxp = np.zeros(padded, g.dtype)
    for i, j in _taps(k[0], k[1]):
        _window(dxp, i, j, geo, oh, ow)[...] += g
    return [_unpadded(dxp, geo).astype(ins[0].dtype)]


OPS: dict[str, Op] = {
    "Conv": Op(_conv, _conv_back, partial=True),
    "ConvTranspose": Op(_convt, _convt_back, partial=True),
    "GlobalAveragePool": Op(_gap, _gap_back),
    "MaxPool": Op(_maxpool, _maxpool_back),
    "AveragePool": Op(_avgpool, _avgpool_back),
}
