"""``--jobs N``: scan many models in N worker processes started once, largest model first.

Processes, not threads: a scan is pure-Python graph walking that holds the GIL (threads gave no
speed-up when measured; see README, "Many models"). Where ``fork`` exists, the parent imports
onnx and the model modules and builds onnx's schema registry *before* the workers start, so the
workers share that work copy-on-write instead of each paying the ``import onnx`` floor; the rule
pack and the config reach each worker once (initializer), not once per model.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable, Sequence

from convaudit.audit import ScanJob, run_job
from convaudit.records import ModelReport

Progress = Callable[[int, int, str], None]

# What every worker needs, set once per worker by _init (never pickled per model).
_STATE: dict[str, ScanJob] = {}


def _init(job: ScanJob) -> None:
    _STATE["job"] = job


def _scan(path: str, key: str | None) -> ModelReport:
    return run_job(_STATE["job"], path, key)


def warm() -> None:
    """The one-time work every scan does before its first model: the model modules' imports
    (onnx, numpy, protobuf) and onnx's C++ schema registry, built on the first lookup."""
    from convaudit.model import analyse  # noqa: F401  (imported for its side effect: onnx)
    from convaudit.model.infer import get_schema

    get_schema("Conv", "", 11)


def largest_first(models: Sequence[str]) -> list[str]:
    """Models by file size, largest first (ties by path): the longest scans start first, so
    the last model to finish is a short one and no worker idles while another runs long."""

    def size(path: str) -> int:
        try:
            return os.stat(path).st_size
        except OSError:  # it fails in the worker, with the scan's own message
            return 0

    return sorted(models, key=lambda m: (-size(m), m))


def scan_parallel(
    models: list[str],
    keys: Sequence[str | None],
    job: ScanJob,
    jobs: int,
    progress: Progress | None,
    done: int = 0,
    total: int | None = None,
) -> tuple[ModelReport, ...]:
    """Reports of ``models`` in their given order, scanned by ``jobs`` processes (each stored as
    the cache entry of the same index in ``keys``); progress counts from ``done`` of ``total``."""
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # fork only on Linux: macOS's system libraries are not fork-safe (Python's default there
    # is spawn), and spawned workers import everything themselves.
    context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else None)
    if context.get_start_method() == "fork":
        warm()  # shared with the workers copy-on-write; spawned workers would redo it anyway
    total = len(models) + done if total is None else total
    key_of = dict(zip(models, keys, strict=True))
    by_path: dict[str, ModelReport] = {}
    with ProcessPoolExecutor(
        max_workers=min(jobs, len(models)),
        mp_context=context,
        initializer=_init,
        initargs=(job,),
    ) as pool:
        futures = {pool.submit(_scan, m, key_of[m]): m for m in largest_first(models)}
        for k, fut in enumerate(as_completed(futures), done + 1):
            m = futures[fut]
            try:
                by_path[m] = fut.result()
            except Exception as exc:  # the worker died (e.g. killed): record it, go on
                by_path[m] = ModelReport(
                    path=m, facts=None, errors=(f"{m}: worker failed: {type(exc).__name__}",)
                )
            if progress is not None:
                progress(k, total, m)
    return tuple(by_path[m] for m in models)
