"""The onnx package's own conformance models as oracles for shapes, MACs and whole-model totals.

Each pytorch-converted case ships its reference output (``output_0.pb``): the output shape we
resolve must equal it, and the MACs must equal a formula computed here from the model's own
attributes and that reference shape, independently of convaudit's cost code.
"""

from __future__ import annotations

from math import prod
from pathlib import Path

import onnx
import pytest
from onnx import numpy_helper

from convaudit.model.analyse import analyse
from convaudit.records import ModelFacts

ONNX_DATA = Path(onnx.__file__).parent / "backend" / "test" / "data"
CONV_CASES = sorted(
    p.parent
    for p in ONNX_DATA.glob("pytorch-converted/test_Conv*/model.onnx")
    if p.parent.name.startswith(("test_Conv1d", "test_Conv2d", "test_Conv3d", "test_ConvTr"))
)
LIGHT_MODELS = sorted(ONNX_DATA.glob("light/*.onnx"))


def _read_pb(path: Path) -> tuple[int, ...]:
    tensor = onnx.TensorProto()
    tensor.ParseFromString(path.read_bytes())
    return tuple(numpy_helper.to_array(tensor).shape)


def _hand_macs(model: onnx.ModelProto, x_shape: tuple[int, ...], y_shape: tuple[int, ...]) -> int:
    """MACs from the conv's attributes and the reference shapes, without convaudit.cost."""
    (node,) = [n for n in model.graph.node if n.op_type in ("Conv", "ConvTranspose")]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    weights = {t.name: tuple(t.dims) for t in model.graph.initializer}
    w = weights[node.input[1]]
    group = int(attrs.get("group", 1))
    kernel = prod(w[2:])
    if node.op_type == "Conv":
        # every output element is a dot product over (Cin / group) * kernel taps
        assert x_shape[1] == w[1] * group
        return prod(y_shape) * w[1] * kernel
    # ConvTranspose: W is [Cin, Cout / group, k...]; every input element meets Cout/g filters
    return prod(x_shape) * w[1] * kernel


def test_the_conformance_cases_are_all_here() -> None:
    names = {p.name for p in CONV_CASES}
    assert len(names) == 28
    assert {"test_Conv1d_dilated", "test_Conv3d_groups", "test_ConvTranspose2d"} <= names


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda p: p.name)
def test_pytorch_converted_conv_shape_and_macs(case: Path) -> None:
    model = onnx.load(str(case / "model.onnx"))
    x_shape = _read_pb(case / "test_data_set_0" / "input_0.pb")
    y_shape = _read_pb(case / "test_data_set_0" / "output_0.pb")
    facts = analyse(case / "model.onnx")
    (layer,) = facts.layers
    assert layer.input_shape == x_shape
    assert layer.output_shape == y_shape
    assert layer.macs == _hand_macs(model, x_shape, y_shape)
    weight_elems = sum(prod(t.dims) for t in model.graph.initializer)
    assert layer.params == weight_elems  # weight (+ bias when the case has one)
    assert layer.has_bias == (len(model.graph.node[0].input) == 3)
    assert facts.totals.unknown_layers == 0


def test_conv_transpose_counts_the_input_volume() -> None:
    # test_ConvTranspose2d: the output volume is about stride_h*stride_w = 6 times larger; the
    # MACs must follow the input volume.
    case = ONNX_DATA / "pytorch-converted" / "test_ConvTranspose2d"
    facts = analyse(case / "model.onnx")
    (layer,) = facts.layers
    assert layer.input_shape is not None and layer.output_shape is not None
    assert layer.weight_shape is not None
    cin, cout_g, *k = layer.weight_shape
    assert layer.macs == prod(layer.input_shape) * cout_g * prod(k)
    assert layer.macs != prod(layer.output_shape) * cin * prod(k)


@pytest.fixture(scope="module")
def light_facts() -> dict[str, ModelFacts]:
    return {p.stem.removeprefix("light_"): analyse(p) for p in LIGHT_MODELS}


