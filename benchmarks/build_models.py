"""Build the benchmark models: VGG-16 with 553 MB of embedded weights, and a >2 GB external one.

Weights are random (fixed seed) and streamed to disk in chunks: neither model is ever held
in memory whole. The embedded model's protobuf is written field by field for that reason.

    python benchmarks/build_models.py [--cache-dir /tmp/convaudit-bench] [--force] [--check]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import onnx
from onnx import TensorProto, helper

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout
from convaudit.model.wire import LEN, encode_varint, field_key

DEFAULT_CACHE = Path("/tmp/convaudit-bench")
EMBEDDED = "vgg16_embedded.onnx"
EXTERNAL = "vgg16_wide_external.onnx"
# torchvision's VGG-16 "D" configuration; "M" is a 2x2 max pool.
VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
CHUNK = 1 << 22  # elements per generated chunk (16 MB of float32)
Weight = tuple[str, tuple[int, ...], float]  # name, dims, standard deviation


def vgg16(fc_width: int) -> tuple[onnx.GraphProto, list[Weight]]:
    """The VGG-16 graph without initializers, plus the weights it needs."""
    nodes: list[onnx.NodeProto] = []
    weights: list[Weight] = []
    x, channels = "input", 3
    for i, layer in enumerate(VGG16):
        if layer == "M":
            nodes.append(
                helper.make_node("MaxPool", [x], [f"pool{i}"], kernel_shape=[2, 2], strides=[2, 2])
            )
            x = f"pool{i}"
            continue
        assert isinstance(layer, int)
        w, b = f"features.{i}.weight", f"features.{i}.bias"
        weights += [(w, (layer, channels, 3, 3), (2 / (channels * 9)) ** 0.5), (b, (layer,), 0.01)]
        nodes.append(
            helper.make_node("Conv", [x, w, b], [f"conv{i}"], kernel_shape=[3, 3], pads=[1] * 4)
        )
        nodes.append(helper.make_node("Relu", [f"conv{i}"], [f"relu{i}"]))
        x, channels = f"relu{i}", layer
    nodes.append(helper.make_node("Flatten", [x], ["flat"], axis=1))
    x, features = "flat", channels * 7 * 7
    for j, width in enumerate((fc_width, 4096, 1000)):
        w, b = f"classifier.{3 * j}.weight", f"classifier.{3 * j}.bias"
        weights += [(w, (width, features), (2 / features) ** 0.5), (b, (width,), 0.01)]
        out = "output" if j == 2 else f"fc{j}"
        nodes.append(helper.make_node("Gemm", [x, w, b], [out], transB=1))
        if j < 2:
            nodes.append(helper.make_node("Relu", [out], [f"fc_relu{j}"]))
            out = f"fc_relu{j}"
        x, features = out, width
    graph = helper.make_graph(
        nodes,
        "vgg16",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 224, 224])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1000])],
    )
    return graph, weights


def _chunks(rng: np.random.Generator, count: int, std: float) -> Iterator[bytes]:
    for start in range(0, count, CHUNK):
        values = rng.standard_normal(min(CHUNK, count - start), dtype=np.float32)
        values *= np.float32(std)
        yield values.astype("<f4").tobytes()


def _model_shell(graph: onnx.GraphProto) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.producer_name = "convaudit-bench"
    model.ir_version = 8
    return model


def build_embedded(path: Path, seed: int = 0) -> None:
    """VGG-16 with raw_data initializers, written as protobuf field by field."""
    graph, weights = vgg16(4096)
    rng = np.random.default_rng(seed)
    # Fields in number order, as onnx writes them: ModelProto 1-6, graph 7, opset 8 ...;
    # GraphProto node 1, name 2, initializer 5, input 11, output 12.
    model = _model_shell(graph)
    graph_head = onnx.GraphProto(node=graph.node, name=graph.name).SerializeToString()
    graph_tail = onnx.GraphProto(input=graph.input, output=graph.output).SerializeToString()
    heads = []
    for name, dims, _ in weights:
        tensor = TensorProto(name=name, dims=dims, data_type=TensorProto.FLOAT).SerializeToString()
        size = 4 * int(np.prod(dims))
        head = tensor + field_key(9, LEN) + encode_varint(size)  # raw_data
        heads.append(field_key(5, LEN) + encode_varint(len(head) + size) + head)
    graph_len = len(graph_head) + len(graph_tail)
    graph_len += sum(
        len(h) + 4 * int(np.prod(d)) for h, (_, d, _) in zip(heads, weights, strict=True)
    )
    before = onnx.ModelProto()
    before.CopyFrom(model)
    before.ClearField("graph")
    before.ClearField("opset_import")
    after = onnx.ModelProto(opset_import=model.opset_import)
    with _atomic(path) as out:
        out.write(before.SerializeToString() + field_key(7, LEN) + encode_varint(graph_len))
        out.write(graph_head)
        for head, (_, dims, std) in zip(heads, weights, strict=True):
            out.write(head)
            for chunk in _chunks(rng, int(np.prod(dims)), std):
                out.write(chunk)
        out.write(graph_tail + after.SerializeToString())


def build_external(path: Path, seed: int = 0, fc_width: int = 20480) -> None:
    """VGG-16, fc layers widened to ``fc_width`` (2.47 GB at 20480), weights in one .data file."""
    graph, weights = vgg16(fc_width)
    rng = np.random.default_rng(seed)
    data_name = path.name + ".data"
    offset = 0
    with _atomic(path.with_name(data_name)) as out:
        for name, dims, std in weights:
            tensor = TensorProto(name=name, dims=dims, data_type=TensorProto.FLOAT)
            tensor.data_location = TensorProto.EXTERNAL
            size = 4 * int(np.prod(dims))
            for key, value in (("location", data_name), ("offset", offset), ("length", size)):
                tensor.external_data.add(key=key, value=str(value))
            graph.initializer.append(tensor)
            for chunk in _chunks(rng, int(np.prod(dims)), std):
                out.write(chunk)
            offset += size
    with _atomic(path) as out:
        out.write(_model_shell(graph).SerializeToString())


class _atomic:
    """Write to ``name.partial`` and rename on success, so a cache never holds half a model."""

    def __init__(self, path: Path) -> None:
        self.path, self.partial = path, path.with_name(path.name + ".partial")

    def __enter__(self) -> BinaryIO:
        self.file = open(self.partial, "wb")
        return self.file

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.file.close()
        if exc_type is None:
            self.partial.replace(self.path)
        else:
            self.partial.unlink(missing_ok=True)


def ensure_models(cache_dir: Path, *, force: bool = False) -> dict[str, Path]:
    """Build whichever model is missing from ``cache_dir``; return both paths."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    paths = {"embedded": cache_dir / EMBEDDED, "external": cache_dir / EXTERNAL}
    for kind, build in (("embedded", build_embedded), ("external", build_external)):
        path = paths[kind]
        complete = path.exists() and (
            kind == "embedded" or path.with_name(path.name + ".data").exists()
        )
        if force or not complete:
            start = time.perf_counter()
            build(path)
            print(f"built {path} in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    parser.add_argument("--check", action="store_true", help="run onnx.checker on both models")
    args = parser.parse_args()
    paths = ensure_models(args.cache_dir, force=args.force)
    for path in paths.values():
        total = sum(
            p.stat().st_size
            for p in path.parent.glob(path.name + "*")
            if not p.name.endswith(".partial")
        )
        print(f"{path}  {total / 1e6:,.1f} MB")
        if args.check:
            onnx.checker.check_model(str(path))  # by path: works past 2 GB


if __name__ == "__main__":
    main()
