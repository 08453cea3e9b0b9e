"""Facts read straight from the layer record (and the model's totals)."""

from __future__ import annotations

from math import prod

from convaudit.rules.subject import Fact

QUANTIZED_OPS = frozenset({"QLinearConv", "ConvInteger", "QLinearMatMul", "MatMulInteger", "QGemm"})


def dims(shape: tuple[int, ...] | None) -> str | None:
    """A shape as text, "14x14" (None when unknown)."""
    return None if shape is None else "x".join(str(d) for d in shape)


def kernel_name(kernel: tuple[int, ...] | None) -> str | None:
    """A kernel as people name it: "5x5", "5x1", "3x3x3", and "1-D k3" for one axis (a bare
    "3" reads as a count, not a kernel)."""
    if not kernel:
        return None
    return f"1-D k{kernel[0]}" if len(kernel) == 1 else dims(kernel)


def _spatial(shape: tuple[int, ...] | None) -> tuple[int, ...] | None:
    return None if shape is None or len(shape) < 3 else tuple(shape[2:])


LAYER_FACTS: tuple[Fact, ...] = (
    Fact("op", "str", "ONNX op type: Conv, Gemm, MatMul, ...", lambda b: b.layer.op_type),
    Fact("domain", "str", 'op domain ("" for the default ONNX domain)', lambda b: b.layer.domain),
    Fact("category", "str", "conv, conv_transpose or matmul", lambda b: b.layer.category),
    Fact("node", "str", "node name", lambda b: b.layer.name),
    Fact("graph", "str", '"main", a subgraph or a function call site', lambda b: b.layer.graph),
    Fact(
        "kernel",
        "ints",
        "kernel shape, one entry per spatial axis",
        lambda b: b.layer.kernel_shape,
    ),
    Fact("kernel_size", "str", 'kernel as text, "5x5"', lambda b: dims(b.layer.kernel_shape)),
    Fact(
        "kernel_name",
        "str",
        'kernel as named in messages: "5x5", "5x1", "3x3x3", "1-D k3"',
        lambda b: kernel_name(b.layer.kernel_shape),
    ),
    Fact(
        "pointwise_name",
        "str",
        'the pointwise kernel of the same rank: "1x1", "1x1x1", "1-D k1"',
        lambda b: kernel_name(tuple(1 for _ in b.layer.kernel_shape or ())),
    ),
    Fact(
        "kernel_max",
        "int",
        "largest kernel extent",
        lambda b: max(b.layer.kernel_shape) if b.layer.kernel_shape else None,
    ),
    Fact(
        "kernel_min",
        "int",
        "smallest kernel extent",
        lambda b: min(b.layer.kernel_shape) if b.layer.kernel_shape else None,
    ),
    Fact(
        "kernel_area",
        "int",
        "product of the kernel extents",
        lambda b: prod(b.layer.kernel_shape) if b.layer.kernel_shape else None,
    ),
    Fact(
        "kernel_square",
        "bool",
        "every kernel extent is the same",
        lambda b: None if not b.layer.kernel_shape else len(set(b.layer.kernel_shape)) == 1,
    ),
    Fact(
        "spatial_rank",
        "int",
        "number of spatial axes (2 for images)",
        lambda b: None if b.layer.kernel_shape is None else len(b.layer.kernel_shape),
    ),
    Fact("in_channels", "int", "Cin (K for a matmul)", lambda b: b.layer.in_channels),
    Fact("out_channels", "int", "Cout (N for a matmul)", lambda b: b.layer.out_channels),
    Fact("group", "int", "conv group count", lambda b: b.layer.group),
    Fact("strides", "ints", "strides per spatial axis", lambda b: b.layer.strides),
    Fact(
        "stride_max",
        "int",
        "largest stride",
        lambda b: max(b.layer.strides) if b.layer.strides else None,
    ),
    Fact("dilations", "ints", "dilations per spatial axis", lambda b: b.layer.dilations),
    Fact(
        "dilation_max",
        "int",
        "largest dilation",
        lambda b: max(b.layer.dilations) if b.layer.dilations else None,
    ),
    Fact("input_shape", "ints", "data input shape", lambda b: b.layer.input_shape),
    Fact("output_shape", "ints", "output shape", lambda b: b.layer.output_shape),
    Fact(
        "in_size",
        "str",
        'input spatial size as text, "14x14"',
        lambda b: dims(_spatial(b.layer.input_shape)),
    ),
    Fact(
        "out_size",
        "str",
        'output spatial size as text, "14x14"',
        lambda b: dims(_spatial(b.layer.output_shape)),
    ),
    Fact(
        "batch",
        "int",
        "batch size N",
        lambda b: b.layer.input_shape[0] if b.layer.input_shape else None,
    ),
    Fact("macs", "int", "MACs per model run", lambda b: b.layer.total_macs),
    Fact("params", "int", "weight + bias elements", lambda b: b.layer.params),
    Fact("mac_share", "float", "share of the model's MACs, 0..1", lambda b: b.layer.mac_share),
    Fact("model_macs", "int", "the model's total MACs", lambda b: b.subject.model.totals.macs),
    Fact("has_bias", "bool", "the layer has a bias input", lambda b: b.layer.has_bias),
    Fact("dtype", "str", 'activation element type, "float32"', lambda b: b.layer.dtype),
    Fact("counted", "bool", "false inside the cheaper branch of an If", lambda b: b.layer.counted),
    Fact("is_grouped", "bool", "group > 1", lambda b: (b.layer.group or 1) > 1),
    Fact(
        "is_depthwise",
        "bool",
        "one group per input channel (group == Cin > 1)",
        lambda b: (b.layer.group or 1) > 1 and b.layer.group == b.layer.in_channels,
    ),
    Fact(
        "is_pointwise",
        "bool",
        "every kernel extent is 1",
        lambda b: None if not b.layer.kernel_shape else all(k == 1 for k in b.layer.kernel_shape),
    ),
    Fact(
        "is_quantized",
        "bool",
        "a quantized op or an 8-bit activation",
        lambda b: b.layer.op_type in QUANTIZED_OPS or b.layer.dtype in ("int8", "uint8"),
    ),
)
