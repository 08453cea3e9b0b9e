"""The README's Python API example runs as printed and prints the textbook numbers."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _python_example() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Python API\n", 1)[1]
    m = re.search(r"```python\n(.*?)```", section, re.S)
    assert m is not None, "README's Python API section has no python block"
    return m.group(1)


def test_readme_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The files the example names: the sample models, a models/ folder, a base/head pair.
    samples = ROOT / "sample_models"
    shutil.copytree(samples, tmp_path / "sample_models", ignore=shutil.ignore_patterns("*.py"))
    (tmp_path / "models").mkdir()
    shutil.copy(samples / "textbook_5x5.onnx", tmp_path / "models" / "a.onnx")
    (tmp_path / "models" / "broken.onnx").write_bytes(b"\x08")
    shutil.copy(samples / "textbook_bottleneck.onnx", tmp_path / "base.onnx")
    shutil.copy(samples / "textbook_5x5.onnx", tmp_path / "head.onnx")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(_python_example(), "README.md", "exec"), namespace)
    lines = out.getvalue().splitlines()
    assert lines[0] == "112896000"  # 5·5·480·14·14·48, as the comment in the README says
    assert lines[1].startswith("CA101 conv5x5 5x5 conv 480→48")
    sarif = json.loads(str(namespace["sarif_text"]))
    assert sarif["version"] == "2.1.0"
    assert str(namespace["html_text"]).lstrip().lower().startswith("<!doctype html>")
    # shard (1, 2) of [models/a.onnx, models/broken.onnx] keeps a.onnx; it scans.
    assert namespace["failed"] == []
    # 112,896,000 − 5,268,480 = 107,627,520; both totals grew far over 2%: two CA900 findings.
    assert lines[-1].startswith("107627520 ['total MACs grew 5,268,480 → 112,896,000")
    assert "total params grew 26,944 → 576,048" in lines[-1]
