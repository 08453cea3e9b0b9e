"""fix on hostile inputs (issue 10): non-finite weights and errors, declared sizes beyond memory,
.npz header bombs, outputs onto devices, external data outside the folder, onnx/onnxruntime
messages as one line naming the user's model."""

from __future__ import annotations

import io
import os
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from fixmodels import conv_model, low_rank_weight, save
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from convaudit.cli import app
from convaudit.config import Config
from convaudit.errors import FixError, ModelLoadError
from convaudit.fix import factorize, validate
from convaudit.fix.pipeline import FixOptions, run_fix
from convaudit.fix.result import FixResult

TEXTBOOK = Path(__file__).resolve().parents[2] / "sample_models" / "textbook_5x5.onnx"


def quick(src: Path, dst: Path | None, **kw: Any) -> FixResult:
    return run_fix(src, dst, FixOptions(measure_latency=False, **kw), Config())


@pytest.fixture
def model(tmp_path: Path) -> Path:
    rng = np.random.default_rng(3)
    w = low_rank_weight(rng, cout=32, cin=64, k=3, rank=16, noise=0.01)
    return save(conv_model(w, (1, 64, 8, 8), pads=[1, 1, 1, 1]), tmp_path / "m.onnx")


def test_an_all_zero_covariance_whitens_by_the_identity_not_by_infinity() -> None:
    rng = np.random.default_rng(4)
    w = rng.standard_normal((16, 32, 3, 3))
    plain = factorize.factorize(w, 8)
    zero = factorize.factorize(w, 8, np.zeros((32, 32)))
    assert np.all(np.isfinite(zero.u)) and np.all(np.isfinite(zero.v))
    # No direction to weight by: the factors are the plain SVD's (up to each vector's sign).
    np.testing.assert_allclose(
        factorize.compose(zero.u, zero.v), factorize.compose(plain.u, plain.v), atol=1e-9
    )
    assert zero.energy == pytest.approx(plain.energy)


def test_finite_as_checks_the_models_dtype() -> None:
    assert factorize.finite_as(np.dtype("float32"), np.array([1e6, -3.0]))
    assert not factorize.finite_as(np.dtype("float16"), np.array([1e6]))  # max 65,504
    assert not factorize.finite_as(np.dtype("float32"), np.array([np.nan]))


def test_all_zero_calibration_inputs_give_finite_weights(model: Path, tmp_path: Path) -> None:
    np.savez(tmp_path / "zeros.npz", input=np.zeros((2, 64, 8, 8), np.float32))
    out = tmp_path / "o.onnx"
    result = quick(model, out, nodes=("conv",), width=16, inputs=str(tmp_path / "zeros.npz"))
    assert result.written
    for t in onnx.load(str(out)).graph.initializer:
        assert np.all(np.isfinite(numpy_helper.to_array(t))), t.name


def test_a_nan_measured_error_is_over_any_budget(tmp_path: Path) -> None:
    """Sqrt of a conv output that goes negative: both models output NaN, the error is NaN."""
    rng = np.random.default_rng(5)
    w = low_rank_weight(rng, cout=32, cin=64, k=3, rank=16, noise=0.01)
    m = conv_model(w, (1, 64, 8, 8), pads=[1, 1, 1, 1])
    m.graph.node.append(helper.make_node("Sqrt", [m.graph.output[0].name], ["root"]))
    m.graph.output[0].name = "root"
    src = save(m, tmp_path / "sqrt.onnx")
    out = tmp_path / "o.onnx"
    for budget in (None, 0.5):
        result = quick(src, out, nodes=("conv",), width=16, max_error=budget)
        assert result.exceeded and not result.written and not out.exists()
        assert "is not finite: no file written" in result.message
    res = CliRunner().invoke(
        app, ["fix", str(src), "-o", str(out), "--node", "conv", "--width", "16"]
    )
    assert res.exit_code == 1 and not out.exists()


def test_declared_sizes_beyond_the_budget_are_refused_before_allocating(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    w = low_rank_weight(rng, cout=32, cin=64, k=3, rank=8)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w"], ["y"], name="conv", pads=[1] * 4)],
        "huge",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 64, 2**31 - 1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(w, "w")],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    src = save(m, tmp_path / "huge.onnx")
    with pytest.raises(
        FixError, match=r"input 'input' .* would take 4 TiB, over the memory budget"
    ):
        quick(src, tmp_path / "o.onnx", nodes=("conv",), width=8)
    out = str(tmp_path / "t.onnx")
    shape = ["--input-shape", "input=64x480x1400x1400"]
    res = CliRunner().invoke(
        app, ["fix", str(TEXTBOOK), "-o", out, "--node", "conv5x5", "--width", "16", *shape]
    )
    assert res.exit_code == 2 and res.stderr.count("\n") == 1
    assert "would take 224 GiB, over the memory budget" in res.stderr
    assert "CONVAUDIT_MEMORY_BUDGET" in res.stderr


