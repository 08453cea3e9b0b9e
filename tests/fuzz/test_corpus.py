"""Replay the minimised reproducers of issue 10 through the CLI: each is refused with exit 2 and
one short stderr line naming the file (or, for the fix cases that are not refusals, gives the
exit code the contract names). Files live in corpus/; what git cannot hold is built here."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from mutate import conv_chain
from onnx import helper, numpy_helper
from typer.testing import CliRunner

from convaudit.cli import app

CORPUS = Path(__file__).resolve().parent / "corpus"
SAMPLES = Path(__file__).resolve().parents[2] / "sample_models"

# A case builds its files under tmp and returns (CLI args, text the one stderr line must name).
Case = Callable[[Path], tuple[list[str], str]]


def _model(tmp: Path) -> Path:
    path = tmp / "m.onnx"
    path.write_bytes(conv_chain().SerializeToString())
    return path


def _external(tmp: Path, **entries: str) -> Path:
    """The textbook model (a CA101 finding, so --weights reads its conv weight) with its weights
    in model/w.bin, and ``entries`` overriding the conv weight's external-data entries."""
    folder = tmp / "model"
    folder.mkdir(exist_ok=True)
    path = folder / "m.onnx"
    onnx.save_model(
        onnx.load(str(SAMPLES / "textbook_5x5.onnx")),
        str(path),
        save_as_external_data=True,
        location="w.bin",
        size_threshold=1024,
    )
    model = onnx.load(str(path), load_external_data=False)
    for t in model.graph.initializer:
        for key, value in entries.items():
            found = [e for e in t.external_data if e.key == key]
            entry = found[0] if found else t.external_data.add()
            entry.key, entry.value = key, value
    path.write_bytes(model.SerializeToString())
    return path


def _weights_link(target: str | Path) -> Case:
    def build(tmp: Path) -> tuple[list[str], str]:
        path = _external(tmp)
        os.replace(path.parent / "w.bin", tmp / "secret.bin")  # the same bytes, outside
        (path.parent / "w.bin").symlink_to(target if target != "outside" else tmp / "secret.bin")
        return ["scan", str(path), "--weights"], str(path)

    return build


def _weights_chain(tmp: Path) -> tuple[list[str], str]:
    path = _external(tmp)
    os.replace(path.parent / "w.bin", tmp / "secret.bin")
    (path.parent / "hop").symlink_to(tmp / "secret.bin")
    (path.parent / "w.bin").symlink_to("hop")
    return ["scan", str(path), "--weights"], str(path)


def _weights_folder_link(tmp: Path) -> tuple[list[str], str]:
    (tmp / "elsewhere").mkdir()
    path = _external(tmp, location="d/w.bin")
    os.replace(path.parent / "w.bin", tmp / "elsewhere" / "w.bin")
    (path.parent / "d").symlink_to(tmp / "elsewhere")
    return ["scan", str(path), "--weights"], str(path)


def _entries(**entries: str) -> Case:
    def build(tmp: Path) -> tuple[list[str], str]:
        path = _external(tmp, **entries)
        # Named: the tensor, and the model (or, for a length past its end, the data file).
        return ["scan", str(path), "--weights"], f"{tmp}/model/"

    return build


def _fifo_model(tmp: Path) -> tuple[list[str], str]:
    os.mkfifo(tmp / "m.onnx")
    return ["scan", str(tmp / "m.onnx")], str(tmp / "m.onnx")


def _fifo_weights(tmp: Path) -> tuple[list[str], str]:
    path = _external(tmp)
    (path.parent / "w.bin").unlink()
    os.mkfifo(path.parent / "w.bin")
    return ["scan", str(path), "--weights"], "w.bin"


def _baseline(target: str | None) -> Case:
    def build(tmp: Path) -> tuple[list[str], str]:
        where = tmp / "baseline.json"
        if target is None:
            os.mkfifo(where)
        else:
            where = Path(target)
        return ["scan", str(_model(tmp)), "--baseline", str(where)], str(where)

    return build


def _output(target: str | None) -> Case:
    def build(tmp: Path) -> tuple[list[str], str]:
        where = tmp / "out.json"
        if target is None:
            os.mkfifo(where)
        else:
            where = Path(target)
        return ["scan", str(_model(tmp)), "-f", "json", "-o", str(where)], str(where)

    return build


def _corpus_file(name: str, flag: str) -> Case:
    def build(tmp: Path) -> tuple[list[str], str]:
        copy = tmp / name
        shutil.copyfile(CORPUS / name, copy)
        if flag == "--rules-dir":
            return ["scan", str(_model(tmp)), flag, str(copy)], name
        return ["scan", str(_model(tmp)), flag, str(copy)], name

    return build


