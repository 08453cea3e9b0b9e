"""Malformed rule files: every error names file:line, the rule and the nearest valid name,
and the CLI turns it into one stderr line and exit 2 (never a traceback, never exit 1)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from convaudit.cli import app
from convaudit.errors import RuleFileError
from convaudit.rules.loader import load_file, load_rules

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
TEXTBOOK = ROOT / "sample_models" / "textbook_5x5.onnx"

VALID = """\
schema_version: 1
rules:
  - id: MY001
    name: my-rule
    summary: A test rule.
    severity: warning
    params:
      min_in: 64
    match:
      all:
        - {fact: in_channels, op: ge, value: $min_in}
        - {fact: kernel_max, op: ge, value: 3}
    message: "{kernel_size} conv reads {in_channels} channels"
    docs:
      what: w
      why: y
      example: e
      fix: f
"""

# (label, old text, new text, line, message pattern)
BROKEN = [
    (
        "unknown rule key",
        "    severity: warning\n",
        "    severity: warning\n    sevrity: info\n",
        7,
        r"rule MY001: unknown key 'sevrity' in a rule \(did you mean severity\?\)",
    ),
    (
        "unknown top-level key",
        "schema_version: 1",
        "schema_versoin: 1",
        1,
        r"unknown key 'schema_versoin' in the file \(did you mean schema_version\?\)",
    ),
    (
        "unknown leaf key",
        "op: ge, value: 3}",
        "op: ge, valeu: 3}",
        12,
        r"rule MY001: unknown key 'valeu' in a condition \(did you mean value\?\)",
    ),
    (
        "unknown docs key",
        "      fix: f\n",
        "      fix: f\n      fixx: g\n",
        19,
        r"rule MY001: unknown key 'fixx' in docs \(did you mean fix\?\)",
    ),
    (
        "unknown fact",
        "fact: kernel_max",
        "fact: kernal_max",
        12,
        r"rule MY001: unknown fact 'kernal_max' \(did you mean kernel_max\?\)",
    ),
    (
        "unknown op",
        "op: ge, value: 3}",
        "op: gte, value: 3}",
        12,
        r"rule MY001: unknown op 'gte' \(did you mean gt\?\)",
    ),
    (
        "undefined param",
        "$min_in}",
        "$min_inn}",
        11,
        r"rule MY001: param \$min_inn is not defined in params \(did you mean min_in\?\)",
    ),
    (
        "attribute placeholder",
        "{in_channels}",
        "{in_channels.__class__}",
        13,
        r"rule MY001: placeholder \{in_channels.__class__\} is not allowed",
    ),
    (
        "index placeholder",
        "{in_channels}",
        "{in_channels[0]}",
        13,
        r"rule MY001: placeholder \{in_channels\[0\]\} is not allowed",
    ),
    (
        "conversion placeholder",
        "{in_channels}",
        "{in_channels!r}",
        13,
        r"rule MY001: placeholder \{in_channels!r\}: conversions like !r are not allowed",
    ),
    (
        "positional placeholder",
        "{in_channels}",
        "{}",
        13,
        r"rule MY001: placeholder \{\} is not allowed",
    ),
    (
        "unknown placeholder",
        "{kernel_size}",
        "{kernel_sise}",
        13,
        r"rule MY001: message placeholder \{kernel_sise\} is not a fact or param "
        r"\(did you mean kernel_size\?\)",
    ),
    (
        "bad format spec",
        "{in_channels}",
        "{in_channels:.1q}",
        13,
        r"rule MY001: placeholder \{in_channels:.1q\}: bad format spec",
    ),
    (
        "spec that does not fit the type",
        "{kernel_size}",
        "{kernel_size:.1f}",
        13,
        r"rule MY001: format spec '.1f' does not fit a str value",
    ),
    (
        "stray brace",
        "reads {in_channels} channels",
        "reads {in_channels channels",
        13,
        r"rule MY001: bad message template",
    ),
    ("yaml syntax", "    name: my-rule\n", "    name: [my-rule\n", 5, r"invalid YAML"),
    (
        "duplicate key",
        "    name: my-rule\n",
        "    name: my-rule\n    name: other\n",
        5,
        r"invalid YAML: .*duplicate key 'name'",
    ),
    (
        "severity not a level",
        "severity: warning",
        "severity: warn",
        6,
        r"rule MY001: severity 'warn' must be one of error, warning, info "
        r"\(did you mean warning\?\)",
    ),
    (
        "value of the wrong type",
        "op: ge, value: 3}",
        "op: ge, value: three}",
        12,
        r"rule MY001: value 'three' for fact kernel_max must be a int value",
    ),
    (
        "op on the wrong fact type",
        "fact: kernel_max, op: ge, value: 3",
        "fact: kernel_size, op: ge, value: 3",
        12,
        r"rule MY001: op ge does not apply to fact kernel_size \(str\)",
    ),
    (
        "in without a list",
        "op: ge, value: 3}",
        "op: in, value: 3}",
        12,
        r"rule MY001: value 3 for fact kernel_max must be a list of int values",
    ),
    (
        "param of the wrong type",
        "      min_in: 64",
        "      min_in: low",
        11,
        r"rule MY001: param min_in 'low' for fact in_channels must be a int value",
    ),
    (
        "param that is a list",
        "      min_in: 64",
        "      min_in: [1, 2]",
        8,
        r"rule MY001: param min_in \[1, 2\] must be a number, text or true/false",
    ),
    (
        "unused param",
        "      min_in: 64\n",
        "      min_in: 64\n      unused: 1\n",
        9,
        r"rule MY001: param 'unused' is never used",
    ),
    (
        "bad width policy",
        "      min_in: 64\n",
        "      min_in: 64\n      width_policy: widest\n",
        9,
        r"rule MY001: param width_policy 'widest' must be one of ratio, saving, budget",
    ),
    (
        "schema version",
        "schema_version: 1",
        "schema_version: 2",
        1,
        r"schema_version 2 is not supported",
    ),
    (
        "second unknown top-level key",
        "rules:\n",
        "rules: 3\nrest:\n",
        3,
        r"unknown key 'rest' in the file \(did you mean rules\?\)",
    ),
    ("missing docs key", "      fix: f\n", "", 15, r"rule MY001: docs is missing the key 'fix'"),
    (
        "missing message",
        '    message: "{kernel_size} conv reads {in_channels} channels"\n',
        "",
        3,
        r"rule MY001: the rule is missing the key 'message'",
    ),
    (
        "id not a code",
        "id: MY001",
        "id: my-rule-1",
        3,
        r"id 'my-rule-1' must be a prefix of capitals and digits",
    ),
    (
        "CA prefix in a user file",
        "id: MY001",
        "id: CA777",
        3,
        r"rule CA777: the CA prefix is reserved for built-in rules",
    ),
    (
        "name not kebab-case",
        "name: my-rule",
        "name: My_Rule",
        4,
        r"rule MY001: name 'My_Rule' must be kebab-case",
    ),
    (
        "unknown key where match was",
        "    match:\n      all:\n",
        "    match: 3\n    unused_all:\n",
        10,
        r"rule MY001: unknown key 'unused_all' in a rule",
    ),
    (
        "match not a mapping",
        "    match:\n      all:\n        - {fact: in_channels, op: ge, value: $min_in}\n"
        "        - {fact: kernel_max, op: ge, value: 3}\n",
        "    match: 3\n",
        9,
        r"rule MY001: a match is a mapping",
    ),
    (
        "empty all",
        "      all:\n        - {fact: in_channels, op: ge, value: $min_in}\n"
        "        - {fact: kernel_max, op: ge, value: 3}\n",
        "      all: []\n",
        10,
        r"rule MY001: all must be a non-empty list of conditions",
    ),
    (
        "bad recommendation",
        "    severity: warning\n",
        "    severity: warning\n    recommendation: bottlenek\n",
        7,
        r"rule MY001: recommendation 'bottlenek' must be one of .* \(did you mean bottleneck\?\)",
    ),
]


def _write(tmp_path: Path, old: str, new: str) -> Path:
    assert old in VALID, old
    path = tmp_path / "my_rules.yaml"
    path.write_text(VALID.replace(old, new, 1), encoding="utf-8")
    return path


def test_the_valid_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "my_rules.yaml"
    path.write_text(VALID, encoding="utf-8")
    (rule,) = load_file(path)
    assert (rule.id, rule.name, rule.severity, rule.params) == (
        "MY001",
        "my-rule",
        "warning",
        {"min_in": 64},
    )


@pytest.mark.parametrize(
    ("label", "old", "new", "line", "pattern"), BROKEN, ids=[b[0] for b in BROKEN]
)
def test_malformed_rule_file(
    tmp_path: Path, label: str, old: str, new: str, line: int, pattern: str
) -> None:
    path = _write(tmp_path, old, new)
    with pytest.raises(RuleFileError) as err:
        load_file(path)
    text = str(err.value)
    assert text.startswith(f"{path}:{line}: "), text
    assert re.search(pattern, text), text
    assert "\n" not in text


@pytest.mark.parametrize(
    ("label", "old", "new", "line", "pattern"), BROKEN, ids=[b[0] for b in BROKEN]
)
def test_malformed_rule_file_exits_2_through_the_cli(
    tmp_path: Path, label: str, old: str, new: str, line: int, pattern: str
) -> None:
    _write(tmp_path, old, new)
    result = CliRunner().invoke(app, ["scan", str(TEXTBOOK), "--rules-dir", str(tmp_path)])
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert err.startswith("convaudit: error: ") and "\n" not in err, err
    assert f"my_rules.yaml:{line}: " in err and re.search(pattern, err), err
    assert "Traceback" not in result.output


def test_rules_must_be_a_list(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("schema_version: 1\nrules: 3\n", encoding="utf-8")
    with pytest.raises(RuleFileError, match=r"r\.yaml:2: rules must be a list of rules"):
        load_file(path)


def test_a_file_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("- just\n- a list\n", encoding="utf-8")
    with pytest.raises(RuleFileError, match=r"r\.yaml:1: a rule file is a mapping"):
        load_file(path)


def test_duplicate_rule_id_across_files_names_both_places(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(VALID, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(VALID, encoding="utf-8")
    with pytest.raises(
        RuleFileError, match=r"b\.yaml:3: rule MY001: id already defined at .*a\.yaml:3"
    ):
        load_rules([tmp_path])


def test_missing_rule_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RuleFileError, match="rule directory does not exist"):
        load_rules([tmp_path / "nope"])


def test_yaml_tags_that_build_objects_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text(VALID.replace("name: my-rule", "name: !!python/object/apply:os.getcwd []"))
    with pytest.raises(RuleFileError, match=r"evil\.yaml:4: invalid YAML"):
        load_file(path)


def test_yaml_alias_bomb_in_a_match_is_refused(tmp_path: Path) -> None:
    # Each level repeats the previous one 11 times: 3 levels are 1,464 conditions from 5 lines;
    # 8 levels would be 2*10^8 and hang every scan.
    levels = ["        - &a0 {fact: in_channels, op: ge, value: 1}"]
    levels += [f"        - &a{i} {{any: [{', '.join([f'*a{i - 1}'] * 11)}]}}" for i in (1, 2, 3)]
    bomb = "    match:\n      all:\n" + "\n".join(levels) + "\n"
    old = "    match:\n      all:\n"
    path = _write(tmp_path, old, bomb)
    with pytest.raises(RuleFileError, match=r"my_rules\.yaml:\d+: rule MY001: the match has more"):
        load_file(path)


def test_user_rules_load_beside_the_builtins(tmp_path: Path) -> None:
    (tmp_path / "mine.yml").write_text(VALID, encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not a rule file", encoding="utf-8")
    rules = load_rules([tmp_path])
    assert "MY001" in rules and "CA101" in rules
    assert rules["MY001"].builtin is False and rules["CA101"].builtin is True


def test_binary_rule_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "bin.yaml"
    path.write_bytes(b"\xff\xfe\x00rules")
    with pytest.raises(RuleFileError, match=r"bin\.yaml: rule file is not UTF-8 text"):
        load_file(path)


def test_builtin_pack_is_found_and_complete() -> None:
    from convaudit.rules.loader import builtin_dir

    names = sorted(p.name for p in builtin_dir().glob("CA*.yaml"))
    assert names == [
        "CA101.yaml",
        "CA102.yaml",
        "CA103.yaml",
        "CA104.yaml",
        "CA105.yaml",
        "CA900.yaml",
    ]
    for rule in load_rules().values():
        assert rule.builtin and rule.docs["what"] and rule.docs["fix"] and rule.summary


def test_an_installed_wheel_finds_the_rules_it_ships(tmp_path: Path) -> None:
    # pyproject's force-include puts rules/ at convaudit/_builtin_rules in the wheel; a copy of
    # that layout (no checkout around it) must load the five built-ins from there.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    mapping = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert mapping == {"rules": "convaudit/_builtin_rules"}
    site = tmp_path / "site-packages"
    shutil.copytree(ROOT / "convaudit", site / "convaudit")
    shutil.copytree(ROOT / "rules", site / "convaudit" / "_builtin_rules")
    code = (
        "from convaudit.rules.loader import load_rules\n"
        "rules = load_rules()\n"
        "print(sorted(rules), {r.source.split('/')[-2] for r in rules.values()})\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
    )
    assert done.stdout.strip() == (
        "['CA101', 'CA102', 'CA103', 'CA104', 'CA105', 'CA900'] {'_builtin_rules'}"
    ), done.stderr
