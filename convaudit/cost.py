"""Pure cost formulas on integers: MACs, params, output shapes. Imports no onnx.

Conventions (stated in the README and the JSON report):
- one MAC is one multiply-accumulate; FLOPs = 2 * MACs + bias adds;
- Conv MACs = N * Cout * prod(out spatial) * (Cin / group) * prod(kernel); bias adds are not MACs;
- ConvTranspose MACs = N * Cin * prod(in spatial) * (Cout / group) * prod(kernel): every input
  element is scattered through the kernel once. Counting the output volume instead (as some
  peers do) is wrong by the stride factor;
- params = weight elements + bias elements.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import prod

DTYPE_BYTES: dict[str, float] = {
    "float32": 4,
    "float16": 2,
    "bfloat16": 2,
    "float64": 8,
    "int8": 1,
    "uint8": 1,
    "int16": 2,
    "uint16": 2,
    "int32": 4,
    "uint32": 4,
    "int64": 8,
    "uint64": 8,
    "bool": 1,
    "float8e4m3fn": 1,
    "float8e4m3fnuz": 1,
    "float8e5m2": 1,
    "float8e5m2fnuz": 1,
    "float8e8m0": 1,
    "complex64": 8,
    "complex128": 16,
    "int4": 0.5,
    "uint4": 0.5,
    "float4e2m1": 0.5,
    "int2": 0.25,
    "uint2": 0.25,
    "float6e2m3": 0.75,
    "float6e3m2": 0.75,
}


def tensor_bytes(shape: Sequence[int], dtype: str | None) -> int | None:
    """Bytes of a dense tensor (None when the element type has no fixed size)."""
    if dtype is None or dtype not in DTYPE_BYTES:
        return None
    bits = int(DTYPE_BYTES[dtype] * 8) * prod(shape)
    return -(-bits // 8)  # sub-byte types are packed: whole bytes, rounded up


def conv_output_spatial(
    in_spatial: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int],
    pads: Sequence[int],
    dilations: Sequence[int],
    auto_pad: str = "NOTSET",
) -> tuple[int, ...]:
    """Output spatial size of a Conv (ONNX semantics, including every auto_pad mode)."""
    n = len(in_spatial)
    out = []
    for i in range(n):
        size, k, s, d = in_spatial[i], kernel[i], strides[i], dilations[i]
        eff = (k - 1) * d + 1
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            out.append(-(-size // s))
        elif auto_pad == "VALID":
            out.append((size - eff) // s + 1)
        else:
            out.append((size + pads[i] + pads[i + n] - eff) // s + 1)
    return tuple(out)


def conv_same_pads(
    in_spatial: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
    auto_pad: str,
) -> tuple[int, ...]:
    """Explicit pads (begins then ends) that SAME_UPPER / SAME_LOWER / VALID resolve to."""
    n = len(in_spatial)
    begins, ends = [0] * n, [0] * n
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        for i in range(n):
            out = -(-in_spatial[i] // strides[i])
            eff = (kernel[i] - 1) * dilations[i] + 1
            total = max(0, (out - 1) * strides[i] + eff - in_spatial[i])
            small, large = total // 2, total - total // 2
            begins[i], ends[i] = (small, large) if auto_pad == "SAME_UPPER" else (large, small)
    return tuple(begins + ends)


def conv_macs(
    batch: int,
    out_channels: int,
    out_spatial: Sequence[int],
    in_channels: int,
    group: int,
    kernel: Sequence[int],
) -> int:
    """Conv MACs = N * Cout * prod(out spatial) * (Cin / group) * prod(kernel)."""
    return batch * out_channels * prod(out_spatial) * (in_channels // group) * prod(kernel)


def conv_params(
    out_channels: int, in_channels: int, group: int, kernel: Sequence[int], bias: bool
) -> int:
    """Weight elements Cout * (Cin / group) * prod(kernel), plus Cout bias elements."""
    return out_channels * (in_channels // group) * prod(kernel) + (out_channels if bias else 0)


def conv_transpose_output_spatial(
    in_spatial: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int],
    pads: Sequence[int],
    dilations: Sequence[int],
    output_padding: Sequence[int],
) -> tuple[int, ...]:
    """ConvTranspose output size: s*(in-1) + out_pad + ((k-1)*d + 1) - pad_begin - pad_end."""
    n = len(in_spatial)
    return tuple(
        strides[i] * (in_spatial[i] - 1)
        + output_padding[i]
        + (kernel[i] - 1) * dilations[i]
        + 1
        - pads[i]
        - pads[i + n]
        for i in range(n)
    )


def conv_transpose_same_pads(
    in_spatial: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
    output_padding: Sequence[int],
    auto_pad: str,
    out_spatial: Sequence[int] | None = None,
) -> tuple[int, ...]:
    """Explicit pads a ConvTranspose's SAME_UPPER / SAME_LOWER (output = in * stride), or its
    ``output_shape`` (out_spatial), resolve to. SAME_UPPER puts the odd pixel at the end, the
    others at the beginning (what onnxruntime computes)."""
    n = len(in_spatial)
    begins, ends = [0] * n, [0] * n
    if auto_pad in ("SAME_UPPER", "SAME_LOWER") or out_spatial is not None:
        for i in range(n):
            eff = (kernel[i] - 1) * dilations[i] + 1
            out = in_spatial[i] * strides[i] if out_spatial is None else out_spatial[i]
            total = max(0, strides[i] * (in_spatial[i] - 1) + output_padding[i] + eff - out)
            small, large = total // 2, total - total // 2
            begins[i], ends[i] = (small, large) if auto_pad == "SAME_UPPER" else (large, small)
    return tuple(begins + ends)


def conv_transpose_macs(
    batch: int,
    in_channels: int,
    in_spatial: Sequence[int],
    out_channels: int,
    group: int,
    kernel: Sequence[int],
) -> int:
    """ConvTranspose MACs = N * Cin * prod(in spatial) * (Cout / group) * prod(kernel)."""
    return batch * in_channels * prod(in_spatial) * (out_channels // group) * prod(kernel)


def matmul_macs(a_shape: Sequence[int], b_shape: Sequence[int], out_shape: Sequence[int]) -> int:
    """MatMul (numpy semantics, batched and broadcast): prod(output) * K."""
    k = a_shape[-1] if a_shape else 1
    return prod(out_shape) * k


def gemm_macs(m: int, k: int, n: int) -> int:
    """Gemm: M * K * N (the alpha/beta scaling and C addition are not MACs)."""
    return m * k * n


def einsum_macs(index_sizes: dict[str, int]) -> int:
    """A two-operand contraction: one MAC per point of the full index space."""
    return prod(index_sizes.values())


@dataclass(frozen=True, kw_only=True)
class ConvSizes:
    """What a (transposed) convolution's cost formula reads, as the layer's shapes give it."""

    batch: int
    in_channels: int
    out_channels: int
    group: int
    kernel: tuple[int, ...]
    in_spatial: tuple[int, ...]
    out_spatial: tuple[int, ...]


@dataclass(frozen=True, kw_only=True)
class ContractionSizes:
    """A product that sums over ``reduced`` axes for each element of its output (MatMul: K;
    Gemm: K; Einsum: every letter the output drops)."""

    out_shape: tuple[int, ...]
    reduced: tuple[int, ...]


def conv_cost(s: ConvSizes) -> int:
    """The op registry's formula for a Conv (see conv_macs)."""
    return conv_macs(s.batch, s.out_channels, s.out_spatial, s.in_channels, s.group, s.kernel)


