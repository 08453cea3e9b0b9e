"""A light reading of an ONNX file without ``import onnx``: the model's structure as plain objects
that offer the fields of onnx's protobuf classes the scan reads, under the same names.

Only a plain model is read: one graph of standard nodes whose attributes are numbers, strings,
lists of them or tensors. Anything else (a field this reader does not know, a wrong wire type,
a message given twice, text that is not UTF-8, functions, subgraphs, sparse or non-tensor types,
two tensors under one name) raises ``Defer``: the caller then uses the full loader, which reads
everything and gives every error message. The reader never decides that a file is bad.
"""

from __future__ import annotations

import math
import struct
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from convaudit.model.values import BOOL, INT_TYPES, Value, from_array, wrap
from convaudit.model.wire import (
    I32,
    I64,
    LEN,
    PAYLOAD_FIELDS,
    RAW_DATA,
    STRING_DATA,
    VARINT,
    Buffer,
    WireError,
    read_varint,
)

if TYPE_CHECKING:
    import numpy as np
    import onnx

# AttributeProto.AttributeType numbers (onnx.proto); tests check them against onnx's enum.
FLOAT, INT, STRING, TENSOR, GRAPH, FLOATS, INTS, STRINGS, GRAPHS = 1, 2, 3, 4, 5, 6, 7, 8, 10
# Subgraphs (If/Loop/Scan bodies) nested deeper than this are left to the full path.
MAX_DEPTH = 16
# TensorProto.DataType numbers whose raw_data is plain little-endian elements, and their dtypes.
_RAW_DTYPES = {
    1: "<f4",
    2: "u1",
    3: "i1",
    4: "<u2",
    5: "<i2",
    6: "<i4",
    7: "<i8",
    9: "?",
    10: "<f2",
    11: "<f8",
    12: "<u4",
    13: "<u8",
}
# TensorProto's typed value fields and which element types each holds
# (onnx.helper.tensor_dtype_to_field); a narrower integer type wraps its stored value.
_FLOAT_DATA, _INT32_DATA, _INT64_DATA, _DOUBLE_DATA, _UINT64_DATA = 4, 5, 7, 10, 11
_TYPED: dict[int, int] = {
    1: _FLOAT_DATA,
    2: _INT32_DATA,
    3: _INT32_DATA,
    4: _INT32_DATA,
    5: _INT32_DATA,
    6: _INT32_DATA,
    7: _INT64_DATA,
    9: _INT32_DATA,
    11: _DOUBLE_DATA,
    12: _UINT64_DATA,
    13: _UINT64_DATA,
}
# struct codes of the raw_data element types whose values Python holds exactly (bool apart:
# numpy keeps a byte other than 0 and 1 as it is, so those go to numpy)
_STRUCT_CODES = {1: "f", 2: "B", 3: "b", 4: "H", 5: "h", 6: "i", 7: "q", 10: "e", 11: "d"}
_STRUCT_CODES |= {12: "I", 13: "Q"}
# A tensor payload of this many bytes or more is left in the file by the full loader
# (load_model's keep_bytes): its value is never read during a scan, here neither.
KEEP_BYTES = 4096
_FLOAT32 = struct.Struct("<f")
_DOUBLE = struct.Struct("<d")


class Defer(Exception):
    """The light reader does not cover this model (the message says why): use the full path."""


def fields(buf: Buffer, start: int, end: int) -> list[tuple[int, int, int, int, int]]:
    """``wire.iter_fields`` as a list, with one-byte keys and lengths read inline: the reader's
    hottest loop (every field of every node)."""
    out: list[tuple[int, int, int, int, int]] = []
    append = out.append
    pos = start
    while pos < end:
        field_start = pos
        key = buf[pos]
        if key < 0x80:
            pos += 1
        else:
            key, pos = read_varint(buf, pos, end)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise WireError("field number 0", field_start)
        if wire_type == LEN:
            if pos < end and buf[pos] < 0x80:
                value_start = pos + 1
                pos = value_start + buf[pos]
            else:
                length, value_start = read_varint(buf, pos, end)
                pos = value_start + length
        elif wire_type == VARINT:
            value_start = pos
            _, pos = read_varint(buf, pos, end)
        elif wire_type == I32:
            value_start = pos
            pos += 4
        elif wire_type == I64:
            value_start = pos
            pos += 8
        else:
            raise WireError(f"field {number} has wire type {wire_type}", field_start)
        if pos > end:
            raise WireError(f"field {number} runs past the end", field_start, past_end=True)
        append((number, wire_type, field_start, value_start, pos))
    return out