def _fix_inputs(name: str) -> Case:
    def build(tmp: Path) -> tuple[list[str], str]:
        shutil.copyfile(CORPUS / name, tmp / name)
        out = tmp / "o.onnx"
        model = SAMPLES / "textbook_5x5.onnx"
        return ["fix", str(model), "-o", str(out), "--inputs", str(tmp / name)], name

    return build


def _fix_huge_shape(tmp: Path) -> tuple[list[str], str]:
    model = SAMPLES / "textbook_5x5.onnx"
    args = ["fix", str(model), "-o", str(tmp / "o.onnx"), "--node", "conv5x5", "--width", "16"]
    return [*args, "--input-shape", "input=64x480x1400x1400"], "CONVAUDIT_MEMORY_BUDGET"


def _long_rule_id(tmp: Path) -> tuple[list[str], str]:
    rules = tmp / "rules"
    rules.mkdir()
    (rules / "big.yaml").write_text(f"rules:\n  - id: {'A' * 10_000_000}\n", encoding="utf-8")
    return ["scan", str(_model(tmp)), "--rules-dir", str(rules)], "big.yaml"


def _long_toml_key(tmp: Path) -> tuple[list[str], str]:
    (tmp / "convaudit.toml").write_text(f"{'k' * 10_000_000} = 1\n", encoding="utf-8")
    return ["scan", str(_model(tmp)), "--config", str(tmp / "convaudit.toml")], "convaudit.toml"


def _misaligned(command: str) -> Case:
    """External data whose float32 weights hold NaNs, as a campaign's offset 255 bytes off gave
    (LinAlgError in scan --weights; RuntimeWarnings and a message without the file in fix)."""

    def build(tmp: Path) -> tuple[list[str], str]:
        path = _external(tmp)
        data = path.parent / "w.bin"
        size = data.stat().st_size
        data.write_bytes(b"\xff" * size)  # 0xffffffff is a NaN wherever a float starts
        if command == "scan":
            return ["scan", str(path), "--weights"], f"{path}: tensor 'conv5x5.weight' holds NaN"
        args = ["fix", str(path), "-o", str(tmp / "o.onnx"), "--node", "conv5x5", "--width", "16"]
        return args, f"{path}: tensor 'conv5x5.weight' holds NaN"

    return build


def _jobs_zero(tmp: Path) -> tuple[list[str], str]:
    return ["scan", str(_model(tmp)), "--jobs", "0"], "--jobs"


