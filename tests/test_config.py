"""Configuration: found upward from the model or cwd, strictly validated, flags on top."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from convaudit.cli import app
from convaudit.config import Config, find_config, load_config, parse_percent, render, resolve
from convaudit.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
TEXTBOOK = ROOT / "sample_models" / "textbook_5x5.onnx"

FULL = """\
[tool.convaudit]
select = ["CA1"]
ignore = ["CA105"]
fail-on = "error"
baseline = "ci/baseline.json"
rule-dirs = ["team-rules"]
max-macs = "4.1G"
max-params = 25600000
max-increase = "2%"

[tool.convaudit.severity]
CA101 = "error"

[tool.convaudit.params.CA101]
min_in_channels = 256
width_policy = "saving"

[tool.convaudit.input-shapes]
images = "1x3x224x224"

[tool.convaudit.input-shapes."detectors/*.onnx"]
images = "1x3x640x640"

[tool.convaudit.dims]
batch = 1

[[tool.convaudit.suppressions]]
rule = "CA101"
model = "legacy/*.onnx"
node = "stem*"
reason = "frozen backbone, retrained next quarter"
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_every_key_of_pyproject(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path / "pyproject.toml", FULL))
    assert cfg.select == ("CA1",) and cfg.ignore == ("CA105",)
    assert cfg.fail_on == "error"
    assert cfg.baseline == str(tmp_path / "ci" / "baseline.json")
    assert cfg.rule_dirs == (str(tmp_path / "team-rules"),)
    assert (cfg.max_macs, cfg.max_params, cfg.max_increase) == (4_100_000_000, 25_600_000, 0.02)
    assert cfg.severity == {"CA101": "error"}
    assert cfg.params == {"CA101": {"min_in_channels": 256, "width_policy": "saving"}}
    (s,) = cfg.suppressions
    assert (s.rule, s.model, s.node) == ("CA101", "legacy/*.onnx", "stem*")
    assert s.reason.startswith("frozen backbone")
    assert cfg.shapes_for(str(tmp_path / "classifier.onnx")) == (
        {"images": (1, 3, 224, 224)},
        {"batch": 1},
    )
    assert cfg.shapes_for(str(tmp_path / "detectors" / "yolo.onnx"))[0] == {
        "images": (1, 3, 640, 640)
    }


def test_flags_override_file_shapes_per_model(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", FULL)
    cfg = resolve([str(tmp_path)], None, input_shapes={"images": (2, 3, 32, 32)}, dims={"batch": 4})
    assert cfg.shapes_for(str(tmp_path / "detectors" / "yolo.onnx")) == (
        {"images": (2, 3, 32, 32)},
        {"batch": 4},
    )


@pytest.mark.parametrize(
    ("table", "pattern"),
    [
        (
            'selct = ["CA1"]',
            r"pyproject.toml: \[tool.convaudit\]: unknown key 'selct' \(did you mean 'select'\?\)",
        ),
        ('fail_on = "error"', r"unknown key 'fail_on' \(did you mean 'fail-on'\?\)"),
        (
            'fail-on = "warn"',
            r"fail-on 'warn' must be one of .* \(did you mean 'warning'\?\)",
        ),
        ('select = "CA 1"', r"select: 'CA 1' is not a rule code or prefix"),
        ("select = [1]", r"select must be a list of rule codes or prefixes"),
        (
            "severity = {CA101 = 'fatal'}",
            r"severity.CA101 'fatal' must be one of error, warning, info",
        ),
        ("params = {CA101 = 3}", r"params.CA101 must be a table of param = value"),
        ("max-macs = 'lots'", r"max-macs: not a quantity"),
        ("max-increase = 2", r'max-increase 2: expected a percentage like "2%"'),
        ("input-shapes = {images = '1xAx3'}", r"input-shapes.images '1xAx3': expected a shape"),
        ("input-shapes = {images = '1x=3x8x8'}", r"input-shapes.images '1x=3x8x8': expected a"),
        ("dims = {batch = -1}", r"dims.batch -1: expected a non-negative integer"),
        ("rule-dirs = 'rules'", r"rule-dirs must be a list of paths"),
        ("suppressions = [{rule = 'CA101'}]", r"suppressions\[0\]: 'reason' is required"),
        (
            "suppressions = [{rule = 'CA101', reason = ' '}]",
            r"suppressions\[0\]: 'reason' is required",
        ),
        (
            "suppressions = [{rule = 'CA101', reason = 'x', nodes = 'a'}]",
            r"suppressions\[0\]: unknown key 'nodes' \(did you mean 'node'\?\)",
        ),
    ],
)
def test_invalid_pyproject(tmp_path: Path, table: str, pattern: str) -> None:
    path = write(tmp_path / "pyproject.toml", f"[tool.convaudit]\n{table}\n")
    with pytest.raises(ConfigError, match=pattern):
        load_config(path)


def test_invalid_toml_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "convaudit.toml", 'select = ["CA1"]\nfail-on = = 1\n')
    with pytest.raises(ConfigError, match=r"convaudit.toml: invalid TOML: .*line 2"):
        load_config(path)


