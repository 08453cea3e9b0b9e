"""Build the sample models deterministically: `python sample_models/build.py` rewrites them.

- textbook_5x5.onnx: the worked example, 1x480x14x14 -> Conv 5x5 480->48, pad 2
  (5*5*480*14*14*48 = 112,896,000 MACs);
- textbook_bottleneck.onnx: the same with a 1x1 480->16 reduction first
  (1,505,280 + 3,763,200 MACs);
- inception_block.onnx: GoogLeNet's inception (4a) block on 480x14x14: 1x1 / 1x1->3x3 /
  1x1->5x5 / maxpool->1x1 branches, concatenated.

Weights are seeded random values: the models exercise cost and rewrite paths, not accuracy.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent
OPSET = 17


class Builder:
    """A tiny graph builder: named nodes, seeded initializers."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def conv(
        self, name: str, x: str, cin: int, cout: int, k: int, pad: int, relu: bool = True
    ) -> str:
        scale = 1.0 / np.sqrt(cin * k * k)
        w = (self.rng.standard_normal((cout, cin, k, k)) * scale).astype(np.float32)
        b = (self.rng.standard_normal(cout) * 0.01).astype(np.float32)
        self.inits += [
            numpy_helper.from_array(w, f"{name}.weight"),
            numpy_helper.from_array(b, f"{name}.bias"),
        ]
        self.nodes.append(
            helper.make_node(
                "Conv",
                [x, f"{name}.weight", f"{name}.bias"],
                [f"{name}.out"],
                name=name,
                kernel_shape=[k, k],
                pads=[pad] * 4,
                strides=[1, 1],
            )
        )
        if not relu:
            return f"{name}.out"
        self.nodes.append(
            helper.make_node("Relu", [f"{name}.out"], [f"{name}.relu"], name=f"{name}.relu")
        )
        return f"{name}.relu"

    def model(
        self, name: str, inp: tuple[int, ...], out: str, out_shape: tuple[int, ...]
    ) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes,
            name,
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(inp))],
            [helper.make_tensor_value_info(out, TensorProto.FLOAT, list(out_shape))],
            initializer=self.inits,
        )
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="convaudit-samples"
        )
        model.ir_version = 8
        onnx.checker.check_model(model, full_check=True)
        return model


def textbook() -> onnx.ModelProto:
    b = Builder(seed=1)
    out = b.conv("conv5x5", "input", 480, 48, 5, 2, relu=False)
    return b.model("textbook_5x5", (1, 480, 14, 14), out, (1, 48, 14, 14))


def textbook_bottleneck() -> onnx.ModelProto:
    b = Builder(seed=2)
    red = b.conv("reduce1x1", "input", 480, 16, 1, 0)
    out = b.conv("conv5x5", red, 16, 48, 5, 2, relu=False)
    return b.model("textbook_bottleneck", (1, 480, 14, 14), out, (1, 48, 14, 14))


def inception_block() -> onnx.ModelProto:
    b = Builder(seed=3)
    x = "input"
    b1 = b.conv("inception_4a/1x1", x, 480, 192, 1, 0)
    r3 = b.conv("inception_4a/3x3_reduce", x, 480, 96, 1, 0)
    b2 = b.conv("inception_4a/3x3", r3, 96, 208, 3, 1)
    r5 = b.conv("inception_4a/5x5_reduce", x, 480, 16, 1, 0)
    b3 = b.conv("inception_4a/5x5", r5, 16, 48, 5, 2)
    b.nodes.append(
        helper.make_node(
            "MaxPool",
            [x],
            ["pool.out"],
            name="inception_4a/pool",
            kernel_shape=[3, 3],
            strides=[1, 1],
            pads=[1, 1, 1, 1],
        )
    )
    b4 = b.conv("inception_4a/pool_proj", "pool.out", 480, 64, 1, 0)
    b.nodes.append(
        helper.make_node("Concat", [b1, b2, b3, b4], ["output"], name="inception_4a/output", axis=1)
    )
    return b.model("inception_block", (1, 480, 14, 14), "output", (1, 512, 14, 14))


SAMPLES = {
    "textbook_5x5.onnx": textbook,
    "textbook_bottleneck.onnx": textbook_bottleneck,
    "inception_block.onnx": inception_block,
}


def main(out_dir: Path = HERE) -> None:
    for name, build in SAMPLES.items():
        onnx.save_model(build(), str(out_dir / name))
        print(f"wrote {out_dir / name}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
