"""The result cache (issue 12): a re-scan of unchanged models reuses their stored reports, byte
for byte in every format, without reading a model or importing onnx; any change to what a
report depends on is a miss; a broken or unwritable cache is never an error."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from typer.testing import CliRunner

import convaudit.api
from convaudit import resultcache, usercache
from convaudit.api import scan
from convaudit.audit import ScanJob, run_job
from convaudit.cli import app
from convaudit.config import Config
from convaudit.model.schemas import onnx_stamp
from convaudit.records import ModelReport
from convaudit.report import REPORTERS, render

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_models"
MODELS = ("textbook_5x5.onnx", "textbook_bottleneck.onnx", "inception_block.onnx")
AN_HOUR_AGO = 3600 * 10**9


def backdate(path: Path, ns_ago: int = AN_HOUR_AGO) -> None:
    """Give ``path`` an mtime well in the past: entries are only kept for models older than
    the file system clock's tick (resultcache.RACY_NS)."""
    mtime = os.stat(path).st_mtime_ns - ns_ago
    os.utime(path, ns=(mtime, mtime))


@pytest.fixture
def models(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    for name in MODELS:
        shutil.copy(SAMPLES / name, folder / name)
        backdate(folder / name)
    return folder


class Scans:
    """Counts the models actually scanned (a hit scans none)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.paths: list[str] = []
        real = convaudit.api.run_job

        def counted(job: ScanJob, path: str, key: str | None) -> ModelReport:
            self.paths.append(path)
            return real(job, path, key)

        monkeypatch.setattr(convaudit.api, "run_job", counted)

    def take(self) -> list[str]:
        out, self.paths = self.paths, []
        return sorted(Path(p).name for p in out)


@pytest.fixture
def scans(monkeypatch: pytest.MonkeyPatch) -> Scans:
    return Scans(monkeypatch)


def entries() -> list[Path]:
    folder = usercache.cache_dir()
    assert folder is not None
    return sorted((folder / resultcache.KIND).glob("*.json"))


def outputs(result: Any, config: Config) -> dict[str, str]:
    return {fmt: render(result, fmt, config=config) for fmt in REPORTERS}


def test_a_cached_report_renders_byte_for_byte_as_a_fresh_scan_in_every_format(
    models: Path, scans: Scans
) -> None:
    config = Config(max_macs=10**6)  # a budget finding too
    fresh = outputs(scan(models, config, cache=False, graphs=False), config)
    assert scans.take() == sorted(MODELS)
    stored = outputs(scan(models, config, cache=True), config)
    assert scans.take() == sorted(MODELS) and len(entries()) == len(MODELS)
    cached = outputs(scan(models, config, cache=True), config)
    assert scans.take() == []  # every report came from the cache
    assert set(fresh) >= {"json", "sarif", "markdown", "junit", "html"}
    for fmt in fresh:
        assert stored[fmt] == fresh[fmt], fmt
        assert cached[fmt] == fresh[fmt], fmt


def test_the_codec_rebuilds_equal_records_with_tuples_enums_and_odd_floats(models: Path) -> None:
    result = scan(models, Config(), graphs=False)
    for report in result.reports:
        text = json.dumps(resultcache.encode(report))
        back = resultcache.decode(text)
        assert back == report
        assert type(back.facts.layers) is tuple
        assert type(back.facts.layers[0].category) is type(report.facts.layers[0].category)
    odd = {"a": (1, 2.0, None), 3: [float("inf"), -0.0], "n": float("nan")}
    back = resultcache.decode(json.dumps(resultcache.encode(odd)))
    assert back["a"] == (1, 2.0, None) and type(back["a"][1]) is float
    assert back[3] == [math.inf, -0.0] and math.copysign(1, back[3][1]) == -1
    assert math.isnan(back["n"])
    with pytest.raises(TypeError):
        resultcache.encode({"x": object()})
    with pytest.raises(ValueError):
        resultcache.decode('{"r": ["os.system", []]}')  # only the record types it knows


def test_jobs_2_stores_in_the_workers_and_the_next_scan_hits(models: Path, scans: Scans) -> None:
    runner = CliRunner()
    first = runner.invoke(app, ["scan", str(models), "-f", "json", "--jobs", "2"])
    assert len(entries()) == len(MODELS)
    again = runner.invoke(app, ["scan", str(models), "-f", "json", "--jobs", "2"])
    assert scans.take() == []
    assert again.stdout == first.stdout and again.exit_code == first.exit_code == 1


def test_a_hit_does_not_import_onnx(models: Path, tmp_path: Path) -> None:
    code = (
        "import sys\n"
        f"sys.argv = ['convaudit', 'scan', {str(models)!r}, '--format', 'json']\n"
        "from convaudit.cli import app\n"
        "try:\n    app()\nexcept SystemExit:\n    pass\n"
        "print('onnx' in sys.modules, 'numpy' in sys.modules, file=sys.stderr)\n"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    runs = [
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path
        )
        for _ in range(2)
    ]
    assert runs[1].stderr.strip().splitlines()[-1] == "False False"  # nor numpy
    assert runs[1].stdout == runs[0].stdout and '"reports"' in runs[1].stdout


def _rewrite_same_size(path: Path) -> None:
    data = bytearray(path.read_bytes())
    path.write_bytes(bytes(data))
    backdate(path, AN_HOUR_AGO // 2)


def _other_model(path: Path) -> None:
    shutil.copy(SAMPLES / "textbook_bottleneck.onnx", path)
    backdate(path)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda m: backdate(m / "textbook_5x5.onnx", 60 * 10**9), ["textbook_5x5.onnx"]),
        (lambda m: _rewrite_same_size(m / "textbook_5x5.onnx"), ["textbook_5x5.onnx"]),
        (lambda m: _other_model(m / "textbook_5x5.onnx"), ["textbook_5x5.onnx"]),
    ],
    ids=["touched", "rewritten", "size"],
)
def test_a_changed_model_is_scanned_again_and_only_it(
    models: Path, scans: Scans, change: Callable[[Path], None], expected: list[str]
) -> None:
    scan(models, Config(), cache=True)
    scans.take()
    change(models)
    result = scan(models, Config(), cache=True)
    assert scans.take() == expected
    fresh = scan(models, Config(), graphs=False)
    assert render(result, "json") == render(fresh, "json")


def test_a_changed_context_is_a_miss(
    models: Path, scans: Scans, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one = models / "textbook_5x5.onnx"
    base = Config()
    scan(one, base, cache=True)
    scans.take()
    contexts = {
        "config: input shape": Config(input_shapes={"input": (2, 480, 14, 14)}),
        "config: select": Config(select=("CA101",)),
        "config: rule params": Config(params={"CA101": {"min_in_channels": 64}}),
    }
    for what, config in contexts.items():
        scan(one, config, cache=True)
        assert scans.take() == ["textbook_5x5.onnx"], what
    scan(one, base, cache=True, weights=True)
    assert scans.take() == ["textbook_5x5.onnx"], "--weights"
    monkeypatch.setenv("CONVAUDIT_MEMORY_BUDGET", "8G")
    scan(one, base, cache=True, weights=True)
    assert scans.take() == ["textbook_5x5.onnx"], "the memory budget of --weights"
    monkeypatch.delenv("CONVAUDIT_MEMORY_BUDGET")
    rules = tmp_path / "rules"
    rules.mkdir()
    rule = (ROOT / "rules" / "CA101.yaml").read_text(encoding="utf-8")
    custom = rule.replace("id: CA101", "id: CX101").replace("name: wide-", "name: my-wide-")
    assert custom != rule
    (rules / "CX101.yaml").write_text(custom, encoding="utf-8")
    scan(one, Config(rule_dirs=(str(rules),)), cache=True)
    assert scans.take() == ["textbook_5x5.onnx"], "a rule file added"
    (rules / "CX101.yaml").write_text(custom.replace("severity: warning", "severity: error"))
    scan(one, Config(rule_dirs=(str(rules),)), cache=True)
    assert scans.take() == ["textbook_5x5.onnx"], "a rule file changed"
    scan(one, base, cache=True)
    assert scans.take() == [], "the first context is still cached"


def test_the_key_holds_the_code_and_the_installed_onnx() -> None:
    signature = resultcache._code_signature()
    names = [f[0] for f in signature[0]]
    assert "resultcache.py" in names and os.path.join("rules", "engine.py") in names
    assert signature[1] == onnx_stamp() and signature[1] is not None


def test_corrupt_entries_are_misses_and_get_rewritten(models: Path, scans: Scans) -> None:
    config = Config()
    fresh = render(scan(models, config, graphs=False), "json")
    scan(models, config, cache=True)
    scans.take()
    bad = [
        b"",
        b"{not json",
        b'{"d": [["report", 1]]}',
        b'{"r": ["ModelReport", [["nope", 1]]]}',
        b'{"d": [["deps", {"t": []}], ["report", {"r": ["Layer", []]}]]}',
        b"[" * 100_000,
    ]
    files = entries()
    for k, path in enumerate(files):
        path.write_bytes(bad[k % len(bad)])
    result = scan(models, config, cache=True)
    assert scans.take() == sorted(MODELS)
    assert render(result, "json") == fresh
    scan(models, config, cache=True)
    assert scans.take() == []  # rewritten by the scan that found them broken


def test_an_entry_for_another_path_is_refused(models: Path, scans: Scans) -> None:
    one, two = models / "textbook_5x5.onnx", models / "inception_block.onnx"
    context = resultcache.context_key(convaudit.api.load_ruleset(Config()), weights=False)
    assert context is not None
    scan(models, Config(), cache=True)
    key_one = resultcache.model_key(context, str(one))
    key_two = resultcache.model_key(context, str(two))
    assert key_one is not None and key_two is not None
    folder = entries()[0].parent
    (folder / f"{key_one}.json").write_bytes((folder / f"{key_two}.json").read_bytes())
    assert resultcache.lookup(context, str(one)) == (key_one, None)


def test_an_unwritable_cache_is_not_an_error(
    models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    fresh = runner.invoke(app, ["scan", str(models), "-f", "json", "--no-cache"])
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    res = runner.invoke(app, ["scan", str(models), "-f", "json"])
    assert (res.exit_code, res.stdout, res.stderr) == (1, fresh.stdout, "")
    folder = tmp_path / "ro"
    monkeypatch.setenv("XDG_CACHE_HOME", str(folder))
    runner.invoke(app, ["scan", str(models), "-f", "json"])
    cache = usercache.cache_dir()
    assert cache is not None
    (cache / resultcache.KIND).chmod(0o500)
    for path in entries():
        path.unlink()  # as root the mode does not stop the writes: the scan must work either way
    try:
        res = runner.invoke(app, ["scan", str(models), "-f", "json"])
    finally:
        (cache / resultcache.KIND).chmod(0o700)
    assert (res.exit_code, res.stdout, res.stderr) == (1, fresh.stdout, "")


def test_no_cache_flag_skips_the_results_and_the_env_every_cache(
    models: Path, scans: Scans, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    runner.invoke(app, ["scan", str(models), "-f", "json", "--no-cache"])
    cache = usercache.cache_dir()
    assert cache is not None and not (cache / resultcache.KIND).exists()
    assert scans.take() == sorted(MODELS)
    before = sorted(cache.rglob("*"))
    monkeypatch.setenv("CONVAUDIT_NO_CACHE", "1")
    runner.invoke(app, ["scan", str(models), "-f", "json"])
    assert sorted(cache.rglob("*")) == before  # the master switch: nothing written at all
    monkeypatch.delenv("CONVAUDIT_NO_CACHE")
    runner.invoke(app, ["scan", str(models), "-f", "json"])
    assert len(entries()) == len(MODELS)
    scans.take()
    runner.invoke(app, ["scan", str(models), "-f", "json", "--no-cache"])
    assert scans.take() == sorted(MODELS)  # not read either
    runner.invoke(app, ["scan", str(models), "-f", "json"])
    assert scans.take() == []


def test_a_model_written_just_now_is_not_stored(tmp_path: Path) -> None:
    model = tmp_path / "new.onnx"
    shutil.copy(SAMPLES / "textbook_5x5.onnx", model)  # mtime: now
    scan(model, Config(), cache=True)
    folder = usercache.cache_dir()
    assert folder is not None and not list((folder / resultcache.KIND).glob("*.json"))


def test_weights_results_depend_on_the_external_data_file(tmp_path: Path, scans: Scans) -> None:
    proto = onnx.load(str(SAMPLES / "textbook_5x5.onnx"))
    model = tmp_path / "ext.onnx"
    onnx.save_model(
        proto, str(model), save_as_external_data=True, location="w.data", size_threshold=0
    )
    data = tmp_path / "w.data"
    backdate(model)
    backdate(data)
    first = scan(model, Config(), cache=True, weights=True)
    assert scans.take() == ["ext.onnx"]
    scan(model, Config(), cache=True, weights=True)
    assert scans.take() == []
    proto = onnx.load(str(SAMPLES / "textbook_5x5.onnx"))
    for init in proto.graph.initializer:  # rank 1 instead of random: all energy at any width
        values = numpy_helper.to_array(init)
        ones = np.ones(values.shape, dtype=values.dtype)
        init.CopyFrom(numpy_helper.from_array(ones, init.name))
    size = data.stat().st_size
    data.unlink()  # onnx appends to an existing data file
    onnx.save_model(
        proto,
        str(tmp_path / "again.onnx"),
        save_as_external_data=True,
        location="w.data",
        size_threshold=0,
    )
    assert data.stat().st_size == size  # the same layout: only the bytes and the stat change
    backdate(data)
    again = scan(model, Config(), cache=True, weights=True)
    assert scans.take() == ["ext.onnx"]
    assert render(again, "json") != render(first, "json")  # the energy figures moved
    scan(model, Config(), cache=True, weights=True)
    assert scans.take() == []


def test_prune_keeps_the_newest_entries_under_three_quarters_of_the_bounds() -> None:
    for k in range(10):
        usercache.write_json("kind", f"e{k}", {"k": k})
        folder = usercache.cache_dir()
        assert folder is not None
        os.utime(folder / "kind" / f"e{k}.json", ns=(k * 10**9, k * 10**9))
    usercache.prune("kind", max_entries=8, max_bytes=10**6)
    assert sorted(p.stem for p in (folder / "kind").glob("*.json")) == [
        f"e{k}" for k in range(4, 10)
    ]
    usercache.prune("kind", max_entries=100, max_bytes=4 * 8)  # each entry is 7 bytes: {"k":N}
    assert sorted(p.stem for p in (folder / "kind").glob("*.json")) == ["e7", "e8", "e9"]


def test_a_run_job_without_a_key_stores_nothing(models: Path) -> None:
    job = ScanJob(config=Config(), rules=convaudit.api.load_ruleset(Config()), context="x")
    report = run_job(job, str(models / "textbook_5x5.onnx"), None)
    assert report.facts is not None and report.facts.node_graph is not None
    folder = usercache.cache_dir()
    assert folder is not None and not (folder / resultcache.KIND).exists()