def _text(buf: Buffer, start: int, end: int) -> str:
    try:
        return buf[start:end].decode("utf-8")
    except UnicodeDecodeError:
        raise Defer("text that is not UTF-8") from None


def _signed64(value: int) -> int:
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= 1 << 63 else value


def _signed32(value: int) -> int:
    value &= (1 << 32) - 1
    return value - (1 << 32) if value >= 1 << 31 else value


def _varints(buf: Buffer, start: int, end: int) -> list[int]:
    """A packed run of varints."""
    out = []
    pos = start
    while pos < end:
        value, pos = read_varint(buf, pos, end)
        out.append(value)
    return out


def _ints64(buf: Buffer, wire_type: int, start: int, end: int) -> list[int]:
    if wire_type == VARINT:
        return [_signed64(read_varint(buf, start, end)[0])]
    if wire_type == LEN:
        return [_signed64(v) for v in _varints(buf, start, end)]
    raise Defer("an int field with another wire type")


def _floats32(buf: Buffer, wire_type: int, start: int, end: int) -> list[float]:
    if wire_type == I32:
        return [_FLOAT32.unpack_from(buf, start)[0]]
    if wire_type == LEN and (end - start) % 4 == 0:
        return [v for (v,) in _FLOAT32.iter_unpack(bytes(buf[start:end]))]
    raise Defer("a float field with another wire type")


def _scalar(buf: Buffer, wire_type: int, start: int, end: int) -> int:
    if wire_type != VARINT:
        raise Defer("a scalar field with another wire type")
    return read_varint(buf, start, end)[0]


def _need(wire_type: int, want: int) -> None:
    if wire_type != want:
        raise Defer("a field with an unexpected wire type")


