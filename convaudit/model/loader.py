"""Load an ONNX model's structure without its big weight payloads, and read one weight on demand."""

from __future__ import annotations

import io
import math
import mmap
import os
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import onnx
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]  # no stubs here
from onnx import helper, numpy_helper

from convaudit.errors import ModelLoadError
from convaudit.model.formats import foreign_format
from convaudit.model.wire import (
    DOUBLE_DATA,
    FLOAT_DATA,
    LEN,
    MAX_DEPTH,
    PAYLOAD_FIELDS,
    RAW_DATA,
    STRING_DATA,
    VARINT,
    Buffer,
    NestingError,
    TensorLocation,
    WireError,
    encode_varint,
    field_key,
    iter_fields,
    strip_payloads,
)
from convaudit.safe_io import external_data, open_external, open_regular

__all__ = ["LoadedModel", "TensorLocation", "check_external_data", "load_model"]

_T = onnx.TensorProto
# Types whose raw_data is plain little-endian elements (sub-byte types are packed: onnx decodes).
_PLAIN_RAW_TYPES = frozenset(
    {_T.FLOAT, _T.UINT8, _T.INT8, _T.UINT16, _T.INT16, _T.INT32, _T.INT64, _T.BOOL, _T.FLOAT16}
    | {_T.DOUBLE, _T.UINT32, _T.UINT64, _T.COMPLEX64, _T.COMPLEX128, _T.BFLOAT16}
    | {_T.FLOAT8E4M3FN, _T.FLOAT8E4M3FNUZ, _T.FLOAT8E5M2, _T.FLOAT8E5M2FNUZ, _T.FLOAT8E8M0}
)
# Packed float/double fields are little-endian IEEE values too; complex is (re, im) pairs.
_PACKED_DTYPES: dict[tuple[int, int], np.dtype[Any]] = {
    (FLOAT_DATA, _T.FLOAT): np.dtype("<f4"),
    (FLOAT_DATA, _T.COMPLEX64): np.dtype("<c8"),
    (DOUBLE_DATA, _T.DOUBLE): np.dtype("<f8"),
    (DOUBLE_DATA, _T.COMPLEX128): np.dtype("<c16"),
}


_TOO_DEEP = (
    f"protobuf messages nest more than {MAX_DEPTH} deep (subgraphs inside subgraphs): "
    "protobuf and onnx cannot read the model; flatten the nested If/Loop/Scan nodes"
)


class MissingTensorError(ModelLoadError, KeyError):
    """``read_tensor`` of a name no initializer or Constant holds. A KeyError too, so a caller
    that treats "not stored" as "computed by a node" keeps working; anyone else gets one line."""

    __str__ = BaseException.__str__  # KeyError's would quote the whole message


