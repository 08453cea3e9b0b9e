"""A small constant tensor as plain Python: element type, shape and row-major values.

Shape arithmetic folds on these without numpy (``model/fold.py``), so a scan whose constants
are all plain imports no numpy; ``array()`` and ``from_array`` cross to numpy (imported then) for
the folds and encodings that stay numpy's. Values equal numpy's exactly: a float32 is the Python
float of the same number, an int64 a Python int in range.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

# TensorProto.DataType numbers the pure folds compute on
FLOAT32, UINT8, INT8, UINT16, INT16, INT32, INT64, BOOL, FLOAT16, FLOAT64, UINT32, UINT64 = (
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    9,
    10,
    11,
    12,
    13,
)
# integer element types: (bits, signed)
INT_TYPES: dict[int, tuple[int, bool]] = {
    UINT8: (8, False),
    INT8: (8, True),
    UINT16: (16, False),
    INT16: (16, True),
    INT32: (32, True),
    INT64: (64, True),
    UINT32: (32, False),
    UINT64: (64, False),
}
FLOAT_TYPES = frozenset({FLOAT32, FLOAT64})

Items = tuple[Any, ...]


def wrap(value: int, elem_type: int) -> int:
    """``value`` as the integer type stores it: numpy's wrap-around on overflow and casts."""
    bits, signed = INT_TYPES[elem_type]
    value &= (1 << bits) - 1
    if signed and value >= 1 << (bits - 1):
        value -= 1 << bits
    return value


class Value:
    """A small constant tensor. ``items`` (row-major Python values) and ``array()`` (numpy) are
    each made on first use from whichever the value was built with; a tensor read from the file
    decodes its bytes only when a fold or rule reads them."""

    __slots__ = ("_array", "_decode", "_items", "elem_type", "shape")

    def __init__(
        self,
        elem_type: int,
        shape: tuple[int, ...],
        items: Items | None = None,
        *,
        array: np.ndarray | None = None,
        decode: Callable[[], Items] | None = None,
    ) -> None:
        self.elem_type = elem_type
        self.shape = shape
        self._items = items
        self._array = array
        self._decode = decode

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def items(self) -> Items:
        """The values, row-major, as Python ints, floats or bools (``tolist``'s types)."""
        if self._items is None:
            if self._decode is not None:
                self._items = self._decode()
                self._decode = None
            else:
                assert self._array is not None
                self._items = tuple(self._array.reshape(-1).tolist())
        return self._items

    def array(self) -> np.ndarray:
        """The value as a numpy array of its element type (imports numpy)."""
        if self._array is None:
            import numpy as np

            self._array = np.array(self.items, dtype=np_dtype(self.elem_type)).reshape(self.shape)
        return self._array

    def __repr__(self) -> str:
        return f"Value({self.elem_type}, {self.shape}, {self.items!r})"


def from_array(array: Any) -> Value:
    """The Value of a numpy array (its element type as onnx.helper maps the dtype; 0 if none)."""
    import numpy as np

    array = np.asarray(array)
    shape = tuple(int(d) for d in array.shape)
    return Value(np_elem_type(array.dtype), shape, array=array)


# TensorProto.DataType numbers and their lower-case names, as far as every onnx since 1.14 has
# them (tests check them against the installed onnx); other numbers ask onnx.
DTYPE_NAMES = {
    1: "float",
    2: "uint8",
    3: "int8",
    4: "uint16",
    5: "int16",
    6: "int32",
    7: "int64",
    8: "string",
    9: "bool",
    10: "float16",
    11: "double",
    12: "uint32",
    13: "uint64",
    14: "complex64",
    15: "complex128",
    16: "bfloat16",
}
# The numpy-style name of each ("float32" for float, "float64" for double)
NUMPY_NAMES = {
    number: {"float": "float32", "double": "float64"}.get(name, name)
    for number, name in DTYPE_NAMES.items()
}
# TensorProto.DataType <-> numpy dtype of the types numpy holds (onnx.helper's
# tensor_dtype_to_np_dtype / np_dtype_to_tensor_dtype); other types ask onnx.
_DTYPE_NAMES = {k: v for k, v in NUMPY_NAMES.items() if k not in (8, 16)}
_TO_NUMPY = {k: v for k, v in _DTYPE_NAMES.items() if k not in (14, 15)}


def np_dtype(elem_type: int) -> Any:
    """The numpy dtype of a TensorProto.DataType, as onnx.helper gives it."""
    import numpy as np

    name = _TO_NUMPY.get(elem_type)
    if name is not None:
        return np.dtype(name)
    from onnx import helper

    return helper.tensor_dtype_to_np_dtype(elem_type)


@functools.cache
def _numpy_types() -> dict[Any, int]:
    import numpy as np

    return {np.dtype(name): number for number, name in _DTYPE_NAMES.items()}


def np_elem_type(dtype: Any) -> int:
    """The TensorProto.DataType of a numpy dtype (0 when ONNX has none)."""
    elem = _numpy_types().get(dtype)
    if elem is not None:
        return elem
    from onnx import helper

    try:
        return int(helper.np_dtype_to_tensor_dtype(dtype))
    except (KeyError, ValueError, TypeError):
        return 0
