"""Shapes for onnxruntime's contrib ops (com.microsoft, com.microsoft.nchwc), which ONNX lacks.

Most contrib ops are a standard op plus a fused activation or quantisation parameters, so their
shapes come from the standard op's schema applied to the right inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from convaudit.model.infer import infer_outputs
from convaudit.model.tensors import (
    UNKNOWN,
    TensorInfo,
    fused_matmul_operand,
    to_channels_first,
    to_channels_last,
)


class AttributeTypeError(ValueError):
    """An attribute of the wrong type (group as a list): the model is invalid."""


def _int_attr(attrs: dict[str, Any], name: str, default: int) -> int:
    value = attrs.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise AttributeTypeError(f"attribute {name} {value!r} is not an int")
    return value


KNOWN_DOMAINS = ("com.microsoft", "com.microsoft.nchwc")

# op -> (standard op, indices of the inputs it reads, attributes to keep (None: all standard))
_AS_STANDARD: dict[tuple[str, str], tuple[str, tuple[int, ...]]] = {
    ("com.microsoft", "FusedConv"): ("Conv", (0, 1, 2)),
    ("com.microsoft", "FusedGemm"): ("Gemm", (0, 1, 2)),
    ("com.microsoft", "QLinearConv"): ("Conv", (0, 3)),
    ("com.microsoft", "QLinearAdd"): ("Add", (0, 3)),
    ("com.microsoft", "QLinearMul"): ("Mul", (0, 3)),
    # quantize_dynamic's MatMuls once onnxruntime fuses them (A, B, scales, zero points, bias)
    ("com.microsoft", "DynamicQuantizeMatMul"): ("MatMul", (0, 1)),
    ("com.microsoft", "MatMulIntegerToFloat"): ("MatMul", (0, 1)),
    ("com.microsoft", "QLinearAveragePool"): ("AveragePool", (0,)),
    ("com.microsoft", "QLinearGlobalAveragePool"): ("GlobalAveragePool", (0,)),
    ("com.microsoft", "QLinearSigmoid"): ("Identity", (0,)),
    ("com.microsoft", "QLinearLeakyRelu"): ("Identity", (0,)),
    ("com.microsoft", "QLinearSoftmax"): ("Identity", (0,)),
    ("com.microsoft", "QuantizeLinear"): ("Identity", (0,)),
    ("com.microsoft", "DequantizeLinear"): ("Identity", (0,)),
    ("com.microsoft", "Gelu"): ("Identity", (0,)),
    ("com.microsoft", "FastGelu"): ("Identity", (0,)),
    ("com.microsoft", "BiasGelu"): ("Identity", (0,)),
    ("com.microsoft", "QuickGelu"): ("Identity", (0,)),
    ("com.microsoft", "BiasAdd"): ("Identity", (0,)),
    ("com.microsoft", "SkipLayerNormalization"): ("Identity", (0,)),
    ("com.microsoft", "SkipSimplifiedLayerNormalization"): ("Identity", (0,)),
    ("com.microsoft", "SimplifiedLayerNormalization"): ("Identity", (0,)),
    ("com.microsoft.nchwc", "Conv"): ("Conv", (0, 1, 2)),
    ("com.microsoft.nchwc", "MaxPool"): ("MaxPool", (0,)),
    ("com.microsoft.nchwc", "AveragePool"): ("AveragePool", (0,)),
    ("com.microsoft.nchwc", "GlobalMaxPool"): ("GlobalMaxPool", (0,)),
    ("com.microsoft.nchwc", "GlobalAveragePool"): ("GlobalAveragePool", (0,)),
    ("com.microsoft.nchwc", "ReorderInput"): ("Identity", (0,)),
}

_FLOAT = 1  # TensorProto.FLOAT

# Attributes a standard op would reject.
_EXTRA_ATTRS = {"activation", "activation_params", "channels_last", "alpha", "beta", "epsilon"}
_KEEP_FOR = {"Gemm": {"alpha", "beta", "transA", "transB"}}


StandardShapes = Callable[[str, dict[str, Any], list[TensorInfo]], list[TensorInfo] | None]
"""Outputs of standard op ``op`` (opset 21, one output) on float inputs, as onnx infers them;
None: ask onnx."""

# The ``rules`` of the infer() call running in this thread: every handler reaches the standard
# op through _standard, and this keeps their signatures as they are.
_RULES: ContextVar[StandardShapes | None] = ContextVar("contrib_standard_rules", default=None)


def infer(
    op: str,
    domain: str,
    attrs: dict[str, Any],
    ins: list[TensorInfo],
    n_out: int,
    *,
    rules: StandardShapes | None = None,
) -> list[TensorInfo] | None:
    """Output infos for a known contrib op; None when the op is not one we know.

    ``rules`` (the lite path's) answers the standard op's shapes before onnx is asked."""
    token = _RULES.set(rules)
    try:
        key = (domain, op)
        handler = _HANDLERS.get(key)
        if handler is not None:
            return handler(key, attrs, ins, n_out)
        if key in _AS_STANDARD:
            return _as_standard(key, attrs, ins, n_out)
        return None
    finally:
        _RULES.reset(token)


Key = tuple[str, str]
Handler = Callable[[Key, dict[str, Any], list[TensorInfo], int], list[TensorInfo]]


def _as_standard(
    key: Key, attrs: dict[str, Any], ins: list[TensorInfo], n_out: int
) -> list[TensorInfo]:
    """The standard op's schema applied to the inputs it reads (``_AS_STANDARD``)."""
    op = key[1]
    std, idx = _AS_STANDARD[key]
    picked = [ins[i] if i < len(ins) else UNKNOWN for i in idx]
    while len(picked) > 1 and picked[-1] is UNKNOWN:
        picked.pop()  # an omitted optional input (no bias) is left out, not passed as unknown
    elem = ins[0].elem_type if ins else 0
    if op.startswith("QLinear") or op in ("QuantizeLinear",):
        elem = ins[-1].elem_type if op == "QuantizeLinear" and len(ins) > 2 else elem
    if op == "DequantizeLinear":
        elem = ins[1].elem_type if len(ins) > 1 else 0
    if op == "MatMulIntegerToFloat":  # integer operands, float result (the scales' type)
        elem = ins[2].elem_type if len(ins) > 2 else 0
    return _standard(std, attrs, picked, n_out, elem)


def _nhwc_conv(
    key: Key, attrs: dict[str, Any], ins: list[TensorInfo], n_out: int
) -> list[TensorInfo]:
    """NhwcConv, and QLinearConv with channels_last: the standard Conv on NCHW, transposed."""
    if key[1] == "QLinearConv" and not attrs.get("channels_last"):
        return _as_standard(key, attrs, ins, n_out)
    x = ins[0] if ins else UNKNOWN
    wi = 3 if key[1] == "QLinearConv" else 1
    w = ins[wi] if wi < len(ins) else UNKNOWN
    return [_via_channels_first("Conv", attrs, x, [w])] + [UNKNOWN] * (n_out - 1)


def _qlinear_concat(
    key: Key, attrs: dict[str, Any], ins: list[TensorInfo], n_out: int
) -> list[TensorInfo]:
    # y_scale, y_zp, then (tensor, scale, zero point) per input
    return _standard("Concat", attrs, ins[2::3], n_out, ins[2].elem_type if len(ins) > 2 else 0)


def _qgemm(key: Key, attrs: dict[str, Any], ins: list[TensorInfo], n_out: int) -> list[TensorInfo]:
    # A, a_scale, a_zp, B, b_scale, b_zp, C, y_scale, y_zp: quantized out with a y_scale
    picked = [ins[i] if i < len(ins) else UNKNOWN for i in (0, 3, 6)]
    if len(ins) < 7 or ins[6] is UNKNOWN:
        picked = picked[:2]
    quantized_out = len(ins) > 7 and ins[7] is not UNKNOWN
    elem = ins[0].elem_type if quantized_out else _FLOAT
    return _standard("Gemm", attrs, picked, n_out, elem)


def _nhwc_pool(
    key: Key, attrs: dict[str, Any], ins: list[TensorInfo], n_out: int
) -> list[TensorInfo]:
    """onnxruntime's NHWC pools in quantized graphs (ORT_ENABLE_ALL): the pool on NHWC."""
    if key[1] != "NhwcMaxPool" and not attrs.get("channels_last"):
        return _as_standard(key, attrs, ins, n_out)
    x = ins[0] if ins else UNKNOWN
    return [_via_channels_first(_NHWC_POOLS[key], attrs, x, [])] + [UNKNOWN] * (n_out - 1)


def _reorder_input(
    key: Key, attrs: dict[str, Any], ins: list[TensorInfo], n_out: int
) -> list[TensorInfo]:
    if not attrs.get("channels_last"):
        return _as_standard(key, attrs, ins, n_out)
    return [_channels_first(ins[0] if ins else UNKNOWN)]


def _quantized_lstm(
    key: Key, attrs: dict[str, Any], ins: list[TensorInfo], n_out: int
) -> list[TensorInfo]:
    # LSTM with quantized (and transposed) W and R: LSTM's outputs follow from X and the
    # hidden_size attribute alone, so X, W, R suffice.
    lstm = [TensorInfo(elem_type=ins[0].elem_type, shape=i.shape) for i in ins[:3]]
    return _standard("LSTM", attrs, lstm, n_out, ins[0].elem_type if ins else 0)


def _nchwc_conv(
    key: Key, attrs: dict[str, Any], ins: list[TensorInfo], n_out: int
) -> list[TensorInfo]:
    if len(ins) > 1:
        ins = [_blocked_channels(ins[0], ins[1], attrs), *ins[1:]]
    return _as_standard(key, attrs, ins, n_out)


def _standard(
    op: str, attrs: dict[str, Any], ins: list[TensorInfo], n_out: int, elem: int
) -> list[TensorInfo]:
    keep = _KEEP_FOR.get(op, set())
    clean = {k: v for k, v in attrs.items() if k not in _EXTRA_ATTRS or k in keep}
    # an empty list has no type to rebuild it with, and means the same as leaving it out
    clean = {k: v for k, v in clean.items() if not (isinstance(v, list) and not v)}
    if op == "Identity":
        clean = {}
    # Quantized tensors keep their own element type; shapes come from the standard schema,
    # which needs a float type for ops like Conv.
    floats = [TensorInfo(elem_type=_FLOAT, shape=i.shape) if i.elem_type else i for i in ins]
    rules = _RULES.get()
    outs = rules(op, clean, floats) if rules is not None else None
    if outs is None:
        from onnx import helper

        names = [f"i{k}" for k in range(len(ins))]
        node = helper.make_node(op, names, [f"o{k}" for k in range(1)], **clean)
        outs = infer_outputs(node, floats, {"": 21}) or [UNKNOWN]
    shaped = [TensorInfo(elem_type=elem, shape=o.shape) for o in outs]
    return shaped + [UNKNOWN] * (n_out - len(shaped))


def _via_channels_first(
    op: str, attrs: dict[str, Any], x: TensorInfo, others: list[TensorInfo]
) -> TensorInfo:
    """A channels-last op's output: its standard NCHW ``op`` on the transposed input, then
    transposed back."""
    if x.shape is None or len(x.shape) < 3:
        return TensorInfo(elem_type=x.elem_type)
    nchw = TensorInfo(elem_type=1, shape=to_channels_first(x.shape))
    out = _standard(op, attrs, [nchw, *others], 1, x.elem_type)[0]
    if out.shape is None:
        return out
    return TensorInfo(elem_type=x.elem_type, shape=to_channels_last(out.shape))


_NHWC_POOLS = {
    ("com.microsoft", "NhwcMaxPool"): "MaxPool",
    ("com.microsoft", "QLinearAveragePool"): "AveragePool",
    ("com.microsoft", "QLinearGlobalAveragePool"): "GlobalAveragePool",
}


def _fused_matmul(attrs: dict[str, Any], ins: list[TensorInfo], n_out: int) -> list[TensorInfo]:
    """FusedMatMul: MatMul of optionally transposed operands (alpha scaling costs no shape)."""
    picked = []
    for info, side in zip(ins[:2], ("A", "B"), strict=False):
        shape = info.shape
        if shape is not None:
            trans, batch = bool(attrs.get(f"trans{side}")), bool(attrs.get(f"transBatch{side}"))
            shape = fused_matmul_operand(shape, trans, batch)
        picked.append(TensorInfo(elem_type=info.elem_type, shape=shape))
    elem = ins[0].elem_type if ins else 0
    return _standard("MatMul", {}, picked, n_out, elem)


def _matmul_nbits(attrs: dict[str, Any], ins: list[TensorInfo], n_out: int) -> list[TensorInfo]:
    """MatMulNBits: A [..., K] times a packed K x N weight gives [..., N]."""
    a = ins[0] if ins else UNKNOWN
    n = _int_attr(attrs, "N", 0)
    if a.shape is None or not a.shape or not n:
        return [TensorInfo(elem_type=a.elem_type)] + [UNKNOWN] * (n_out - 1)
    return [TensorInfo(elem_type=a.elem_type, shape=(*a.shape[:-1], n))] + [UNKNOWN] * (n_out - 1)


def _blocked_channels(x: TensorInfo, w: TensorInfo, attrs: dict[str, Any]) -> TensorInfo:
    """NCHWc activations carry channels padded to the CPU's block size (8 or 16); the weight
    is padded the same way, so the channel count is the weight's, whatever X reports."""
    if x.shape is None or len(x.shape) < 3 or w.shape is None or len(w.shape) < 2:
        return x
    group = _int_attr(attrs, "group", 1)
    cin = w.shape[1] * group if isinstance(w.shape[1], int) else x.shape[1]
    return TensorInfo(elem_type=x.elem_type, shape=(x.shape[0], cin, *x.shape[2:]))


def _channels_first(x: TensorInfo) -> TensorInfo:
    """NHWC -> NCHW(c): ORT reorders a channels-last tensor (a Reshape of tokens) for NCHWc."""
    if x.shape is None or len(x.shape) < 3:
        return TensorInfo(elem_type=x.elem_type)
    return TensorInfo(elem_type=x.elem_type, shape=to_channels_first(x.shape))


def _nchwc_upsample(attrs: dict[str, Any], ins: list[TensorInfo]) -> list[TensorInfo]:
    """NCHWc Upsample: integer ``scales`` per axis (ORT fuses nearest/linear Resize into it)."""
    x = ins[0] if ins else UNKNOWN
    scales = attrs.get("scales", [])
    if not isinstance(scales, list) or not all(isinstance(s, int) for s in scales):
        raise AttributeTypeError(f"attribute scales {scales!r} is not a list of ints")
    if x.shape is None or len(scales) != len(x.shape):
        return [TensorInfo(elem_type=x.elem_type)]
    shape = tuple(
        d * s if isinstance(d, int) else None for d, s in zip(x.shape, scales, strict=True)
    )
    return [TensorInfo(elem_type=x.elem_type, shape=shape)]


def _reorder_output(attrs: dict[str, Any], ins: list[TensorInfo]) -> list[TensorInfo]:
    x = ins[0] if ins else UNKNOWN
    if x.shape is None or len(x.shape) < 2:
        return [UNKNOWN]
    channels = _int_attr(attrs, "channels", 0) or x.shape[1]
    if attrs.get("channels_last"):
        return [TensorInfo(elem_type=x.elem_type, shape=(x.shape[0], *x.shape[2:], channels))]
    return [TensorInfo(elem_type=x.elem_type, shape=(x.shape[0], channels, *x.shape[2:]))]


def _upsample(key: Key, attrs: dict[str, Any], ins: list[TensorInfo], n: int) -> list[TensorInfo]:
    return _nchwc_upsample(attrs, ins)


def _reorder(key: Key, attrs: dict[str, Any], ins: list[TensorInfo], n: int) -> list[TensorInfo]:
    return _reorder_output(attrs, ins)


def _fused(key: Key, attrs: dict[str, Any], ins: list[TensorInfo], n: int) -> list[TensorInfo]:
    return _fused_matmul(attrs, ins, n)


def _nbits(key: Key, attrs: dict[str, Any], ins: list[TensorInfo], n: int) -> list[TensorInfo]:
    return _matmul_nbits(attrs, ins, n)


# Contrib ops whose shapes need more than a standard op on some of their inputs.
_HANDLERS: dict[Key, Handler] = {
    ("com.microsoft", "NhwcConv"): _nhwc_conv,
    ("com.microsoft", "QLinearConv"): _nhwc_conv,
    ("com.microsoft", "QLinearConcat"): _qlinear_concat,
    ("com.microsoft", "FusedMatMul"): _fused,
    ("com.microsoft", "MatMulNBits"): _nbits,
    ("com.microsoft", "QGemm"): _qgemm,
    ("com.microsoft", "NhwcMaxPool"): _nhwc_pool,
    ("com.microsoft", "QLinearAveragePool"): _nhwc_pool,
    ("com.microsoft", "QLinearGlobalAveragePool"): _nhwc_pool,
    ("com.microsoft", "DynamicQuantizeLSTM"): _quantized_lstm,
    ("com.microsoft.nchwc", "Conv"): _nchwc_conv,
    ("com.microsoft.nchwc", "ReorderInput"): _reorder_input,
    ("com.microsoft.nchwc", "ReorderOutput"): _reorder,
    ("com.microsoft.nchwc", "Upsample"): _upsample,
}
