"""The op registry for costs: one entry per (domain, op_type), standard and contrib ops alike.

An entry says which operands are data, weight and bias, how the layer's shape is read, which
formula of cost.py gives its MACs, and its category. model/layers.py reads nothing else to cost
a node, so adding an op is one entry here, one formula in cost.py (unless an existing one fits)
and one test row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from convaudit import cost
from convaudit.records import Category


class Layout(Enum):
    """How a convolution's activations are laid out (its layer shape is shown in NCHW order)."""

    NCHW = "nchw"
    NHWC = "nhwc"  # channels last: shapes are transposed for the formula and the report
    NCHWC = "nchwc"  # onnxruntime's blocked layout: channels padded to the block size


class Operands(Enum):
    """How a contraction's operand shapes are read."""

    MATMUL = "matmul"  # numpy matmul: A [..., M, K] @ B [..., K, N]
    GEMM = "gemm"  # 2-D, with transA / transB
    FUSED_MATMUL = "fused_matmul"  # MatMul with A read transposed (transA, transBatchA)
    NBITS = "nbits"  # B packed in k-bit blocks: the logical K x N comes from attributes K, N
    EINSUM = "einsum"  # any two operands, contracted as the equation says


@dataclass(frozen=True, kw_only=True)
class ConvOp:
    """A convolution: data X, weight W [Cout, Cin/group, k...] (ConvTranspose: [Cin, ...])."""

    category: Category
    data: int
    weight: int
    bias: int | None
    layout: Layout
    macs: Callable[[cost.ConvSizes], int]


@dataclass(frozen=True, kw_only=True)
class ContractionOp:
    """A matmul-like product: data A, weight B (or A, when only A is constant)."""

    data: int
    weight: int
    bias: int | None
    operands: Operands
    macs: Callable[[cost.ContractionSizes], int] = cost.contraction_cost
    category: Category = Category.MATMUL


OpCost = ConvOp | ContractionOp


def _conv(data: int, weight: int, bias: int | None, layout: Layout = Layout.NCHW) -> ConvOp:
    return ConvOp(
        category=Category.CONV,
        data=data,
        weight=weight,
        bias=bias,
        layout=layout,
        macs=cost.conv_cost,
    )


# (domain, op_type) -> how it is costed; "" is the default ONNX domain.
OPS: dict[tuple[str, str], OpCost] = {
    ("", "Conv"): _conv(0, 1, 2),
    ("", "ConvInteger"): _conv(0, 1, None),
    # X, x_scale, x_zp, W, w_scale, w_zp, y_scale, y_zp, B
    ("", "QLinearConv"): _conv(0, 3, 8),
    ("", "ConvTranspose"): ConvOp(
        category=Category.CONV_TRANSPOSE,
        data=0,
        weight=1,
        bias=2,
        layout=Layout.NCHW,
        macs=cost.conv_transpose_cost,
    ),
    # the sampled conv's MACs; the bilinear sampling at the offsets is not counted as MACs
    ("", "DeformConv"): _conv(0, 1, 3),
    ("com.microsoft", "FusedConv"): _conv(0, 1, 2),
    ("com.microsoft", "NhwcConv"): _conv(0, 1, 2, Layout.NHWC),
    ("com.microsoft", "QLinearConv"): _conv(0, 3, 8),  # channels_last=1 reads it as NHWC
    ("com.microsoft.nchwc", "Conv"): _conv(0, 1, 2, Layout.NCHWC),
    ("", "MatMul"): ContractionOp(data=0, weight=1, bias=None, operands=Operands.MATMUL),
    ("", "MatMulInteger"): ContractionOp(data=0, weight=1, bias=None, operands=Operands.MATMUL),
    # A, a_scale, a_zp, B, b_scale, b_zp, y_scale, y_zp
    ("", "QLinearMatMul"): ContractionOp(data=0, weight=3, bias=None, operands=Operands.MATMUL),
    ("", "Gemm"): ContractionOp(data=0, weight=1, bias=2, operands=Operands.GEMM),
    ("", "Einsum"): ContractionOp(data=0, weight=1, bias=None, operands=Operands.EINSUM),
    ("com.microsoft", "FusedMatMul"): ContractionOp(
        data=0, weight=1, bias=None, operands=Operands.FUSED_MATMUL
    ),
    ("com.microsoft", "FusedGemm"): ContractionOp(data=0, weight=1, bias=2, operands=Operands.GEMM),
    # A, a_scale, a_zp, B, b_scale, b_zp, C, y_scale, y_zp
    ("com.microsoft", "QGemm"): ContractionOp(data=0, weight=3, bias=6, operands=Operands.GEMM),
    ("com.microsoft", "MatMulIntegerToFloat"): ContractionOp(
        data=0, weight=1, bias=6, operands=Operands.MATMUL
    ),
    ("com.microsoft", "DynamicQuantizeMatMul"): ContractionOp(
        data=0, weight=1, bias=4, operands=Operands.MATMUL
    ),
    # B is packed k-bit blocks [N, K / block, block bytes]: the logical weight is K x N
    ("com.microsoft", "MatMulNBits"): ContractionOp(
        data=0, weight=1, bias=5, operands=Operands.NBITS
    ),
}


def op_cost(domain: str, op_type: str) -> OpCost | None:
    """The registry entry for a node's op ("ai.onnx" is the default domain), or None."""
    return OPS.get(("" if domain == "ai.onnx" else domain, op_type))
