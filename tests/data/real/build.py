"""Build the real-export fixtures beside this file and their manifest.json.

Each fixture reproduces a pattern seen in a real exported model (README.md says which), with
tiny channel counts so every file stays far below 200 KB. The tests only read the committed
files; this script records how each was made:

  python build.py torch [STEM...]
                               PyTorch 2.13 (CPU wheel, onnxscript for dynamo=True): the legacy
                               TorchScript exporter and the dynamo exporter, for torch_models.py
  python build.py ort [STEM...]
                               onnxruntime: ORT_ENABLE_ALL (NCHWc) and ORT_ENABLE_EXTENDED
                               (FusedConv, LayerNormalization, FusedMatMul) optimised graphs, and
                               onnxruntime.quantization.quantize_dynamic (ConvInteger,
                               DynamicQuantizeLSTM), all from the committed legacy exports
  python build.py helper       tf2onnx- and paddle2onnx-style graphs written with onnx.helper
  python build.py cut DIR      subgraphs cut out of the models shipped in PyPI wheels unpacked
                               under DIR (rapidocr-onnxruntime 1.4.4: paddle2onnx exports)

The torch step needs torch; the others need only onnx, onnxruntime and numpy.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "manifest.json"

# fixture stem -> (torch_models class, example input shape, dynamic axes of input "x")
TORCH_CASES: dict[str, tuple[str, tuple[int, ...], dict[int, str]]] = {
    "shufflenet_unit": ("ShuffleUnit", (1, 3, 32, 32), {0: "batch", 2: "h", 3: "w"}),
    "shape_chain": ("ShapeChain", (1, 3, 8, 12), {0: "batch", 2: "h", 3: "w"}),
    "stft_conv1d": ("Stft", (1, 256), {0: "batch", 1: "samples"}),
    "upsample_skip": ("UpsampleSkip", (1, 3, 30, 21), {0: "batch", 2: "h", 3: "w"}),
    "cond": ("CondNet", (1, 3, 8, 8), {0: "batch", 2: "h", 3: "w"}),
    "transposed": ("Transposed", (1, 4, 5, 7), {0: "batch", 2: "h", 3: "w"}),
    "conv3d": ("Conv3dNet", (1, 2, 4, 8, 8), {0: "batch", 2: "d", 3: "h", 4: "w"}),
    "nhwc_input": ("NhwcIn", (1, 16, 16, 3), {0: "batch", 1: "h", 2: "w"}),
    "functions": ("Functions", (1, 3, 8, 8), {0: "batch", 2: "h", 3: "w"}),
    "token_mixer": ("TokenMixer", (1, 3, 8, 16), {0: "batch", 3: "w"}),
    "conv_lstm": ("ConvLstm", (1, 1, 8, 20), {3: "w"}),
    "tiny_yolo": ("TinyYolo", (1, 3, 32, 32), {0: "batch", 2: "h", 3: "w"}),
    "loop": ("ScriptLoop", (1, 3, 8, 8), {0: "batch", 2: "h", 3: "w"}),
}
# The shapes the tests scan with: deliberately not the export's example shapes.
SCAN_SHAPES: dict[str, tuple[int, ...]] = {
    "shufflenet_unit": (2, 3, 48, 40),
    "shape_chain": (2, 3, 10, 6),
    "stft_conv1d": (2, 300),
    "upsample_skip": (1, 3, 37, 45),
    "cond": (2, 3, 9, 7),
    "transposed": (2, 4, 6, 3),
    "conv3d": (1, 2, 6, 10, 12),
    "nhwc_input": (2, 20, 18, 3),
    "functions": (2, 3, 9, 7),
    "token_mixer": (2, 3, 8, 24),
    "conv_lstm": (1, 1, 8, 28),
    "tiny_yolo": (1, 3, 64, 48),
    "loop": (1, 3, 8, 12),
}
# Legacy-only: torch.jit.script gives the legacy exporter its If.
LEGACY_SUBSTITUTE = {"cond": "ScriptIf"}
LEGACY_OPSET = {"token_mixer": 12, "conv_lstm": 12}
# Old-opset exports (torch 1.x defaults): Upsample with computed scales, attribute Slice/Pad.
LEGACY_OLD_OPSET = {"tiny_yolo": 9, "stft_conv1d": 9, "transposed": 9}
# Data-dependent Python loops only script (the dynamo exporter would unroll or refuse them).
LEGACY_ONLY = {"loop"}


def load_manifest() -> dict[str, Any]:
    return json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}


def record(entries: dict[str, dict[str, Any]]) -> None:
    manifest = load_manifest()
    manifest.update(entries)
    MANIFEST.write_text(json.dumps(dict(sorted(manifest.items())), indent=1) + "\n")


def save(model: onnx.ModelProto, name: str, *, check: bool = True) -> None:
    if check:  # ORT's own graphs use ops outside the model's opset: onnx's checker refuses them
        onnx.checker.check_model(model)
    data = model.SerializeToString()
    assert len(data) < 200_000, f"{name} is {len(data)} bytes"
    (HERE / name).write_bytes(data)
    print(f"wrote {name} ({len(data)} bytes)")


# -- torch ------------------------------------------------------------------------------------
def build_torch(only: set[str]) -> None:
    import torch

    sys.path.insert(0, str(HERE))
    import torch_models as tm

    entries = {}
    for stem, (cls, example, axes) in TORCH_CASES.items():
        if only and stem not in only:
            continue
        x = torch.randn(*example)
        exporters = ["legacy"] if stem in LEGACY_ONLY else ["legacy", "dynamo"]
        if stem in LEGACY_OLD_OPSET:
            exporters.append(f"legacy-op{LEGACY_OLD_OPSET[stem]}")
        for exporter in exporters:
            name = f"{stem}.{exporter}.onnx"
            path = HERE / name
            cls_name = LEGACY_SUBSTITUTE.get(stem, cls) if exporter == "legacy" else cls
            model = tm.init(getattr(tm, cls_name)())
            if exporter.startswith("legacy"):
                if stem in ("cond", "loop"):
                    model = torch.jit.script(model)
                kwargs: dict[str, Any] = {}
                opset = LEGACY_OLD_OPSET[stem] if "-op" in exporter else LEGACY_OPSET.get(stem, 17)
                if stem == "functions":
                    kwargs["export_modules_as_functions"] = {tm.Block}
                torch.onnx.export(
                    model, (x,), str(path), dynamo=False, input_names=["x"],
                    output_names=["y"], dynamic_axes={"x": axes},
                    opset_version=opset, **kwargs,
                )  # fmt: skip
            else:
                dims = {ax: torch.export.Dim.DYNAMIC for ax in axes}
                program = torch.onnx.export(
                    model, (x,), dynamo=True, input_names=["x"], output_names=["y"],
                    dynamic_shapes={"x": dims}, external_data=False,
                )  # fmt: skip
                program.save(str(path), external_data=False)
            proto = onnx.load(str(path))
            path.unlink()
            save(proto, name)
            entries[name] = {
                "exporter": f"torch {torch.__version__} {exporter}",
                "pattern": (getattr(tm, cls_name).__doc__ or cls_name).strip().splitlines()[0],
                "inputs": {"x": list(SCAN_SHAPES[stem])},
            }
    record(entries)


# -- onnxruntime ------------------------------------------------------------------------------
ORT_SOURCES = ["shufflenet_unit", "upsample_skip", "stft_conv1d", "token_mixer", "tiny_yolo"]


def build_ort(only: set[str]) -> None:
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    manifest = load_manifest()
    entries = {}
    levels = {
        "ortall": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        "ortext": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    }
    for stem in ORT_SOURCES:
        if only and stem not in only:
            continue
        src = HERE / f"{stem}.legacy.onnx"
        for tag, level in levels.items():
            name = f"{stem}.{tag}.onnx"
            options = ort.SessionOptions()
            options.graph_optimization_level = level
            options.optimized_model_filepath = str(HERE / name)
            ort.InferenceSession(str(src), options, providers=["CPUExecutionProvider"])
            save(onnx.load(str(HERE / name)), name, check=False)
            entries[name] = {
                "exporter": f"onnxruntime {ort.__version__} {level.name} of {src.name}",
                "pattern": "NCHWc layout ops"
                if tag == "ortall"
                else "fused contrib ops (FusedConv, LayerNormalization, FusedMatMul)",
                "inputs": manifest[src.name]["inputs"],
            }
    if only and "conv_lstm" not in only:
        record(entries)
        return
    src = HERE / "conv_lstm.legacy.onnx"
    name = "conv_lstm.quant.onnx"
    quantize_dynamic(
        str(src), str(HERE / name), weight_type=QuantType.QUInt8, op_types_to_quantize=None
    )
    save(onnx.load(str(HERE / name)), name, check=False)
    entries[name] = {
        "exporter": f"onnxruntime {ort.__version__} quantize_dynamic of {src.name}",
        "pattern": "ConvInteger, DynamicQuantizeLSTM, MatMulInteger (ddddocr's common_old.onnx)",
        "inputs": manifest[src.name]["inputs"],
    }
    entries.update(_quantized_static(ort, levels["ortall"]))
    fused = "conv_lstm.quant.ortext.onnx"
    options = ort.SessionOptions()
    options.graph_optimization_level = levels["ortext"]
    options.optimized_model_filepath = str(HERE / fused)
    ort.InferenceSession(str(HERE / name), options, providers=["CPUExecutionProvider"])
    save(onnx.load(str(HERE / fused)), fused, check=False)
    entries[fused] = {
        "exporter": f"onnxruntime {ort.__version__} ORT_ENABLE_EXTENDED of {name}",
        "pattern": "DynamicQuantizeMatMul: quantize_dynamic's MatMul as onnxruntime fuses it",
        "inputs": manifest[src.name]["inputs"],
    }
    record(entries)


def _quantized_static(ort: Any, level: Any) -> dict[str, dict[str, Any]]:
    """quantize_static (QDQ, seeded calibration) of tiny_yolo, then onnxruntime's NHWC
    quantized kernels: QLinearConv channels_last, NhwcMaxPool, QLinearConcat/Sigmoid/Softmax."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Calibration(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.batches = iter(
                {"x": np.random.default_rng(k).standard_normal((1, 3, 32, 32), np.float32)}
                for k in range(4)
            )

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    src = HERE / "tiny_yolo.legacy.onnx"
    qdq = HERE / "tiny_yolo.qdq.onnx"
    quantize_static(
        str(src), str(qdq), Calibration(), quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
    )  # fmt: skip
    name = "tiny_yolo.qdq.ortall.onnx"
    options = ort.SessionOptions()
    options.graph_optimization_level = level
    options.optimized_model_filepath = str(HERE / name)
    ort.InferenceSession(str(qdq), options, providers=["CPUExecutionProvider"])
    qdq.unlink()
    save(onnx.load(str(HERE / name)), name, check=False)
    return {
        name: {
            "exporter": f"onnxruntime {ort.__version__} quantize_static (QDQ) of {src.name}, "
            "then ORT_ENABLE_ALL",
            "pattern": "NHWC quantized kernels: QLinearConv channels_last, NhwcMaxPool",
            "inputs": {"x": list(SCAN_SHAPES["tiny_yolo"])},
        }
    }