def test_all_nine_light_models_scan_cleanly(light_facts: dict[str, ModelFacts]) -> None:
    assert sorted(light_facts) == [
        "bvlc_alexnet",
        "densenet121",
        "inception_v1",
        "inception_v2",
        "resnet50",
        "shufflenet",
        "squeezenet",
        "vgg19",
        "zfnet512",
    ]
    for name, facts in light_facts.items():
        assert facts.problems == (), name
        assert facts.totals.unknown_layers == 0, name
        assert facts.totals.layers > 0, name
        assert all(layer.macs is not None and layer.macs > 0 for layer in facts.layers), name
        assert all(layer.output_shape is not None for layer in facts.layers), name


def test_light_models_output_shape_matches_reference(light_facts: dict[str, ModelFacts]) -> None:
    for path in LIGHT_MODELS:
        facts = light_facts[path.stem.removeprefix("light_")]
        expected = _read_pb(path.with_name(path.stem + "_output_0.pb"))
        (out,) = facts.outputs.values()
        assert out == expected, path.name


def test_light_models_params_from_computed_weights(light_facts: dict[str, ModelFacts]) -> None:
    # The light models build their weights with ConstantOfShape: shapes must still be known.
    resnet = light_facts["resnet50"]
    conv1 = next(x for x in resnet.layers if x.weight_name == "gpu_0/conv1_w_0")
    assert conv1.weight_shape == (64, 3, 7, 7)
    assert conv1.params == 64 * 3 * 7 * 7  # no bias: BN follows
    fc = next(x for x in resnet.layers if x.op_type == "Gemm")
    assert fc.params == 2048 * 1000 + 1000


def test_resnet50_matches_torchvision_published_gmacs(light_facts: dict[str, ModelFacts]) -> None:
    # torchvision's ResNet-50 "_ops" = 4.089 (GMACs: conv + linear, no bias) at 224x224.
    resnet = light_facts["resnet50"]
    assert round(resnet.totals.macs / 1e9, 3) == 4.089
    # The conv part alone is the total minus the 2048->1000 classifier.
    assert resnet.totals.conv_macs == resnet.totals.macs - 2048 * 1000
    # torchvision's published parameter count, 25,557,032, includes BatchNorm scale and bias,
    # which are not conv or Gemm params: add them back from the model itself.
    # (onnx's own shape inference gives each BatchNormalization's channel count).
    model = onnx.shape_inference.infer_shapes(
        onnx.load(str(ONNX_DATA / "light" / "light_resnet50.onnx"))
    )
    channels = {
        vi.name: vi.type.tensor_type.shape.dim[1].dim_value
        for vi in model.graph.value_info
        if len(vi.type.tensor_type.shape.dim) == 4
    }
    bn = sum(
        2 * channels[n.input[0]] for n in model.graph.node if n.op_type == "BatchNormalization"
    )
    assert resnet.totals.params + bn == 25_557_032


def test_vgg19_matches_published_gmacs(light_facts: dict[str, ModelFacts]) -> None:
    vgg = light_facts["vgg19"]
    assert round(vgg.totals.macs / 1e9, 2) == 19.63
    # The three classifier layers: 25088*4096 + 4096*4096 + 4096*1000
    assert vgg.totals.macs - vgg.totals.conv_macs == 102_760_448 + 16_777_216 + 4_096_000


@pytest.mark.parametrize(
    ("name", "published", "digits"),
    [("densenet121", 2.83, 2), ("squeezenet", 0.35, 2)],  # squeezenet here is SqueezeNet 1.1
)
def test_more_light_models_match_torchvision_table(
    light_facts: dict[str, ModelFacts], name: str, published: float, digits: int
) -> None:
    # torchvision's "Table of all available classification weights", GFLOPS column (GMACs:
    # conv + linear, no bias), at 224x224.
    assert round(light_facts[name].totals.macs / 1e9, digits) == published
