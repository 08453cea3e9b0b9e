"""Configuration: found upward from the model or cwd, strictly validated, flags on top."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from convaudit.cli import app
from convaudit.config import (
    Config,
    ModelShapes,
    Suppression,
    find_config,
    load_config,
    parse_percent,
    render,
    resolve,
)
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
        ("max-increase = -2", r'max-increase -2: expected a percentage like "2%"'),
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
    assert parse_percent("2") == 0.02 and parse_percent(2) == 0.02  # a bare number is a percentage
    with pytest.raises(ConfigError):
        parse_percent("2x")


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


# -- issue 11 item 4: Config(...) is validated like the flags and the file ---------------------


def test_config_constructor_normalises_what_the_cli_accepts() -> None:
    cfg = Config(
        max_macs="100M",
        max_params=25_600_000,
        max_increase="2%",
        select="CA1",
        input_shapes={"input": "1x480x14x14"},
    )
    assert (cfg.max_macs, cfg.max_params, cfg.max_increase) == (100_000_000, 25_600_000, 0.02)
    assert cfg.select == ("CA1",) and cfg.input_shapes == {"input": (1, 480, 14, 14)}
    assert Config(max_increase=0.02).max_increase == 0.02  # the Python field is a fraction


def test_config_constructor_budget_is_a_finding_not_an_internal_error() -> None:
    import convaudit

    result = convaudit.scan(str(TEXTBOOK), Config(max_macs="100M"))
    (report,) = result.reports
    assert report.errors == ()
    (finding,) = [f for f in report.findings if f.rule == "CA900"]  # 112,896,000 > 100,000,000
    assert finding.facts["budget"] == 100_000_000


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        (
            {"fail_on": "warnings"},
            r"fail_on 'warnings' must be one of .* \(did you mean 'warning'\?\)",
        ),
        ({"severity": {"CA101": "fatal"}}, r"severity.CA101 'fatal' must be one of error, warning"),
        ({"severity": {"CA 1": "error"}}, r"severity: 'CA 1' is not a rule id"),
        ({"params": {"CA101": 3}}, r"params.CA101 must be a table of param = value"),
        ({"select": ["CA 1"]}, r"select: 'CA 1' is not a rule code or prefix"),
        ({"ignore": [1]}, r"ignore must be a list of rule codes or prefixes"),
        ({"max_macs": "lots"}, r"max_macs='lots': not a quantity"),
        ({"max_macs": 0}, r"max_macs=0: must be positive"),
        ({"max_params": 2.5}, r"max_params=2.5: expected a count"),
        ({"max_increase": "2x"}, r"max_increase '2x': expected a percentage like \"2%\""),
        ({"max_increase": -0.1}, r"max_increase -0.1: expected a fraction"),
        ({"input_shapes": {"x": "1xAx3"}}, r"input_shapes.x '1xAx3': expected a shape"),
        ({"dims": {"batch": -1}}, r"dims.batch -1: expected a non-negative integer"),
        ({"rule_dirs": [3]}, r"rule_dirs must be a list of paths"),
        ({"suppressions": ({"rule": "CA101"},)}, r"suppressions must be a tuple of Suppression"),
    ],
)
def test_config_constructor_refuses_what_the_cli_refuses(
    kwargs: dict[str, Any], pattern: str
) -> None:
    with pytest.raises(ConfigError, match=pattern):
        Config(**kwargs)


def test_suppression_and_model_shapes_are_validated_too() -> None:
    with pytest.raises(ConfigError, match=r"'reason' is required"):
        Suppression(rule="CA101", reason=" ")
    with pytest.raises(ConfigError, match=r"Suppression.rule: 'ca101' is not a rule code"):
        Suppression(rule="ca101", reason="x")
    with pytest.raises(ConfigError, match=r"expected a non-negative integer"):
        ModelShapes(pattern="*.onnx", dims={"batch": "one"})


@pytest.mark.parametrize(
    ("file_value", "flag_value", "pattern", "value"),
    [
        ("0", "0", "must be positive", None),  # a zero budget fails every model: a slip
        ('"2.5M"', "2.5M", None, 2_500_000),
        ("2500000", "2500000", None, 2_500_000),
    ],
)
def test_max_macs_flag_and_file_agree(
    tmp_path: Path, file_value: str, flag_value: str, pattern: str | None, value: int | None
) -> None:
    path = write(tmp_path / "convaudit.toml", f"max-macs = {file_value}\n")
    if pattern is None:
        assert load_config(path).max_macs == value
        assert resolve([], str(path), max_macs=flag_value).max_macs == value
        return
    with pytest.raises(ConfigError, match=rf"convaudit.toml: max-macs: {pattern}"):
        load_config(path)
    empty = write(tmp_path / "empty" / "convaudit.toml", "")
    with pytest.raises(ConfigError, match=rf"--max-macs '{flag_value}': {pattern}"):
        resolve([], str(empty), max_macs=flag_value)


@pytest.mark.parametrize(
    ("text", "value"), [("2%", 0.02), ("0.5%", 0.005), ("2", 0.02), ("2 x", None)]
)
def test_max_increase_flag_and_file_agree(tmp_path: Path, text: str, value: float | None) -> None:
    path = write(tmp_path / "convaudit.toml", f'max-increase = "{text}"\n')
    empty = write(tmp_path / "empty" / "convaudit.toml", "")
    if value is None:  # not a percentage: refused by both, each naming where it came from
        with pytest.raises(ConfigError, match=r"max-increase '2 x': expected a percentage"):
            load_config(path)
        with pytest.raises(ConfigError, match=r"--max-increase '2 x': expected a percentage"):
            resolve([], str(empty), max_increase=text)
        return
    assert load_config(path).max_increase == value
    assert resolve([], str(empty), max_increase=text).max_increase == value


def test_cli_zero_budget_exits_2() -> None:
    out = CliRunner().invoke(app, ["scan", str(TEXTBOOK), "--max-macs", "0"])
    assert out.exit_code == 2
    assert out.stderr.startswith("convaudit: error: --max-macs '0': must be positive")


# -- issue 11 item 7: globs as .gitignore, entries that match nothing, keys in messages ----------


@pytest.mark.parametrize(
    ("rel", "pattern", "hit"),
    [
        ("models/legacy/a.onnx", "legacy/*.onnx", False),  # a slash anchors at the config folder
        ("legacy/a.onnx", "legacy/*.onnx", True),
        ("legacy/a.onnx", "/legacy/*.onnx", True),  # a leading slash changes nothing
        ("models/legacy/a.onnx", "**/legacy/*.onnx", True),  # ** spans folders
        ("legacy/a.onnx", "**/legacy/*.onnx", True),  # ... including none
        ("legacy/sub/a.onnx", "legacy/*.onnx", False),  # * stays in one segment
        ("legacy/sub/a.onnx", "legacy/**", True),
        ("models/legacy/a.onnx", "*.onnx", True),  # no slash: a name at any depth
        ("models/legacy/a.onnx", "legacy", True),  # ... a folder's name too
        ("models/legacy/a.onnx", "legacy/", True),
        ("models/legacy_v2/a.onnx", "legacy", False),
        ("models/yolo_v8.onnx", "yolo[_-]*.onnx", True),
        ("models/ab.onnx", "?.onnx", False),
        ("models/a.onnx", "?.onnx", True),
        ("models/a.onnx", "*", True),
    ],
)
def test_model_globs_match_like_gitignore(
    tmp_path: Path, rel: str, pattern: str, hit: bool
) -> None:
    cfg = Config(root=str(tmp_path))
    assert cfg.path_matches(str(tmp_path / rel), pattern) is hit


def test_globs_outside_the_config_folder_start_at_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = Config(root=str(tmp_path / "project"))
    assert cfg.path_matches("legacy/a.onnx", "legacy/*.onnx")
    assert not cfg.path_matches("other/legacy/a.onnx", "legacy/*.onnx")


def test_readme_suppression_example_applies_below_the_config_folder(tmp_path: Path) -> None:
    model = tmp_path / "models" / "legacy" / "m.onnx"
    model.parent.mkdir(parents=True)
    shutil.copy(TEXTBOOK, model)
    write(
        tmp_path / "convaudit.toml",
        "[[suppressions]]\nrule = 'CA101'\nmodel = '**/legacy/*.onnx'\nreason = 'frozen'\n",
    )
    import convaudit

    result = convaudit.scan(str(model), resolve([str(model)]))
    (report,) = result.reports
    assert [f.rule for f in report.suppressed] == ["CA101"]
    assert all(f.rule != "CA101" for f in report.findings)


SHAPES_FOR_MISSING = """\
[input-shapes."detectors/*.onnx"]
images = "1x3x640x640"

