"""Time convaudit's loader and scan against onnx and onnx-tool, each in a fresh process.

Reports whole-process wall time and peak RSS (median of --repeat runs, page cache warm) as a
Markdown table. Builds the models first if they are not cached (see build_models.py).

    python benchmarks/bench_scan.py [--cache-dir DIR] [--repeat 3] [--setup-peer]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from build_models import DEFAULT_CACHE, ensure_models  # noqa: E402

PYTHON = REPO / ".venv" / "bin" / "python"
CONVAUDIT = REPO / ".venv" / "bin" / "convaudit"
PEER_VENV = HERE / ".venv-peer"
PEER_PYTHON = PEER_VENV / "bin" / "python"
TIME = Path("/usr/bin/time")

LOADER = """
import sys, time
from convaudit.model.loader import load_model
start = time.perf_counter()
model = load_model(sys.argv[1])
print("LOAD_S", time.perf_counter() - start, len(model.proto.graph.node), len(model.stripped))
"""
ONNX_INFER = """
import sys, onnx
model = onnx.load(sys.argv[1], load_external_data=sys.argv[2] == "1")
onnx.shape_inference.infer_shapes(model)
"""
ONNX_TOOL = "import sys, onnx_tool; onnx_tool.model_profile(sys.argv[1])"
# Fallback when /usr/bin/time is missing: the wrapper's RUSAGE_CHILDREN covers only the child.
RUSAGE_WRAPPER = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps([time.perf_counter() - start, rss, done.returncode, done.stdout, done.stderr]))
"""


@dataclass(frozen=True, kw_only=True)
class Run:
    wall_s: float
    rss_mib: float
    ok: bool
    stdout: str
    error: str


def measure(argv: list[str], ok_codes: tuple[int, ...] = (0,)) -> Run:
    """Run ``argv`` once in a fresh process; wall time and peak RSS of that process."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONHASHSEED": "0"}
    if TIME.exists():
        done = subprocess.run(
            [str(TIME), "-v", *argv], capture_output=True, text=True, env=env, cwd=REPO
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
            env=env,
            cwd=REPO,
            check=True,
        )
        wall_s, rss_kib, code, out, err = json.loads(wrapped.stdout)
    lines = [
        line
        for line in err.strip().splitlines()
        if line.strip() and not line.startswith("Command exited with non-zero status")
    ]
    return Run(
        wall_s=wall_s,
        rss_mib=rss_kib / 1024,
        ok=code in ok_codes,
        stdout=out,
        error="" if code in ok_codes else (lines[-1] if lines else f"exit {code}")[:70],
    )


def median_run(argv: list[str], repeat: int, ok_codes: tuple[int, ...] = (0,)) -> Run:
    runs = [measure(argv, ok_codes) for _ in range(repeat)]
    if not all(r.ok for r in runs):
        return next(r for r in runs if not r.ok)
    return Run(
        wall_s=statistics.median(r.wall_s for r in runs),
        rss_mib=statistics.median(r.rss_mib for r in runs),
        ok=True,
        stdout=runs[0].stdout,
        error="",
    )


def cell(run: Run | str) -> str:
    if isinstance(run, str):
        return f"{run} | "
    if not run.ok:
        return f"failed after {run.wall_s:.2f} s: `{run.error}` | {run.rss_mib:,.0f}"
    return f"{run.wall_s:.2f} | {run.rss_mib:,.0f}"


def setup_peer() -> None:
    """Install onnx-tool into its own venv so it never touches the project's."""
    subprocess.run([str(PYTHON), "-m", "venv", str(PEER_VENV)], check=True)
    subprocess.run([str(PEER_PYTHON), "-m", "pip", "install", "-q", "onnx-tool"], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--repeat", type=int, default=3, help="runs per row; the median is shown")
    parser.add_argument("--setup-peer", action="store_true", help="pip install onnx-tool first")
    args = parser.parse_args()
    if args.setup_peer:
        setup_peer()
    models = ensure_models(args.cache_dir)
    py, repeat = str(PYTHON), args.repeat

    startup = [
        ("`python -c pass`", median_run([py, "-c", "pass"], repeat)),
        ("`python -c 'import onnx'` (baseline)", median_run([py, "-c", "import onnx"], repeat)),
    ]
    if CONVAUDIT.exists():
        startup.append(("`convaudit --help`", median_run([str(CONVAUDIT), "--help"], repeat)))
    else:
        startup.append(("`convaudit --help`", "not available (.venv/bin/convaudit missing)"))

    rows: dict[str, list[Run | str]] = {}
    load_times: list[str] = []
    for kind, path in models.items():
        model = str(path)
        loader = median_run([py, "-c", LOADER, model], repeat)
        if loader.ok:
            seconds, nodes, stripped = loader.stdout.split()[1:4]
            load_times.append(
                f"{kind}: {float(seconds) * 1000:.1f} ms ({nodes} nodes, {stripped} stripped)"
            )
        rows.setdefault("convaudit `load_model` (python -c)", []).append(loader)
        for flag, label in (
            ("1", "`onnx.load` + `infer_shapes`"),
            ("0", "`onnx.load(load_external_data=False)` + `infer_shapes`"),
        ):
            if flag == "0" and kind == "embedded":
                rows.setdefault(label, []).append("same as above (no external data)")
                continue
            rows.setdefault(label, []).append(
                median_run([py, "-c", ONNX_INFER, model, flag], repeat)
            )
        peer_label = "onnx-tool 1.0.1 `model_profile` (peer)"
        if PEER_PYTHON.exists():
            rows.setdefault(peer_label, []).append(
                median_run([str(PEER_PYTHON), "-c", ONNX_TOOL, model], repeat)
            )
        else:
            rows.setdefault(peer_label, []).append("not installed (run with --setup-peer)")
        scan_label = "`convaudit scan MODEL --format json`"
        if CONVAUDIT.exists():
            # Exit 1 means findings, which is a successful scan.
            argv = [str(CONVAUDIT), "scan", model, "--format", "json"]
            rows.setdefault(scan_label, []).append(median_run(argv, repeat, ok_codes=(0, 1)))
        else:
            rows.setdefault(scan_label, []).append("not available (.venv/bin/convaudit missing)")

    sizes = {
        k: sum(f.stat().st_size for f in p.parent.glob(p.name + "*")) / 1e9
        for k, p in models.items()
    }
    print(f"Median of {repeat} fresh processes, warm page cache; peak RSS in MiB.\n")
    print("| Startup | wall s | peak RSS MiB |\n|---|---:|---:|")
    for label, run in startup:
        print(f"| {label} | {cell(run)} |")
    print()
    print(
        f"| Task | VGG-16 embedded ({sizes['embedded']:.2f} GB) wall s | peak RSS MiB "
        f"| VGG-16-wide external ({sizes['external']:.2f} GB) wall s | peak RSS MiB |"
    )
    print("|---|---:|---:|---:|---:|")
    for label, runs in rows.items():
        print(f"| {label} | " + " | ".join(cell(r) for r in runs) + " |")
    print(f"\n`load_model` alone, in-process: {'; '.join(load_times)}.")
    if not TIME.exists():
        print("(measured with getrusage(RUSAGE_CHILDREN): /usr/bin/time not found)")
    if shutil.which("nproc"):
        cpus = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
        print(f"Machine: {cpus} CPUs, Python {sys.version.split()[0]}.")


if __name__ == "__main__":
    main()
