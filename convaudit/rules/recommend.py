"""Recommendation arithmetic: exact before/after MACs and params of each suggested change.

Pure integer functions over channel counts and spatial sizes (no onnx, no graph). The formulas
are those of ``convaudit.cost``; a 1x1 conv runs at the input resolution, everything else at
the original layer's output resolution, except a strided layer's factorisations (which keep its
reach by striding only in their last conv along each axis).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from math import prod

from convaudit import cost
from convaudit.records import Layer

WIDTH_MULTIPLE = 8  # hardware-friendly channel counts; the fix rounds the same way


@dataclass(frozen=True, kw_only=True)
class ConvShape:
    """What the arithmetic needs to know about a 2D/3D/1D conv (batch and loops folded in)."""

    in_channels: int
    out_channels: int
    kernel: tuple[int, ...]
    in_spatial: tuple[int, ...]
    out_spatial: tuple[int, ...]
    batch: int = 1
    executions: int = 1  # Loop/Scan trip count: every figure is per model run
    has_bias: bool = False
    strides: tuple[int, ...] = ()  # () means 1 on every axis

    @property
    def strided(self) -> bool:
        return any(s > 1 for s in self.strides)

    @property
    def runs(self) -> int:
        return self.batch * self.executions

    @property
    def macs(self) -> int:
        return self.runs * cost.conv_macs(
            1, self.out_channels, self.out_spatial, self.in_channels, 1, self.kernel
        )

    @property
    def params(self) -> int:
        return cost.conv_params(
            self.out_channels, self.in_channels, 1, self.kernel, bias=self.has_bias
        )

    @property
    def bias(self) -> int:
        return self.out_channels if self.has_bias else 0


@dataclass(frozen=True, kw_only=True)
class Alternative:
    """One alternative: its MACs and params per model run, with named parts."""

    macs: int
    params: int
    parts: tuple[tuple[str, int], ...] = ()  # (label, MACs) of each piece, in order


# -- 1x1 bottleneck ---------------------------------------------------------------------------


def bottleneck(shape: ConvShape, width: int) -> Alternative:
    """A 1x1 Cin->width conv (input resolution, no bias) then the KxK width->Cout conv."""
    reduce, main = cost.bottleneck_macs(
        shape.in_channels,
        shape.in_spatial,
        width,
        shape.out_channels,
        shape.kernel,
        shape.out_spatial,
        batch=shape.runs,
    )
    params = cost.bottleneck_params(shape.in_channels, width, shape.out_channels, shape.kernel)
    return Alternative(
        macs=reduce + main, params=params + shape.bias, parts=(("1x1", reduce), ("kxk", main))
    )


def break_even_width(shape: ConvShape) -> float:
    """The width at which the bottleneck costs as much as the original conv.

    Cout*Cin*K*Ho*Wo / (Cin*Hi*Wi + Cout*K*Ho*Wo) with K = prod(kernel); at stride 1 with
    'same' padding this is the textbook Cout*Cin*K^2 / (Cin + Cout*K^2).
    """
    return cost.break_even_width(
        shape.in_channels, shape.out_channels, shape.kernel, shape.in_spatial, shape.out_spatial
    )


def width_cap(shape: ConvShape) -> int | None:
    """The largest multiple of 8 strictly below the break-even width (None if there is none)."""
    be = break_even_width(shape)
    cap = (math.ceil(be) - 1) // WIDTH_MULTIPLE * WIDTH_MULTIPLE
    return cap if cap >= WIDTH_MULTIPLE else None


def round_width(x: float, step: int = WIDTH_MULTIPLE) -> int:
    """Nearest multiple of ``step`` (halves round up), at least ``step``."""
    return max(step, step * math.floor(x / step + 0.5))


# What published bottleneck architectures reduce a KxK conv's input to, by the positions the
# kernel reads (its area). Below 25 positions (3x3, 1x7, 5x1, 1-D k3): Cin/4, ResNet's bottleneck
# (He et al. 2015) and within GoogLeNet's 3x3 reductions (0.19-0.5 of Cin, Szegedy et al. 2014,
# Table 1) and Inception-v3's before its 1x7/7x1 stacks (0.17-0.35). From 25 (5x5 and up,
# 3x3x3): Cin/30, GoogLeNet's inception (4a) 5x5 reduction 480 -> 16, the narrowest of its 5x5
# reductions (1/8 to 1/30); the expensive kernels are the ones it reduced hardest.
SMALL_KERNEL_RATIO = 0.25
LARGE_KERNEL_RATIO = 0.0333
LARGE_KERNEL_AREA = 25


@dataclass(frozen=True, kw_only=True)
class WidthTargets:
    """What a width policy aims for (each policy reads its own fields)."""

    width_ratio: float | None = None  # None: the published ratio for the kernel's area
    small_kernel_ratio: float = SMALL_KERNEL_RATIO
    large_kernel_ratio: float = LARGE_KERNEL_RATIO
    large_kernel_area: int = LARGE_KERNEL_AREA
    target_saving: float = 4.0
    mac_budget: int | None = None

    def ratio(self, kernel: Sequence[int]) -> float:
        """The ratio policy's width / Cin for a kernel: width_ratio, or the published one."""
        if self.width_ratio is not None:
            return self.width_ratio
        large = prod(kernel) >= self.large_kernel_area
        return self.large_kernel_ratio if large else self.small_kernel_ratio


