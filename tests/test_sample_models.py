"""sample_models/build.py is deterministic and the committed models are its output."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_models"


def test_build_script_reproduces_the_committed_models_byte_for_byte(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("sample_models_build", SAMPLES / "build.py")
    assert spec is not None and spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    build.main(tmp_path)
    built = sorted(p.name for p in tmp_path.glob("*.onnx"))
    assert built == ["inception_block.onnx", "textbook_5x5.onnx", "textbook_bottleneck.onnx"]
    for name in built:
        assert (tmp_path / name).read_bytes() == (SAMPLES / name).read_bytes(), name
