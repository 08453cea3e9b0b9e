"""Discovery skips a pyproject.toml whose bytes cannot hold a convaudit table without parsing
it (no TOML parser imported on a scan), yet finds every spelling of the table that can."""

from __future__ import annotations

from pathlib import Path

import pytest

from convaudit.config import find_config, load_config

SPELLINGS = [
    "[tool.convaudit]\nfail-on = 'info'\n",
    "[tool]\nconvaudit = {fail-on = 'info'}\n",
    "tool.convaudit.fail-on = 'info'\n",
    '[tool."convaudit"]\nfail-on = "info"\n',
    '[tool]\n"\\u0063onvaudit" = {fail-on = "info"}\n',  # an escaped key: never skipped unread
]


@pytest.mark.parametrize("text", SPELLINGS)
def test_every_spelling_of_the_table_is_found(tmp_path: Path, text: str) -> None:
    (tmp_path / "pyproject.toml").write_text(text, encoding="utf-8")
    found = find_config(tmp_path / "m.onnx")
    assert found == tmp_path / "pyproject.toml"
    assert load_config(found).fail_on == "info"


def test_a_pyproject_that_never_names_convaudit_is_skipped_unparsed(tmp_path: Path) -> None:
    # Invalid TOML proves it is not parsed: reading it would raise ConfigError.
    (tmp_path / "pyproject.toml").write_text("[project\nname = 'x'\n", encoding="utf-8")
    assert find_config(tmp_path / "m.onnx") is None