REFUSED: dict[str, tuple[int, Case]] = {
    # class 1: external data read through symlinks
    "weights-symlink-outside": (1, _weights_link("outside")),
    "weights-symlink-relative": (1, _weights_link("../secret.bin")),
    "weights-symlink-chain": (1, _weights_chain),
    "weights-symlinked-folder": (1, _weights_folder_link),
    "weights-symlink-dev-zero": (1, _weights_link("/dev/zero")),
    "weights-symlink-proc-environ": (1, _weights_link("/proc/self/environ")),
    # class 2: FIFOs and devices
    "model-fifo": (2, _fifo_model),
    "weights-fifo": (2, _fifo_weights),
    "baseline-fifo": (2, _baseline(None)),
    "baseline-dev-zero": (2, _baseline("/dev/zero")),
    "output-dev-null": (2, _output("/dev/null")),
    "output-fifo": (2, _output(None)),
    # class 3: sizes taken on trust
    "length-2^62": (3, _entries(length=str(2**62))),
    "length-2^64": (3, _entries(length=str(2**64))),
    "length-minus-1": (3, _entries(length="-1")),
    "offset-abc": (3, _entries(offset="abc")),
    "offset-1e3": (3, _entries(offset="1e3")),
    "location-nul": (3, _entries(location="w.bin\x00x")),
    "npz-header-256-PiB": (3, _fix_inputs("calib_header_256_PiB.npz")),
    "npy-as-inputs": (3, _fix_inputs("calib_not_an_npz.npy")),
    "fix-input-shape-224-GiB": (3, _fix_huge_shape),
    "weights-nan-scan": (3, _misaligned("scan")),
    "weights-nan-fix": (3, _misaligned("fix")),
    # class 7: rules, config and baseline parsing
    "rules-alias-bomb": (7, _corpus_file("rules_alias_bomb_in_params.yaml", "--rules-dir")),
    "rules-deep": (7, _corpus_file("rules_deep_nesting.yaml", "--rules-dir")),
    "config-deep": (7, _corpus_file("config_deep_nesting.toml", "--config")),
    "config-max-macs-digits": (7, _corpus_file("config_max_macs_5000_digits.toml", "--config")),
    "config-int-digits": (7, _corpus_file("config_int_5000_digits.toml", "--config")),
    "baseline-deep": (7, _corpus_file("baseline_deep_nesting.json", "--baseline")),
    "baseline-digits": (7, _corpus_file("baseline_5000_digit_number.json", "--baseline")),
    # class 8: the one-line contract
    "rule-id-10MB": (8, _long_rule_id),
    "toml-key-10MB": (8, _long_toml_key),
    "jobs-0": (8, _jobs_zero),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_reproducer_is_refused_in_one_line(tmp_path: Path, case: str) -> None:
    _, build = REFUSED[case]
    args, names = build(tmp_path)
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, (res.exit_code, res.stderr[:500])
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr[:2000]
    (line,) = lines
    assert line.startswith("convaudit: error: ") and "internal error" not in line
    assert len(line) < 1200, len(line)
    assert names in line, line[:500]


def test_all_zero_calibration_writes_finite_weights(tmp_path: Path) -> None:
    """Class 4: the ridge of the whitening no longer scales with a mean eigenvalue of 0."""
    np.savez(tmp_path / "zeros.npz", input=np.zeros((2, 480, 14, 14), np.float32))
    out = tmp_path / "o.onnx"
    model = SAMPLES / "textbook_5x5.onnx"
    args = ["fix", str(model), "-o", str(out), "--node", "conv5x5", "--width", "16"]
    res = CliRunner().invoke(app, [*args, "--inputs", str(tmp_path / "zeros.npz")])
    assert res.exit_code == 0, res.stderr
    for t in onnx.load(str(out)).graph.initializer:
        assert np.all(np.isfinite(numpy_helper.to_array(t))), t.name


def test_a_nan_error_is_exit_1_and_nothing_written(tmp_path: Path) -> None:
    """Class 4: NaN > max_error is False; a NaN error used to be written with exit 0."""
    model = conv_chain(channels=16, size=6)
    model.graph.node.append(helper.make_node("Sqrt", ["y"], ["root"]))
    model.graph.output[0].name = "root"
    src = tmp_path / "sqrt.onnx"
    src.write_bytes(model.SerializeToString())
    out = tmp_path / "o.onnx"
    args = ["fix", str(src), "-o", str(out), "--node", "conv", "--width", "8"]
    res = CliRunner().invoke(app, [*args, "--max-error", "0.5"])
    assert res.exit_code == 1 and not out.exists(), res.stderr


# Malformed graphs (class 5) found by random campaigns: the exit code and a text the report
# (stdout) or the one stderr line must hold.
MALFORMED: dict[str, tuple[int, str]] = {
    # IndexError in the Gemm cost reader: its sizes stay unknown, inference notes the conflict
    "model_gemm_rank1_operand.onnx": (0, "operand shapes (4,) and (4, 3) do not fit Gemm"),
    # TypeError folding the fill value: the value stays unknown, the conflict is noted
    "model_constant_of_shape_untyped_value.onnx": (0, "Invalid tensor data type 0"),
    # ValueError in Shape's folding: every attribute is checked against the op's schema
    "model_shape_start_is_text.onnx": (2, "attribute start 'text' is not an int"),
    # the same TypeError at opset 13, whose Shape schema has no start (opset 15 added it)
    "model_shape_start_ints_before_opset_15.onnx": (2, "attribute start [1] is not an int"),
    # a byte-mutated op type with a line break in it: the error came out as two stderr lines
    "model_op_type_with_a_line_break.onnx": (2, "op Conv*\x11 \x04pads is unknown"),
    # the same unknown-domain problem recorded twice came out as two identical stderr lines
    "model_unknown_domain_reported_twice.onnx": (2, "op domain 'fuzz.local' is unknown"),
    # RecursionError in the walker
    "model_function_calls_itself.onnx": (2, "function local.F calls itself (local.F -> local.F)"),
}


def test_every_corpus_model_is_replayed() -> None:
    assert sorted(p.name for p in CORPUS.glob("*.onnx")) == sorted(MALFORMED)


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_graph_reproducer(tmp_path: Path, name: str) -> None:
    code, text = MALFORMED[name]
    path = tmp_path / name
    shutil.copyfile(CORPUS / name, path)
    res = CliRunner().invoke(app, ["scan", str(path), "--weights", "-f", "json"])
    assert res.exit_code == code, (res.exit_code, res.stderr[:500])
    assert "internal error" not in res.stdout + res.stderr
    if code == 2:
        (line,) = res.stderr.splitlines()
        assert line.startswith(f"convaudit: error: {path}: ") and text in line, line
    else:
        assert text in res.stdout


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(
            lambda: helper.make_node("Conv", ["x", "w1", "absent"], ["y"], name="c"),
            id="bias-names-a-missing-tensor",
        ),
    ],
)
def test_malformed_graphs_scan_without_internal_error(
    tmp_path: Path, build: Callable[[], onnx.NodeProto]
) -> None:
    """Class 5 reproducers built in code (the ones found by campaigns are files: MALFORMED)."""
    model = conv_chain()
    del model.graph.node[:]
    model.graph.node.append(build())
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    res = CliRunner().invoke(app, ["scan", str(path), "--weights"])
    assert res.exit_code in (0, 1, 2) and "internal error" not in res.stderr
