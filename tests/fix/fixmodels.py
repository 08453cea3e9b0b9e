"""Small models for the fix tests, built with onnx.helper, and an onnxruntime comparison helper."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

F = TensorProto.FLOAT


def low_rank_weight(
    rng: np.random.Generator, cout: int, cin: int, k: int, rank: int, noise: float = 0.0
) -> np.ndarray:
    """W = B·A along Cin with rank ``rank``, plus ``noise`` (relative RMS) Gaussian noise."""
    a = rng.standard_normal((rank, cin))
    b = rng.standard_normal((cout, rank, k, k))
    w = np.einsum("orhw,rc->ochw", b, a)
    if noise:
        rms = np.sqrt(np.mean(w**2))
        w = w + noise * rms * rng.standard_normal(w.shape)
    return (w / np.sqrt(cin * k * k)).astype(np.float32)


def conv_model(
    w: np.ndarray,
    in_shape: Sequence[int],
    *,
    bias: np.ndarray | None = None,
    name: str = "conv",
    bn: bool = False,
    rng: np.random.Generator | None = None,
    **attrs: Any,
) -> onnx.ModelProto:
    """input -> Conv(w, bias, attrs) [-> BatchNormalization] -> output (shape left to ORT)."""
    inits = [numpy_helper.from_array(w, f"{name}.weight")]
    ins = ["input", f"{name}.weight"]
    if bias is not None:
        inits.append(numpy_helper.from_array(bias, f"{name}.bias"))
        ins.append(f"{name}.bias")
    kernel = list(w.shape[2:])
    nodes = [helper.make_node("Conv", ins, ["y"], name=name, kernel_shape=kernel, **attrs)]
    out = "y"
    if bn:
        rng = rng or np.random.default_rng(0)
        c = w.shape[0]
        for p, v in (
            ("scale", 1 + 0.5 * rng.random(c)),
            ("shift", rng.standard_normal(c)),
            ("mean", rng.standard_normal(c)),
            ("var", 0.5 + rng.random(c)),
        ):
            inits.append(numpy_helper.from_array(v.astype(np.float32), f"bn.{p}"))
        nodes.append(
            helper.make_node(
                "BatchNormalization",
                ["y", "bn.scale", "bn.shift", "bn.mean", "bn.var"],
                ["z"],
                name="bn",
                epsilon=1e-3,
            )
        )
        out = "z"
    graph = helper.make_graph(
        nodes,
        "fixtest",
        [helper.make_tensor_value_info("input", F, list(in_shape))],
        [helper.make_tensor_value_info(out, F, None)],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    del model.graph.output[:]
    model.graph.output.extend(inferred.graph.output)
    onnx.checker.check_model(model, full_check=True)
    return model


def save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save_model(model, str(path))
    return path


def run(model: onnx.ModelProto | Path, x: np.ndarray) -> np.ndarray:
    """The first output of ``model`` on ``x`` with onnxruntime (CPU)."""
    src = str(model) if isinstance(model, Path) else model.SerializeToString()
    sess = ort.InferenceSession(src, providers=["CPUExecutionProvider"])
    return np.asarray(sess.run(None, {sess.get_inputs()[0].name: x})[0])


def rel_error(ref: np.ndarray, got: np.ndarray) -> float:
    ref64, got64 = ref.astype(np.float64), got.astype(np.float64)
    return float(np.linalg.norm(got64 - ref64) / np.linalg.norm(ref64))


def same_outputs(a: onnx.ModelProto, b: onnx.ModelProto, x: np.ndarray, tol: float = 1e-5) -> bool:
    """True when both models give the same shape and the same values (relative L2 below tol)."""
    ya, yb = run(a, x), run(b, x)
    return ya.shape == yb.shape and rel_error(ya, yb) < tol


def conv_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    return [n for n in model.graph.node if n.op_type == "Conv"]


def attr(node: onnx.NodeProto, name: str) -> Any:
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return None