class LoadedModel:
    """A model's whole structure (``proto``) plus where its stripped payloads live in the file."""

    def __init__(
        self,
        path: Path,
        proto: onnx.ModelProto,
        stripped: dict[str, TensorLocation],
        *,
        signature: tuple[int, int] | None = None,
    ) -> None:
        self.path = path
        self.proto = proto
        self.stripped = stripped
        self._signature = signature  # (size, mtime_ns) at load: offsets are only valid for it
        self._tensors: dict[str, onnx.TensorProto] | None = None
        self._file: io.RawIOBase | None = None

    def has_data(self, name: str) -> bool:
        """True if ``proto`` holds the tensor's values; False if stripped, external or unknown."""
        if name in self.stripped:
            return False
        tensor = self._index().get(name)
        return tensor is not None and tensor.data_location != _T.EXTERNAL

    def read_tensor(self, name: str) -> np.ndarray:
        """Return one tensor's values, reading only its own bytes.

        MissingTensorError (a ModelLoadError and a KeyError) when no initializer or Constant
        holds it: a node input naming a tensor nothing stores or computes, or one computed.
        """
        tensor = self._index().get(name)
        if tensor is None:
            raise MissingTensorError(
                f"tensor {name!r} is not stored in the model (no initializer or Constant holds"
                " it): check the node that reads it",
                path=self.path,
            )
        location = self.stripped.get(name)
        if location is not None:
            data = _read_span(self._open(), self.path, location.offset, location.length, name)
            return _decode(tensor, location.field, data, name, self.path)
        if tensor.data_location == _T.EXTERNAL:
            return _read_external(tensor, name, self.path)
        return _to_array(tensor, name, self.path)

    def external_files(self) -> tuple[str, ...]:
        """The external-data files the model's tensors name, joined to its folder (what a result
        read under ``--weights`` depends on besides the model file)."""
        names = {
            e.value
            for t in self._index().values()
            if t.data_location == _T.EXTERNAL
            for e in t.external_data
            if e.key == "location"
        }
        return tuple(sorted(os.path.join(self.path.parent, n) for n in names))

    def close(self) -> None:
        """Close the file handle that ``read_tensor`` keeps open."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> LoadedModel:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _open(self) -> io.RawIOBase:
        if self._file is None:
            file = open_regular(self.path, error=ModelLoadError, what="model")
            stat = os.fstat(file.fileno())
            if self._signature not in (None, (stat.st_size, stat.st_mtime_ns)):
                file.close()
                # Offsets into a rewritten file would silently read the wrong bytes.
                raise ModelLoadError(
                    "file changed since it was loaded: load it again", path=self.path
                )
            self._file = file
        return self._file

    def _index(self) -> dict[str, onnx.TensorProto]:
        # Built on first use: a scan that never reads weights never pays for the walk.
        if self._tensors is None:
            self._tensors = _index_tensors(self.proto, self.stripped)
        return self._tensors


def load_model(path: str | Path, *, keep_bytes: int = 4096) -> LoadedModel:
    """Read the model at ``path``, leaving out tensor payloads of ``keep_bytes`` bytes or more."""
    if keep_bytes < 0:
        raise ValueError(f"keep_bytes must be >= 0, got {keep_bytes}")
    file = Path(path)
    try:
        if file.is_dir():
            raise ModelLoadError("is a directory, not an .onnx file", path=file)
        # A FIFO or device as the model would block or read forever: regular files only.
        with open_regular(
            file, error=ModelLoadError, what="model", missing="no such file"
        ) as handle:
            stat = os.fstat(handle.fileno())
            if stat.st_size == 0:
                raise ModelLoadError("file is empty", path=file)
            # ACCESS_READ cannot write back, and only the pages we walk are ever read in.
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                _refuse_foreign_format(buf, file)
                _check_model_fields(buf, file)
                content, stripped = strip_payloads(buf, keep_bytes)
    except FileNotFoundError:
        raise ModelLoadError("no such file", path=file) from None
    except NestingError:
        raise ModelLoadError(_TOO_DEEP, path=file) from None
    except WireError as err:
        message = f"malformed protobuf ({err} at byte {err.offset})"
        raise ModelLoadError(message, path=file) from None
    except OSError as err:
        raise ModelLoadError(f"cannot read the file ({err.strerror or err})", path=file) from None
    try:
        proto = onnx.ModelProto.FromString(content)
    except DecodeError as err:
        if "MaxDepth" in str(err):  # nesting the stripper does not enter (value types, ...)
            raise ModelLoadError(_TOO_DEEP, path=file) from None
        message = f"not an ONNX model (protobuf decode failed: {err})"
        raise ModelLoadError(message, path=file) from None
    if not proto.HasField("graph"):
        # A protobuf without a graph: a TensorFlow .pb parses this far.
        advice = foreign_format(b"", file.name) or "the protobuf has no graph"
        raise ModelLoadError(f"not an ONNX model: {advice}", path=file)
    bad = _non_utf8_text(proto)
    if bad is not None:
        raise ModelLoadError(f"not an ONNX model: {bad} is not UTF-8 text", path=file)
    return LoadedModel(file, proto, stripped, signature=(stat.st_size, stat.st_mtime_ns))


def _non_utf8_text(proto: onnx.ModelProto) -> str | None:
    """Where a name the scan uses holds bytes that are not UTF-8 (python-protobuf hands such
    proto2 text over as ``bytes`` instead of failing the parse; every later ``str`` operation
    would crash). Names only, not doc strings: a full field walk costs a fifth of a scan."""
    for op in proto.opset_import:
        if type(op.domain) is bytes:
            return "an opset domain"
    found = _graph_text(proto.graph, "the graph")
    for i, fn in enumerate(proto.functions):
        if found is None and bytes in (type(fn.name), type(fn.domain)):
            found = f"function {i}'s name"
        if found is None:
            found = _nodes_text(fn.node, f"function {fn.name!r}")
    return found


def _graph_text(graph: onnx.GraphProto, where: str) -> str | None:
    for kind in ("input", "output", "value_info"):
        for info in getattr(graph, kind):
            if type(info.name) is bytes:
                return f"a name in {where}'s {kind}"
            if any(type(d.dim_param) is bytes for d in info.type.tensor_type.shape.dim):
                return f"a dim of {where}'s {kind} {info.name!r}"
    if any(type(t.name) is bytes for t in graph.initializer):
        return f"an initializer name in {where}"
    return _nodes_text(graph.node, where)


def _nodes_text(nodes: Any, where: str) -> str | None:
    for i, node in enumerate(nodes):
        try:  # str.join refuses bytes at C speed: the check costs ~5 µs a node
            "".join((node.name, node.op_type, node.domain, *node.input, *node.output))
            for attr in node.attribute:
                "".join((attr.name, attr.ref_attr_name))
        except TypeError:
            return f"node {i} of {where}"
        for attr in node.attribute:
            if attr.type not in _GRAPH_ATTRIBUTES:
                continue
            for sub in [attr.g] if attr.type == onnx.AttributeProto.GRAPH else attr.graphs:
                found = _graph_text(sub, f"node {i} of {where} ({attr.name})")
                if found is not None:
                    return found
    return None


_GRAPH_ATTRIBUTES = (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)


def _wire_type(field: Any) -> int:  # a protobuf FieldDescriptor (untyped)
    is_len = field.type in (field.TYPE_MESSAGE, field.TYPE_STRING, field.TYPE_BYTES)
    return LEN if is_len else VARINT  # ModelProto has no float or fixed-width fields


# From the descriptor, so fields added in a newer onnx are recognised.
_MODEL_FIELDS = {f.number: _wire_type(f) for f in onnx.ModelProto.DESCRIPTOR.fields}


def _refuse_foreign_format(buf: Buffer, file: Path) -> None:
    """A file that is recognisably something else gets advice, not protobuf internals."""
    head = bytes(buf[:64])
    advice = foreign_format(head, file.name)
    if advice is None:
        return
    try:
        _check_model_fields(buf, file)
    except ModelLoadError:
        raise ModelLoadError(f"not an ONNX model: {advice}", path=file) from None


def _check_model_fields(buf: Buffer, file: Path) -> None:
    """Tell a cut ONNX file from a file that never was ONNX, before rebuilding anything."""
    valid_fields = 0
    try:
        for number, wire_type, start, _, _ in iter_fields(buf, 0, len(buf)):
            expected = _MODEL_FIELDS.get(number)
            # Unknown numbers may come from a newer onnx, but not as the very first field.
            if (expected is None and not valid_fields) or expected not in (None, wire_type):
                raise WireError(
                    f"field {number} (wire type {wire_type}) is not in ModelProto", start
                )
            valid_fields += 1
    except WireError as err:
        problem = "file is truncated" if err.past_end and valid_fields else "not an ONNX model"
        raise ModelLoadError(f"{problem} ({err} at byte {err.offset})", path=file) from None


def _index_tensors(
    proto: onnx.ModelProto, stripped: dict[str, TensorLocation]
) -> dict[str, onnx.TensorProto]:
    """Map tensor names to TensorProtos under the stripper's keys, first in file order winning."""
    index: dict[str, onnx.TensorProto] = {}

    def add(name: str, tensor: onnx.TensorProto) -> None:
        # A stripped name must resolve to the payload-free tensor, not to a namesake kept whole.
        if name and not (name in stripped and _has_payload(tensor)):
            index.setdefault(name, tensor)

    def attribute(attr: onnx.AttributeProto, constant_output: str | None) -> None:
        if attr.HasField("t"):
            is_value = constant_output is not None and attr.name == "value"
            add(constant_output if constant_output and is_value else attr.t.name, attr.t)
        if attr.HasField("g"):
            graph(attr.g)
        for tensor in attr.tensors:
            add(tensor.name, tensor)
        for sub in attr.graphs:
            graph(sub)

    def nodes(node_list: list[onnx.NodeProto]) -> None:
        for node in node_list:
            constant = node.op_type == "Constant" and node.domain in ("", "ai.onnx")
            for attr in node.attribute:
                attribute(attr, node.output[0] if constant and node.output else None)

    def graph(g: onnx.GraphProto) -> None:
        nodes(list(g.node))
        for tensor in g.initializer:
            add(tensor.name, tensor)

    graph(proto.graph)
    for info in proto.training_info:
        graph(info.initialization)
        graph(info.algorithm)
    for function in proto.functions:
        nodes(list(function.node))
        for attr in function.attribute_proto:
            attribute(attr, None)
    return index


