"""ONNX protobuf at the wire level: walk fields by tag and length, cut out big tensor payloads."""

from __future__ import annotations

import itertools
import mmap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache

# Wire types (https://protobuf.dev/programming-guides/encoding/). Groups (3, 4) are
# proto2-only and never appear in ONNX files, so meeting one means the bytes are not ONNX.
VARINT = 0
I64 = 1
LEN = 2
I32 = 5

Buffer = bytes | mmap.mmap

# 10 bytes carry 70 bits, enough for any 64-bit value; a longer varint is corrupt data.
_MAX_VARINT_BYTES = 10


class WireError(Exception):
    """The bytes are not well-formed protobuf; ``offset`` is where the bad field starts."""

    def __init__(self, message: str, offset: int, *, past_end: bool = False) -> None:
        super().__init__(message)
        self.offset = offset
        # True when a length or varint ran past the end of the buffer: the mark of a cut file.
        self.past_end = past_end


# protobuf's parser (upb, and so onnx.load) refuses messages nested deeper than this; the
# stripper stops at the same depth, before its own recursion could reach Python's limit.
MAX_DEPTH = 100


class NestingError(WireError):
    """Messages nest deeper than protobuf can parse (subgraphs inside subgraphs, ...)."""


def read_varint(buf: Buffer, pos: int, end: int) -> tuple[int, int]:
    """Decode the varint at ``pos``; return (value, position after it)."""
    result = 0
    shift = 0
    start = pos
    while pos < end:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if pos - start >= _MAX_VARINT_BYTES:
            raise WireError("varint longer than 10 bytes", start)
    raise WireError("varint runs past the end", start, past_end=True)


def encode_varint(value: int) -> bytes:
    """Encode a non-negative integer as a varint."""
    if value < 0:
        raise ValueError(f"varint must be non-negative, got {value}")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


@cache
def field_key(field: int, wire_type: int) -> bytes:
    """The encoded tag that starts a field."""
    return encode_varint(field << 3 | wire_type)


def len_field(field: int, content: bytes | bytearray) -> bytes:
    """A whole length-delimited field: tag, length, content."""
    return field_key(field, LEN) + encode_varint(len(content)) + content


Field = tuple[int, int, int, int, int]
"""(field number, wire type, field start, value start, value end); for LEN fields the value
span excludes the length prefix, for the others it covers the encoded scalar."""


def iter_fields(buf: Buffer, start: int, end: int) -> Iterator[Field]:
    """Yield every field of the message held in ``buf[start:end]``, skipping values by length."""
    pos = start
    while pos < end:
        field_start = pos
        key, pos = read_varint(buf, pos, end)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise WireError("field number 0", field_start)
        value_start = pos
        if wire_type == VARINT:
            _, pos = read_varint(buf, pos, end)
        elif wire_type == LEN:
            length, value_start = read_varint(buf, pos, end)
            pos = value_start + length
        elif wire_type == I64:
            pos += 8
        elif wire_type == I32:
            pos += 4
        else:
            raise WireError(f"field {number} has wire type {wire_type}", field_start)
        if pos > end:
            raise WireError(
                f"field {number} runs {pos - end} bytes past the end", field_start, past_end=True
            )
        yield number, wire_type, field_start, value_start, pos


# Field numbers from onnx/onnx.proto (checked against onnx 1.23).
# TensorProto fields that carry values. string_data (6) is one field per string, so a
# stripped string payload is the run of whole fields; the others are one packed field.
RAW_DATA, FLOAT_DATA, INT32_DATA, STRING_DATA, INT64_DATA = 9, 4, 5, 6, 7
DOUBLE_DATA, UINT64_DATA = 10, 11
PAYLOAD_FIELDS = frozenset(
    {RAW_DATA, FLOAT_DATA, INT32_DATA, STRING_DATA, INT64_DATA, DOUBLE_DATA, UINT64_DATA}
)
_TENSOR_NAME, _TENSOR_DATA_LOCATION = 8, 14
_NODE_OUTPUT, _NODE_OP_TYPE, _NODE_ATTRIBUTE, _NODE_DOMAIN = 2, 4, 5, 7
_ATTR_NAME, _ATTR_T, _ATTR_G, _ATTR_TENSORS, _ATTR_GRAPHS = 1, 5, 6, 10, 11


@dataclass(frozen=True, kw_only=True, slots=True)
class TensorLocation:
    """Where a stripped tensor's payload sits in the .onnx file."""

    offset: int  # byte offset of the payload in the .onnx file
    length: int  # payload length in bytes
    field: int  # TensorProto field number the payload came from (9 raw_data, 4 float_data, ...)


Handler = Callable[[int, int], bytes | None]


def strip_payloads(buf: Buffer, keep_bytes: int) -> tuple[bytes, dict[str, TensorLocation]]:
    """Serialized ModelProto ``buf`` minus tensor payloads of at least ``keep_bytes`` bytes.

    Returns the rebuilt bytes and, per stripped tensor, where its payload was. Initializers are
    keyed by name, a Constant node's ``value`` by the node's output. Raises WireError.
    """
    stripper = _Stripper(buf, keep_bytes)
    content = stripper.message(0, len(buf), stripper.model_fields)
    return (bytes(buf) if content is None else content), stripper.stripped