class LiteTensor:
    """TensorProto's ``name``, ``dims``, ``data_type`` and ``data_location``; the payload stays in
    the file and is decoded only for small tensors (``to_array``)."""

    __slots__ = ("buf", "data_location", "data_type", "dims", "end", "name", "payload", "start")

    def __init__(self, buf: Buffer, start: int, end: int) -> None:
        self.buf, self.start, self.end = buf, start, end
        self.name = ""
        self.data_type = 0
        self.data_location = 0
        dims: list[int] = []
        # (field, wire type, field start, value start, value end) of each payload field
        self.payload: list[tuple[int, int, int, int, int]] = []
        names = 0
        for number, wire_type, f_start, v_start, v_end in fields(buf, start, end):
            if number == 1:  # dims
                dims += _ints64(buf, wire_type, v_start, v_end)
            elif number == 2:
                self.data_type = _signed32(_scalar(buf, wire_type, v_start, v_end))
            elif number == 8:
                _need(wire_type, LEN)
                self.name = _text(buf, v_start, v_end)
                names += 1
            elif number in PAYLOAD_FIELDS:
                self.payload.append((number, wire_type, f_start, v_start, v_end))
            elif number == 14:
                self.data_location = _scalar(buf, wire_type, v_start, v_end)
            elif number in (12, 16):  # doc_string, metadata_props
                pass
            else:  # segment (3), external_data (13), anything newer
                raise Defer(f"tensor field {number}")
        if names > 1:
            raise Defer("a tensor named twice")
        if self.data_location not in (0, 1):
            raise Defer("an unknown data location")
        self.dims = tuple(dims)

    def stripped(self) -> bool:
        """Whether load_model would cut this tensor's payload out of the file it parses: one
        contiguous payload of KEEP_BYTES or more (wire.strip_payloads' rule)."""
        if self.data_location or not self.payload:
            return False
        if any(wire_type != LEN for _, wire_type, _, _, _ in self.payload):
            return False
        if self.payload[0][0] == STRING_DATA:
            for prev, cur in zip(self.payload, self.payload[1:], strict=False):
                if cur[0] != STRING_DATA or cur[2] != prev[4]:
                    return False
            return self.payload[-1][4] - self.payload[0][2] >= KEEP_BYTES
        if len(self.payload) != 1:
            return False
        return self.payload[0][4] - self.payload[0][3] >= KEEP_BYTES

    def value(self) -> Value:
        """The tensor as a Value, equal to ``to_array``'s. raw_data of a plain element type and
        the typed fields decode in Python (raw bytes on first read of the values); any other
        encoding goes through ``to_array``, which imports numpy."""
        dims = self.dims
        count = math.prod(dims)
        if min(dims, default=0) >= 0:
            if not self.payload and count == 0 and self.data_type in _RAW_DTYPES:
                return Value(self.data_type, dims, ())
            if len(self.payload) == 1:
                number, wire_type, _, start, end = self.payload[0]
                code = _STRUCT_CODES.get(self.data_type)
                if number == RAW_DATA and wire_type == LEN and code is not None:
                    layout = struct.Struct(f"<{count}{code}")
                    if layout.size == end - start:
                        data = bytes(self.buf[start:end])
                        return Value(self.data_type, dims, decode=lambda: layout.unpack(data))
                if number == RAW_DATA and wire_type == LEN and self.data_type == BOOL:
                    data = bytes(self.buf[start:end])
                    if len(data) == count and not data.translate(None, b"\x00\x01"):
                        return Value(BOOL, dims, tuple(b == 1 for b in data))
            typed = self._typed_items(count)
            if typed is not None:
                return Value(self.data_type, dims, typed)
        return from_array(self.to_array())

    def to_array(self) -> np.ndarray:
        """The values, as ``onnx.numpy_helper.to_array`` gives them; anything but the plain
        encodings goes through onnx itself."""
        import numpy as np

        count = math.prod(self.dims)
        if not self.payload and count == 0 and self.data_type in _RAW_DTYPES:
            return np.zeros(self.dims, dtype=np.dtype(_RAW_DTYPES[self.data_type]))
        if len(self.payload) == 1 and min(self.dims, default=0) >= 0:
            number, wire_type, _, start, end = self.payload[0]
            dtype = None
            if number == RAW_DATA and wire_type == LEN:
                dtype = _RAW_DTYPES.get(self.data_type)
            elif number == _FLOAT_DATA and wire_type == LEN and self.data_type == 1:
                dtype = "<f4"
            elif number == _DOUBLE_DATA and wire_type == LEN and self.data_type == 11:
                dtype = "<f8"
            if dtype is not None and sys.byteorder == "little":
                np_dtype = np.dtype(dtype)
                if count * np_dtype.itemsize == end - start:
                    data = np.frombuffer(bytes(self.buf[start:end]), dtype=np_dtype)
                    return data.astype(np_dtype.newbyteorder("="), copy=False).reshape(self.dims)
        typed = self._typed_values(count)
        if typed is not None:
            return typed
        from onnx import numpy_helper

        return numpy_helper.to_array(self.to_proto())

    def _typed_values(self, count: int) -> np.ndarray | None:
        import numpy as np

        items = self._typed_items(count)
        if items is None:
            return None
        dtype = np.dtype(_RAW_DTYPES[self.data_type]).newbyteorder("=")
        return np.array(items, dtype=dtype).reshape(self.dims)

    def _typed_items(self, count: int) -> tuple[Any, ...] | None:
        """Values from the typed fields (int64_data, int32_data, float_data, double_data,
        uint64_data), packed or one field per element, converted as numpy_helper does (the
        storage type, then the element type: integers wrap, bools are "not zero"); None for
        any other encoding."""
        typed = _TYPED.get(self.data_type)
        numbers = {number for number, _, _, _, _ in self.payload}
        if typed is None or numbers != {typed}:
            return None
        field = typed
        buf = self.buf
        values: list[Any] = []
        for _, wire_type, _, start, end in self.payload:
            if field == _FLOAT_DATA:
                values += _floats32(buf, wire_type, start, end)
            elif field == _DOUBLE_DATA:
                if wire_type == I64:
                    values.append(_DOUBLE.unpack_from(buf, start)[0])
                elif wire_type == LEN and (end - start) % 8 == 0:
                    values += [v for (v,) in _DOUBLE.iter_unpack(buf[start:end])]
                else:
                    return None
            elif field == _INT32_DATA:
                values += [_signed32(v) for v in _ints64(buf, wire_type, start, end)]
            elif field == _UINT64_DATA:
                values += [v & ((1 << 64) - 1) for v in _ints64(buf, wire_type, start, end)]
            else:
                values += _ints64(buf, wire_type, start, end)
        if len(values) != count:
            return None
        if self.data_type == BOOL:
            return tuple(x != 0 for x in values)
        if self.data_type in INT_TYPES:
            return tuple(wrap(x, self.data_type) for x in values)
        return tuple(values)

    def to_proto(self) -> onnx.TensorProto:
        """The tensor as onnx parses it (imports onnx: only for what the reader leaves out)."""
        import onnx

        tensor: onnx.TensorProto = onnx.TensorProto.FromString(
            bytes(self.buf[self.start : self.end])
        )
        return tensor