def _has_payload(tensor: onnx.TensorProto) -> bool:
    # ListFields lists only fields that are set or non-empty.
    return any(field.number in PAYLOAD_FIELDS for field, _ in tensor.ListFields())


def _read_span(file: io.RawIOBase, path: Path, offset: int, length: int, name: str) -> bytearray:
    """Exactly ``length`` bytes at ``offset``; ModelLoadError naming ``path`` if it is shorter."""
    data = bytearray(length)
    view = memoryview(data)
    file.seek(offset)
    got = 0
    while got < length:  # one read() returns at most ~2 GiB on Linux
        count = file.readinto(view[got:])
        if not count:
            size = file.seek(0, 2)
            raise ModelLoadError(
                f"file is too short: tensor {name!r} needs bytes {offset}..{offset + length}, "
                f"the file has {size}",
                path=path,
            )
        got += count
    return data


def _decode(
    tensor: onnx.TensorProto, field: int, data: bytearray, name: str, path: Path
) -> np.ndarray:
    """Values of ``tensor`` from payload bytes that came from TensorProto field ``field``."""
    if field == RAW_DATA and tensor.data_type in _PLAIN_RAW_TYPES:
        dtype: np.dtype[Any] | None = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.data_type))
    else:
        dtype = _PACKED_DTYPES.get((field, tensor.data_type))
    count = math.prod(tensor.dims)
    if dtype is not None and sys.byteorder == "little" and count * dtype.itemsize == len(data):
        return np.frombuffer(data, dtype=dtype).reshape(tuple(tensor.dims))
    # Varint-packed ints, strings, sub-byte types: put the payload back and let onnx decode it.
    full = onnx.TensorProto()
    full.CopyFrom(tensor)
    if field == STRING_DATA:
        full.MergeFromString(bytes(data))  # the span holds whole tagged fields
    else:
        full.MergeFromString(field_key(field, LEN) + encode_varint(len(data)) + data)
    return _to_array(full, name, path)


