"""Whole-process measurements: one fresh process per run, wall time and peak RSS, medians.

Commands that are compared run in alternating rounds (A B C, B C A, C A B, ...) rather than one
after another, so that a burst of load from other work on the machine lands on all of them
alike instead of on whichever happened to run then.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TIME = Path("/usr/bin/time")
# CI=1: no progress bar, as in a CI job. PYTHONHASHSEED: onnx-tool's row order is hash-dependent.
ENV = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONHASHSEED": "0", "CI": "1"}
# Fallback when /usr/bin/time is missing: the wrapper's RUSAGE_CHILDREN covers only the child.
RUSAGE_WRAPPER = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps([time.perf_counter() - start, rss, done.returncode, done.stdout, done.stderr]))
"""


@dataclass(frozen=True, kw_only=True)
class Command:
    """One thing to time: its argv and the exit codes that mean it did its job."""

    argv: tuple[str, ...]
    ok_codes: tuple[int, ...] = (0,)


@dataclass(frozen=True, kw_only=True)
class Run:
    wall_s: float
    rss_mib: float
    ok: bool
    stdout: str
    error: str


@dataclass(frozen=True, kw_only=True)
class Summary:
    """Medians over the successful runs of one command, with the spread of the wall times."""

    runs: int
    wall_s: float  # median
    wall_min_s: float
    wall_max_s: float
    rss_mib: float  # median
    ok: bool
    stdout: str  # of the first run
    error: str  # the first failure's last stderr line; a failed command is not run again

    def cell(self) -> str:
        """``wall s | peak RSS MiB`` for the large-model table."""
        if not self.ok:
            return f"failed after {self.wall_s:.2f} s: `{self.error}` | {self.rss_mib:,.0f}"
        return f"{self.wall_s:.2f} | {self.rss_mib:,.0f}"

    def ms(self) -> str:
        """Median wall in ms with its min-max spread, e.g. ``412 (398-455)``."""
        if not self.ok:
            return f"fails: `{self.error}`"
        return (
            f"{1000 * self.wall_s:.0f} ({1000 * self.wall_min_s:.0f}-{1000 * self.wall_max_s:.0f})"
        )


def measure(command: Command) -> Run:
    """Run ``command`` once in a fresh process; wall time and peak RSS of that process."""
    argv = list(command.argv)
    if TIME.exists():
        done = subprocess.run(
            [str(TIME), "-v", *argv], capture_output=True, text=True, env=ENV, cwd=REPO
        )
        wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", done.stderr)
        rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
        assert wall and rss, done.stderr[-500:]
        hours, minutes, seconds = wall.groups()
        wall_s = int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)
        rss_kib, code, out, err = int(rss.group(1)), done.returncode, done.stdout, done.stderr
        err = err[: err.find("\tCommand being timed")]
    else:
        wrapped = subprocess.run(
            [sys.executable, "-c", RUSAGE_WRAPPER, *argv],
            capture_output=True,
            text=True,
            env=ENV,
            cwd=REPO,
            check=True,
        )
        wall_s, rss_kib, code, out, err = json.loads(wrapped.stdout)
    lines = [
        line
        for line in err.strip().splitlines()
        if line.strip() and not line.startswith("Command exited with non-zero status")
    ]
    ok = code in command.ok_codes
    return Run(
        wall_s=wall_s,
        rss_mib=rss_kib / 1024,
        ok=ok,
        stdout=out,
        error="" if ok else (lines[-1] if lines else f"exit {code}")[:90],
    )


def summarise(runs: Sequence[Run]) -> Summary:
    good = [r for r in runs if r.ok]
    if len(good) < len(runs):
        bad = next(r for r in runs if not r.ok)
        return Summary(
            runs=len(runs),
            wall_s=bad.wall_s,
            wall_min_s=bad.wall_s,
            wall_max_s=bad.wall_s,
            rss_mib=bad.rss_mib,
            ok=False,
            stdout=bad.stdout,
            error=bad.error,
        )
    walls = [r.wall_s for r in good]
    return Summary(
        runs=len(good),
        wall_s=statistics.median(walls),
        wall_min_s=min(walls),
        wall_max_s=max(walls),
        rss_mib=statistics.median(r.rss_mib for r in good),
        ok=True,
        stdout=good[0].stdout,
        error="",
    )


def alternate(
    commands: Mapping[str, Command], rounds: int, *, warmup: bool = True
) -> dict[str, Summary]:
    """Run every command once per round, rotating the order each round; one summary per command.

    ``warmup`` runs each command once first, untimed: it writes any missing bytecode and pulls
    the model and the interpreter's files into the page cache, so no measured run pays for that.
    A command that fails is not run again (its failure is the result).
    """
    names = list(commands)
    runs: dict[str, list[Run]] = {name: [] for name in names}
    if warmup:
        for name in names:
            first = measure(commands[name])
            if not first.ok:
                runs[name].append(first)
    for i in range(rounds):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            if runs[name] and not runs[name][-1].ok:
                continue
            runs[name].append(measure(commands[name]))
    return {name: summarise(r) for name, r in runs.items()}