[[suppressions]]
rule = "CA101"
model = "legacy/*.onnx"
reason = "frozen"
"""


def test_config_entries_that_match_no_model_warn(tmp_path: Path) -> None:
    model = tmp_path / "models" / "m.onnx"
    model.parent.mkdir()
    shutil.copy(TEXTBOOK, model)
    cfg_path = write(tmp_path / "convaudit.toml", SHAPES_FOR_MISSING)
    import convaudit
    from convaudit.errors import ConfigWarning

    with pytest.warns(ConfigWarning) as caught:
        convaudit.scan(str(model), load_config(cfg_path))
    messages = [str(w.message) for w in caught]
    assert messages[0].startswith(
        f'{cfg_path}: input-shapes."detectors/*.onnx" matches none of the scanned models'
    )
    assert messages[1].startswith(
        f"{cfg_path}: suppressions[0].model 'legacy/*.onnx' matches none of the scanned models"
    )
    assert len(messages) == 2
    out = CliRunner().invoke(app, ["scan", str(model), "--config", str(cfg_path)])
    lines = [line for line in out.stderr.splitlines() if line.startswith("convaudit: warning: ")]
    assert len(lines) == 2 and 'input-shapes."detectors/*.onnx"' in lines[0]


def test_matched_entries_do_not_warn(tmp_path: Path) -> None:
    import warnings

    model = tmp_path / "detectors" / "m.onnx"
    model.parent.mkdir()
    shutil.copy(TEXTBOOK, model)
    cfg_path = write(
        tmp_path / "convaudit.toml", '[input-shapes."detectors/*.onnx"]\ninput = "1x480x14x14"\n'
    )
    import convaudit

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = convaudit.scan(str(model), load_config(cfg_path))
    assert result.reports[0].errors == ()


def test_input_shape_for_a_missing_input_names_the_file_and_key(tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    shutil.copy(TEXTBOOK, model)
    cfg_path = write(tmp_path / "convaudit.toml", '[input-shapes]\nimages = "1x3x8x8"\n')
    out = CliRunner().invoke(app, ["scan", str(model)])
    assert out.exit_code == 2
    assert (
        f"convaudit: error: {cfg_path}: input-shapes.images: {model} has no input 'images'; "
        "its inputs are input"
    ) in out.stderr
    assert "--input-shape" not in out.stderr
    glob_cfg = write(
        tmp_path / "g" / "convaudit.toml", '[input-shapes."*.onnx"]\nimages = "1x3x8x8"\n'
    )
    out = CliRunner().invoke(app, ["scan", str(model), "--config", str(glob_cfg)])
    assert f'{glob_cfg}: input-shapes."*.onnx".images: {model} has no input' in out.stderr
    empty = write(tmp_path / "e" / "convaudit.toml", "")
    flag = CliRunner().invoke(
        app, ["scan", str(model), "--config", str(empty), "--input-shape", "x=1x2"]
    )
    assert "--input-shape names unknown input 'x'" in flag.stderr  # a flag is blamed as a flag