class LiteAttribute:
    """AttributeProto: ``name``, ``type``, ``ref_attr_name`` and the value fields."""

    __slots__ = (
        "f",
        "floats",
        "g",
        "graphs",
        "i",
        "ints",
        "name",
        "ref_attr_name",
        "s",
        "strings",
        "t",
        "type",
    )

    def __init__(self, buf: Buffer, start: int, end: int, depth: int) -> None:
        self.name = ""
        self.type = 0
        self.ref_attr_name = ""
        self.f = 0.0
        self.i = 0
        self.s = b""
        self.t: LiteTensor | None = None
        self.g: LiteGraph | None = None
        self.graphs: list[LiteGraph] = []
        self.floats: list[float] = []
        self.ints: list[int] = []
        self.strings: list[bytes] = []
        for number, wire_type, _, v_start, v_end in fields(buf, start, end):
            if number == 1:
                _need(wire_type, LEN)
                self.name = _text(buf, v_start, v_end)
            elif number == 20:
                self.type = _scalar(buf, wire_type, v_start, v_end)
            elif number == 2:
                _need(wire_type, I32)
                self.f = _FLOAT32.unpack_from(buf, v_start)[0]
            elif number == 3:
                self.i = _signed64(_scalar(buf, wire_type, v_start, v_end))
            elif number == 4:
                _need(wire_type, LEN)
                self.s = bytes(buf[v_start:v_end])
            elif number == 5:
                _need(wire_type, LEN)
                if self.t is not None:
                    raise Defer("an attribute tensor given twice")  # protobuf would merge them
                self.t = LiteTensor(buf, v_start, v_end)
            elif number == 6:
                _need(wire_type, LEN)
                if self.g is not None:
                    raise Defer("an attribute graph given twice")
                self.g = LiteGraph(buf, v_start, v_end, depth + 1)
            elif number == 11:
                _need(wire_type, LEN)
                self.graphs.append(LiteGraph(buf, v_start, v_end, depth + 1))
            elif number == 7:
                self.floats += _floats32(buf, wire_type, v_start, v_end)
            elif number == 8:
                self.ints += _ints64(buf, wire_type, v_start, v_end)
            elif number == 9:
                _need(wire_type, LEN)
                self.strings.append(bytes(buf[v_start:v_end]))
            elif number == 13:  # doc_string
                pass
            else:  # tensors, sparse tensors, type protos, ref_attr_name (21): the full path
                raise Defer(f"attribute field {number}")
        if self.type not in (FLOAT, INT, STRING, TENSOR, GRAPH, FLOATS, INTS, STRINGS, GRAPHS):
            raise Defer(f"attribute type {self.type}")
        if (self.type == TENSOR) != (self.t is not None):
            raise Defer("a tensor attribute without its tensor, or the reverse")
        if (self.type == GRAPH) != (self.g is not None) or (self.type != GRAPHS and self.graphs):
            raise Defer("a graph attribute without its graph, or the reverse")

    def value(self) -> Any:
        """What ``onnx.helper.get_attribute_value`` returns for this attribute."""
        kind = self.type
        if kind == FLOAT:
            return self.f
        if kind == INT:
            return self.i
        if kind == STRING:
            return self.s
        if kind == FLOATS:
            return list(self.floats)
        if kind == INTS:
            return list(self.ints)
        if kind == STRINGS:
            return list(self.strings)
        if kind == GRAPH:
            return self.g
        if kind == GRAPHS:
            return list(self.graphs)
        return self.t


