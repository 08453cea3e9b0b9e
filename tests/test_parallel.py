"""--jobs: workers started before the rule pack loads, models handed out largest first, reports
back in the models' order; a worker that dies costs only the model it was scanning."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import convaudit.parallel
from convaudit.api import load_ruleset, scan
from convaudit.audit import ScanJob
from convaudit.config import Config
from convaudit.parallel import Workers, largest_first
from convaudit.records import ModelReport
from convaudit.report import render

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_models"
NAMES = ("textbook_5x5.onnx", "textbook_bottleneck.onnx", "inception_block.onnx")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Three copies of the three sample models: nine models in three sub-folders."""
    for k in range(3):
        sub = tmp_path / "models" / f"copy{k}"
        sub.mkdir(parents=True)
        for name in NAMES:
            shutil.copy(SAMPLES / name, sub / name)
    return tmp_path / "models"


@pytest.mark.parametrize("jobs", [2, 3, 5])
def test_any_number_of_workers_gives_the_serial_result(folder: Path, jobs: int) -> None:
    serial = scan(folder, Config(), graphs=False)
    seen: list[tuple[int, int]] = []
    parallel = scan(
        folder, Config(), jobs=jobs, graphs=False, progress=lambda k, n, _: seen.append((k, n))
    )
    assert [r.path for r in parallel.reports] == [r.path for r in serial.reports]
    for fmt in ("json", "sarif", "markdown"):
        assert render(parallel, fmt) == render(serial, fmt)
    assert seen == [(k, 9) for k in range(1, 10)]


def test_reports_keep_their_node_graph_unless_asked_not_to(folder: Path) -> None:
    kept = scan(folder, Config(), jobs=2)
    assert all(r.facts is not None and r.facts.node_graph is not None for r in kept.reports)
    dropped = scan(folder, Config(), jobs=2, graphs=False)
    assert all(r.facts is not None and r.facts.node_graph is None for r in dropped.reports)


