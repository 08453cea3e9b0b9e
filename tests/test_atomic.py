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
