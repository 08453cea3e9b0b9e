"""Scan a folder of models with --jobs 1/2/...: wall time and identical output; reporter timings.

The folder is the onnx package's nine `light` conformance networks, copied --copies times into a
temporary directory (so there are enough models to keep every process busy). Prints a Markdown
table. Not a test: timings depend on the machine.

    python benchmarks/bench_many.py [--copies 4] [--jobs 1 2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONVAUDIT = REPO / ".venv" / "bin" / "convaudit"


def light_models() -> list[Path]:
    import onnx

    light = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
    return sorted(light.glob("*.onnx"))


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, bytes]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, env=env, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr.decode()}")
    return elapsed, proc.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=4)
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    env = {**os.environ, "CI": "1"}  # no progress bar
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "models"
        for c in range(args.copies):
            for m in light_models():
                dest = folder / f"copy{c}" / m.name
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(m, dest)
        n = sum(1 for _ in folder.rglob("*.onnx"))
        print(f"{n} models, {os.cpu_count()} CPUs, median of {args.repeat} runs\n")
        print("| command | wall s | output sha256 |")
        print("|---|---:|---|")
        for jobs in args.jobs:
            cmd = [str(CONVAUDIT), "scan", str(folder), "-f", "json", "--jobs", str(jobs)]
            runs = [timed(cmd, env) for _ in range(args.repeat)]
            digest = hashlib.sha256(runs[0][1]).hexdigest()[:12]
            wall = statistics.median(t for t, _ in runs)
            print(f"| `scan --jobs {jobs}` | {wall:.2f} | {digest} |")
        # Reporter cost on the same result, in-process (the scan itself excluded).
        sys.path.insert(0, str(REPO))
        from convaudit import scan
        from convaudit.report import REPORTERS, render

        result = scan(str(folder / "copy0"))
        print("\n| format | render ms | size KB |")
        print("|---|---:|---:|")
        for fmt in REPORTERS:
            start = time.perf_counter()
            text = render(result, fmt)
            ms = 1000 * (time.perf_counter() - start)
            print(f"| {fmt} | {ms:.1f} | {len(text.encode()) / 1024:.1f} |")


if __name__ == "__main__":
    main()