def conv_transpose_cost(s: ConvSizes) -> int:
    """The op registry's formula for a ConvTranspose (see conv_transpose_macs)."""
    return conv_transpose_macs(
        s.batch, s.in_channels, s.in_spatial, s.out_channels, s.group, s.kernel
    )


def contraction_cost(s: ContractionSizes) -> int:
    """One MAC per output element per point of the reduced axes: prod(output) * prod(reduced).

    MatMul's prod(output) * K, Gemm's M * K * N and a two-operand Einsum's prod(index space)
    are all this."""
    return prod(s.out_shape) * prod(s.reduced)


def bottleneck_macs(
    in_channels: int,
    in_spatial: Sequence[int],
    width: int,
    out_channels: int,
    kernel: Sequence[int],
    out_spatial: Sequence[int],
    batch: int = 1,
    group: int = 1,
) -> tuple[int, int]:
    """MACs of a 1x1 Cin->r conv at input resolution, then the KxK r->Cout conv.

    A grouped conv is factorised group by group: ``group`` pairs of width r / group each, so
    both terms shrink by the group count.
    """
    per_group = width // group
    reduce = batch * per_group * in_channels * prod(in_spatial)
    main = batch * out_channels * per_group * prod(kernel) * prod(out_spatial)
    return reduce, main


