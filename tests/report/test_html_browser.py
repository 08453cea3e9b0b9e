"""The HTML report in a real headless browser (Debian's chromium, installed by .ci/run).

It must load with no console message at all (errors, uncaught exceptions), draw both charts of
every model (the script sets data-charts-drawn), and sort the layer table on a header click.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from reportkit import textbook_finding, with_findings

from convaudit.records import AuditResult, ModelReport
from convaudit.report import html

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

# Runs after the report's own script: clicks the MACs header twice (descending), then Cin→Cout,
# and records the row orders, so the dumped DOM shows what a user's clicks would do.
SORT_PROBE = """<script>
(function () {
  var table = document.querySelector("#model-0 table.layers");
  var th = table.querySelectorAll("th")[9];
  th.click(); var asc = Array.prototype.map.call(table.tBodies[0].rows,
    function (r) { return r.getAttribute("data-index"); }).join(",");
  th.click(); var desc = Array.prototype.map.call(table.tBodies[0].rows,
    function (r) { return r.getAttribute("data-index"); }).join(",");
  table.querySelectorAll("th")[4].click();
  var cin = Array.prototype.map.call(table.tBodies[0].rows,
    function (r) { return r.getAttribute("data-index"); }).join(",");
  document.body.setAttribute("data-sort-cin", cin);
  document.body.setAttribute("data-sort-asc", asc);
  document.body.setAttribute("data-sort-desc", desc);
})();
</script>"""


def _chromium(page: Path, tmp_path: Path) -> tuple[str, str]:
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: run `bash .ci/run` or apt-get install chromium")
    proc = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-dev-shm-usage",  # containers give /dev/shm 64 MB
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, proc.stderr


@pytest.fixture(scope="module")
def rendered(samples: dict[str, AuditResult]) -> str:
    """All three samples and a broken model: the textbook CA101 and a flagged inception 3x3."""
    merged = AuditResult(
        reports=tuple(r for name in sorted(samples) for r in samples[name].reports),
        tool_version="0.1.0",
    )
    merged = dataclasses.replace(
        merged, reports=tuple(dataclasses.replace(r, findings=()) for r in merged.reports)
    )
    inception = dataclasses.replace(
        textbook_finding("sample_models/inception_block.onnx"),
        node="inception_4a/3x3",
        rule="CA105",
        name="compute-hotspot",
        severity="info",
        recommendation=None,
        message="one layer costs 47.9% of the model's MACs",
        fingerprint="hot",
    )
    broken = ModelReport(path="sample_models/zz_broken.onnx", facts=None, errors=("truncated",))
    merged = dataclasses.replace(merged, reports=(*merged.reports, broken))
    return html.render(with_findings(merged, textbook_finding(), inception))


def test_loads_without_console_messages_and_draws_every_chart(
    rendered: str, tmp_path: Path
) -> None:
    page = tmp_path / "report.html"
    page.write_text(rendered.replace("</body>", SORT_PROBE + "</body>"), encoding="utf-8")
    dom, log = _chromium(page, tmp_path)
    console = [line for line in log.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == []
    body = re.search(r"<body([^>]*)>", dom)
    assert body is not None
    attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', body.group(1)))
    # 3 scanned models x (layer chart + share chart); the broken one has an error box instead.
    assert attrs["data-charts-expected"] == "6"
    assert attrs["data-charts-drawn"] == "6"
    # Model 0 is inception_block: 6 layers in graph order, MACs (M): 18.1 9.0 35.2 1.5 3.8 6.0.
    assert attrs["data-sort-asc"] == "3,4,5,1,0,2"
    assert attrs["data-sort-desc"] == "2,0,1,5,4,3"
    # Cin→Cout sorts numerically by Cin (16 < 96 < 480), not as text ("480" < "96").
    assert attrs["data-sort-cin"] == "4,2,0,1,3,5"
    bars = re.findall(r'<rect [^>]*class="(bar[^"]*)"', dom)
    assert len(bars) == 6 + 1 + 2  # one bar per layer across the three models
    # The textbook conv (a CA101 warning) and the inception 3x3 (a CA105 info), tinted apart.
    assert sorted(b for b in bars if "flagged" in b) == ["bar flagged", "bar flagged info"]
    assert dom.count("<svg") == 6
    # inception: Conv 1x1 / 3x3 / 5x5 slices; bottleneck: Conv 1x1 / 5x5
    assert len(re.findall(r'<path [^>]*class="slice"', dom)) == 3 + 2
    assert 'class="slice-ring"' in dom  # textbook: one op group, a full ring
    assert '<div class="errorbox"><strong>Scan error:</strong> truncated</div>' in dom