# -- onnx.helper emulations -------------------------------------------------------------------
def _w(rng: np.random.Generator, name: str, *shape: int) -> TensorProto:
    return numpy_helper.from_array(rng.uniform(-0.5, 0.5, shape).astype(np.float32), name)


def _i64(name: str, values: list[int]) -> TensorProto:
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def tf2onnx_style() -> onnx.ModelProto:
    """What tf2onnx writes for a Keras NHWC model: ``unk__`` batch symbol, a Transpose into
    NCHW, SAME_UPPER and VALID convs (a dilated depthwise one gets explicit pads, as tf2onnx
    writes when shapes are known), Transpose back out, and
    a Reshape whose target comes from Shape->Slice->Concat (Keras Flatten/Reshape)."""
    rng = np.random.default_rng(0)
    f = TensorProto.FLOAT
    nodes = [
        helper.make_node("Transpose", ["input_1"], ["t0"], perm=[0, 3, 1, 2]),
        helper.make_node(
            "Conv", ["t0", "conv1/kernel", "conv1/bias"], ["c1"], name="model/conv1/Conv2D",
            auto_pad="SAME_UPPER", strides=[2, 2], kernel_shape=[3, 3], dilations=[1, 1],
        ),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node(
            "Conv", ["r1", "dw/kernel"], ["c2"], name="model/dw/depthwise", group=8,
            pads=[2, 2, 2, 2], kernel_shape=[3, 3], strides=[1, 1], dilations=[2, 2],
        ),
        helper.make_node(
            "Conv", ["c2", "pw/kernel", "pw/bias"], ["c3"], name="model/pw/Conv2D",
            auto_pad="VALID", kernel_shape=[1, 1],
        ),
        helper.make_node("Transpose", ["c3"], ["t1"], perm=[0, 2, 3, 1]),
        helper.make_node("Shape", ["t1"], ["s"]),
        helper.make_node("Slice", ["s", "zero", "one", "zero"], ["batch"]),
        helper.make_node("Concat", ["batch", "minus1_c"], ["target"], axis=0),
        helper.make_node("Reshape", ["t1", "target"], ["flat"]),
        helper.make_node("Reshape", ["flat", "back"], ["back_nhwc"]),
        helper.make_node("Transpose", ["back_nhwc"], ["t2"], perm=[0, 3, 1, 2]),
        helper.make_node(
            "Conv", ["t2", "head/kernel"], ["c4"], name="model/head/Conv2D",
            auto_pad="SAME_UPPER", kernel_shape=[5, 5], strides=[2, 2],
        ),
        helper.make_node("Transpose", ["c4"], ["Identity:0"], perm=[0, 2, 3, 1]),
    ]  # fmt: skip
    inits = [
        _w(rng, "conv1/kernel", 8, 3, 3, 3),
        _w(rng, "conv1/bias", 8),
        _w(rng, "dw/kernel", 8, 1, 3, 3),
        _w(rng, "pw/kernel", 4, 8, 1, 1),
        _w(rng, "pw/bias", 4),
        _w(rng, "head/kernel", 6, 4, 5, 5),
        _i64("zero", [0]),
        _i64("one", [1]),
        _i64("minus1_c", [-1, 4]),
        _i64("back", [0, 11, 11, 4]),  # 0 copies the batch dim (allowzero unset)
    ]
    graph = helper.make_graph(
        nodes,
        "tf2onnx",
        [helper.make_tensor_value_info("input_1", f, ["unk__42", 21, 21, 3])],
        [helper.make_tensor_value_info("Identity:0", f, ["unk__43", None, None, 6])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.producer_name, model.producer_version = "tf2onnx", "1.16.1 15c810"
    return model


def paddle_style() -> onnx.ModelProto:
    """What paddle2onnx writes: batch as dim_value -1, H and W both as dim_param "?", every
    constant a Constant node, Clip bounds from Constants, a HardSigmoid squeeze-excite, and
    the classifier head's Reshape target built from Shape->Slice->Concat."""
    rng = np.random.default_rng(1)
    f = TensorProto.FLOAT

    def const(name: str, arr: np.ndarray) -> onnx.NodeProto:
        return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(arr, name))

    nodes = [
        const("conv1.w", rng.uniform(-0.5, 0.5, (8, 3, 3, 3)).astype(np.float32)),
        helper.make_node(
            "Conv", ["x", "conv1.w"], ["conv1.out"], name="p2o.Conv.0",
            strides=[2, 2], pads=[1, 1, 1, 1], kernel_shape=[3, 3], group=1, dilations=[1, 1],
        ),
        const("clip.min", np.array(0.0, np.float32)),
        const("clip.max", np.array(6.0, np.float32)),
        helper.make_node("Clip", ["conv1.out", "clip.min", "clip.max"], ["relu6"]),
        const("dw.w", rng.uniform(-0.5, 0.5, (8, 1, 3, 3)).astype(np.float32)),
        helper.make_node(
            "Conv", ["relu6", "dw.w"], ["dw.out"], name="p2o.Conv.1", group=8,
            strides=[1, 2], pads=[1, 1, 1, 1], kernel_shape=[3, 3], dilations=[1, 1],
        ),
        helper.make_node("GlobalAveragePool", ["dw.out"], ["se.pool"]),
        const("se1.w", rng.uniform(-0.5, 0.5, (2, 8, 1, 1)).astype(np.float32)),
        helper.make_node("Conv", ["se.pool", "se1.w"], ["se1"], name="p2o.Conv.2"),
        helper.make_node("Relu", ["se1"], ["se1.r"]),
        const("se2.w", rng.uniform(-0.5, 0.5, (8, 2, 1, 1)).astype(np.float32)),
        helper.make_node("Conv", ["se1.r", "se2.w"], ["se2"], name="p2o.Conv.3"),
        helper.make_node("HardSigmoid", ["se2"], ["se.gate"], alpha=0.2, beta=0.5),
        helper.make_node("Mul", ["dw.out", "se.gate"], ["se.out"]),
        const("pw.w", rng.uniform(-0.5, 0.5, (16, 8, 1, 1)).astype(np.float32)),
        helper.make_node("Conv", ["se.out", "pw.w"], ["pw.out"], name="p2o.Conv.4"),
        helper.make_node("GlobalAveragePool", ["pw.out"], ["pool"]),
        helper.make_node("Shape", ["pool"], ["pool.shape"]),
        const("s0", np.array([0], np.int64)),
        const("s1", np.array([1], np.int64)),
        helper.make_node("Slice", ["pool.shape", "s0", "s1"], ["n"]),
        const("minus1", np.array([-1], np.int64)),
        helper.make_node("Concat", ["n", "minus1"], ["flat.shape"], axis=0),
        helper.make_node("Reshape", ["pool", "flat.shape"], ["flat"]),
        const("fc.w", rng.uniform(-0.5, 0.5, (16, 2)).astype(np.float32)),
        helper.make_node("MatMul", ["flat", "fc.w"], ["logits"], name="p2o.MatMul.0"),
        helper.make_node("Softmax", ["logits"], ["save_infer_model/scale_0.tmp_1"], axis=1),
    ]  # fmt: skip
    x = helper.make_tensor_value_info("x", f, [-1, 3, "?", "?"])
    y = helper.make_tensor_value_info("save_infer_model/scale_0.tmp_1", f, [-1, 2])
    graph = helper.make_graph(nodes, "paddle", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.producer_name = "PaddlePaddle"
    return model


def sample_rate_branches() -> onnx.ModelProto:
    """What silero VAD's spox export does: an If on the sample-rate input picks a 16 kHz or an
    8 kHz STFT-conv stack; each branch only runs on its own window length (the encoder must
    bring the frames down to one, which a Squeeze then drops, before the decoder conv)."""
    rng = np.random.default_rng(2)
    f = TensorProto.FLOAT

    def branch(name: str, n_fft: int, hop: int, frames: int) -> onnx.GraphProto:
        bins = n_fft + 2
        nodes = [
            helper.make_node("Unsqueeze", ["x", "one"], [f"{name}.x3"]),
            helper.make_node(
                "Conv", [f"{name}.x3", f"{name}.basis"], [f"{name}.spec"],
                name=f"{name}/stft/Conv", strides=[hop], kernel_shape=[n_fft],
            ),
            helper.make_node("Relu", [f"{name}.spec"], [f"{name}.mag"]),
            helper.make_node(
                "Conv", [f"{name}.mag", f"{name}.enc"], [f"{name}.enc_out"],
                name=f"{name}/encoder/Conv", kernel_shape=[frames],
            ),
            helper.make_node("Squeeze", [f"{name}.enc_out", "two"], [f"{name}.state"]),
            helper.make_node("Unsqueeze", [f"{name}.state", "two"], [f"{name}.state3"]),
            helper.make_node(
                "Conv", [f"{name}.state3", f"{name}.dec"], [f"{name}.y"],
                name=f"{name}/decoder/Conv", kernel_shape=[1],
            ),
        ]  # fmt: skip
        inits = [
            _w(rng, f"{name}.basis", bins, 1, n_fft),
            _w(rng, f"{name}.enc", 4, bins, frames),
            _w(rng, f"{name}.dec", 2, 4, 1),
        ]
        out = helper.make_tensor_value_info(f"{name}.y", f, [1, 2, 1])
        return helper.make_graph(nodes, name, [], [out], initializer=inits)

    nodes = [
        helper.make_node("Equal", ["sr", "sr16k"], ["is16k"]),
        helper.make_node(
            "If", ["is16k"], ["y"], name="If_0",
            # 128 samples at 16 kHz: 15 frames; 64 samples at 8 kHz: 15 frames
            then_branch=branch("then", 16, 8, 15), else_branch=branch("else", 8, 4, 15),
        ),
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes,
        "vad",
        [
            helper.make_tensor_value_info("x", f, [1, "n"]),
            helper.make_tensor_value_info("sr", TensorProto.INT64, []),
        ],
        [helper.make_tensor_value_info("y", f, [1, 2, 1])],
        initializer=[
            _i64("one", [1]),
            _i64("two", [2]),
            numpy_helper.from_array(np.array(16000, np.int64), "sr16k"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 16)])
    model.producer_name = "spox"
    return model


def build_helper() -> None:
    save(tf2onnx_style(), "keras_nhwc.tf2onnx.onnx")
    save(paddle_style(), "mobilenet_se.paddle.onnx")
    save(sample_rate_branches(), "vad_sample_rate.spox.onnx")
    record(
        {
            "vad_sample_rate.spox.onnx": {
                "exporter": "onnx.helper, emulating spox's silero VAD export",
                "pattern": sample_rate_branches.__doc__.split(":")[0].strip(),  # type: ignore[union-attr]
                "inputs": {"x": [1, 128], "sr": []},
                "values": {"sr": 16000},
            },
            "keras_nhwc.tf2onnx.onnx": {
                "exporter": "onnx.helper, emulating tf2onnx 1.16 on a Keras model",
                "pattern": tf2onnx_style.__doc__.split(":")[0].strip(),  # type: ignore[union-attr]
                "inputs": {"input_1": [2, 21, 21, 3]},
            },
            "mobilenet_se.paddle.onnx": {
                "exporter": "onnx.helper, emulating paddle2onnx (rapidocr's cls model)",
                "pattern": paddle_style.__doc__.split(":")[0].strip(),  # type: ignore[union-attr]
                "inputs": {"x": [2, 3, 48, 192]},
            },
        }
    )


# -- cut from shipped models ------------------------------------------------------------------
def cut(model: onnx.ModelProto, output: str) -> onnx.ModelProto:
    """The part of ``model`` that computes ``output``, graph inputs kept as exported."""
    g = model.graph
    producer = {o: n for n in g.node for o in n.output}
    needed: set[int] = set()
    stack = [output]
    while stack:
        node = producer.get(stack.pop())
        if node is None or id(node) in needed:
            continue
        needed.add(id(node))
        stack.extend(i for i in node.input if i)
    nodes = [n for n in g.node if id(n) in needed]
    used = {i for n in nodes for i in n.input}
    graph = helper.make_graph(
        nodes,
        g.name,
        [i for i in g.input if i.name in used],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)],
        initializer=[t for t in g.initializer if t.name in used],
    )
    sub = helper.make_model(graph, opset_imports=model.opset_import)
    sub.ir_version, sub.producer_name = model.ir_version, model.producer_name
    return sub


