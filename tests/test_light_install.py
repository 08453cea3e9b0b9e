"""A scan needs no onnxruntime (it is the `fix` extra); `fix` without it says what to install."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_models" / "textbook_5x5.onnx"

# Run with onnxruntime made unimportable, as on a machine where only `pip install convaudit` ran.
NO_ORT = "import sys\nsys.modules['onnxruntime'] = None\n"


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", NO_ORT + code], capture_output=True, text=True, check=False, cwd=ROOT
    )


def test_scan_runs_without_onnxruntime() -> None:
    done = _run(
        "from convaudit.cli import app\n"
        f"sys.argv = ['convaudit', 'scan', {str(SAMPLE)!r}, '--format', 'json',"
        " '--fail-on', 'never']\n"
        "app()\n"
    )
    assert done.returncode == 0, done.stderr
    assert '"macs": 112896000' in done.stdout


def test_fix_without_onnxruntime_names_the_extra(tmp_path: Path) -> None:
    out = tmp_path / "fixed.onnx"
    done = _run(
        "from convaudit.cli import app\n"
        f"sys.argv = ['convaudit', 'fix', {str(SAMPLE)!r}, '-o', {str(out)!r}]\n"
        "app()\n"
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "pip install 'convaudit[fix]'" in lines[0]
    assert "Traceback" not in done.stderr
    assert not out.exists()
