"""`convaudit scan` end to end: the table, the JSON contract, -o, and every kind of bad input."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from convaudit.cli import app

ROOT = Path(__file__).resolve().parents[1]
TEXTBOOK = ROOT / "sample_models" / "textbook_5x5.onnx"
BOTTLENECK = ROOT / "sample_models" / "textbook_bottleneck.onnx"

# The JSON keys issue 2 promises (more may be added, none renamed or dropped).
TOP_KEYS = {"schema_version", "tool", "reports"}
TOOL_KEYS = {"name", "version"}
REPORT_KEYS = {"model", "totals", "layers", "findings", "errors"}
MODEL_KEYS = {"path", "opset", "inputs"}
TOTALS_KEYS = {"macs", "flops", "params", "conv_macs", "conv_params", "layers"}
LAYER_KEYS = {
    "name",
    "op_type",
    "domain",
    "graph",
    "kernel_shape",
    "strides",
    "pads",
    "dilations",
    "group",
    "in_channels",
    "out_channels",
    "input_shape",
    "output_shape",
    "macs",
    "params",
    "mac_share",
}


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["scan", *args])
    return result.exit_code, result.stdout, result.stderr


def run_process(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """A real process: the exit code and stderr a shell or CI would see."""
    code = "from convaudit.cli import app; app()"
    return subprocess.run(
        [sys.executable, "-c", code, "scan", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
    )


def one_error_line(stderr: str, *needles: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def save(
    path: Path,
    nodes: list[onnx.NodeProto],
    inputs: list[onnx.ValueInfoProto],
    inits: list[onnx.TensorProto],
    opsets: list[tuple[str, int]] | None = None,
) -> Path:
    graph = helper.make_graph(
        nodes,
        "g",
        inputs,
        [helper.make_tensor_value_info(nodes[-1].output[0], 1, None)],
        initializer=inits,
    )
    ids = [helper.make_opsetid(d, v) for d, v in (opsets or [("", 17)])]
    model = helper.make_model(graph, opset_imports=ids)
    onnx.save(model, str(path))
    return path


def conv_weight(name: str = "W") -> onnx.TensorProto:
    return numpy_helper.from_array(np.ones((8, 3, 3, 3), np.float32), name)


# -- good input -------------------------------------------------------------------------------
def test_table_shows_the_textbook_numbers() -> None:
    code, out, err = run(str(TEXTBOOK), "--fail-on", "never")
    assert code == 0, err
    row = next(line for line in out.splitlines() if line.startswith("conv5x5"))
    assert "112.9M" in row and "100.0%" in row
    assert "480→48" in row and "5x5" in row
    assert "112,896,000" in out


def test_json_has_every_key_issue_2_promises() -> None:
    code, out, _ = run(str(BOTTLENECK), "--format", "json", "--fail-on", "never")
    assert code == 0
    doc = json.loads(out)
    assert set(doc) >= TOP_KEYS and doc["schema_version"] == 1
    assert set(doc["tool"]) >= TOOL_KEYS and doc["tool"]["name"] == "convaudit"
    (report,) = doc["reports"]
    assert set(report) >= REPORT_KEYS
    assert set(report["model"]) >= MODEL_KEYS
    assert set(report["totals"]) >= TOTALS_KEYS
    assert isinstance(report["findings"], list)
    assert report["errors"] == []
    assert len(report["layers"]) == 2
    for layer in report["layers"]:
        assert set(layer) >= LAYER_KEYS
    macs = sorted(layer["macs"] for layer in report["layers"])
    assert macs == [1_505_280, 3_763_200]  # exact integers, not 1.5M
    assert report["totals"]["macs"] == 5_268_480
    assert list(report["model"]["inputs"].values()) == [[1, 480, 14, 14]]
    assert all(layer["graph"] == "main" for layer in report["layers"])


def _control_flow_model(path: Path) -> Path:
    """If (graph-input condition) with a 3x3 and a 1x1 branch, inside a 3-trip Loop, after a
    model-local function call, with a weight shared through Identity: every labelled path."""
    f = TensorProto.FLOAT

    def branch(name: str, w: str, pads: list[int]) -> onnx.GraphProto:
        node = helper.make_node("Conv", ["x", w], [f"{name}_y"], name=f"{name}_conv", pads=pads)
        out = helper.make_tensor_value_info(f"{name}_y", f, None)
        return helper.make_graph([node], name, [], [out])

    gate = helper.make_node(
        "If",
        ["flag"],
        ["g"],
        name="gate",
        then_branch=branch("then", "W3", [1] * 4),
        else_branch=branch("else", "W1", [0] * 4),
    )
    body = helper.make_graph(
        [helper.make_node("Identity", ["c_in"], ["c_out"]), gate],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("c_in", TensorProto.BOOL, []),
        ],
        [
            helper.make_tensor_value_info("c_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("g", f, None),
        ],
    )
    block = helper.make_function(
        "custom",
        "Block",
        ["X", "W"],
        ["Y"],
        [helper.make_node("Conv", ["X", "W"], ["Y"], name="block_conv", pads=[1] * 4)],
        [helper.make_opsetid("", 17)],
    )
    nodes = [
        helper.make_node("Identity", ["W3"], ["W3_copy"]),
        helper.make_node("Block", ["x", "W3_copy"], ["b"], name="call", domain="custom"),
        helper.make_node("Loop", ["M", ""], ["gs"], name="repeat", body=body),
    ]
    inits = [
        numpy_helper.from_array(np.ones((3, 3, 3, 3), np.float32), "W3"),
        numpy_helper.from_array(np.ones((3, 3, 1, 1), np.float32), "W1"),
        numpy_helper.from_array(np.array(3, np.int64), "M"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info("x", f, [1, 3, 8, 8]),
            helper.make_tensor_value_info("flag", TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info("b", f, None), helper.make_tensor_value_info("gs", f, None)],
        initializer=inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("custom", 1)],
        functions=[block],
    )
    onnx.save(model, str(path))
    return path


def test_json_is_byte_identical_across_processes(tmp_path: Path) -> None:
    # Separate processes with different hash seeds: set iteration order must not leak out.
    models = tmp_path / "models"
    models.mkdir()
    for p in (TEXTBOOK, BOTTLENECK, ROOT / "sample_models" / "inception_block.onnx"):
        (models / p.name).write_bytes(p.read_bytes())
    _control_flow_model(models / "control_flow.onnx")
    first = run_process(str(models), "-f", "json", env={"PYTHONHASHSEED": "1"})
    second = run_process(str(models), "-f", "json", env={"PYTHONHASHSEED": "2"})
    assert first.returncode == second.returncode
    assert first.stdout == second.stdout
    reports = json.loads(first.stdout)["reports"]
    assert len(reports) == 4
    (flow,) = [r for r in reports if r["model"]["path"].endswith("control_flow.onnx")]
    graphs = {
        row["name"]: (row["graph"], row["executions"], row["counted"]) for row in flow["layers"]
    }
    assert graphs == {
        "block_conv": ("function:custom.Block@call", 1, True),
        "then_conv": ("main/repeat.body/gate.then_branch", 3, True),
        "else_conv": ("main/repeat.body/gate.else_branch", 3, False),
    }
    # 3x3 3->3 on 8x8 (pad 1): 3*64*27 = 5,184; the Loop runs the costlier branch 3 times
    assert flow["totals"]["macs"] == 5_184 + 3 * 5_184
    assert flow["totals"]["params"] == 81  # W3 via Identity, the function and the branch: once


def test_output_file_is_written_whole_and_the_model_untouched(tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    model.write_bytes(TEXTBOOK.read_bytes())
    before = hashlib.sha256(model.read_bytes()).hexdigest()
    mtime = model.stat().st_mtime_ns
    out = tmp_path / "report.json"
    out.write_text("stale")
    code, stdout, _ = run(str(model), "-f", "json", "-o", str(out), "--fail-on", "never")
    assert code == 0
    assert stdout == ""
    doc = json.loads(out.read_text())
    assert doc["reports"][0]["totals"]["macs"] == 112_896_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "report.json"]
    assert hashlib.sha256(model.read_bytes()).hexdigest() == before
    assert model.stat().st_mtime_ns == mtime


@pytest.mark.parametrize(
    "command",
    [
        ["scan", "m.onnx", "-f", "json", "-o", "m.onnx"],
        ["scan", "m.onnx", "--report", "sarif=./m.onnx"],
        ["baseline", "create", "m.onnx", "-o", "m.onnx"],
        ["diff", "other.onnx", "m.onnx", "-o", "m.onnx"],
    ],
)
def test_an_output_naming_an_input_model_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    model = tmp_path / "m.onnx"
    model.write_bytes(TEXTBOOK.read_bytes())
    (tmp_path / "other.onnx").write_bytes(BOTTLENECK.read_bytes())
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 2, result.output
    one_error_line(result.stderr, "m.onnx", "refusing to overwrite")
    assert model.read_bytes() == TEXTBOOK.read_bytes()


def test_output_file_keeps_its_old_content_when_the_write_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "report.json"
    out.write_text("previous report")

    def broken_fsync(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    code, _, err = run(str(TEXTBOOK), "-f", "json", "-o", str(out))
    assert code == 2
    assert out.read_text() == "previous report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
    one_error_line(err, "disk full")


# -- bad input: exit 2, one line naming the file, no traceback --------------------------------
def test_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.onnx"
    proc = run_process(str(missing))
    assert proc.returncode == 2
    one_error_line(proc.stderr, str(missing), "no such file")
    assert proc.stdout == ""


def test_directory_without_models(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("no models here")
    code, _, err = run(str(tmp_path))
    assert code == 2
    one_error_line(err, str(tmp_path), "no .onnx")


@pytest.mark.parametrize(
    ("name", "make", "words"),
    [
        ("empty.onnx", lambda: b"", "empty"),
        ("half.onnx", lambda: TEXTBOOK.read_bytes()[: TEXTBOOK.stat().st_size // 2], "truncated"),
        ("image.png", lambda: b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64), "not an ONNX"),
        ("notes.txt", lambda: b"these are my notes\nnot a model\n", "not an ONNX"),
    ],
)
def test_unreadable_files(tmp_path: Path, name: str, make: object, words: str) -> None:
    path = tmp_path / name
    path.write_bytes(make())  # type: ignore[operator]
    proc = run_process(str(path))
    assert proc.returncode == 2
    one_error_line(proc.stderr, str(path), words)


def test_truncated_model_json_records_the_error(tmp_path: Path) -> None:
    path = tmp_path / "half.onnx"
    path.write_bytes(TEXTBOOK.read_bytes()[: TEXTBOOK.stat().st_size // 2])
    code, out, err = run(str(path), "-f", "json")
    assert code == 2
    (report,) = json.loads(out)["reports"]
    assert report["totals"] is None
    (error,) = report["errors"]
    assert str(path) in error
    one_error_line(err, str(path))


def test_unknown_domain_scans_the_rest(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Conv", ["x", "W"], ["a"], name="first", pads=[1, 1, 1, 1]),
        helper.make_node("Mystery", ["a"], ["b"], name="oddity", domain="com.example"),
        helper.make_node("Relu", ["a"], ["c"]),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 6, 6])
    path = save(
        tmp_path / "custom.onnx", nodes, [x], [conv_weight()], [("", 17), ("com.example", 1)]
    )
    code, out, err = run(str(path), "-f", "json")
    assert code == 2
    (report,) = json.loads(out)["reports"]
    assert report["totals"]["macs"] == 8 * 36 * 27
    (error,) = report["errors"]
    assert "oddity" in error and "com.example" in error and str(path) in error
    one_error_line(err, str(path), "oddity")


def test_unresolved_dynamic_dims_name_the_symbols_and_inputs(tmp_path: Path) -> None:
    nodes = [helper.make_node("Conv", ["images", "W"], ["y"], name="stem")]
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, "height", 64])
    path = save(tmp_path / "dynamic.onnx", nodes, [x], [conv_weight()])
    proc = run_process(str(path))
    assert proc.returncode == 2
    line = one_error_line(proc.stderr, str(path), "batch", "height", "images")
    assert "--dim" in line and "--input-shape" in line
    assert proc.stdout.strip() == "" or "112" not in proc.stdout  # no made-up number
    # and setting them makes the scan succeed with exact numbers
    code, out, _ = run(str(path), "-f", "json", "--dim", "batch=2", "--dim", "height=10")
    assert code == 0
    assert json.loads(out)["reports"][0]["totals"]["macs"] == 2 * 8 * 8 * 62 * 27


def test_shapes_that_overflow_int64(tmp_path: Path) -> None:
    nodes = [helper.make_node("Conv", ["x", "W"], ["y"], name="huge")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "h", "w"])
    path = save(tmp_path / "huge.onnx", nodes, [x], [conv_weight()])
    code, out, err = run(str(path), "--dim", "h=4000000000", "--dim", "w=4000000000")
    assert code == 2
    one_error_line(err, str(path), "overflow")
    assert "made" not in out


def test_dims_beyond_int64_are_refused(tmp_path: Path) -> None:
    nodes = [helper.make_node("Conv", ["x", "W"], ["y"], name="huge")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "h", 8])
    path = save(tmp_path / "huge.onnx", nodes, [x], [conv_weight()])
    code, _, err = run(str(path), "--dim", f"h={2**64}")
    assert code == 2
    one_error_line(err, str(path), "'x'", str(2**64), "64-bit")


@pytest.mark.parametrize("height", ["1", "0"])
def test_input_smaller_than_the_kernel_is_an_error_not_a_negative_cost(
    tmp_path: Path, height: str
) -> None:
    nodes = [helper.make_node("Conv", ["x", "W"], ["y"], name="stem")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "h", 8])
    path = save(tmp_path / "small.onnx", nodes, [x], [conv_weight()])
    code, out, err = run(str(path), "--dim", f"h={height}", "-f", "json")
    assert code == 2
    one_error_line(err, str(path), "'stem'", "too small", "3x3")
    assert json.loads(out)["reports"][0]["totals"] is None


def test_input_shape_flag_errors_name_the_file(tmp_path: Path) -> None:
    nodes = [helper.make_node("Conv", ["x", "W"], ["y"], name="stem")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "h", 8])
    path = save(tmp_path / "m.onnx", nodes, [x], [conv_weight()])
    code, _, err = run(str(path), "--input-shape", "images=1x3x8x8")
    assert code == 2
    one_error_line(err, str(path), "'images'", "x")
    code, _, err = run(str(path), "--input-shape", "x=1x3x8")
    assert code == 2
    one_error_line(err, str(path), "rank 3", "rank 4")


def test_internal_error_exits_2_with_a_report_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    import convaudit.model.analyse as facts

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(facts, "_totals", boom)
    code, _, err = run(str(TEXTBOOK))
    assert code == 2
    line = one_error_line(err, str(TEXTBOOK), "internal error", "simulated bug")
    assert "report" in line


def test_internal_error_outside_the_model_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    import convaudit.report as report

    def boom(*args: object, **kwargs: object) -> str:
        raise KeyError("renderer bug")

    monkeypatch.setattr(report, "render", boom)
    code, _, err = run(str(TEXTBOOK))
    assert code == 2
    line = one_error_line(err, "internal error", "renderer bug")
    assert "report" in line


@pytest.mark.parametrize(("shape", "flag"), [([1, 3, None, 8], "x=1x3x<?>x8"), (None, "x=<AxBxC>")])
def test_undeclared_input_dims_ask_for_the_input_shape(
    tmp_path: Path, shape: list[int | None] | None, flag: str
) -> None:
    nodes = [helper.make_node("Conv", ["x", "W"], ["y"], name="stem")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
    path = save(tmp_path / "anon.onnx", nodes, [x], [conv_weight()])
    code, _, err = run(str(path))
    assert code == 2
    one_error_line(err, str(path), "--input-shape", flag)
    code, out, _ = run(str(path), "--input-shape", "x=1x3x8x8", "-f", "json")
    assert code == 0
    assert json.loads(out)["reports"][0]["totals"]["macs"] == 8 * 36 * 27


def _looped(**attrs: object) -> list[onnx.NodeProto]:
    return [helper.make_node("Loop", ["", ""], ["y"], name="bad", **attrs)]


INVALID = {
    # name: (nodes, input shape, weight shape, words in the message)
    "short_strides": (
        [helper.make_node("Conv", ["x", "W"], ["y"], name="bad", strides=[2])],
        [1, 3, 8, 8],
        (8, 3, 3, 3),
        "strides [2]",
    ),
    "half_pads": (
        [helper.make_node("Conv", ["x", "W"], ["y"], name="bad", pads=[1, 1])],
        [1, 3, 8, 8],
        (8, 3, 3, 3),
        "pads [1, 1]",
    ),
    "group_zero": (
        [helper.make_node("Conv", ["x", "W"], ["y"], name="bad", group=0)],
        [1, 3, 8, 8],
        (8, 3, 3, 3),
        "group 0",
    ),
    "channels_mismatch": (
        [helper.make_node("Conv", ["x", "W"], ["y"], name="bad", group=2)],
        [1, 3, 8, 8],
        (8, 3, 3, 3),
        "expects 6 input channels",
    ),
    "kernel_mismatch": (
        [helper.make_node("Conv", ["x", "W"], ["y"], name="bad", kernel_shape=[5, 5])],
        [1, 3, 8, 8],
        (8, 3, 3, 3),
        "kernel_shape [5, 5]",
    ),
    "stride_zero": (
        [helper.make_node("Conv", ["x", "W"], ["y"], name="bad", strides=[0, 1])],
        [1, 3, 8, 8],
        (8, 3, 3, 3),
        "at least 1",
    ),
    "auto_pad_typo": (
        [helper.make_node("Conv", ["x", "W"], ["y"], name="bad", auto_pad="SAME")],
        [1, 3, 8, 8],
        (8, 3, 3, 3),
        "'SAME'",
    ),
    "transpose_group_zero": (
        [helper.make_node("ConvTranspose", ["x", "W"], ["y"], name="bad", group=0)],
        [1, 8, 8, 8],
        (8, 3, 3, 3),
        "group 0",
    ),
    "loop_without_body": (_looped(), [1, 3, 8, 8], (8, 3, 3, 3), "no body"),
    "scan_axes_mismatch": (
        [
            helper.make_node(
                "Scan",
                ["x"],
                ["y"],
                name="bad",
                num_scan_inputs=1,
                scan_input_axes=[0, 1],
                body=helper.make_graph(
                    [helper.make_node("Identity", ["t"], ["u"])],
                    "body",
                    [helper.make_tensor_value_info("t", TensorProto.FLOAT, None)],
                    [helper.make_tensor_value_info("u", TensorProto.FLOAT, None)],
                ),
            )
        ],
        [4, 3],
        (8, 3, 3, 3),
        "scan_input_axes [0, 1]",
    ),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_models_are_input_errors_not_crashes(tmp_path: Path, case: str) -> None:
    nodes, shape, w_shape, words = INVALID[case]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
    w = numpy_helper.from_array(np.ones(w_shape, np.float32), "W")
    path = save(tmp_path / f"{case}.onnx", nodes, [x], [w])
    code, _, err = run(str(path))
    assert code == 2
    line = one_error_line(err, str(path), "'bad'", words, "the model is invalid")
    assert "internal error" not in line


def test_help_imports_no_heavy_module() -> None:
    # `convaudit --help` must stay < 0.3 s (timed in benchmarks/): onnx, onnxruntime, numpy,
    # networkx and yaml load only in the commands that use them.
    code = (
        "import sys\n"
        "sys.argv = ['convaudit', '--help']\n"
        "from convaudit.cli import app\n"
        "try:\n    app()\nexcept SystemExit:\n    pass\n"
        "heavy = ('onnx', 'onnxruntime', 'numpy', 'networkx', 'yaml', 'google.protobuf')\n"
        "print(sorted(m for m in heavy if m in sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert "Usage" in done.stdout
    assert done.stderr.strip() == "[]"
