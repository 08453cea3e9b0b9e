"""The rule-pack parse cache: a rule file parsed once is read back from JSON in the user cache
(keyed by its bytes' sha256) with the same rules, the same line numbers in errors, and no YAML
parser imported; a changed, corrupt or foreign cache entry is never trusted."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from convaudit.errors import RuleFileError
from convaudit.rules.loader import CACHE_KIND, load_file, load_rules
from convaudit.usercache import cache_dir

RULE = """\
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
    message: "reads {in_channels} channels"
    docs:
      what: w
      why: y
      example: e
      fix: f
"""


def _entries() -> list[Path]:
    folder = cache_dir()
    assert folder is not None
    return sorted((folder / CACHE_KIND).glob("*.json"))


def test_second_load_reads_the_cache_and_gives_the_same_rules(tmp_path: Path) -> None:
    path = tmp_path / "my.yaml"
    path.write_text(RULE, encoding="utf-8")
    first = load_file(path)
    assert len(_entries()) == 1
    second = load_file(path)
    assert second == first
    assert second[0].params == {"min_in": 64} and second[0].line == 3


def test_cache_folder_is_private_and_holds_json(tmp_path: Path) -> None:
    path = tmp_path / "my.yaml"
    path.write_text(RULE, encoding="utf-8")
    load_file(path)
    (entry,) = _entries()
    assert stat.S_IMODE(entry.parent.stat().st_mode) == 0o700
    data = json.loads(entry.read_text(encoding="utf-8"))
    assert data["l"] == 1 and data["m"][0] == ["schema_version", 1]


def test_errors_from_the_cache_name_the_same_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(RULE.replace("severity: warning", "severity: loud"), encoding="utf-8")
    messages = []
    for _ in range(2):
        with pytest.raises(RuleFileError) as info:
            load_file(path)
        messages.append(str(info.value))
    assert len(_entries()) == 1  # the parse was cached even though validation failed
    assert messages[0] == messages[1]
    assert f"{path}:6: rule MY001" in messages[0]


def test_an_edited_file_is_parsed_again(tmp_path: Path) -> None:
    path = tmp_path / "my.yaml"
    path.write_text(RULE, encoding="utf-8")
    load_file(path)
    path.write_text(RULE.replace("min_in: 64", "min_in: 32"), encoding="utf-8")
    assert load_file(path)[0].params == {"min_in": 32}
    assert len(_entries()) == 2


def test_a_corrupt_entry_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "my.yaml"
    path.write_text(RULE, encoding="utf-8")
    load_file(path)
    (entry,) = _entries()
    for junk in ("{not json", '{"m": [["x"]]}', '{"m": [[1, 2]], "l": 1, "k": [1]}'):
        entry.write_text(junk, encoding="utf-8")
        assert load_file(path)[0].params == {"min_in": 64}


def test_a_cache_folder_others_can_write_is_not_used(tmp_path: Path) -> None:
    path = tmp_path / "my.yaml"
    path.write_text(RULE, encoding="utf-8")
    load_file(path)
    (entry,) = _entries()
    entry.write_text(entry.read_text().replace('"min_in",64', '"min_in",8'), encoding="utf-8")
    assert load_file(path)[0].params == {"min_in": 8}  # proves the entry is what is read
    os.chmod(entry.parent, 0o777)
    assert load_file(path)[0].params == {"min_in": 64}


def test_no_cache_env_turns_it_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVAUDIT_NO_CACHE", "1")
    path = tmp_path / "my.yaml"
    path.write_text(RULE, encoding="utf-8")
    load_file(path)
    monkeypatch.delenv("CONVAUDIT_NO_CACHE")
    assert _entries() == []


def test_a_warm_pack_loads_without_importing_yaml() -> None:
    code = (
        "import sys\n"
        "from convaudit.rules.loader import load_rules\n"
        "rules = load_rules()\n"
        "print(len(rules), 'yaml' in sys.modules)\n"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()
        for _ in range(2)
    ]
    assert runs[0][0] == runs[1][0] == str(len(load_rules()))
    assert runs == [[runs[0][0], "True"], [runs[0][0], "False"]]
