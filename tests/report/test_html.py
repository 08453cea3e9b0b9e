"""HTML report structure without a browser: self-contained, data embedded, findings and table."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

from convaudit.records import AuditResult
from convaudit.report import html


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _parse(text: str) -> list[tuple[str, dict[str, str | None]]]:
    p = _Collect()
    p.feed(text)
    return p.tags


def test_self_contained_no_external_references(textbook_flagged: AuditResult) -> None:
    text = html.render(textbook_flagged)
    tags = _parse(text)
    for tag, attrs in tags:
        for key in ("src", "href"):
            value = attrs.get(key)
            assert value is None or value.startswith("#"), (tag, key, value)
    assert not [t for t, _ in tags if t in {"link", "img", "iframe"}]
    assert not re.search(r"url\(|@import", text)
    assert "default-src 'none'" in text  # the page itself forbids network loads


def test_embedded_data_marks_the_flagged_layer(samples: dict[str, AuditResult]) -> None:
    from reportkit import textbook_finding, with_findings

    result = with_findings(samples["textbook_bottleneck"])  # no finding on this model
    text = html.render(result)
    m = re.search(r'<script type="application/json" id="convaudit-data">(.*?)</script>', text)
    assert m is not None
    data = json.loads(m.group(1))
    (model,) = data["models"]
    assert [x["name"] for x in model["layers"]] == ["reduce1x1", "conv5x5"]  # graph order
    assert [x["macs"] for x in model["layers"]] == [1_505_280, 3_763_200]
    assert model["by_op"] == [
        {"label": "Conv 5x5", "macs": 3_763_200},
        {"label": "Conv 1x1", "macs": 1_505_280},
    ]
    flagged = with_findings(samples["textbook_5x5"], textbook_finding())
    m2 = re.search(r'id="convaudit-data">(.*?)</script>', html.render(flagged))
    assert m2 is not None
    assert json.loads(m2.group(1))["models"][0]["layers"][0]["flag"] == "warning"


def test_findings_table_and_cards(textbook_flagged: AuditResult) -> None:
    text = html.render(textbook_flagged)
    assert "112,896,000 (112.9M)" in text and "5,268,480 (5.3M)" in text
    assert "21.4x fewer MACs" in text
    assert 'data-charts-expected="2"' in text
    assert '<tr id="m0-l0" data-index="0" class="flagged">' in text
    assert '<td class="num" data-v="112896000" title="112,896,000">112.9M</td>' in text


def test_script_data_cannot_close_the_script_tag() -> None:
    from convaudit.records import ModelReport

    bad = ModelReport(path="x</script><b>.onnx", facts=None, errors=("x: bad",))
    text = html.render(AuditResult(reports=(bad,)))
    assert text.count("</script>") == 2  # the data block and the code block only
    assert "x&lt;/script&gt;&lt;b&gt;.onnx" in text