def test_config_that_is_not_utf8_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "convaudit.toml"
    path.write_bytes(b'select = ["CA1"]\n# caf\xe9\n')  # latin-1 in a comment
    with pytest.raises(ConfigError, match=r"convaudit.toml: config is not UTF-8 text"):
        load_config(path)


def test_found_upward_from_the_model_convaudit_toml_first(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", "[tool.convaudit]\nfail-on = 'info'\n")
    model = tmp_path / "a" / "b" / "m.onnx"
    model.parent.mkdir(parents=True)
    shutil.copy(TEXTBOOK, model)
    assert find_config(model) == tmp_path / "pyproject.toml"
    write(tmp_path / "a" / "convaudit.toml", "fail-on = 'error'\n")
    assert find_config(model) == tmp_path / "a" / "convaudit.toml"
    assert resolve([str(model)]).fail_on == "error"


def test_a_pyproject_without_the_table_is_skipped(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", "[tool.convaudit]\nfail-on = 'info'\n")
    write(tmp_path / "sub" / "pyproject.toml", "[project]\nname = 'x'\n")
    assert find_config(tmp_path / "sub" / "m.onnx") == tmp_path / "pyproject.toml"


def test_cwd_when_the_model_has_no_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tmp_path / "models" / "m.onnx"
    model.parent.mkdir()
    shutil.copy(TEXTBOOK, model)
    project = tmp_path / "project"
    write(project / "convaudit.toml", "ignore = ['CA105']\n")
    monkeypatch.chdir(project)
    assert find_config(model) is None
    cfg = resolve([str(model)])
    assert cfg.ignore == ("CA105",) and cfg.source == str(project / "convaudit.toml")


def test_explicit_config_and_flags_win(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", FULL)
    other = write(tmp_path / "other.toml", "fail-on = 'info'\nselect = ['CA101']\n")
    cfg = resolve([str(tmp_path)], str(other))
    assert cfg.fail_on == "info" and cfg.source == str(other)
    cfg = resolve(
        [str(tmp_path)], None, select=["CA101,CA102"], ignore=[], fail_on="never", rule_dirs=["x"]
    )
    assert cfg.select == ("CA101", "CA102") and cfg.ignore == () and cfg.fail_on == "never"
    assert cfg.rule_dirs == (str(tmp_path / "team-rules"), "x")
    with pytest.raises(ConfigError, match="--fail-on 'warn'"):
        resolve([], None, fail_on="warn")
    with pytest.raises(ConfigError, match="config file does not exist"):
        resolve([], str(tmp_path / "missing.toml"))


def test_render_reads_back_as_the_same_config(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path / "pyproject.toml", FULL))
    text = render(cfg)
    again = load_config(write(tmp_path / "shown" / "convaudit.toml", text))
    for field in (
        "select",
        "ignore",
        "fail_on",
        "baseline",
        "rule_dirs",
        "severity",
        "params",
        "suppressions",
        "max_macs",
        "max_params",
        "max_increase",
    ):
        assert getattr(again, field) == getattr(cfg, field), field
    assert again.shapes_for("detectors/x.onnx") == cfg.shapes_for("detectors/x.onnx")


def test_parse_percent() -> None:
    assert parse_percent("2%") == 0.02 and parse_percent(" 12.5 % ") == 0.125
    with pytest.raises(ConfigError):
        parse_percent("2")


def test_default_config() -> None:
    cfg = Config()
    assert cfg.fail_on == "warning" and cfg.select == () and cfg.suppressions == ()


def test_cli_config_show_and_errors(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", FULL.replace('rule-dirs = ["team-rules"]\n', ""))
    runner = CliRunner()
    shown = runner.invoke(app, ["config", "show", str(tmp_path)])
    assert shown.exit_code == 0, shown.output
    assert f"source: {tmp_path / 'pyproject.toml'}" in shown.stdout
    assert 'fail-on = "error"' in shown.stdout and "[params.CA101]" in shown.stdout
    bad = write(tmp_path / "bad" / "convaudit.toml", "selct = ['CA1']\n")
    out = runner.invoke(app, ["config", "show", "--config", str(bad)])
    assert out.exit_code == 2
    assert "unknown key 'selct' (did you mean 'select'?)" in out.stderr
    unknown_rule = write(tmp_path / "u" / "convaudit.toml", "[severity]\nCA199 = 'error'\n")
    out = runner.invoke(app, ["scan", str(TEXTBOOK), "--config", str(unknown_rule)])
    assert out.exit_code == 2 and "unknown rule 'CA199'" in out.stderr
