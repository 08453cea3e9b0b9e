"""The cost formulas against numbers worked out by hand (each case shows its arithmetic)."""

from __future__ import annotations

import pytest

from convaudit import cost

# (label, batch, Cout, out spatial, Cin, group, kernel, expected MACs, hand arithmetic)
CONV_MACS = [
    ("textbook 5x5 480->48 on 14x14", 1, 48, (14, 14), 480, 1, (5, 5), 112_896_000),
    ("bottleneck 1x1 480->16", 1, 16, (14, 14), 480, 1, (1, 1), 1_505_280),  # 16*196*480
    ("bottleneck 5x5 16->48", 1, 48, (14, 14), 16, 1, (5, 5), 3_763_200),  # 48*196*16*25
    ("grouped 64->128 g4 3x3 on 28x28", 1, 128, (28, 28), 64, 4, (3, 3), 14_450_688),
    ("depthwise 32 g32 3x3 on 56x56", 1, 32, (56, 56), 32, 32, (3, 3), 903_168),  # 32*3136*9
    ("batch 8 1x1 3->16 on 4x4", 8, 16, (4, 4), 3, 1, (1, 1), 6_144),  # 8*16*16*3
    ("1D 8->16 k5 on 96 outputs", 1, 16, (96,), 8, 1, (5,), 61_440),  # 16*96*8*5
    ("3D 4->8 3x3x3 on 8x16x16", 1, 8, (8, 16, 16), 4, 1, (3, 3, 3), 1_769_472),  # 8*2048*4*27
    ("dilated 3x3 d2 16->16 on 28x28", 1, 16, (28, 28), 16, 1, (3, 3), 1_806_336),  # 16*784*144
]


@pytest.mark.parametrize(
    ("label", "n", "cout", "out_sp", "cin", "group", "kernel", "expected"), CONV_MACS
)
def test_conv_macs_by_hand(
    label: str,
    n: int,
    cout: int,
    out_sp: tuple[int, ...],
    cin: int,
    group: int,
    kernel: tuple[int, ...],
    expected: int,
) -> None:
    assert cost.conv_macs(n, cout, out_sp, cin, group, kernel) == expected, label


def test_textbook_bottleneck_total_and_saving() -> None:
    reduce, main = cost.bottleneck_macs(480, (14, 14), 16, 48, (5, 5), (14, 14))
    assert (reduce, main) == (1_505_280, 3_763_200)
    assert reduce + main == 5_268_480
    assert round(112_896_000 / (reduce + main), 1) == 21.4
    # 16*480 + 48*16*25 = 7,680 + 19,200
    assert cost.bottleneck_params(480, 16, 48, (5, 5)) == 26_880
    assert cost.conv_params(48, 480, 1, (5, 5), bias=False) == 576_000


def test_break_even_width_480_to_48_5x5() -> None:
    # r* = 48*480*25 / (480 + 48*25) = 576,000 / 1,680 = 342.857...
    r = cost.break_even_width(480, 48, (5, 5))
    assert r == pytest.approx(576_000 / 1_680)
    assert round(r) == 343
    # At the break-even width the bottleneck costs what the original conv costs.
    reduce, main = cost.bottleneck_macs(480, (14, 14), 343, 48, (5, 5), (14, 14))
    assert (
        reduce + main
        > 112_896_000
        > sum(cost.bottleneck_macs(480, (14, 14), 342, 48, (5, 5), (14, 14)))
    )


def test_conv_transpose_textbook_64_to_32_k4_s2_p1() -> None:
    out = cost.conv_transpose_output_spatial((28, 28), (4, 4), (2, 2), (1, 1, 1, 1), (1, 1), (0, 0))
    assert out == (56, 56)  # 2*27 + 0 + 3*1 + 1 - 1 - 1
    # 64 * 28*28 * 32 * 16: counting the input volume, not the output (which is 4x more)
    assert cost.conv_transpose_macs(1, 64, (28, 28), 32, 1, (4, 4)) == 25_690_112
    assert cost.conv_transpose_macs(1, 64, (28, 28), 32, 1, (4, 4)) != 51_380_224