class _Stripper:
    """Rebuilds messages with payloads cut out; enclosing lengths are re-encoded on the way up."""

    def __init__(self, buf: Buffer, keep_bytes: int) -> None:
        self.buf = buf
        # Never strip an empty payload: there is nothing to save and nothing to read back.
        self.keep_bytes = max(keep_bytes, 1)
        self.stripped: dict[str, TensorLocation] = {}
        self.depth = 0  # messages entered: the model is 1, its graph 2, a node 3, ...
        graph, node = self.graph, self.node
        # ModelProto.graph 7, training_info 20, functions 25.
        self.model_fields: dict[int, Handler] = {7: graph, 20: self.training, 25: self.function}
        # GraphProto.node 1, initializer 5; sparse_initializer (15) stays whole.
        self.graph_fields: dict[int, Handler] = {1: node, 5: self.tensor}
        # FunctionProto.node 7, attribute_proto 11 (default attribute values).
        self.function_fields: dict[int, Handler] = {7: node, 11: self.attribute}
        # TrainingInfoProto.initialization 1, algorithm 2.
        self.training_fields: dict[int, Handler] = {1: graph, 2: graph}

    def message(self, start: int, end: int, handlers: dict[int, Handler]) -> bytes | None:
        """Rebuild ``buf[start:end]`` with ``handlers`` applied to its fields; None if unchanged."""
        self.depth += 1
        try:
            return self._message(start, end, handlers)
        finally:
            self.depth -= 1

    def _message(self, start: int, end: int, handlers: dict[int, Handler]) -> bytes | None:
        if self.depth > MAX_DEPTH:
            raise NestingError(f"messages nest more than {MAX_DEPTH} deep", start)
        buf = self.buf
        out: list[bytes] = []
        copied = start  # bytes before this offset are already in ``out``
        for number, wire_type, field_start, value_start, value_end in iter_fields(buf, start, end):
            handler = handlers.get(number)
            # A message shorter than keep_bytes cannot hold a payload worth stripping.
            if handler is None or wire_type != LEN or value_end - value_start < self.keep_bytes:
                continue
            new = handler(value_start, value_end)
            if new is not None:
                out += (buf[copied:field_start], len_field(number, new))
                copied = value_end
        if not out:
            return None
        out.append(buf[copied:end])
        return b"".join(out)

    def graph(self, start: int, end: int) -> bytes | None:
        return self.message(start, end, self.graph_fields)

    def training(self, start: int, end: int) -> bytes | None:
        return self.message(start, end, self.training_fields)

    def function(self, start: int, end: int) -> bytes | None:
        return self.message(start, end, self.function_fields)

    def node(self, start: int, end: int) -> bytes | None:
        buf = self.buf
        op_type = domain = output = b""
        for number, _, _, value_start, value_end in iter_fields(buf, start, end):
            if number == _NODE_OP_TYPE:
                op_type = buf[value_start:value_end]
            elif number == _NODE_DOMAIN:
                domain = buf[value_start:value_end]
            elif number == _NODE_OUTPUT and not output:
                output = buf[value_start:value_end]
        constant = op_type == b"Constant" and domain in (b"", b"ai.onnx")
        key = output.decode("utf-8", "replace") if constant else None
        return self.message(start, end, {_NODE_ATTRIBUTE: lambda s, e: self.attribute(s, e, key)})

    def attribute(self, start: int, end: int, constant_output: str | None = None) -> bytes | None:
        name = b""
        for number, _, _, value_start, value_end in iter_fields(self.buf, start, end):
            if number == _ATTR_NAME:
                name = self.buf[value_start:value_end]
        # A Constant's `value` is keyed by the node's output: that is the name the graph uses.
        key = constant_output if name == b"value" else None
        handlers: dict[int, Handler] = {
            _ATTR_T: lambda s, e: self.tensor(s, e, key),
            _ATTR_G: self.graph,
            _ATTR_TENSORS: self.tensor,
            _ATTR_GRAPHS: self.graph,
        }
        return self.message(start, end, handlers)

    def tensor(self, start: int, end: int, key: str | None = None) -> bytes | None:
        buf = self.buf
        payload: list[Field] = []
        for field in iter_fields(buf, start, end):
            number, _, _, value_start, value_end = field
            if number in PAYLOAD_FIELDS:
                payload.append(field)
            elif number == _TENSOR_NAME and key is None:
                key = buf[value_start:value_end].decode("utf-8", "replace")
            elif number == _TENSOR_DATA_LOCATION and read_varint(buf, value_start, value_end)[0]:
                return None  # EXTERNAL: the payload is in another file already
        location = _payload_location(payload)
        if not key or location is None or location.length < self.keep_bytes:
            return None
        if key in self.stripped:
            return None  # a namesake stays whole, so each stripped name means one payload
        self.stripped[key] = location
        return buf[start : payload[0][2]] + buf[payload[-1][4] : end]


def _payload_location(payload: list[Field]) -> TensorLocation | None:
    """The payload's span, or None when it is not one contiguous block (the tensor stays whole)."""
    if not payload or any(wire_type != LEN for _, wire_type, _, _, _ in payload):
        return None  # unpacked repeated scalars: legacy writers only, rare and small
    number = payload[0][0]
    if number == STRING_DATA:
        # Consecutive whole fields, tags included, so a read can re-parse them.
        for previous, current in itertools.pairwise(payload):
            if current[0] != STRING_DATA or current[2] != previous[4]:
                return None
        start = payload[0][2]
        return TensorLocation(offset=start, length=payload[-1][4] - start, field=number)
    if len(payload) != 1:
        return None
    _, _, _, value_start, value_end = payload[0]
    return TensorLocation(offset=value_start, length=value_end - value_start, field=number)