def test_a_worker_that_dies_costs_only_its_model(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = convaudit.parallel.run_job
    doomed = str(folder / "copy1" / "inception_block.onnx")

    def run_job(job: ScanJob, path: str, key: str | None) -> ModelReport:
        if path == doomed:
            os._exit(9)  # as if killed mid-scan
        return real(job, path, key)

    monkeypatch.setattr(convaudit.parallel, "run_job", run_job)
    result = scan(folder, Config(), jobs=2)
    by_path = {r.path: r for r in result.reports}
    assert by_path[doomed].errors == (f"{doomed}: worker failed: its process ended",)
    others = [r for p, r in by_path.items() if p != doomed]
    assert len(others) == 8 and all(r.facts is not None and not r.errors for r in others)


def test_when_every_worker_dies_every_model_is_an_error_not_a_hang(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def run_job(job: ScanJob, path: str, key: str | None) -> ModelReport:
        os._exit(9)

    monkeypatch.setattr(convaudit.parallel, "run_job", run_job)
    result = scan(folder, Config(), jobs=2)
    assert len(result.reports) == 9
    assert all(r.facts is None and "worker failed" in r.errors[0] for r in result.reports)


def test_workers_not_needed_are_stopped_without_waiting(folder: Path) -> None:
    workers = Workers(2)
    processes = list(workers._processes)
    workers.close()
    assert all(not p.is_alive() for p in processes)
    with Workers(2) as used:
        job = ScanJob(config=Config(), rules=load_ruleset(Config()), graphs=False)
        models = [str(p) for p in sorted(folder.rglob("*.onnx"))]
        reports = used.scan(models, [None] * len(models), job)
        assert [r.path for r in reports] == models


def test_largest_first_orders_by_size_then_path(tmp_path: Path) -> None:
    for name, size in (("b", 10), ("a", 10), ("c", 30)):
        (tmp_path / name).write_bytes(bytes(size))
    paths = [str(tmp_path / n) for n in ("a", "b", "c", "missing")]
    assert largest_first(paths) == [paths[2], paths[0], paths[1], paths[3]]


def test_the_parent_of_a_jobs_scan_never_imports_onnx(folder: Path, tmp_path: Path) -> None:
    code = (
        "import sys\n"
        f"sys.argv = ['convaudit', 'scan', {str(folder)!r}, '-f', 'json', '--jobs', '2']\n"
        "from convaudit.cli import app\n"
        "try:\n    app()\nexcept SystemExit:\n    pass\n"
        "print('onnx' in sys.modules, file=sys.stderr)\n"
    )
    env = {**os.environ, "CONVAUDIT_NO_CACHE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert done.stdout.count('"path"') >= 9, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "False"


def test_with_the_cache_on_workers_start_only_for_two_misses_or_more(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[int] = []
    real = Workers.__init__

    def counted(self: Workers, jobs: int) -> None:
        started.append(jobs)
        real(self, jobs)

    monkeypatch.setattr(Workers, "__init__", counted)
    for model in folder.rglob("*.onnx"):  # old enough to be stored (resultcache.RACY_NS)
        os.utime(model, ns=(10**18, 10**18))
    first = scan(folder, Config(), jobs=2, cache=True)
    assert started == [2]  # nine misses
    again = scan(folder, Config(), jobs=2, cache=True)
    assert started == [2]  # nine hits: no worker started
    assert render(again, "json") == render(first, "json")
    one = folder / "copy0" / "textbook_5x5.onnx"
    os.utime(one, ns=(10**18 + 1, 10**18 + 1))
    scan(folder, Config(), jobs=2, cache=True)
    assert started == [2]  # one miss: scanned in the parent
    scan(folder, Config(), jobs=2)
    assert started == [2, 2]  # no cache: started first, before the rule pack


def test_spawned_workers_warm_up_themselves_and_give_the_same_result(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import multiprocessing

    spawn = multiprocessing.get_context("spawn")  # macOS's and Windows' start method
    monkeypatch.setattr(convaudit.parallel.multiprocessing, "get_context", lambda _: spawn)
    three = folder / "copy0"
    serial = scan(three, Config(), graphs=False)
    spawned = scan(three, Config(), jobs=2, graphs=False)
    assert render(spawned, "json") == render(serial, "json")


def test_workers_write_the_json_text_the_parent_would(folder: Path, tmp_path: Path) -> None:
    """prerender_json: each worker writes its models' part of the JSON report, and the document
    is byte for byte what the parent writes from the plain reports."""
    serial = scan(folder, Config(), graphs=False)
    parallel = scan(folder, Config(), jobs=2, graphs=False, prerender_json=True)
    assert all(isinstance(r.__dict__.get("_json_text"), str) for r in parallel.reports)
    assert not any("_json_text" in r.__dict__ for r in serial.reports)
    assert render(parallel, "json") == render(serial, "json")
    for fmt in ("sarif", "markdown", "table"):  # the other formats never read it
        assert render(parallel, fmt) == render(serial, fmt)


def test_a_changed_report_never_keeps_the_text_of_the_old_one(folder: Path, tmp_path: Path) -> None:
    """The baseline hides known findings by making new reports: the written text stays with the
    old ones, so the JSON shows what the baseline left, as a serial scan's does."""
    from convaudit.baseline import apply_baseline, load_baseline, render_baseline

    serial = scan(folder, Config(), graphs=False)
    assert serial.findings, "the sample models have findings to baseline"
    path = tmp_path / "baseline.json"
    path.write_text(render_baseline(serial))
    baseline = load_baseline(path)
    parallel = scan(folder, Config(), jobs=2, graphs=False, prerender_json=True)
    hidden_serial = apply_baseline(serial, baseline)
    hidden_parallel = apply_baseline(parallel, baseline)
    assert not hidden_parallel.findings
    assert render(hidden_parallel, "json") == render(hidden_serial, "json")
    assert render(hidden_parallel, "json") != render(parallel, "json")


def test_the_cli_asks_for_the_text_only_when_it_prints_json(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run_scan imports api.scan when it runs, so the spy below is what it calls."""
    import convaudit.api
    from convaudit import command

    asked: list[bool] = []
    original = convaudit.api.scan

    def spy(*args: object, **kwargs: object) -> object:
        asked.append(bool(kwargs.get("prerender_json")))
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(convaudit.api, "scan", spy)
    for fmt, statistics, expected in (
        ("json", False, True),
        ("table", False, False),
        ("json", True, False),
        ("sarif", False, False),
    ):
        command.run_scan([str(folder)], fmt=fmt, jobs=2, statistics=statistics, no_cache=True)
        assert asked.pop() is expected, (fmt, statistics)
    command.run_scan(
        [str(folder)],
        fmt="table",
        jobs=2,
        report=[f"json={folder.parent / 'r.json'}"],
        no_cache=True,
    )
    assert asked.pop() is True
