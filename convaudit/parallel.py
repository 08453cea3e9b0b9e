"""``--jobs N``: scan many models in N worker processes started first, largest model first.

Processes, not threads: a scan is pure-Python graph walking that holds the GIL (threads gave no
speed-up when measured; see README, "Many models"). When every model will be scanned (no result
cache), ``api.scan`` starts the first worker before it loads the rule pack or looks for models:
that worker does the one-time work of every scan (``warm``: imports, the schema table) on the
other core while the parent does that serial work; with the cache on, once the models it cannot
answer are known. The first worker then forks the others from itself (fork only), so they share
its warm-up copy-on-write; the parent imports none of the model modules. Each
worker gets the scan's ``ScanJob`` once, then one model at a time (two in flight, so it never
waits for the parent), and sends each report back as soon as it is made.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import sys
from collections import deque
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any

from convaudit.audit import ScanJob, run_job
from convaudit.records import ModelReport

Progress = Callable[[int, int, str], None]

IN_FLIGHT = 2  # models handed to a worker ahead of its reports: it never idles between two


def warm() -> None:
    """The one-time work every scan does before its first model: the model modules' imports
    and the schema table, from the user cache. Without that table a scan needs onnx
    (its import, its C++ schema registry built on the first lookup): then that too."""
    from convaudit.model import analyse, lite  # noqa: F401  (imported for their side effects)
    from convaudit.model.schemas import table

    if table() is None:
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


def _serve(conn: Connection, *, warmed: bool = False) -> None:
    """A worker: warm up (unless forked warm), take the job, then scan each (index, path, key)
    it is sent."""
    try:
        if not warmed:
            warm()
        job: ScanJob | None = None
        while True:
            message = conn.recv()
            if message is None:
                return
            if isinstance(message, ScanJob):
                job = message
                continue
            index, path, key = message
            assert job is not None, "a model before the job"
            report = run_job(job, path, key)
            if job.prerender_json:
                from convaudit.report.json_report import prerender

                prerender(report)
            conn.send((index, report))
    except (EOFError, BrokenPipeError, ConnectionResetError, KeyboardInterrupt):
        return  # the parent went away or stopped us: nothing left to report to


def _zygote(conns: list[Connection], parents: list[Connection]) -> None:
    """The first worker (fork only): warm up once, then fork the others from itself, so they
    share that work copy-on-write and ``import onnx`` runs once while the parent loads rules."""
    for conn in parents:  # the parent's ends, inherited: the workers must see EOF when it closes
        conn.close()
    children: list[int] = []
    try:
        warm()
    except BaseException:
        return
    # What warm made stays out of every worker's collections: a full collection would otherwise
    # visit (and so copy, page by page) objects the workers share.
    gc.freeze()
    for conn in conns[1:]:
        pid = os.fork()
        if pid == 0:  # a sibling: serve its own pipe and nothing else
            for other in conns:
                if other is not conn:
                    other.close()
            try:
                _serve(conn, warmed=True)
            finally:
                os._exit(0)
        children.append(pid)
        conn.close()
    _serve(conns[0], warmed=True)
    for pid in children:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


class Workers:
    """``jobs`` worker processes, started now (before the scan knows its models)."""

    def __init__(self, jobs: int) -> None:
        # fork only on Linux: macOS's system libraries are not fork-safe (Python's default there
        # is spawn, and each worker warms up itself).
        context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else None)
        pipes = [context.Pipe() for _ in range(jobs)]
        self._conns = [ours for ours, _ in pipes]
        self._done = False
        if context.get_start_method() == "fork":
            self._processes: list[Any] = [
                context.Process(
                    target=_zygote, args=([t for _, t in pipes], self._conns), daemon=True
                )
            ]
        else:
            self._processes = [
                context.Process(target=_serve, args=(theirs,), daemon=True) for _, theirs in pipes
            ]
        for process in self._processes:
            process.start()
        for _, theirs in pipes:
            theirs.close()

    def scan(
        self,
        models: Sequence[str],
        keys: Sequence[str | None],
        job: ScanJob,
        progress: Progress | None = None,
        done: int = 0,
        total: int | None = None,
    ) -> tuple[ModelReport, ...]:
        """Reports of ``models`` in their given order (each stored as the cache entry of the same
        index in ``keys``); ``progress`` counts on from ``done`` of ``total`` as reports come."""
        total = len(models) + done if total is None else total
        index_of = {m: i for i, m in enumerate(models)}
        todo = deque(index_of[m] for m in largest_first(models))
        queued: dict[Connection, deque[int]] = {}
        reports: dict[int, ModelReport] = {}

        def record(index: int, report: ModelReport) -> None:
            reports[index] = report
            if progress is not None:
                progress(done + len(reports), total, models[index])

        def failed(index: int, why: str) -> None:
            path = models[index]
            record(
                index, ModelReport(path=path, facts=None, errors=(f"{path}: worker failed: {why}",))
            )

        def feed(conn: Connection) -> None:
            # Near the end one at a time: a model queued behind another would wait there while
            # a worker that has finished sits idle.
            while todo and len(queued[conn]) < (IN_FLIGHT if len(todo) > len(queued) else 1):
                index = todo.popleft()
                queued[conn].append(index)
                conn.send((index, models[index], keys[index]))

        def lost(conn: Connection) -> None:
            """The worker behind ``conn`` died: its current model failed, the rest go back."""
            waiting = queued.pop(conn)
            if waiting:
                failed(waiting.popleft(), "its process ended")
                todo.extendleft(reversed(waiting))

        for conn in self._conns:
            queued[conn] = deque()
            try:
                conn.send(job)
                feed(conn)
            except OSError:
                lost(conn)
        while queued and any(queued.values()):
            for ready in wait([c for c, q in queued.items() if q]):
                if not isinstance(ready, Connection) or ready not in queued:
                    continue
                conn = ready
                try:
                    index, report = conn.recv()
                except Exception:  # EOF, or half a message: the worker died mid-send
                    lost(conn)
                    continue
                queued[conn].remove(index)
                record(index, report)
                try:
                    feed(conn)
                except OSError:
                    lost(conn)
            for conn in queued:  # hand what a lost worker left to the others
                if len(queued[conn]) < IN_FLIGHT and todo:
                    try:
                        feed(conn)
                    except OSError:
                        lost(conn)
                        break
        for index in todo:  # every worker died
            failed(index, "no worker process left")
        self._done = True
        return tuple(reports[i] for i in range(len(models)))

    def close(self) -> None:
        """Stop the workers: idle ones are told to exit, busy ones (a scan that needed none of
        them, or an error) are terminated rather than waited for."""
        for conn in self._conns:
            if self._done:
                with contextlib.suppress(OSError):
                    conn.send(None)
            conn.close()  # a worker forked by the zygote sees EOF and exits
        for process in self._processes:
            if not self._done:
                process.terminate()
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join()
        self._conns, self._processes = [], []

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def scan_parallel(
    models: list[str],
    keys: Sequence[str | None],
    job: ScanJob,
    jobs: int,
    progress: Progress | None,
    done: int = 0,
    total: int | None = None,
) -> tuple[ModelReport, ...]:
    """Reports of ``models`` in their given order, scanned by ``jobs`` workers started now."""
    with Workers(min(jobs, len(models))) as workers:
        return workers.scan(models, keys, job, progress, done, total)