def _npz_with_header(path: Path, shape: tuple[int, ...]) -> Path:
    header = io.BytesIO()
    np.lib.format.write_array_header_2_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": shape}
    )
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("input.npy", header.getvalue() + bytes(64))
    return path


def test_an_npz_header_declaring_petabytes_is_refused_unread(model: Path, tmp_path: Path) -> None:
    bomb = _npz_with_header(tmp_path / "bomb.npz", (2**40, 2**15))
    with pytest.raises(FixError, match=r"bomb\.npz: the calibration arrays would take 256 PiB"):
        validate.read_npz(bomb)
    with pytest.raises(FixError, match="over the memory budget"):
        quick(model, tmp_path / "o.onnx", nodes=("conv",), width=16, inputs=str(bomb))


def test_calibration_files_that_are_not_npz_or_not_finite_are_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "one.npy", np.zeros(3))
    with pytest.raises(FixError, match=r"one\.npy: calibration file is not an \.npz archive"):
        validate.read_npz(tmp_path / "one.npy")
    np.savez(tmp_path / "nan.npz", input=np.array([1.0, np.nan]))
    with pytest.raises(FixError, match="calibration input 'input' holds NaN or inf"):
        validate.read_npz(tmp_path / "nan.npz")
    os.mkfifo(tmp_path / "fifo.npz")
    with pytest.raises(FixError, match="calibration file is a FIFO"):
        validate.read_npz(tmp_path / "fifo.npz")
    with pytest.raises(FixError, match="calibration file not found"):
        validate.read_npz(tmp_path / "absent.npz")


def test_fix_never_writes_onto_a_device(model: Path) -> None:
    with pytest.raises(FixError, match="/dev/null: output is a device"):
        quick(model, Path("/dev/null"), nodes=("conv",), width=16)
    assert Path("/dev/null").is_char_device()


def _external(model: Path, folder: Path, location: str, **entries: str) -> Path:
    m = onnx.load(str(model))
    folder.mkdir(exist_ok=True)
    src = folder / "ext.onnx"
    onnx.save_model(m, str(src), save_as_external_data=True, location=location, size_threshold=0)
    loaded = onnx.load(str(src), load_external_data=False)
    for t in loaded.graph.initializer:
        for key, value in entries.items():
            found = [e for e in t.external_data if e.key == key]
            entry = found[0] if found else t.external_data.add()
            entry.key, entry.value = key, value
    src.write_bytes(loaded.SerializeToString())
    return src


def test_fix_checks_external_data_before_onnx_reads_it(model: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.bin"
    src = _external(model, tmp_path / "a", "w.bin")
    os.replace(tmp_path / "a" / "w.bin", secret)
    (tmp_path / "a" / "w.bin").symlink_to(secret)
    with pytest.raises(ModelLoadError, match=r"invalid external data location 'w\.bin'"):
        quick(src, tmp_path / "o.onnx", nodes=("conv",), width=16)
    for key, value in (("offset", "abc"), ("offset", "1e3"), ("offset", "-1"), ("length", "-1")):
        bad = _external(model, tmp_path / f"b{key}{value}", "w.bin", **{key: value})
        res = CliRunner().invoke(
            app,
            ["fix", str(bad), "-o", str(tmp_path / "o.onnx"), "--node", "conv", "--width", "16"],
        )
        assert res.exit_code == 2 and res.stderr.count("\n") == 1, res.stderr
        assert str(bad) in res.stderr and f"invalid external data {key}" in res.stderr


def test_unknown_external_data_keys_raise_no_warning(model: Path, tmp_path: Path) -> None:
    src = _external(model, tmp_path / "k", "w.bin", colour="blue")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # onnx's UserWarning would fail the test
        # onnxruntime refuses the unknown key itself: one line, naming the user's model.
        with pytest.raises(FixError, match=r"k/ext\.onnx: onnxruntime cannot load the model"):
            quick(src, tmp_path / "o.onnx", nodes=("conv",), width=16)


def test_onnxruntime_errors_are_one_line_naming_the_users_model(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(FixError) as err:
        validate.session(b"not a model at all", shown_as=Path("user.onnx"))
    message = str(err.value)
    assert message.startswith("user.onnx: onnxruntime cannot load the model (")
    assert "\n" not in message and "probe" not in message
    assert capfd.readouterr().err == ""  # no coloured log lines from onnxruntime's C++ logger


def test_a_zero_dim_does_not_hide_the_other_dims_from_the_budget() -> None:
    """Found by fuzzing: 0 x (2^31-1) x (2^31-1) is 0 bytes, yet numpy refuses to build it."""

    class Input:
        name, type, shape = "x", "tensor(float)", [0, 2**31 - 1, 2**31 - 1]

    class Session:
        def get_inputs(self) -> list[Input]:
            return [Input()]

    with pytest.raises(FixError, match="over the memory budget"):
        validate.input_feeds(Session(), None)
