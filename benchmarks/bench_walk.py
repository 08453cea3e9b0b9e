"""Time a scan of long node chains: the walk and its topological sort must stay near-linear.

    python benchmarks/bench_walk.py [--nodes 200000] [--reverse-nodes 20000]

Two models: a chain of Relu nodes with one 1x1 conv at the end, stored in order, and a
shorter chain stored in reverse order (every producer after its consumer), which a pass-by-pass
sort handles in quadratic time. Prints wall time and peak memory (ru_maxrss) per model.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout


def chain(n: int, *, reverse: bool) -> onnx.ModelProto:
    """``n`` Relu nodes x -> t1 -> ... -> tn, then a 1x1 conv 4 -> 4 (so there is a layer)."""
    nodes = [helper.make_node("Relu", [f"t{i}"], [f"t{i + 1}"]) for i in range(n)]
    nodes.append(helper.make_node("Conv", [f"t{n}", "W"], ["y"], name="conv"))
    if reverse:
        nodes.reverse()
    graph = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("t0", TensorProto.FLOAT, [1, 4, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.ones((4, 4, 1, 1), np.float32), "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    return model


def timed_scan(path: Path) -> tuple[float, float]:
    """Seconds and peak MiB of ``convaudit scan`` in a fresh process."""
    code = (
        "import resource, sys, time; from convaudit import scan; t = time.perf_counter(); "
        "r = scan(sys.argv[1]); assert not r.reports[0].errors, r.reports[0].errors; "
        "print(time.perf_counter() - t, "
        "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
    )
    seconds, mib = out.stdout.split()
    return float(seconds), float(mib)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=200_000)
    parser.add_argument("--reverse-nodes", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for label, n, reverse in (
            ("chain in order", args.nodes, False),
            ("chain stored in reverse", args.reverse_nodes, True),
        ):
            path = Path(tmp) / f"chain_{n}_{int(reverse)}.onnx"
            onnx.save(chain(n, reverse=reverse), str(path))
            started = time.perf_counter()
            seconds, mib = timed_scan(path)
            wall = time.perf_counter() - started
            print(
                f"{label:>24}: {n:>7} nodes  scan {seconds:6.2f} s  ({wall:.2f} s with start-up)"
                f"  peak {mib:.0f} MiB"
            )


if __name__ == "__main__":
    main()
