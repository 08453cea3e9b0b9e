"""Safe message templates: plain names and format specs only."""

from __future__ import annotations

import pytest

from convaudit.rules.template import TemplateError, check_spec, format_value, parse


def test_render_with_specs_and_human_counts() -> None:
    t = parse("{kernel} conv: {macs:h} MACs ({saving:.1f}x), {{literal}} {share:.1%}")
    values = {"kernel": (5, 5), "macs": 112_896_000, "saving": 21.428, "share": 0.5}
    assert t.render(values.__getitem__) == "5x5 conv: 112.9M MACs (21.4x), {literal} 50.0%"
    assert t.names == ("kernel", "macs", "saving", "share")


def test_unknown_values_render_as_a_question_mark() -> None:
    assert parse("{width}").render(lambda _: None) == "?"


@pytest.mark.parametrize(
    "text",
    [
        "{x.__class__}",
        "{x[0]}",
        "{x!r}",
        "{}",
        "{0}",
        "{x:{y}}",
        "{x:>>>}",
        "{unclosed",
        "{x:>99999999999}",  # would allocate ~100 GB when rendered
        "{x:.99999999999f}",
    ],
)
def test_refused(text: str) -> None:
    with pytest.raises(TemplateError):
        parse(text)


def test_the_refused_attribute_is_never_evaluated() -> None:
    with pytest.raises(TemplateError, match="not allowed"):
        parse("{x.__class__.__mro__}")


def test_spec_checked_against_the_fact_type() -> None:
    check_spec("float", ".1f")
    check_spec("int", ",")
    check_spec("int", "h")
    with pytest.raises(TemplateError):
        check_spec("str", ".1f")
    with pytest.raises(TemplateError):
        check_spec("float", "d")


def test_widths_up_to_three_digits_are_allowed() -> None:
    assert parse("{macs:>12,}").render(lambda _: 112_896_000) == " 112,896,000"


def test_human_spec_with_digits() -> None:
    assert format_value(5_268_480, ".2h") == "5.27M"
    assert format_value(999, "h") == "999"