class LiteNode:
    """NodeProto: ``input``, ``output``, ``name``, ``op_type``, ``domain``, ``overload``,
    ``attribute``; ``to_proto`` parses the node's own bytes with onnx when a reader needs it."""

    __slots__ = (
        "attribute",
        "buf",
        "domain",
        "end",
        "input",
        "name",
        "op_type",
        "output",
        "overload",
        "start",
    )

    def __init__(self, buf: Buffer, start: int, end: int, depth: int = 0) -> None:
        self.buf, self.start, self.end = buf, start, end
        self.name = self.op_type = self.domain = self.overload = ""
        inputs: list[str] = []
        outputs: list[str] = []
        self.attribute: list[LiteAttribute] = []
        for number, wire_type, _, v_start, v_end in fields(buf, start, end):
            if number == 6 or number == 9:  # doc_string, metadata_props
                continue
            _need(wire_type, LEN)
            if number == 1:
                inputs.append(_text(buf, v_start, v_end))
            elif number == 2:
                outputs.append(_text(buf, v_start, v_end))
            elif number == 3:
                self.name = _text(buf, v_start, v_end)
            elif number == 4:
                self.op_type = _text(buf, v_start, v_end)
            elif number == 5:
                self.attribute.append(LiteAttribute(buf, v_start, v_end, depth))
            elif number == 7:
                self.domain = _text(buf, v_start, v_end)
            elif number == 8:
                self.overload = _text(buf, v_start, v_end)
            else:
                raise Defer(f"node field {number}")
        self.input = tuple(inputs)
        self.output = tuple(outputs)

    def to_proto(self) -> onnx.NodeProto:
        """The node as onnx parses it (imports onnx)."""
        import onnx

        node: onnx.NodeProto = onnx.NodeProto.FromString(bytes(self.buf[self.start : self.end]))
        return node


class LiteDim:
    """TensorShapeProto.Dimension: ``dim_value`` or ``dim_param`` (a oneof: the last one set)."""

    __slots__ = ("dim_param", "dim_value", "which")

    def __init__(self, buf: Buffer, start: int, end: int) -> None:
        self.dim_value = 0
        self.dim_param = ""
        self.which = ""
        for number, wire_type, _, v_start, v_end in fields(buf, start, end):
            if number == 1:
                self.dim_value = _signed64(_scalar(buf, wire_type, v_start, v_end))
                self.dim_param, self.which = "", "dim_value"
            elif number == 2:
                _need(wire_type, LEN)
                self.dim_param = _text(buf, v_start, v_end)
                self.dim_value, self.which = 0, "dim_param"
            elif number != 3:  # denotation
                raise Defer(f"dimension field {number}")

    def HasField(self, name: str) -> bool:
        return self.which == name


class LiteShape:
    """TensorShapeProto: ``dim``."""

    __slots__ = ("dim",)

    def __init__(self) -> None:
        self.dim: list[LiteDim] = []