def _widest(shape: ConvShape, cap: int, fits: Callable[[int], bool]) -> int:
    """The widest multiple of 8 up to ``cap`` whose bottleneck MACs ``fits``; else 8."""
    best = WIDTH_MULTIPLE
    for width in range(WIDTH_MULTIPLE, cap + 1, WIDTH_MULTIPLE):
        if fits(bottleneck(shape, width).macs):
            best = width
    return best


def _by_ratio(shape: ConvShape, cap: int, t: WidthTargets) -> int | None:
    return min(round_width(shape.in_channels * t.ratio(shape.kernel)), cap)


def _by_saving(shape: ConvShape, cap: int, t: WidthTargets) -> int | None:
    return _widest(shape, cap, lambda after: after * t.target_saving <= shape.macs)


def _by_budget(shape: ConvShape, cap: int, t: WidthTargets) -> int | None:
    budget = t.mac_budget
    if budget is None or shape.macs <= budget:  # already within it: nothing to recommend
        return None
    return _widest(shape, cap, lambda after: after <= budget)


WidthPolicy = Callable[[ConvShape, int, WidthTargets], "int | None"]
# name (the width_policy param's value) -> the width it picks, given the cap below break-even.
WIDTH_POLICY_TABLE: dict[str, WidthPolicy] = {
    "ratio": _by_ratio,
    "saving": _by_saving,
    "budget": _by_budget,
}
WIDTH_POLICIES = tuple(WIDTH_POLICY_TABLE)


def bottleneck_width(
    shape: ConvShape,
    *,
    policy: str = "ratio",
    width_ratio: float | None = None,
    small_kernel_ratio: float = SMALL_KERNEL_RATIO,
    large_kernel_ratio: float = LARGE_KERNEL_RATIO,
    large_kernel_area: int = LARGE_KERNEL_AREA,
    target_saving: float = 4.0,
    mac_budget: int | None = None,
) -> int | None:
    """The recommended width, a multiple of 8 below the break-even width (None if none saves).

    - ``ratio``: Cin * ratio rounded to a multiple of 8; the ratio is ``width_ratio``, or when
      that is None the published one for the kernel (``WidthTargets.ratio``): Cin/4 below 25
      kernel positions, Cin/30 from 25 (GoogLeNet's inception (4a) 5x5 reduction, 480 -> 16);
    - ``saving``: the widest multiple of 8 that still saves at least ``target_saving`` times;
    - ``budget``: the widest multiple of 8 whose bottleneck fits in ``mac_budget`` MACs (None
      for a layer already within the budget).
    When no width meets a saving or budget target the narrowest (8) is returned.
    """
    cap = width_cap(shape)
    if cap is None:
        return None
    pick = WIDTH_POLICY_TABLE.get(policy)
    if pick is None:
        raise ValueError(f"unknown width policy {policy!r}")
    targets = WidthTargets(
        width_ratio=width_ratio,
        small_kernel_ratio=small_kernel_ratio,
        large_kernel_ratio=large_kernel_ratio,
        large_kernel_area=large_kernel_area,
        target_saving=target_saving,
        mac_budget=mac_budget,
    )
    return pick(shape, cap, targets)


def max_ratio_saving(ratio: float) -> float:
    """The most a bottleneck of width Cin * ratio can save: 1 / ratio.

    Before / after = Cout·Cin·K / (r·Cin·(Hi·Wi)/(Ho·Wo) + Cout·r·K) < Cout·Cin·K / (Cout·r·K)
    = Cin / r, approached only as Cout·K grows far beyond Cin (a 3x3 Cin = Cout at Cin/4
    saves 9 / (1/4 + 9/4) = 3.6x).
    """
    return 1.0 / ratio


# -- global-average-pool head (Network-in-Network) --------------------------------------------


def pooled_head(rows: int, channels: int, out_features: int, has_bias: bool) -> Alternative:
    """Global average pooling then a dense Cin->N layer (equivalently a 1x1 conv then pooling).

    Pooling adds are not MACs: the layer costs rows * C * N MACs and C * N (+ N bias) params.
    """
    macs = rows * channels * out_features
    return Alternative(
        macs=macs, params=channels * out_features + (out_features if has_bias else 0)
    )


