"""write_atomic: whole-file replacement with the mode a plain open() would give."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from convaudit.atomic import write_atomic


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_file_gets_the_umask_mode_not_mkstemps_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "report.json", "{}")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "report.json") == 0o644
    assert (tmp_path / "report.json").read_text() == "{}"


def test_replacing_a_file_keeps_its_mode_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "baseline.json"
    target.write_text("old")
    target.chmod(0o640)
    write_atomic(target, b"new")
    assert target.read_text() == "new" and _mode(target) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["baseline.json"]


def test_unwritable_targets_are_user_errors_naming_the_path(tmp_path: Path) -> None:
    import pytest

    from convaudit.errors import ConvauditError

    (tmp_path / "out").mkdir()
    with pytest.raises(ConvauditError, match=r"out: is a directory"):
        write_atomic(tmp_path / "out", "x")
    (tmp_path / "file").write_text("")
    with pytest.raises(ConvauditError, match=r"file/r\.json: cannot write the output"):
        write_atomic(tmp_path / "file" / "r.json", "x")  # its parent is a file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "out"]
    assert list((tmp_path / "out").iterdir()) == []


def test_cli_output_to_a_directory_is_one_error_line_not_an_internal_error(
    tmp_path: Path,
) -> None:
    from typer.testing import CliRunner

    from convaudit.cli import app

    model = Path(__file__).resolve().parents[1] / "sample_models" / "textbook_5x5.onnx"
    res = CliRunner().invoke(app, ["scan", str(model), "-o", str(tmp_path)])
    assert res.exit_code == 2
    assert res.stderr == f"convaudit: error: {tmp_path}: is a directory: name the output file\n"
