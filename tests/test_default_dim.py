"""One flag for every symbolic dim (--default-dim N, --dim '*=N', default-dim in the config),
a note saying what it set, and --dim symbols the model lacks as errors with the nearest name."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from convaudit.api import scan
from convaudit.cli import app
from convaudit.config import Config
from convaudit.errors import ConfigError

TEXTBOOK = Path(__file__).resolve().parents[1] / "sample_models" / "textbook_5x5.onnx"


def _model(path: Path, shape: list[int | str | None]) -> Path:
    """A 3x3 conv 3->8, no pads, on an input of ``shape`` (symbols as named)."""
    w = numpy_helper.from_array(np.ones((8, 3, 3, 3), np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["images", "W"], ["y"], name="stem")],
        "g",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[w],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _macs(batch: int, height: int, width: int = 64) -> int:
    return batch * 8 * (height - 2) * (width - 2) * 3 * 9  # N·Cout·Ho·Wo·Cin·K²


@pytest.fixture
def dynamic(tmp_path: Path) -> Path:
    return _model(tmp_path / "dynamic.onnx", ["batch", 3, "height", 64])


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["scan", *args])
    return result.exit_code, result.stdout, result.stderr


def test_without_the_flag_behaviour_stays(dynamic: Path) -> None:
    code, _, err = run(str(dynamic))
    assert code == 2 and "unresolved dims batch, height" in err


@pytest.mark.parametrize("flag", [["--default-dim", "4"], ["--dim", "*=4"]])
def test_every_remaining_symbol_gets_the_default_and_the_report_says_so(
    dynamic: Path, flag: list[str]
) -> None:
    code, out, err = run(str(dynamic), *flag, "-f", "json", "--fail-on", "never")
    assert code == 0, err
    (report,) = json.loads(out)["reports"]
    assert report["totals"]["macs"] == _macs(4, 4) == 107_136
    assert report["model"]["inputs"]["images"] == [4, 3, 4, 64]
    notes = [n for n in report["notes"] if n["kind"] == "default-dim"]
    assert [n["message"] for n in notes] == [
        "default dim 4 set batch, height (figures hold for that size)"
    ]
    code, out, _ = run(str(dynamic), *flag, "--fail-on", "never")
    assert "note: default dim 4 set batch, height (figures hold for that size)" in out


def test_named_dims_win_over_the_default(dynamic: Path) -> None:
    code, out, _ = run(str(dynamic), "--dim", "height=10", "--default-dim", "2", "-f", "json")
    assert code == 0
    (report,) = json.loads(out)["reports"]
    assert report["totals"]["macs"] == _macs(2, 10)
    assert [n["message"] for n in report["notes"]] == [
        "default dim 2 set batch (figures hold for that size)"
    ]


def test_a_dim_with_no_name_is_defaulted_too(tmp_path: Path) -> None:
    path = _model(tmp_path / "anon.onnx", [None, 3, 10, 64])
    code, out, err = run(str(path), "--default-dim", "3", "-f", "json")
    assert code == 0, err
    (report,) = json.loads(out)["reports"]
    assert report["totals"]["macs"] == _macs(3, 10)
    assert report["notes"][0]["message"] == (
        "default dim 3 set input 'images' dim 0 (figures hold for that size)"
    )


def test_config_file_and_python_api(dynamic: Path) -> None:
    (dynamic.parent / "convaudit.toml").write_text("default-dim = 2\n")
    (report,) = scan(dynamic, Config(default_dim=2)).reports
    assert report.facts is not None and report.facts.totals.macs == _macs(2, 2)
    code, out, _ = run(str(dynamic), "-f", "json")
    assert code == 0 and json.loads(out)["reports"][0]["totals"]["macs"] == _macs(2, 2)
    (dynamic.parent / "convaudit.toml").write_text('[dims]\n"*" = 5\nheight = 12\n')
    code, out, _ = run(str(dynamic), "-f", "json")
    assert code == 0 and json.loads(out)["reports"][0]["totals"]["macs"] == _macs(5, 12)
    assert Config(dims={"*": 5}).default_dim == 5
    with pytest.raises(ConfigError, match="default_dim 0: expected a positive integer"):
        Config(default_dim=0)
    code, _, err = run(str(dynamic), "--default-dim", "0")
    assert code == 2 and "--default-dim 0: expected a positive integer" in err


def test_an_unknown_symbol_is_an_error_with_a_case_hint(dynamic: Path) -> None:
    code, _, err = run(str(dynamic), "--dim", "Batch=1", "--dim", "height=8")
    assert code == 2
    (line,) = err.strip().splitlines()
    assert line == (
        f"convaudit: error: {dynamic}: --dim Batch: the model has no symbolic dim 'Batch' "
        "(did you mean 'batch'?); its symbols are batch, height"
    )
    code, _, err = run(str(dynamic), "--dim", "hieght=8", "--default-dim", "1")
    assert code == 2 and "(did you mean 'height'?)" in err


def test_an_unknown_symbol_from_the_file_names_the_file_and_key(dynamic: Path) -> None:
    config = dynamic.parent / "convaudit.toml"
    config.write_text("[dims]\nBatch = 1\nheight = 8\n")
    code, _, err = run(str(dynamic))
    assert code == 2
    (line,) = err.strip().splitlines()
    assert line == (
        f"convaudit: error: {config}: dims.Batch: {dynamic} has no symbolic dim 'Batch' "
        "(did you mean 'batch'?); its symbols are batch, height"
    )


def test_a_static_model_takes_fleet_wide_dims(tmp_path: Path) -> None:
    """A model with no symbols has nothing to mistype: a fleet's batch = 1 passes over it."""
    code, _, err = run(
        str(TEXTBOOK), "--dim", "batch=1", "--default-dim", "1", "--fail-on", "never"
    )
    assert code == 0, err
    (report,) = scan(TEXTBOOK, Config(default_dim=1)).reports
    assert report.facts is not None and report.facts.problems == ()
