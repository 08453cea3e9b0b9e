"""Graph surgery against onnxruntime: the full-rank rewrite must reproduce the original conv.

The oracle is onnxruntime running the original model; a deliberately misplaced stride or bias
must fail the same check, so the check can tell a right placement from a wrong one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from fixmodels import attr, conv_model, conv_nodes, rel_error, run, same_outputs
from onnx import helper, numpy_helper

from convaudit.fix.factorize import factorize
from convaudit.fix.rewrite import ConvRewrite, rewrite_conv
from convaudit.weightmath import fold_batchnorm

CIN, COUT, K = 16, 8, 3
SHAPE = (1, CIN, 13, 12)

CASES: dict[str, dict[str, Any]] = {
    "stride2": {"strides": [2, 2], "pads": [1, 1, 1, 1]},
    "asymmetric_pads": {"pads": [0, 2, 1, 0]},
    "dilation": {"dilations": [2, 3], "pads": [2, 3, 2, 3]},
    "auto_pad_same_upper_stride2": {"auto_pad": "SAME_UPPER", "strides": [2, 2]},
}


def rewritten(model: onnx.ModelProto, width: int, *, bn: str | None = None) -> onnx.ModelProto:
    """``model`` with its conv replaced by the factorised pair (BN folded when ``bn`` names it)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    w = inits["conv.weight"].astype(np.float64)
    b = inits.get("conv.bias")
    new_bias = None
    if bn is not None:
        w, new_bias = fold_batchnorm(
            w, b, inits["bn.scale"], inits["bn.shift"], inits["bn.mean"], inits["bn.var"], 1e-3
        )
    f = factorize(w, width)
    rw = ConvRewrite(conv_output="y", u=f.u, v=f.v, bias=new_bias, bn_output=bn)
    rewrite_conv(out.graph, rw, np.dtype(np.float32))
    onnx.checker.check_model(out, full_check=True)
    return out


@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_full_rank_rewrite_reproduces_the_conv(case: str, with_bias: bool) -> None:
    rng = np.random.default_rng(5)
    w = rng.standard_normal((COUT, CIN, K, K)).astype(np.float32)
    bias = rng.standard_normal(COUT).astype(np.float32) if with_bias else None
    model = conv_model(w, SHAPE, bias=bias, **CASES[case])
    new = rewritten(model, CIN)
    x = rng.standard_normal(SHAPE).astype(np.float32)
    ref, got = run(model, x), run(new, x)
    assert got.shape == ref.shape
    assert rel_error(ref, got) < 1e-5
    # Structure: the 1x1 has no stride, pads or bias; the KxK kept every original attribute.
    reduce, kxk = conv_nodes(new)
    assert list(reduce.input)[1:] == ["conv.weight.bottleneck_reduce"]
    assert attr(reduce, "kernel_shape") == [1, 1]
    assert {a.name for a in reduce.attribute} == {"kernel_shape"}
    for key, value in CASES[case].items():
        got_attr = attr(kxk, key)
        assert (got_attr.decode() if isinstance(got_attr, bytes) else got_attr) == value
    assert (len(kxk.input) == 3) == with_bias
    assert kxk.name == "conv" and list(kxk.output) == ["y"]
    # The old weight is gone; the graph output keeps its shape and dtype.
    assert "conv.weight" not in {t.name for t in new.graph.initializer}
    assert new.graph.output[0] == model.graph.output[0]


def _misplaced(model: onnx.ModelProto, *, stride_on_1x1: bool, bias_on_1x1: bool) -> Any:
    """The same pair with the stride or the bias on the wrong conv (what the surgery must avoid)."""
    new = rewritten(model, CIN)
    reduce, kxk = conv_nodes(new)
    if stride_on_1x1:
        strides = attr(kxk, "strides")
        reduce.attribute.append(helper.make_attribute("strides", strides))
        for a in kxk.attribute:
            if a.name == "strides":
                a.ints[:] = [1] * len(strides)
        # Keep the output shape right: the KxK now sees the already-strided map.
        for a in kxk.attribute:
            if a.name == "pads":
                a.ints[:] = [1, 1, 1, 1]
    if bias_on_1x1:
        # Move the bias in front: a 1x1 bias c with sum_k V_k c = b gives the same interior.
        inits = {t.name: t for t in new.graph.initializer}
        v = numpy_helper.to_array(inits[kxk.input[1]]).astype(np.float64)
        b = numpy_helper.to_array(inits[kxk.input[2]]).astype(np.float64)
        c = np.linalg.lstsq(v.sum(axis=(2, 3)), b, rcond=None)[0].astype(np.float32)
        new.graph.initializer.append(numpy_helper.from_array(c, "moved_bias"))
        reduce.input.append("moved_bias")
        del kxk.input[2]
    return new