def _read_external(tensor: onnx.TensorProto, name: str, model_path: Path) -> np.ndarray:
    """Read an external-data tensor from its file, found relative to the model's directory."""
    info = external_data(model_path, {e.key: e.value for e in tensor.external_data}, name)
    file, length = open_external(model_path, info, name)  # checked before any allocation
    try:
        with file:
            data = _read_span(file, info.named, info.offset, length, name)
    except OSError as err:
        message = f"cannot read external data ({err.strerror or err})"
        raise ModelLoadError(message, path=info.named) from None
    inline = onnx.TensorProto()
    inline.CopyFrom(tensor)
    del inline.external_data[:]
    inline.data_location = _T.DEFAULT
    return _decode(inline, RAW_DATA, data, name, info.named)


def check_external_data(loaded: LoadedModel) -> None:
    """Check every external-data entry of ``loaded`` (location inside the model's folder, a
    regular file long enough, sizes within budget) before another reader (onnx.load) opens it."""
    for name, tensor in loaded._index().items():
        if tensor.data_location == _T.EXTERNAL:
            info = external_data(loaded.path, {e.key: e.value for e in tensor.external_data}, name)
            open_external(loaded.path, info, name)[0].close()


def _to_array(tensor: onnx.TensorProto, name: str, path: Path) -> np.ndarray:
    try:
        return numpy_helper.to_array(tensor)
    except (ValueError, TypeError) as err:
        raise ModelLoadError(f"cannot decode tensor {name!r} ({err})", path=path) from None
