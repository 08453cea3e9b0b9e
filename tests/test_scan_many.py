"""Many models at once: a folder with a broken model goes on and exits 2; --jobs; --shard."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from convaudit.api import parse_shard, scan, select_shard
from convaudit.cli import app
from convaudit.command import progress as _progress
from convaudit.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_models"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """a_good.onnx, b_broken.onnx (truncated), sub/c_bottleneck.onnx."""
    d = tmp_path / "models"
    (d / "sub").mkdir(parents=True)
    shutil.copy(SAMPLES / "textbook_5x5.onnx", d / "a_good.onnx")
    data = (SAMPLES / "textbook_bottleneck.onnx").read_bytes()
    (d / "b_broken.onnx").write_bytes(data[: len(data) // 3])
    shutil.copy(SAMPLES / "textbook_bottleneck.onnx", d / "sub" / "c_bottleneck.onnx")
    return d


def test_broken_model_is_recorded_and_the_rest_scan(folder: Path) -> None:
    res = CliRunner().invoke(app, ["scan", str(folder), "-f", "json"])
    assert res.exit_code == 2
    reports = json.loads(res.stdout)["reports"]
    names = [Path(r["model"]["path"]).name for r in reports]
    assert names == ["a_good.onnx", "b_broken.onnx", "c_bottleneck.onnx"]
    good, broken, sub = reports
    assert good["totals"]["macs"] == 112_896_000 and good["errors"] == []
    assert broken["totals"] is None and len(broken["errors"]) == 1
    assert "b_broken.onnx" in broken["errors"][0]
    assert sub["totals"]["macs"] == 5_268_480
    assert "b_broken.onnx" in res.stderr


def test_jobs_give_the_same_report_in_the_same_order(folder: Path) -> None:
    runner = CliRunner()
    one = runner.invoke(app, ["scan", str(folder), "-f", "json"])
    two = runner.invoke(app, ["scan", str(folder), "-f", "json", "--jobs", "2"])
    assert two.exit_code == one.exit_code == 2
    assert two.stdout == one.stdout


def test_progress_callback_sees_every_model(folder: Path) -> None:
    seen: list[tuple[int, int]] = []
    scan(folder, progress=lambda done, total, path: seen.append((done, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)]


@pytest.mark.parametrize(("text", "shard"), [("1/1", (1, 1)), ("2/4", (2, 4)), (" 4/4 ", (4, 4))])
def test_parse_shard(text: str, shard: tuple[int, int]) -> None:
    assert parse_shard(text) == shard


@pytest.mark.parametrize("text", ["0/2", "3/2", "1/0", "a/b", "2", "-1/2"])
def test_parse_shard_rejects(text: str) -> None:
    with pytest.raises(ConfigError, match="--shard"):
        parse_shard(text)


def test_shards_are_disjoint_balanced_and_cover_everything() -> None:
    models = [f"m{i:02d}.onnx" for i in range(10)]
    slices = [select_shard(models, (i, 3)) for i in (1, 2, 3)]
    assert slices == [
        ["m00.onnx", "m03.onnx", "m06.onnx", "m09.onnx"],
        ["m01.onnx", "m04.onnx", "m07.onnx"],
        ["m02.onnx", "m05.onnx", "m08.onnx"],
    ]
    assert sorted(m for s in slices for m in s) == models


def test_cli_shard_scans_only_its_slice(folder: Path) -> None:
    res = CliRunner().invoke(app, ["scan", str(folder), "-f", "json", "--shard", "2/2"])
    assert res.exit_code == 2  # the broken model is the second one: in slice 2 of 2
    assert [Path(r["model"]["path"]).name for r in json.loads(res.stdout)["reports"]] == [
        "b_broken.onnx"
    ]
    bad = CliRunner().invoke(app, ["scan", str(folder), "--shard", "3/2"])
    assert bad.exit_code == 2 and "--shard '3/2'" in bad.stderr


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_on_a_terminal_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert _progress() is None  # piped
    tty = _Tty()
    monkeypatch.setattr("sys.stderr", tty)
    show = _progress()
    assert show is not None
    show(1, 2, "a.onnx")
    assert "1/2 a.onnx" in tty.getvalue()
    monkeypatch.setenv("CI", "true")
    assert _progress() is None  # CI logs are not terminals, whatever isatty says


def test_report_flag_writes_several_formats_from_one_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = CliRunner().invoke(
        app,
        [
            "scan",
            str(SAMPLES / "textbook_bottleneck.onnx"),
            "-f",
            "json",
            "-o",
            str(out / "r.json"),
            "--report",
            f"markdown={out / 'r.md'}",
            "--report",
            f"junit={out / 'r.xml'}",
        ],
    )
    assert res.stdout == ""
    assert json.loads((out / "r.json").read_text())["reports"][0]["totals"]["macs"] == 5_268_480
    assert (out / "r.md").read_text().startswith("<!-- convaudit-report -->")
    assert (out / "r.xml").read_text().startswith("<?xml")
    bad = CliRunner().invoke(app, ["scan", str(SAMPLES), "--report", "pdf=x.pdf"])
    assert bad.exit_code == 2 and "--report 'pdf=x.pdf'" in bad.stderr