def test_conv_transpose_grouped_dilated_output_padding() -> None:
    # in 10, s3, k3, d2: 3*9 + 1 (output_padding) + 2*2 + 1 - 1 - 0 = 32
    out = cost.conv_transpose_output_spatial((10,), (3,), (3,), (1, 0), (2,), (1,))
    assert out == (32,)
    # Cin 8, Cout 6 in 2 groups: each input element meets Cout/g = 3 filters of 3 taps.
    assert cost.conv_transpose_macs(2, 8, (10,), 6, 2, (3,)) == 2 * 8 * 10 * 3 * 3


@pytest.mark.parametrize(
    ("in_sp", "kernel", "strides", "pads", "dilations", "expected"),
    [
        ((14, 14), (5, 5), (1, 1), (2, 2, 2, 2), (1, 1), (14, 14)),
        ((224, 224), (7, 7), (2, 2), (3, 3, 3, 3), (1, 1), (112, 112)),  # (224+6-7)//2+1
        ((32, 32), (3, 3), (1, 1), (0, 0, 0, 0), (2, 2), (28, 28)),  # effective kernel 5
        ((10, 11), (3, 3), (2, 3), (1, 0, 0, 2), (1, 1), (5, 4)),  # (10+1-3)//2+1, (11+2-3)//3+1
        ((100,), (5,), (1,), (0, 0), (1,), (96,)),
        ((8, 16, 16), (3, 3, 3), (1, 2, 2), (1, 1, 1, 1, 1, 1), (1, 1, 1), (8, 8, 8)),
        ((5,), (3,), (2,), (0, 0), (3,), (0,)),  # effective kernel 7 > 5: empty output
    ],
)
def test_conv_output_spatial_explicit_pads(
    in_sp: tuple[int, ...],
    kernel: tuple[int, ...],
    strides: tuple[int, ...],
    pads: tuple[int, ...],
    dilations: tuple[int, ...],
    expected: tuple[int, ...],
) -> None:
    assert cost.conv_output_spatial(in_sp, kernel, strides, pads, dilations) == expected


# auto_pad: ONNX says out = ceil(in / s) for SAME_*, total pad = (out-1)*s + eff - in, with the
# odd pixel at the end for SAME_UPPER and at the beginning for SAME_LOWER; VALID pads nothing.
AUTO_PAD = [
    # mode, in, kernel, stride, dilation, out, pads (begin..., end...)
    ("SAME_UPPER", (7,), (4,), (2,), (1,), (4,), (1, 2)),  # total (4-1)*2+4-7 = 3
    ("SAME_LOWER", (7,), (4,), (2,), (1,), (4,), (2, 1)),
    ("VALID", (7,), (4,), (2,), (1,), (2,), (0, 0)),  # (7-4)//2+1
    ("SAME_UPPER", (14, 14), (5, 5), (1, 1), (1, 1), (14, 14), (2, 2, 2, 2)),
    ("SAME_LOWER", (14, 14), (4, 4), (1, 1), (1, 1), (14, 14), (2, 2, 1, 1)),  # total 3
    ("SAME_UPPER", (14, 14), (4, 4), (1, 1), (1, 1), (14, 14), (1, 1, 2, 2)),
    ("SAME_UPPER", (9,), (3,), (1,), (2,), (9,), (2, 2)),  # effective kernel 5, total 4
    ("SAME_UPPER", (6,), (1,), (3,), (1,), (2,), (0, 0)),  # (2-1)*3+1-6 < 0: no padding
    ("VALID", (9,), (3,), (1,), (2,), (5,), (0, 0)),  # (9-5)//1+1
    ("NOTSET", (9,), (3,), (1,), (1,), (7,), (0, 0)),
]


@pytest.mark.parametrize(("mode", "in_sp", "kernel", "strides", "dil", "out", "pads"), AUTO_PAD)
def test_auto_pad_output_and_pads(
    mode: str,
    in_sp: tuple[int, ...],
    kernel: tuple[int, ...],
    strides: tuple[int, ...],
    dil: tuple[int, ...],
    out: tuple[int, ...],
    pads: tuple[int, ...],
) -> None:
    resolved = cost.conv_same_pads(in_sp, kernel, strides, dil, mode)
    assert resolved == pads
    assert cost.conv_output_spatial(in_sp, kernel, strides, resolved, dil, mode) == out
    # The resolved pads, used as explicit pads, give the same output size.
    assert cost.conv_output_spatial(in_sp, kernel, strides, resolved, dil) == out


