"""Recommendation arithmetic against numbers worked out by hand."""

from __future__ import annotations

import pytest

from convaudit.rules import recommend
from convaudit.rules.recommend import ConvShape

TEXTBOOK = ConvShape(
    in_channels=480, out_channels=48, kernel=(5, 5), in_spatial=(14, 14), out_spatial=(14, 14)
)


def test_textbook_bottleneck_at_16() -> None:
    plan = recommend.bottleneck(TEXTBOOK, 16)
    assert plan.parts == (("1x1", 1_505_280), ("kxk", 3_763_200))  # 16*480*196, 48*16*25*196
    assert plan.macs == 5_268_480
    assert plan.params == 26_880  # 16*480 + 48*16*25 (no bias)
    assert TEXTBOOK.macs == 112_896_000


def test_break_even_width_is_the_textbook_formula_at_stride_1() -> None:
    # Cout*Cin*K^2 / (Cin + Cout*K^2) = 48*480*25 / (480 + 1200) = 576000 / 1680
    assert recommend.break_even_width(TEXTBOOK) == pytest.approx(342.857, abs=1e-3)
    assert recommend.width_cap(TEXTBOOK) == 336


def test_break_even_under_stride_counts_the_1x1_at_input_resolution() -> None:
    down = ConvShape(
        in_channels=256, out_channels=256, kernel=(3, 3), in_spatial=(28, 28), out_spatial=(14, 14)
    )
    # 256*256*9*196 / (256*784 + 256*9*196) = 115605504 / 652288
    assert recommend.break_even_width(down) == pytest.approx(177.23, abs=0.01)
    assert recommend.width_cap(down) == 176
    assert recommend.bottleneck(down, 176).macs < down.macs < recommend.bottleneck(down, 184).macs


@pytest.mark.parametrize(
    ("policy", "kwargs", "width"),
    [
        ("ratio", {"width_ratio": 0.0333}, 16),  # 480*0.0333 = 15.98
        ("ratio", {"width_ratio": 0.05}, 24),  # 24.0
        ("ratio", {"width_ratio": 0.001}, 8),  # never below 8
        ("ratio", {"width_ratio": 1.0}, 336),  # capped below break-even
        ("saving", {"target_saving": 20}, 16),  # 21.4x at 16, 14.3x at 24
        ("saving", {"target_saving": 10}, 32),  # 10.7x at 32, 8.6x at 40
        ("saving", {"target_saving": 1000}, 8),  # unreachable: the narrowest
        ("budget", {"mac_budget": 8_000_000}, 24),  # 7,902,720 at 24
        ("budget", {"mac_budget": 1}, 8),
    ],
)
def test_width_policies(policy: str, kwargs: dict[str, float], width: int) -> None:
    assert recommend.bottleneck_width(TEXTBOOK, policy=policy, **kwargs) == width  # type: ignore[arg-type]


def test_no_width_when_even_8_would_not_save() -> None:
    # 16 -> 16 3x3: break-even 16*16*9 / (16 + 144) = 14.4 < 8+8: only 8 is below it
    small = ConvShape(
        in_channels=16, out_channels=16, kernel=(3, 3), in_spatial=(8, 8), out_spatial=(8, 8)
    )
    assert recommend.width_cap(small) == 8
    tiny = ConvShape(
        in_channels=8, out_channels=8, kernel=(3, 3), in_spatial=(8, 8), out_spatial=(8, 8)
    )
    assert recommend.width_cap(tiny) is None  # 8*8*9/(8+72) = 7.2
    assert recommend.bottleneck_width(tiny) is None


def test_batch_and_loop_trip_count_scale_every_figure() -> None:
    shape = ConvShape(
        in_channels=480,
        out_channels=48,
        kernel=(5, 5),
        in_spatial=(14, 14),
        out_spatial=(14, 14),
        batch=2,
        executions=3,
    )
    assert shape.macs == 6 * 112_896_000
    assert recommend.bottleneck(shape, 16).macs == 6 * 5_268_480
    assert recommend.bottleneck(shape, 16).params == 26_880  # weights do not scale


def test_factorisations_of_the_textbook_5x5() -> None:
    assert recommend.stacked_3x3_count(5) == 2 and recommend.stacked_3x3_count(7) == 3
    stacked = recommend.stacked_3x3(TEXTBOOK)
    assert stacked.macs == 9 * 196 * (480 * 48 + 48 * 48) == 44_706_816
    assert stacked.params == 9 * 48 * (480 + 48)
    asym = recommend.asymmetric(TEXTBOOK)
    assert asym.macs == 5 * 196 * (480 * 48 + 48 * 48) == 24_837_120
    assert asym.params == 5 * 48 * (480 + 48) == 126_720


def test_separable_vgg_layer() -> None:
    vgg = ConvShape(
        in_channels=512,
        out_channels=512,
        kernel=(3, 3),
        in_spatial=(28, 28),
        out_spatial=(28, 28),
        has_bias=True,
    )
    plan = recommend.separable(vgg)
    assert plan.parts == (("depthwise", 3_612_672), ("pointwise", 205_520_896))
    assert plan.params == 512 * 9 + 512 * 512 + 512
    assert vgg.params == 512 * 512 * 9 + 512


def test_pooled_head_of_vgg_fc6() -> None:
    plan = recommend.pooled_head(1, 512, 4096, has_bias=True)
    assert (plan.macs, plan.params) == (2_097_152, 2_097_152 + 4096)


def test_conv_shape_refuses_unknown_figures() -> None:
    assert (
        recommend.conv_shape(
            in_channels=None, out_channels=8, kernel=(3, 3), input_shape=None, output_shape=None
        )
        is None
    )
    got = recommend.conv_shape(
        in_channels=480,
        out_channels=48,
        kernel=(5, 5),
        input_shape=(1, 480, 14, 14),
        output_shape=(1, 48, 14, 14),
    )
    assert got == TEXTBOOK


def test_strided_factorisations_keep_the_reach() -> None:
    # 7x7 stride 2, 64 -> 64, 56x56 -> 28x28: three 3x3s, the first two unstrided at 56x56
    down = ConvShape(
        in_channels=64,
        out_channels=64,
        kernel=(7, 7),
        in_spatial=(56, 56),
        out_spatial=(28, 28),
        strides=(2, 2),
    )
    # 9*64*64*3136 twice + 9*64*64*784 = 115,605,504 * 2 + 28,901,376
    assert recommend.stacked_3x3(down).macs == 260_112_384
    # 1x7 striding across only (56x28), then 7x1: 7*64*64*1568 + 7*64*64*784
    assert recommend.asymmetric(down).macs == 44_957_696 + 22_478_848
    # unstrided, every conv runs at the output resolution: 3 * 9*64*64*784
    same = ConvShape(
        in_channels=64, out_channels=64, kernel=(7, 7), in_spatial=(28, 28), out_spatial=(28, 28)
    )
    assert recommend.stacked_3x3(same).macs == 86_704_128
    assert recommend.asymmetric(same).macs == 2 * 22_478_848