@pytest.mark.parametrize("wrong", ["stride_on_1x1", "bias_on_1x1"])
def test_misplaced_stride_or_bias_is_caught(wrong: str) -> None:
    rng = np.random.default_rng(6)
    w = rng.standard_normal((COUT, CIN, K, K)).astype(np.float32)
    bias = (3 * rng.standard_normal(COUT)).astype(np.float32)
    model = conv_model(w, (1, CIN, 12, 12), bias=bias, strides=[2, 2], pads=[1, 1, 1, 1])
    x = rng.standard_normal((1, CIN, 12, 12)).astype(np.float32)
    right = rewritten(model, CIN)
    assert same_outputs(model, right, x)
    bad = _misplaced(
        model, stride_on_1x1=wrong == "stride_on_1x1", bias_on_1x1=wrong == "bias_on_1x1"
    )
    assert run(bad, x).shape == run(model, x).shape  # the shape alone would not notice
    assert not same_outputs(model, bad, x)
    if wrong == "bias_on_1x1":
        # Interior positions agree; the zero-padded border is where the moved bias goes wrong.
        diff = np.abs(run(bad, x) - run(model, x))[0]
        assert diff[:, 1:, 1:].max() < 1e-3 < diff[:, 0, :].max()


def test_batchnorm_is_folded_into_the_kxk_conv() -> None:
    rng = np.random.default_rng(7)
    w = rng.standard_normal((COUT, CIN, K, K)).astype(np.float32)
    model = conv_model(w, (1, CIN, 10, 10), bn=True, pads=[1, 1, 1, 1], rng=rng)
    new = rewritten(model, CIN, bn="z")
    assert [n.op_type for n in new.graph.node] == ["Conv", "Conv"]
    kxk = conv_nodes(new)[1]
    assert list(kxk.output) == ["z"] and len(kxk.input) == 3
    assert not {"bn.scale", "bn.mean", "y"} & {t.name for t in new.graph.initializer}
    x = rng.standard_normal((1, CIN, 10, 10)).astype(np.float32)
    assert rel_error(run(model, x), run(new, x)) < 1e-5


CONFORMANCE = Path(onnx.__file__).parent / "backend" / "test" / "data" / "pytorch-converted"


@pytest.mark.parametrize(
    "case",
    [
        "test_Conv1d_dilated",
        "test_Conv2d_strided",
        "test_Conv2d_padding",
        "test_Conv2d_no_bias",
        "test_Conv2d_dilated",
        "test_Conv3d_dilated_strided",
        "test_Conv3d_stride_padding",
    ],
)
def test_full_rank_rewrite_of_conformance_models_matches_their_reference_output(case: str) -> None:
    """The onnx package's own reference output is the oracle; these are IR 3 models, whose
    initializers are also graph inputs, so the new weights must be declared as inputs too."""
    folder = CONFORMANCE / case
    model = onnx.load(str(folder / "model.onnx"))
    assert model.ir_version < 4
    conv = conv_nodes(model)[0]
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    w = inits[conv.input[1]].astype(np.float64)
    f = factorize(w, w.shape[1])
    rewrite_conv(
        model.graph,
        ConvRewrite(conv_output=conv.output[0], u=f.u, v=f.v),
        np.dtype(np.float32),
        declare_inputs=True,
    )
    onnx.checker.check_model(model, full_check=True)
    assert conv.input[1] not in {i.name for i in model.graph.input}
    x = numpy_helper.to_array(onnx.load_tensor(str(folder / "test_data_set_0" / "input_0.pb")))
    expected = numpy_helper.to_array(
        onnx.load_tensor(str(folder / "test_data_set_0" / "output_0.pb"))
    )
    got = run(model, x)
    assert got.shape == expected.shape
    assert rel_error(expected, got) < 1e-5


@pytest.mark.parametrize("groups", [2, 4])
def test_full_rank_grouped_rewrite_reproduces_the_conv(groups: int) -> None:
    rng = np.random.default_rng(8)
    w = rng.standard_normal((COUT, CIN // groups, K, K)).astype(np.float32)
    bias = rng.standard_normal(COUT).astype(np.float32)
    model = conv_model(w, SHAPE, bias=bias, group=groups, strides=[2, 1], pads=[1, 0, 2, 1])
    new = onnx.ModelProto()
    new.CopyFrom(model)
    f = factorize(w, CIN, groups=groups)  # each group at its full rank Cin / groups
    assert f.u.shape == (CIN, CIN // groups, 1, 1) and f.v.shape == (COUT, CIN // groups, K, K)
    rw = ConvRewrite(conv_output="y", u=f.u, v=f.v, groups=groups)
    rewrite_conv(new.graph, rw, np.dtype(np.float32))
    onnx.checker.check_model(new, full_check=True)
    reduce, kxk = conv_nodes(new)
    assert attr(reduce, "group") == groups and attr(kxk, "group") == groups
    x = rng.standard_normal(SHAPE).astype(np.float32)
    assert rel_error(run(model, x), run(new, x)) < 1e-5