def test_conv_params_with_and_without_bias() -> None:
    assert cost.conv_params(48, 480, 1, (5, 5), bias=True) == 576_048
    assert cost.conv_params(32, 32, 32, (3, 3), bias=True) == 32 * 9 + 32  # depthwise
    assert cost.conv_params(128, 64, 4, (3, 3), bias=False) == 128 * 16 * 9


@pytest.mark.parametrize(
    ("a", "b", "out", "expected"),
    [
        ((1, 2048), (2048, 1000), (1, 1000), 2_048_000),
        ((2, 3, 4, 5), (5, 6), (2, 3, 4, 6), 2 * 3 * 4 * 6 * 5),  # batched
        ((1, 4, 5), (3, 5, 6), (3, 4, 6), 3 * 4 * 6 * 5),  # broadcast batch
        ((8, 16, 64), (8, 64, 16), (8, 16, 16), 8 * 16 * 16 * 64),  # attention scores
    ],
)
def test_matmul_macs(
    a: tuple[int, ...], b: tuple[int, ...], out: tuple[int, ...], expected: int
) -> None:
    assert cost.matmul_macs(a, b, out) == expected


def test_gemm_and_einsum_macs() -> None:
    assert cost.gemm_macs(1, 25088, 4096) == 102_760_448  # VGG fc6
    # "bij,bjk->bik" with b=2, i=3, j=4, k=5: every (b, i, j, k) point is one MAC
    assert cost.einsum_macs({"b": 2, "i": 3, "j": 4, "k": 5}) == 120


@pytest.mark.parametrize(
    ("shape", "dtype", "expected"),
    [
        ((48, 480, 5, 5), "float32", 2_304_000),
        ((2, 3), "float16", 12),
        ((10,), "int8", 10),
        ((3,), "int4", 2),  # packed two per byte, rounded up
        ((4,), "float64", 32),
        ((1,), "int2", 1),  # 2 bits still take a byte
        ((5,), "uint2", 2),  # 10 bits
        ((3,), "float6e2m3", 3),  # 18 bits
        ((2, 2), "complex64", 32),
        ((4,), "string", None),
        ((4,), None, None),
    ],
)
def test_tensor_bytes(shape: tuple[int, ...], dtype: str | None, expected: int | None) -> None:
    assert cost.tensor_bytes(shape, dtype) == expected


def test_every_onnx_element_type_has_a_size() -> None:
    import onnx

    from convaudit.model.tensors import dtype_name

    for name, value in onnx.TensorProto.DataType.items():
        if value and name != "STRING":
            assert cost.tensor_bytes((8,), dtype_name(value)) is not None, name


@pytest.mark.parametrize(
    ("mode", "pads"),
    [("SAME_UPPER", (0, 1)), ("SAME_LOWER", (1, 0)), ("VALID", (0, 0)), ("NOTSET", (0, 0))],
)
def test_conv_transpose_same_pads(mode: str, pads: tuple[int, ...]) -> None:
    # in 7, k3, s2: output 14; total padding 2*6 + 0 + 3 - 14 = 1, the odd pixel at the end for
    # SAME_UPPER (as onnxruntime computes it)
    assert cost.conv_transpose_same_pads((7,), (3,), (2,), (1,), (0,), mode) == pads


def test_conv_transpose_pads_from_output_shape() -> None:
    # in 7, k3, s2 asked for 13 outputs: total padding 12 + 3 - 13 = 2, one each side; for 14 the
    # single pixel goes first (onnxruntime's choice when output_shape, not SAME_UPPER, decides)
    assert cost.conv_transpose_same_pads((7,), (3,), (2,), (1,), (0,), "NOTSET", (13,)) == (1, 1)
    assert cost.conv_transpose_same_pads((7,), (3,), (2,), (1,), (0,), "NOTSET", (14,)) == (1, 0)