# The first 38 convs (stem and inverted-residual blocks with squeeze-excite) of the cls model.
CUT_OUTPUT = "Add@28"


def build_cut(wheel_dir: Path) -> None:
    found = list(wheel_dir.rglob("ch_ppocr_mobile_v2.0_cls_infer.onnx"))
    if not found:
        raise SystemExit(f"no rapidocr cls model under {wheel_dir}")
    name = "ppocr_cls_cut.paddle.onnx"
    save(cut(onnx.load(str(found[0])), CUT_OUTPUT), name, check=False)
    record(
        {
            name: {
                "exporter": "paddle2onnx: rapidocr-onnxruntime 1.4.4 "
                f"ch_ppocr_mobile_v2.0_cls_infer.onnx, cut at {CUT_OUTPUT}",
                "pattern": "paddle2onnx graph as shipped: -1 batch, ? dims, Constant nodes",
                "inputs": {"x": [2, 3, 48, 192]},
            }
        }
    )


def main(argv: list[str]) -> None:
    step = argv[0] if argv else ""
    if step == "torch":
        build_torch(set(argv[1:]))
    elif step == "ort":
        build_ort(set(argv[1:]))
    elif step == "helper":
        build_helper()
    elif step == "cut" and len(argv) == 2:
        build_cut(Path(argv[1]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
