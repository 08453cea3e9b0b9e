"""Files that are not ONNX get advice on what to do, not protobuf internals (exit 2, one line)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import onnx
import pytest
from typer.testing import CliRunner

from convaudit.cli import app

SAMPLE = Path(__file__).resolve().parents[2] / "sample_models" / "textbook_5x5.onnx"


def _zip(*names: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name in names:
            z.writestr(name, b"\x80\x02}q\x00.")
    return buf.getvalue()


def _safetensors() -> bytes:
    header = b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    return len(header).to_bytes(8, "little") + header + bytes(4)


def _tf_graph() -> bytes:
    # A protobuf with only varint/string fields 1 and 2, as a SavedModel's header has.
    return b"\x08\x01\x12\x04meta"


CASES: list[tuple[str, Callable[[], bytes], str]] = [
    (
        "model.onnx",
        lambda: b"version https://git-lfs.github.com/spec/v1\noid sha256:ab12\nsize 99\n",
        "git lfs pull",
    ),
    ("model.pt", lambda: _zip("model/data.pkl", "model/version"), "torch.onnx.export"),
    ("old.pth", lambda: b"\x80\x02\x8a\x0alz\xfc\x9cF\xf9 j\xa8P\x19." + bytes(32), "torch.onnx"),
    ("model.keras", lambda: _zip("metadata.json", "config.json"), "tf2onnx"),
    ("model.tflite", lambda: b"\x1c\x00\x00\x00TFL3" + bytes(56), "tflite2onnx"),
    ("model.h5", lambda: b"\x89HDF\r\n\x1a\n" + bytes(56), "tf2onnx"),
    ("model.safetensors", _safetensors, "torch.onnx.export"),
    ("saved_model.pb", _tf_graph, "tf2onnx"),
    ("models.zip", lambda: _zip("a/model.onnx"), "unpack it"),
]


@pytest.mark.parametrize(("name", "make", "advice"), CASES, ids=[c[0] for c in CASES])
def test_foreign_file_gets_advice(
    tmp_path: Path, name: str, make: Callable[[], bytes], advice: str
) -> None:
    path = tmp_path / name
    path.write_bytes(make())
    result = CliRunner().invoke(app, ["scan", str(path)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(path) in lines[0]
    assert "not an ONNX model: " in lines[0]
    assert advice in lines[0]
    assert "wire type" not in lines[0]


def test_an_onnx_file_with_a_foreign_name_still_scans(tmp_path: Path) -> None:
    # The name alone never overrules the content: a real model named .pt is scanned.
    path = tmp_path / "exported.pt"
    path.write_bytes(SAMPLE.read_bytes())
    onnx.checker.check_model(str(path))
    result = CliRunner().invoke(app, ["scan", str(path), "--fail-on", "never"])
    assert result.exit_code == 0, result.stderr
    assert "112.9M" in result.stdout
