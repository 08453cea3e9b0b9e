"""Recognise files that are not ONNX (a Git LFS pointer, a PyTorch file...) and say what to do.

Only magic bytes and the file name are read: nothing here parses, unpickles or unzips the file.
"""

from __future__ import annotations

_EXPORT_TORCH = "export it with torch.onnx.export(model, example_inputs, 'model.onnx')"
_EXPORT_TF = "convert it with tf2onnx (python -m tf2onnx.convert --saved-model DIR --output m.onnx)"
_EXPORT_KERAS = "convert it with tf2onnx (python -m tf2onnx.convert --keras FILE --output m.onnx)"


def _zip_member(head: bytes) -> bytes:
    """The name of a zip archive's first member (its local file header starts the file)."""
    size = int.from_bytes(head[26:28], "little")
    return head[30 : 30 + size]


def _zip_advice(head: bytes) -> str:
    first = _zip_member(head)
    # torch.save writes "<name>/data.pkl", "<name>/version", ... (the zip format since 1.6).
    if first.endswith((b"data.pkl", b"/version", b"/byteorder")) or b".data/" in first:
        return f"a PyTorch checkpoint (torch.save): {_EXPORT_TORCH}"
    if first in (b"metadata.json", b"config.json", b"model.weights.h5"):
        return f"a Keras 3 .keras archive: {_EXPORT_KERAS}"
    return "a zip archive: unpack it and scan the .onnx files inside"


def foreign_format(head: bytes, name: str) -> str | None:
    """What ``head`` (a file's first bytes) really is, with what to do instead; None if unknown."""
    lower = name.lower()
    if head.startswith(b"version https://git-lfs.github.com/spec/"):
        return (
            "a Git LFS pointer, not the model itself: run `git lfs pull` "
            "(in GitHub Actions: actions/checkout with `lfs: true`)"
        )
    if head.startswith(b"PK\x03\x04"):
        return _zip_advice(head)
    if head[4:8] == b"TFL3":
        return "a TensorFlow Lite model: convert it with tflite2onnx or tf2onnx (--tflite FILE)"
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return f"an HDF5 (Keras .h5) file: {_EXPORT_KERAS}"
    if len(head) > 10 and head[8:10] == b'{"' and lower.endswith(".safetensors"):
        return f"a safetensors file (weights only, no graph): {_EXPORT_TORCH}"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return f"a pickled PyTorch checkpoint: {_EXPORT_TORCH}"
    if lower.endswith((".pt", ".pth", ".ckpt", ".bin")):
        return f"a PyTorch file by its name: {_EXPORT_TORCH}"
    if lower.endswith(".pb"):
        return f"a TensorFlow graph (.pb) by its name: {_EXPORT_TF}"
    return None