class LiteTensorType:
    """TypeProto.Tensor: ``elem_type`` and ``shape`` (``HasField("shape")``)."""

    __slots__ = ("_has_shape", "elem_type", "shape")

    def __init__(self, buf: Buffer, start: int, end: int) -> None:
        self.elem_type = 0
        self.shape = LiteShape()
        self._has_shape = False
        for number, wire_type, _, v_start, v_end in fields(buf, start, end):
            if number == 1:
                self.elem_type = _signed32(_scalar(buf, wire_type, v_start, v_end))
            elif number == 2:
                _need(wire_type, LEN)
                if self._has_shape:
                    raise Defer("a shape given twice")
                self._has_shape = True
                for n, w, _, s, e in fields(buf, v_start, v_end):
                    if n != 1:
                        raise Defer(f"shape field {n}")
                    _need(w, LEN)
                    self.shape.dim.append(LiteDim(buf, s, e))
            else:
                raise Defer(f"tensor type field {number}")

    def HasField(self, name: str) -> bool:
        return name == "shape" and self._has_shape


class LiteType:
    """TypeProto holding a tensor type (any other kind defers)."""

    __slots__ = ("tensor_type",)

    def __init__(self, buf: Buffer, start: int, end: int) -> None:
        self.tensor_type: LiteTensorType | None = None
        for number, wire_type, _, v_start, v_end in fields(buf, start, end):
            if number == 1:
                _need(wire_type, LEN)
                if self.tensor_type is not None:
                    raise Defer("a tensor type given twice")
                self.tensor_type = LiteTensorType(buf, v_start, v_end)
            elif number != 6:  # denotation
                raise Defer(f"type field {number} (not a tensor)")

    def WhichOneof(self, group: str) -> str | None:
        return "tensor_type" if group == "value" and self.tensor_type is not None else None

    def HasField(self, name: str) -> bool:
        return name == "tensor_type" and self.tensor_type is not None


class LiteValueInfo:
    """ValueInfoProto: ``name`` and ``type``."""

    __slots__ = ("name", "type")

    def __init__(self, buf: Buffer, start: int, end: int) -> None:
        self.name = ""
        self.type: LiteType | None = None
        for number, wire_type, _, v_start, v_end in fields(buf, start, end):
            if number == 1:
                _need(wire_type, LEN)
                self.name = _text(buf, v_start, v_end)
            elif number == 2:
                _need(wire_type, LEN)
                if self.type is not None:
                    raise Defer("a value type given twice")
                self.type = LiteType(buf, v_start, v_end)
            elif number not in (3, 4):  # doc_string, metadata_props
                raise Defer(f"value info field {number}")
        if self.type is None:
            raise Defer("a value without a type")


class LiteGraph:
    """GraphProto: ``node``, ``initializer``, ``input``, ``output``, ``value_info``."""

    __slots__ = (
        "initializer",
        "input",
        "name",
        "node",
        "output",
        "sparse_initializer",
        "value_info",
    )

    def __init__(self, buf: Buffer, start: int, end: int, depth: int = 0) -> None:
        if depth > MAX_DEPTH:
            raise Defer("subgraphs nested deeper than the reader goes")
        self.name = ""
        self.node: list[LiteNode] = []
        self.initializer: list[LiteTensor] = []
        self.input: list[LiteValueInfo] = []
        self.output: list[LiteValueInfo] = []
        self.value_info: list[LiteValueInfo] = []
        self.sparse_initializer: tuple[()] = ()
        for number, wire_type, _, v_start, v_end in fields(buf, start, end):
            if number in (10, 14, 16):  # doc_string, quantization_annotation, metadata_props
                continue
            _need(wire_type, LEN)
            if number == 1:
                self.node.append(LiteNode(buf, v_start, v_end, depth))
            elif number == 2:
                self.name = _text(buf, v_start, v_end)
            elif number == 5:
                self.initializer.append(LiteTensor(buf, v_start, v_end))
            elif number == 11:
                self.input.append(LiteValueInfo(buf, v_start, v_end))
            elif number == 12:
                self.output.append(LiteValueInfo(buf, v_start, v_end))
            elif number == 13:
                self.value_info.append(LiteValueInfo(buf, v_start, v_end))
            else:  # sparse_initializer (15), anything newer
                raise Defer(f"graph field {number}")


