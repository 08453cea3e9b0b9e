"""What is known about one tensor while walking a graph: element type, shape, maybe its value."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from convaudit.errors import ShapeError
from convaudit.model.liteproto import LiteTensor
from convaudit.model.values import INT64, NUMPY_NAMES, Value, from_array, wrap

if TYPE_CHECKING:
    import onnx

Dim = int | str | None  # int: static, str: a named symbol, None: unknown
ShapeT = tuple[Dim, ...]

# Values are only materialised for small tensors: shape arithmetic, not weights.
MAX_VALUE_ELEMENTS = 1 << 16


@dataclass(frozen=True)
class TensorInfo:
    """Element type (onnx enum, 0 unknown), shape (None: unknown rank), value (small consts)."""

    elem_type: int = 0
    shape: ShapeT | None = None
    value: Value | None = None
    kind: str = "tensor"  # "tensor", "sequence", "optional", "map", "unknown"
    constant: bool = False  # computed from initializers / Constant nodes only (a weight)

    @property
    def static_shape(self) -> tuple[int, ...] | None:
        """The shape when every dim is a known integer."""
        shape = self.shape
        if shape is None:
            return None
        for d in shape:  # a plain loop: the walk asks this thousands of times per model
            if type(d) is not int:
                if not all(isinstance(e, int) for e in shape):
                    return None
                return tuple(int(e) for e in shape)  # type: ignore[arg-type]
        return shape  # type: ignore[return-value]

    @property
    def dtype_name(self) -> str | None:
        """Numpy-style name of the element type ("float32"), None if unknown."""
        return dtype_name(self.elem_type)


UNKNOWN = TensorInfo()


def dtype_name(elem_type: int) -> str | None:
    """Lower-case ONNX element type name, e.g. 1 -> "float32"."""
    if not elem_type:
        return None
    name = NUMPY_NAMES.get(elem_type)
    if name is not None:
        return name
    import onnx

    try:
        return str(onnx.TensorProto.DataType.Name(elem_type)).lower()
    except ValueError:
        return None


def info_from_value(value: Value) -> TensorInfo:
    """TensorInfo for a concrete value."""
    return TensorInfo(elem_type=value.elem_type, shape=value.shape, value=value, constant=True)


def info_from_type(tp: onnx.TypeProto) -> TensorInfo:
    """TensorInfo from an ONNX TypeProto (value_info, graph input or inference output)."""
    which = tp.WhichOneof("value")
    if which == "tensor_type" or which == "sparse_tensor_type":
        tt = tp.tensor_type if which == "tensor_type" else tp.sparse_tensor_type
        shape: ShapeT | None = None
        if tt.HasField("shape"):
            dims: list[Dim] = []
            for d in tt.shape.dim:
                # paddle2onnx writes a dynamic dim as dim_value -1 or as dim_param "?" (several
                # "?" in one shape are not one size): both mean unknown, not a value or a symbol.
                if d.HasField("dim_value") and d.dim_value >= 0:
                    dims.append(int(d.dim_value))
                elif d.HasField("dim_param") and d.dim_param not in ("", "?"):
                    dims.append(str(d.dim_param))
                else:
                    dims.append(None)
            shape = tuple(dims)
        return TensorInfo(elem_type=int(tt.elem_type), shape=shape)
    if which == "sequence_type":
        return TensorInfo(kind="sequence")
    if which == "optional_type":
        inner = tp.optional_type.elem_type
        if inner.WhichOneof("value") == "tensor_type":
            return info_from_type(inner)
        return TensorInfo(kind="optional")
    if which == "map_type":
        return TensorInfo(kind="map")
    return UNKNOWN


def type_from_info(info: TensorInfo) -> onnx.TypeProto | None:
    """A TypeProto to feed ONNX's per-node inference (None if nothing useful is known)."""
    if info.kind != "tensor" or not info.elem_type:
        return None
    import onnx

    tp = onnx.TypeProto()
    tt = tp.tensor_type
    tt.elem_type = info.elem_type
    if info.shape is not None:
        tt.shape.SetInParent()
        for d in info.shape:
            dim = tt.shape.dim.add()
            if isinstance(d, int):
                if d > _INT64_MAX:  # a computed shape (huge pads) no ONNX tensor can have
                    raise ShapeError(
                        f"a computed tensor dim {d} overflows a 64-bit integer (huge input "
                        "shapes or attributes): the model cannot run"
                    )
                if d < 0:  # onnx's C++ inference asserts (aborts the process) on some of these
                    raise ShapeError(
                        f"a computed tensor dim {d} is negative (from an attribute such as "
                        "channels or pads): the model is invalid"
                    )
                dim.dim_value = d
            elif isinstance(d, str):
                dim.dim_param = d
    return tp


_INT64_MAX = (1 << 63) - 1


def tensor_info(t: onnx.TensorProto | LiteTensor, has_data: bool) -> TensorInfo:
    """TensorInfo of an initializer / Constant tensor; the value only when small and present."""
    shape = tuple(int(d) for d in t.dims)
    value = None
    # the element count as an int64 product (wrapping as numpy's np.prod did)
    if has_data and wrap(math.prod(shape), INT64) <= MAX_VALUE_ELEMENTS:
        try:
            if isinstance(t, LiteTensor):  # the lite reader's tensor decodes itself
                value = t.value()
            else:
                from onnx import numpy_helper

                value = from_array(numpy_helper.to_array(t))
        except Exception:  # exotic encodings: the shape is what matters
            value = None
    return TensorInfo(elem_type=int(t.data_type), shape=shape, value=value, constant=True)


def merge(inferred: TensorInfo, declared: TensorInfo | None) -> TensorInfo:
    """Combine two views of a tensor dim by dim: a known integer beats a symbol beats unknown."""
    if declared is None or declared.kind != "tensor":
        return inferred
    elem = inferred.elem_type or declared.elem_type
    if inferred.shape is None:
        shape = declared.shape
    elif declared.shape is None or len(declared.shape) != len(inferred.shape):
        shape = inferred.shape
    else:
        shape = tuple(_better(a, b) for a, b in zip(inferred.shape, declared.shape, strict=True))
    return TensorInfo(
        elem_type=elem,
        shape=shape,
        value=inferred.value,
        kind=inferred.kind,
        constant=inferred.constant,
    )


def _better(a: Dim, b: Dim) -> Dim:
    if isinstance(a, int):
        return a
    if isinstance(b, int):
        return b
    return a if a is not None else b


_D = TypeVar("_D")


def to_channels_first(shape: tuple[_D, ...]) -> tuple[_D, ...]:
    """NHWC -> NCHW (any number of spatial axes)."""
    return (shape[0], shape[-1], *shape[1:-1])


def to_channels_last(shape: tuple[_D, ...]) -> tuple[_D, ...]:
    """NCHW -> NHWC (any number of spatial axes)."""
    return (shape[0], *shape[2:], shape[1])


def fused_matmul_operand(shape: ShapeT, trans: bool, trans_batch: bool) -> ShapeT:
    """A FusedMatMul operand as plain MatMul sees it: ``transBatch`` moves the first dim behind
    the batch dims, then ``trans`` swaps the last two (onnxruntime's order)."""
    dims = list(shape)
    if trans_batch and len(dims) > 2:
        dims = [*dims[1:-1], dims[0], dims[-1]]
    if trans and len(dims) >= 2:
        dims[-2], dims[-1] = dims[-1], dims[-2]
    return tuple(dims)
