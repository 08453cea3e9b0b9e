"""Measure ``convaudit fix`` end to end: MACs, onnxruntime latency and error, its own cost.

Each row is one ``convaudit fix ... --format json`` in a fresh process under /usr/bin/time -v:
the latency ratio and measured error come from fix's own onnxruntime validation (median of
interleaved single-threaded runs, seeded random inputs), the wall time and peak RSS are the
whole process's. Each model is fixed --repeat times and the run with the median speedup is shown.

    python benchmarks/bench_fix.py [--cache-dir DIR] [--skip-vgg] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from build_models import DEFAULT_CACHE, EMBEDDED, build_embedded  # noqa: E402

CONVAUDIT = REPO / ".venv" / "bin" / "convaudit"
TIME = Path("/usr/bin/time")
SAMPLES = REPO / "sample_models"


@dataclass(frozen=True, kw_only=True)
class Case:
    label: str
    model: Path
    args: tuple[str, ...] = ()


def low_rank_textbook(path: Path) -> Path:
    """The textbook 5x5 480->48 layer with a rank-16 weight plus 1% noise (trained-like)."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((16, 480)), rng.standard_normal((48, 16, 5, 5))
    w = np.einsum("orhw,rc->ochw", b, a)
    w = (w + 0.01 * np.sqrt(np.mean(w**2)) * rng.standard_normal(w.shape)) / np.sqrt(480 * 25)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w"], ["out"], name="conv5x5", pads=[2] * 4)],
        "textbook_low_rank",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 480, 14, 14])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 48, 14, 14])],
        initializer=[numpy_helper.from_array(w.astype(np.float32), "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save_model(model, str(path))
    return path


def run_fix(case: Case, out_dir: Path) -> dict[str, Any]:
    out = out_dir / f"{case.model.stem}.fixed.onnx"
    cmd = [str(CONVAUDIT), "fix", str(case.model), "-o", str(out), "--format", "json", *case.args]
    start = time.perf_counter()
    if TIME.exists():
        done = subprocess.run([str(TIME), "-v", *cmd], capture_output=True, text=True)
        match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
        rss_mib = int(match.group(1)) / 1024 if match else float("nan")
    else:
        done = subprocess.run(cmd, capture_output=True, text=True)
        rss_mib = float("nan")
    wall = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"{case.label}: fix failed ({done.returncode}): {done.stderr[-800:]}")
    doc: dict[str, Any] = json.loads(done.stdout)
    doc["_wall_s"], doc["_rss_mib"] = wall, rss_mib
    for p in out_dir.glob(out.name + "*"):
        p.unlink()
    return doc


def _human(n: float) -> str:
    for suffix, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{suffix}"
    return str(n)


def _pct(x: float, fine: bool = False) -> str:
    return f"{100 * x:.2f}%" if fine and 0.99 < x < 1 else f"{100 * x:.1f}%"


def _span(values: list[float], fine: bool = False) -> str:
    """One value, or the range over the rewritten layers (``fine``: 99.99%, not 100.0%)."""
    lo, hi = _pct(min(values), fine), _pct(max(values), fine)
    return lo if lo == hi else f"{lo}–{hi}"


def row(case: Case, doc: dict[str, Any]) -> str:
    done = [x for x in doc["layers"] if x["rewritten"]]
    t = doc["totals"]
    v = doc["validation"]
    widths = sorted({x["width"] for x in done})
    energy = _span([x["energy_retained"] for x in done], fine=True)
    pred = _span([x["predicted_error"] for x in done])
    meas = _span([x["measured_error"] for x in done])
    return (
        f"| {case.label} | {len(done)} (r={','.join(map(str, widths))}) "
        f"| {_human(t['before']['macs'])} → {_human(t['after']['macs'])} "
        f"({t['before']['macs'] / t['after']['macs']:.2f}x) "
        f"| {1000 * v['latency_before_s']:.2f} → {1000 * v['latency_after_s']:.2f} ms "
        f"(**{v['speedup']:.2f}x**) "
        f"| {energy} | {pred} / {meas} "
        f"| {100 * v['error']:.1f}% "
        f"| {doc['_wall_s']:.1f} s | {doc['_rss_mib']:.0f} MiB |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--skip-vgg", action="store_true", help="leave out the 553 MB VGG-16")
    parser.add_argument(
        "--repeat", type=int, default=3, help="fix runs per model; the row is the median run"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="convaudit-bench-fix-"))
    cases = [
        Case(label="textbook 5x5 480→48 (random weights)", model=SAMPLES / "textbook_5x5.onnx"),
        Case(
            label="textbook 5x5 480→48 (rank-16 + 1% noise weights)",
            model=low_rank_textbook(work / "textbook_low_rank.onnx"),
        ),
        Case(
            label="inception (4a) block: 3x3 and 5x5 branches, --target-saving 1.5",
            model=SAMPLES / "inception_block.onnx",
            args=(
                "--node",
                "inception_4a/3x3",
                "--node",
                "inception_4a/5x5",
                "--target-saving",
                "1.5",
            ),
        ),
    ]
    if not args.skip_vgg:
        vgg = args.cache_dir / EMBEDDED
        if not vgg.exists():
            args.cache_dir.mkdir(parents=True, exist_ok=True)
            build_embedded(vgg)
        cases.append(Case(label="VGG-16, 553 MB (random weights), every CA101", model=vgg))
    lines = [
        "| model | layers rewritten | MACs before → after | latency before → after "
        "| energy kept | predicted / measured layer error | end-to-end error "
        "| fix wall time | fix peak RSS |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for case in cases:
        print(f"running {case.label} ...", file=sys.stderr)
        runs = sorted(
            (run_fix(case, work) for _ in range(args.repeat)),
            key=lambda d: d["validation"]["speedup"],
        )
        lines.append(row(case, runs[len(runs) // 2]))  # the run with the median speedup
    print("\n".join(lines))


if __name__ == "__main__":
    main()
