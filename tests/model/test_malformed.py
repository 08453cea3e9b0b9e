"""Malformed graphs and inputs that do not fit: each is a typed, one-line error or a noted unknown
layer, never an internal error (IndexError, KeyError, RecursionError)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from convaudit import Config
from convaudit.api import analyse_model
from convaudit.errors import ConfigError, InputShapeError
from convaudit.model.analyse import analyse

F = TensorProto.FLOAT


def save(
    tmp_path: Path,
    nodes: Sequence[onnx.NodeProto],
    inputs: Sequence[onnx.ValueInfoProto],
    inits: Sequence[TensorProto] = (),
    *,
    functions: Sequence[onnx.FunctionProto] = (),
    opsets: Sequence[tuple[str, int]] = (("", 18),),
) -> Path:
    out = [helper.make_tensor_value_info("y", F, None)]
    graph = helper.make_graph(list(nodes), "main", list(inputs), out, list(inits))
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid(d, v) for d, v in opsets],
        functions=list(functions),
    )
    model.ir_version = 9
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    return path


def conv_model(tmp_path: Path) -> Path:
    w = numpy_helper.from_array(np.zeros((4, 3, 3, 3), np.float32), "W")
    x = helper.make_tensor_value_info("x", F, [1, 3, 8, 8])
    return save(tmp_path, [helper.make_node("Conv", ["x", "W"], ["y"], name="c")], [x], [w])


def test_input_shapes_that_do_not_fit_are_a_model_level_error(tmp_path: Path) -> None:
    """The model layer knows nothing of config: it raises InputShapeError, naming the file."""
    path = conv_model(tmp_path)
    with pytest.raises(InputShapeError) as caught:
        analyse(path, input_shapes={"images": (1, 3, 8, 8)})
    assert not isinstance(caught.value, ConfigError)
    assert str(caught.value) == (
        f"{path}: --input-shape names unknown input 'images'; the model's inputs are x"
    )
    with pytest.raises(InputShapeError, match="has rank 3 but input 'x' has rank 4"):
        analyse(path, input_shapes={"x": (1, 3, 8)})


def test_the_config_layer_reports_them_as_config_errors(tmp_path: Path) -> None:
    path = conv_model(tmp_path)
    config = Config(input_shapes={"images": (1, 3, 8, 8)})
    with pytest.raises(ConfigError) as caught:
        analyse_model(str(path), config)
    assert str(caught.value) == (
        f"{path}: --input-shape names unknown input 'images'; the model's inputs are x"
    )