# -- large-kernel factorisation (Inception v2/v3) ---------------------------------------------


def stacked_3x3_count(kernel: int) -> int:
    """How many stacked 3x3 convs cover a KxK receptive field: (K - 1) / 2, rounded up."""
    return max(1, -(-(kernel - 1) // 2))


def stacked_3x3(shape: ConvShape) -> Alternative:
    """n 3x3 convs (Cin->Cout, then Cout->Cout), all at the output resolution. A strided layer
    keeps its reach only if the 3x3s before the last run unstrided, at the input resolution
    (striding the first would widen the reach to 3 + 2·(n-1)·stride)."""
    n = stacked_3x3_count(max(shape.kernel))
    area = prod(shape.out_spatial)
    inner = prod(shape.in_spatial) if shape.strided else area
    first_area = inner if n > 1 else area
    first = shape.runs * 9 * shape.in_channels * shape.out_channels * first_area
    middle = shape.runs * 9 * shape.out_channels * shape.out_channels * inner * max(0, n - 2)
    last = shape.runs * 9 * shape.out_channels * shape.out_channels * area * min(1, n - 1)
    rest = middle + last
    params = 9 * shape.out_channels * (shape.in_channels + (n - 1) * shape.out_channels)
    return Alternative(
        macs=first + rest, params=params + shape.bias, parts=(("3x3", first), ("rest", rest))
    )


def asymmetric(shape: ConvShape) -> Alternative:
    """A 1xK conv Cin->Cout then a Kx1 conv Cout->Cout, both at the output resolution. When the
    layer is strided the 1xK strides across only and the Kx1 down only (same reach), so the
    1xK's output keeps the input's height."""
    k = max(shape.kernel)
    area = prod(shape.out_spatial)
    first_area = area
    if shape.strided and len(shape.in_spatial) == 2:
        first_area = shape.in_spatial[0] * shape.out_spatial[1]
    first = shape.runs * k * shape.in_channels * shape.out_channels * first_area
    second = shape.runs * k * shape.out_channels * shape.out_channels * area
    params = k * shape.out_channels * (shape.in_channels + shape.out_channels)
    return Alternative(
        macs=first + second, params=params + shape.bias, parts=(("1xk", first), ("kx1", second))
    )


# -- depthwise-separable ----------------------------------------------------------------------


def separable(shape: ConvShape) -> Alternative:
    """A depthwise KxK conv on Cin channels then a pointwise 1x1 Cin->Cout conv."""
    area = prod(shape.out_spatial)
    k = prod(shape.kernel)
    depthwise = shape.runs * shape.in_channels * k * area
    pointwise = shape.runs * shape.in_channels * shape.out_channels * area
    params = shape.in_channels * k + shape.in_channels * shape.out_channels
    return Alternative(
        macs=depthwise + pointwise,
        params=params + shape.bias,
        parts=(("depthwise", depthwise), ("pointwise", pointwise)),
    )


def saving(before: int, after: int) -> float | None:
    """before / after (None when the alternative costs nothing or nothing is known)."""
    return before / after if after > 0 else None


def conv_shape(
    *,
    in_channels: int | None,
    out_channels: int | None,
    kernel: Sequence[int] | None,
    input_shape: Sequence[int] | None,
    output_shape: Sequence[int] | None,
    executions: int = 1,
    has_bias: bool = False,
    strides: Sequence[int] | None = None,
) -> ConvShape | None:
    """A ConvShape from a layer's figures, or None when any of them is unknown."""
    if (
        in_channels is None
        or out_channels is None
        or kernel is None
        or input_shape is None
        or output_shape is None
        or len(input_shape) != len(kernel) + 2
        or len(output_shape) != len(kernel) + 2
    ):
        return None
    return ConvShape(
        in_channels=in_channels,
        out_channels=out_channels,
        kernel=tuple(kernel),
        in_spatial=tuple(input_shape[2:]),
        out_spatial=tuple(output_shape[2:]),
        batch=input_shape[0],
        executions=executions,
        has_bias=has_bias,
        strides=tuple(strides or ()),
    )


def layer_shape(layer: Layer) -> ConvShape | None:
    """The ConvShape of a costed layer's record (None when any figure is unknown)."""
    return conv_shape(
        in_channels=layer.in_channels,
        out_channels=layer.out_channels,
        kernel=layer.kernel_shape,
        input_shape=layer.input_shape,
        output_shape=layer.output_shape,
        executions=layer.multiplier,
        has_bias=layer.has_bias,
        strides=layer.strides,
    )
