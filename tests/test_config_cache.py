"""A config file parsed once is read from the user cache while its bytes stay the same: the same
Config, the same errors, no TOML parser; changed bytes are parsed again."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_config import FULL, write

from convaudit.config import load, load_config
from convaudit.errors import ConfigError


def _parses(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Record every TOML parse from here on."""
    calls: list[Path] = []
    parse = load._read_toml

    def counted(path: Path, data: bytes) -> object:
        calls.append(path)
        return parse(path, data)

    monkeypatch.setattr(load, "_read_toml", counted)
    return calls


@pytest.mark.parametrize("name", ["pyproject.toml", "convaudit.toml"])
def test_an_unchanged_file_gives_the_same_config_unparsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    path = write(tmp_path / name, FULL if name == "pyproject.toml" else _top_level(FULL))
    first = load_config(path)
    calls = _parses(monkeypatch)
    assert load_config(path) == first
    assert calls == []
    assert first.max_macs == 4_100_000_000 and first.params["CA101"]["min_in_channels"] == 256


def _top_level(pyproject: str) -> str:
    """FULL's [tool.convaudit] tables as a convaudit.toml spells them."""
    return pyproject.replace("[tool.convaudit.", "[").replace("[tool.convaudit]\n", "")


def test_changed_bytes_are_parsed_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "pyproject.toml", "[tool.convaudit]\nfail-on = 'info'\n")
    assert load_config(path).fail_on == "info"
    calls = _parses(monkeypatch)
    write(path, "[tool.convaudit]\nfail-on = 'error'\n")
    assert load_config(path).fail_on == "error"
    assert calls == [path]


def test_a_pyproject_without_the_table_is_remembered_as_such(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "pyproject.toml", "[project]\nname = 'convaudit-user'\n")
    assert load.find_config(tmp_path / "m.onnx") is None
    calls = _parses(monkeypatch)
    assert load.find_config(tmp_path / "m.onnx") is None
    assert calls == []


def test_the_same_bytes_as_pyproject_and_as_convaudit_toml_are_two_entries(
    tmp_path: Path,
) -> None:
    text = "fail-on = 'info'  # a top-level key: convaudit.toml's, not a pyproject's table\n"
    assert load_config(write(tmp_path / "a" / "pyproject.toml", text)).fail_on == "warning"
    assert load_config(write(tmp_path / "b" / "convaudit.toml", text)).fail_on == "info"
    assert load_config(tmp_path / "a" / "pyproject.toml").fail_on == "warning"


def test_what_json_cannot_hold_is_parsed_every_time_with_the_same_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "pyproject.toml", "[tool.convaudit]\nbaseline = 2024-01-01\n")
    with pytest.raises(ConfigError, match="baseline must be a path") as first:
        load_config(path)
    calls = _parses(monkeypatch)
    with pytest.raises(ConfigError) as second:
        load_config(path)
    assert str(second.value) == str(first.value)
    assert calls == [path]


def test_invalid_toml_is_never_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "pyproject.toml", "[tool.convaudit]\nfail-on = \n")
    for _ in range(2):
        with pytest.raises(ConfigError, match="invalid TOML"):
            load_config(path)
    calls = _parses(monkeypatch)
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(path)
    assert calls == [path]


def test_a_value_json_does_not_keep_exactly_is_not_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 1.0 stays a float, 1 an int, inf stays inf: the config validates the same data twice
    path = write(
        tmp_path / "pyproject.toml",
        "[tool.convaudit]\nmax-increase = 0.5\n[tool.convaudit.params.CA101]\n"
        "min_saving = 1.0\nmin_in_channels = 1\n",
    )
    first = load_config(path)
    _parses(monkeypatch)
    again = load_config(path)
    assert again == first
    assert type(again.params["CA101"]["min_saving"]) is float
    assert type(again.params["CA101"]["min_in_channels"]) is int
