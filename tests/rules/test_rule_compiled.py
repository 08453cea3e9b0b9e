"""The validated-rules cache: a rule file validated once is read back as the same rules while
its parsed data, its path and its builtin flag are the same; anything else is validated again.
Validating the file is the oracle."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from test_rule_cache import RULE

from convaudit.errors import RuleFileError
from convaudit.rules import compiled, loader, validate
from convaudit.rules.loader import builtin_dir, load_file, rule_files
from convaudit.usercache import cache_dir


def _validated(path: Path, builtin: bool = False) -> list[object]:
    """The rules of ``path`` validated now, past every cache."""
    data = loader._cached_parse(path.read_text(encoding="utf-8"), path, "-", None)[0]
    return list(validate.validate_document(path, data, builtin=builtin))


def _no_validating(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object, **__: object) -> object:
        raise AssertionError("validated although its rules are stored")

    monkeypatch.setattr(validate, "validate_document", refuse)


def _entries() -> list[Path]:
    folder = cache_dir()
    assert folder is not None
    return sorted((folder / compiled.KIND).glob("*.json"))


@pytest.mark.parametrize("path", rule_files(builtin_dir()), ids=lambda p: p.name)
def test_every_builtin_file_reads_back_as_validated(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = _validated(path, builtin=True)
    assert load_file(path, builtin=True) == expected  # validates and stores
    _no_validating(monkeypatch)
    assert load_file(path, builtin=True) == expected


def test_the_round_trip_keeps_params_and_templates(tmp_path: Path) -> None:
    path = tmp_path / "my.yaml"
    path.write_text(RULE, encoding="utf-8")
    (rule,) = _validated(path)
    (back,) = compiled.decode(compiled.encode([rule]))  # type: ignore[list-item]
    assert back == rule
    assert back.message.render(lambda name: 7) == "reads 7 channels"
    assert back.facts_used() == ("in_channels",)


def test_another_path_is_validated_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = tmp_path / "a" / "my.yaml"
    second = tmp_path / "b" / "my.yaml"
    for p in (first, second):
        p.parent.mkdir()
        p.write_text(RULE, encoding="utf-8")
    load_file(first)
    assert load_file(second)[0].source == str(second)
    assert len(_entries()) == 2
    _no_validating(monkeypatch)
    assert [load_file(p)[0].source for p in (first, second)] == [str(first), str(second)]


def test_the_builtin_flag_is_part_of_the_key(tmp_path: Path) -> None:
    path = tmp_path / "CA101.yaml"
    path.write_text((builtin_dir() / "CA101.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    assert load_file(path, builtin=True)[0].builtin is True  # stored
    with pytest.raises(RuleFileError, match="reserved for built-in rules"):
        load_file(path)  # the same bytes as a user's file: validated, and refused


def test_a_file_with_errors_is_never_stored(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(RULE.replace("severity: warning", "severity: loud"), encoding="utf-8")
    for _ in range(2):
        with pytest.raises(RuleFileError, match="severity"):
            load_file(path)
    assert _entries() == []


@pytest.mark.parametrize(
    "junk", ["{not json", "[]x", "{}", '[{"id": 1}]', '[{"match": {"fact": 1}}]', "[7]"]
)
def test_a_corrupt_entry_is_validated_again(tmp_path: Path, junk: str) -> None:
    path = tmp_path / "my.yaml"
    path.write_text(RULE, encoding="utf-8")
    expected = load_file(path)
    (entry,) = _entries()
    entry.write_text(junk, encoding="utf-8")
    assert load_file(path) == expected


def test_a_warm_pack_loads_without_the_validator(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from convaudit import Config\n"
        "from convaudit.rules.engine import RuleSet\n"
        "RuleSet.from_config(Config()).catalogue()\n"
        "print(sorted(m for m in sys.modules if m.startswith(('convaudit.rules.validate',"
        " 'convaudit.rules.facts', 'convaudit.rules.kinds', 'yaml'))))\n"
    )
    run = [sys.executable, "-c", code]
    subprocess.run(run, capture_output=True, text=True, check=True, cwd=tmp_path)  # fills it
    done = subprocess.run(run, capture_output=True, text=True, check=True, cwd=tmp_path)
    assert done.stdout.strip() == "[]", done.stderr