class LiteOpset:
    """OperatorSetIdProto: ``domain`` and ``version``."""

    __slots__ = ("domain", "version")

    def __init__(self, buf: Buffer, start: int, end: int) -> None:
        self.domain = ""
        self.version = 0
        for number, wire_type, _, v_start, v_end in fields(buf, start, end):
            if number == 1:
                _need(wire_type, LEN)
                self.domain = _text(buf, v_start, v_end)
            elif number == 2:
                self.version = _signed64(_scalar(buf, wire_type, v_start, v_end))
            else:
                raise Defer(f"opset field {number}")


class LiteModel:
    """ModelProto: ``graph``, ``opset_import``, ``ir_version``; never any ``functions``."""

    __slots__ = ("functions", "graph", "ir_version", "opset_import")

    def __init__(self, buf: Buffer) -> None:
        self.ir_version = 0
        self.opset_import: list[LiteOpset] = []
        self.functions: tuple[()] = ()
        graph: LiteGraph | None = None
        try:
            top = fields(buf, 0, len(buf))
        except WireError:
            raise Defer("malformed protobuf") from None
        for number, wire_type, _, v_start, v_end in top:
            if number == 1:
                self.ir_version = _signed64(_scalar(buf, wire_type, v_start, v_end))
            elif number == 5:
                _scalar(buf, wire_type, v_start, v_end)  # model_version
            elif number in (2, 3, 4, 6, 14):  # producer, domain, doc_string, metadata_props
                _need(wire_type, LEN)
            elif number == 7:
                _need(wire_type, LEN)
                if graph is not None:
                    raise Defer("a graph given twice")  # protobuf would merge them
                graph = LiteGraph(buf, v_start, v_end)
            elif number == 8:
                _need(wire_type, LEN)
                self.opset_import.append(LiteOpset(buf, v_start, v_end))
            else:  # training_info (20), functions (25), configuration, anything newer
                raise Defer(f"model field {number}")
        if graph is None:
            raise Defer("no graph")
        self.graph = graph


def read_model(buf: Buffer) -> LiteModel:
    """The light model held in ``buf``; Defer when the reader does not cover it."""
    try:
        model = LiteModel(buf)
    except WireError:
        raise Defer("malformed protobuf") from None
    except (struct.error, ValueError, OverflowError, IndexError):
        raise Defer("malformed protobuf") from None
    _check_names(model.graph)
    return model


def _check_names(graph: LiteGraph) -> None:
    """Two tensors under one name, or a Constant without an output, would make "which value
    does this name have" depend on load_model's order of reading: left to the full path."""
    seen: set[str] = set()
    for key, _ in _tensors(graph):
        if key in seen:
            raise Defer(f"two tensors named {key!r}")
        seen.add(key)


def _tensors(graph: LiteGraph) -> Iterator[tuple[str, LiteTensor]]:
    """Every stored tensor of the graph and its subgraphs, under the name the graph reads it
    by (a Constant's value by the Constant's output), as load_model's index keys them."""
    for node in graph.node:
        constant = node.op_type == "Constant" and node.domain in ("", "ai.onnx")
        if constant and (not node.output or not node.output[0]):
            raise Defer("a Constant without an output")
        for attr in node.attribute:
            if attr.t is not None:
                key = node.output[0] if constant and attr.name == "value" else attr.t.name
                if key:
                    yield key, attr.t
            for sub in ([attr.g] if attr.g is not None else []) + attr.graphs:
                yield from _tensors(sub)
    for tensor in graph.initializer:
        if tensor.name:
            yield tensor.name, tensor


def tensor_keys(graph: LiteGraph) -> dict[str, LiteTensor]:
    """Every stored tensor by the name the graph reads it under (names are unique: read_model
    checked)."""
    return dict(_tensors(graph))