def bottleneck_params(
    in_channels: int, width: int, out_channels: int, kernel: Sequence[int], group: int = 1
) -> int:
    """Weights of the 1x1 (r * Cin) and of the KxK (Cout * r * prod(kernel)), over the group
    count; biases excluded."""
    return width // group * (in_channels + out_channels * prod(kernel))


def break_even_width(
    in_channels: int,
    out_channels: int,
    kernel: Sequence[int],
    in_spatial: Sequence[int] | None = None,
    out_spatial: Sequence[int] | None = None,
) -> float:
    """Width r* at which a 1x1 bottleneck costs as many MACs as the conv it replaces.

    Cout*Cin*K*Ho*Wo / (Cin*Hi*Wi + Cout*K*Ho*Wo) with K = prod(kernel): the 1x1 runs at the
    input resolution, so a stride lowers r*. With equal sizes (the default) this is the textbook
    Cout*Cin*K / (Cin + Cout*K). The group count cancels out.
    """
    k = prod(kernel)
    in_area = prod(in_spatial) if in_spatial is not None else 1
    out_area = prod(out_spatial) if out_spatial is not None else in_area
    den = in_channels * in_area + out_channels * k * out_area
    return out_channels * in_channels * k * out_area / den if den else 0.0


def spatial_macs(
    in_channels: int,
    mid_spatial: Sequence[int],
    width: int,
    out_channels: int,
    kernel: Sequence[int],
    out_spatial: Sequence[int],
    batch: int = 1,
) -> tuple[int, int]:
    """MACs of a Kh x 1 Cin->r conv, then the 1 x Kw r->Cout conv (Jaderberg et al. 2014).

    The vertical conv takes the original's vertical stride and pads but none horizontally, so
    its map (``mid_spatial``) is Ho x Win: a horizontal stride leaves its cost unchanged.
    """
    kh, kw = kernel
    vertical = batch * width * in_channels * kh * prod(mid_spatial)
    horizontal = batch * out_channels * width * kw * prod(out_spatial)
    return vertical, horizontal


def spatial_params(in_channels: int, width: int, out_channels: int, kernel: Sequence[int]) -> int:
    """Weights of the Kh x 1 (r * Cin * Kh) and of the 1 x Kw (Cout * r * Kw); biases excluded."""
    kh, kw = kernel
    return width * (in_channels * kh + out_channels * kw)


def spatial_break_even_width(
    in_channels: int,
    out_channels: int,
    kernel: Sequence[int],
    mid_spatial: Sequence[int],
    out_spatial: Sequence[int],
) -> float:
    """Width r* at which the Kh x 1 + 1 x Kw pair costs as many MACs as the conv it replaces:
    Cout*Cin*Kh*Kw*Ho*Wo / (Cin*Kh*Ho*Win + Cout*Kw*Ho*Wo)."""
    kh, kw = kernel
    out_area = prod(out_spatial)
    den = in_channels * kh * prod(mid_spatial) + out_channels * kw * out_area
    return out_channels * in_channels * kh * kw * out_area / den if den else 0.0
