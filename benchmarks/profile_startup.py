"""Where a small-model scan's time goes: phases, -X importtime by package, and cProfile probes.

Runs the console script's code path (`convaudit.launch:main`) on one small model from
small_models.py and prints Markdown: the brief for making a scan start faster (issue 12).

    python benchmarks/profile_startup.py [--model 320n.onnx] [--runs 7] [--top 25]
"""

from __future__ import annotations

import argparse
import io
import json
import pstats
import re
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from measure import ENV, REPO  # noqa: E402
from small_models import DEFAULT_CACHE, MODELS, ensure_small_models  # noqa: E402

PYTHON = REPO / ".venv" / "bin" / "python"
# Times the three phases of one scan in a fresh process: the floor import, the CLI's own
# imports on top of it, and running the command (which imports what it needs lazily).
PHASES = """
import sys, time
t0 = time.perf_counter()
import onnx
t1 = time.perf_counter()
from convaudit.launch import main
t2 = time.perf_counter()
sys.argv = ["convaudit", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
t3 = time.perf_counter()
print("PHASES", t1 - t0, t2 - t1, t3 - t2, file=sys.stderr)
"""
# Through the public API: the first scan in a process pays the one-time costs (lazy imports,
# building the rule pack); the second scan of the same model is the per-model work alone.
COLD_WARM = """
import json, sys, time
t0 = time.perf_counter()
import onnx
t1 = time.perf_counter()
import convaudit
t2 = time.perf_counter()
shapes = {k: tuple(int(d) for d in v.split("x")) for k, v in json.loads(sys.argv[2]).items()}
config = convaudit.Config(input_shapes=shapes)
convaudit.scan(sys.argv[1], config)
t3 = time.perf_counter()
convaudit.scan(sys.argv[1], config)
t4 = time.perf_counter()
print("COLD_WARM", t1 - t0, t2 - t1, t3 - t2, t4 - t3, file=sys.stderr)
"""
# One process, `import onnx` first (the floor pays that), then each item timed on top of what
# came before it: the order is the order a scan meets them.
COMPONENTS = """
import json, sys, time
import onnx
def timed(label, fn):
    start = time.perf_counter()
    value = fn()
    print("COMPONENT", label, time.perf_counter() - start, file=sys.stderr)
    return value
timed("`import tomllib` (config discovery reads pyproject.toml)", lambda: __import__("tomllib"))
timed("`import convaudit.launch` (the console script's)", lambda: __import__("convaudit.launch"))
timed("`import yaml` (rule files)", lambda: __import__("yaml"))
from convaudit import Config, scan
from convaudit.api import load_ruleset
timed("build the rule pack, first time (imports the rules modules)", lambda: load_ruleset(Config()))
timed("build the rule pack again (read, parse, validate the YAML)", lambda: load_ruleset(Config()))
timed("first `onnx.defs.get_schema` (onnx builds its schema registry)",
      lambda: onnx.defs.get_schema("Conv", max_inclusive_version=17, domain=""))
shapes = {k: tuple(int(d) for d in v.split("x")) for k, v in json.loads(sys.argv[2]).items()}
config = Config(input_shapes=shapes)
result = timed("first scan of the model (public API)", lambda: scan(sys.argv[1], config))
timed("second scan of the model (per-model work only)", lambda: scan(sys.argv[1], config))
from convaudit.report import render
text = timed("render the JSON report (json.dumps with indent: pure-Python encoder)",
             lambda: render(result, "json"))
data = json.loads(text)
timed("the same data through json.dumps without indent (C encoder)", lambda: json.dumps(data))
"""
RUN_CLI = """
import sys
from convaudit.launch import main
sys.argv = ["convaudit", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
"""
# What cProfile is asked about by name: (label, regex on "file:line(function)").
PROBES = (
    ("inspect.cleandoc", r"inspect\.py:\d+\(cleandoc\)"),
    ("re.compile (all, cached or not)", r"re/__init__\.py:\d+\(_compile\)"),
    ("regex compiles that missed re's cache", r"_compiler\.py:\d+\(compile\)"),
    (
        "imports during the run (after `import onnx`)",
        r"<frozen importlib._bootstrap>:\d+\(_find_and_load\)",
    ),
    ("rule pack: load_ruleset (read, parse, validate, configure)", r"\(load_ruleset\)"),
    ("rule pack: rule files read", r"convaudit/rules/loader\.py:\d+\(load_file\)"),
    ("rule pack: YAML parsing", r"\(get_single_data\)"),
    ("onnx.defs.get_schema", r"onnx/defs/__init__\.py:\d+\(get_schema\)|\(get_schema\)"),
    ("convaudit config load", r"convaudit/config.*\((load_config|find_config|resolve_config)\)"),
    ("convaudit model analysis", r"convaudit/.*\(analyse_model\)"),
    ("report rendering", r"convaudit/report/.*\(render\)"),
    ("typer: build the click command", r"typer/main\.py:\d+\(get_command\)"),
    ("dataclass creation", r"dataclasses\.py:\d+\(dataclass\)|dataclasses\.py:\d+\(wrap\)"),
    ("namedtuple / Enum creation", r"collections/__init__\.py:\d+\(namedtuple\)"),
)


def cold_warm(runs: int) -> None:
    """Per model: the first and the second scan in one process (public API, no CLI)."""
    print(f"### One-time vs per-model cost (public API, median of {runs} fresh processes)\n")
    print(
        "| model | `import onnx` ms | `import convaudit` ms | first scan ms "
        "| second scan ms (per-model work) | one-time ms (first - second) |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    columns: list[list[float]] = [[] for _ in range(5)]
    for model, path in ensure_small_models(DEFAULT_CACHE).items():
        rows = []
        for _ in range(runs):
            done = run([str(PYTHON), "-c", COLD_WARM, str(path), json.dumps(dict(model.inputs))])
            line = next(x for x in done.stderr.splitlines() if x.startswith("COLD_WARM"))
            rows.append([float(x) for x in line.split()[1:]])
        med = [1000 * statistics.median(r[i] for r in rows) for i in range(4)]
        med.append(med[2] - med[3])
        for column, value in zip(columns, med, strict=True):
            column.append(value)
        print(f"| `{model.name}` | " + " | ".join(f"{v:.0f}" for v in med) + " |")
        sys.stdout.flush()
    print(
        "| **median over models** | "
        + " | ".join(f"**{statistics.median(c):.0f}**" for c in columns)
        + " |\n"
    )


def components(name: str, runs: int) -> None:
    model = next(m for m in MODELS if m.name == name)
    path = ensure_small_models(DEFAULT_CACHE)[model]
    samples: dict[str, list[float]] = defaultdict(list)
    for _ in range(runs):
        done = run([str(PYTHON), "-c", COMPONENTS, str(path), json.dumps(dict(model.inputs))])
        for line in done.stderr.splitlines():
            if line.startswith("COMPONENT "):
                label, _, seconds = line.removeprefix("COMPONENT ").rpartition(" ")
                samples[label].append(float(seconds))
        if done.returncode:
            print(f"(components run failed: {done.stderr.strip().splitlines()[-1]})\n")
    print(f"### Component costs on top of `import onnx` (median of {runs} fresh processes)\n")
    print("| step, in the order a scan meets it | ms | min-max |\n|---|---:|---:|")
    for label, values in samples.items():
        print(
            f"| {label} | {1000 * statistics.median(values):.1f} "
            f"| {1000 * min(values):.1f}-{1000 * max(values):.1f} |"
        )
    print()


def scan_argv(name: str) -> tuple[list[str], str]:
    paths = ensure_small_models(DEFAULT_CACHE)
    model = next(m for m in MODELS if m.name == name)
    path = paths[model]
    return ["scan", str(path), *model.convaudit_args(), "--format", "json"], model.wheel.requirement


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, env=ENV, cwd=REPO, check=False)


def phases(args: list[str], runs: int) -> None:
    floor, cli, command, whole = [], [], [], []
    for _ in range(runs):
        done = run([str(PYTHON), "-c", PHASES, *args])
        line = next(x for x in done.stderr.splitlines() if x.startswith("PHASES"))
        a, b, c = (float(x) for x in line.split()[1:])
        floor.append(a)
        cli.append(b)
        command.append(c)
        whole.append(a + b + c)
    print(f"### Phases (in-process perf_counter, median of {runs} fresh processes)\n")
    print("| phase | ms | min-max |\n|---|---:|---:|")
    for label, values in (
        ("`import onnx` (the floor's work)", floor),
        ("`from convaudit.launch import main` on top of it", cli),
        ("`main()`: parse, config, rules, load, shapes, cost, rules, JSON", command),
        ("total (interpreter start-up not included)", whole),
    ):
        print(
            f"| {label} | {1000 * statistics.median(values):.0f} "
            f"| {1000 * min(values):.0f}-{1000 * max(values):.0f} |"
        )
    print()


def importtime(args: list[str], runs: int, top: int) -> None:
    """-X importtime of the console script's path; self time summed by top-level package."""
    per_run: list[dict[str, float]] = []
    cumulative: list[dict[str, float]] = []
    for _ in range(runs):
        done = run([str(PYTHON), "-X", "importtime", "-c", RUN_CLI, *args])
        by_package: dict[str, float] = defaultdict(float)
        cum: dict[str, float] = {}
        for line in done.stderr.splitlines():
            m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
            if not m:
                continue
            self_us, cum_us, _indent, name = int(m[1]), int(m[2]), m[3], m[4]
            by_package[name.split(".")[0]] += self_us / 1000
            cum[name] = cum_us / 1000
        per_run.append(by_package)
        cumulative.append(cum)
    packages = {p for r in per_run for p in r}
    median = {p: statistics.median(r.get(p, 0.0) for r in per_run) for p in packages}
    total = statistics.median(sum(r.values()) for r in per_run)
    print(f"### Imports by top-level package (-X importtime self time, median of {runs} runs)\n")
    print(f"All imports: {total:.0f} ms (importtime itself adds overhead; compare shares).\n")
    print("| package | self ms | share |\n|---|---:|---:|")
    for package, ms in sorted(median.items(), key=lambda kv: -kv[1])[:top]:
        print(f"| `{package}` | {ms:.1f} | {100 * ms / total:.0f}% |")
    print()
    names = {n for c in cumulative for n in c}
    cum_median = {n: statistics.median(c.get(n, 0.0) for c in cumulative) for n in names}
    ours = sorted(
        ((n, ms) for n, ms in cum_median.items() if n.startswith("convaudit")),
        key=lambda kv: -kv[1],
    )
    print("| convaudit module | cumulative ms (includes what it imports first) |\n|---|---:|")
    for name, ms in ours[:top]:
        print(f"| `{name}` | {ms:.1f} |")
    print()


def profile(args: list[str], top: int) -> None:
    """cProfile of one whole run (imports included; the profiler inflates Python-heavy code)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "scan.prof"
        # onnx is imported before the profiler starts: the floor pays for it too, so what is
        # left is what convaudit adds.
        code = (
            "import cProfile, sys, onnx\n"
            f"sys.argv = ['convaudit', *{args!r}]\n"
            "from_cli = 'from convaudit.launch import main\\ntry:\\n    main()\\n"
            "except SystemExit:\\n    pass\\n'\n"
            f"cProfile.run(from_cli, {str(out)!r})\n"
        )
        run([str(PYTHON), "-c", code])
        stats = pstats.Stats(str(out))
    raw = stats.stats  # type: ignore[attr-defined]
    total = max(ct for (_cc, _nc, _tt, ct, _callers) in raw.values())
    print(
        "### cProfile of one scan, `import onnx` done before it starts "
        f"(run {1000 * total:.0f} ms under the profiler)\n"
    )
    print("| probe | calls | cumulative ms | share |\n|---|---:|---:|---:|")
    for label, pattern in PROBES:
        calls, cum = 0, 0.0
        for (file, line, func), (_cc, nc, _tt, ct, _callers) in raw.items():
            if re.search(pattern, f"{file}:{line}({func})"):
                calls += nc
                cum = max(cum, ct)  # the outermost frame; recursion is already folded in
        print(f"| {label} | {calls} | {1000 * cum:.1f} | {100 * cum / total:.0f}% |")
    print()
    print(f"Top {top} convaudit functions by cumulative time:\n")
    print("| function | calls | cumulative ms |\n|---|---:|---:|")
    ours = [
        (f"{Path(f).relative_to(REPO).as_posix()}:{fn}", nc, ct)
        for (f, _line, fn), (_cc, nc, _tt, ct, _c) in raw.items()
        if f.startswith(str(REPO / "convaudit")) and fn != "<module>"
    ]
    for name, nc, ct in sorted(ours, key=lambda x: -x[2])[:top]:
        print(f"| `{name}` | {nc} | {1000 * ct:.1f} |")
    print()
    callers = io.StringIO()
    stats.stream = callers  # type: ignore[attr-defined]
    stats.print_callers(r"\(cleandoc\)")
    lines = [ln for ln in callers.getvalue().splitlines() if "<-" in ln or "   " in ln]
    print("Who calls `inspect.cleandoc`:\n\n```")
    print("\n".join(ln.rstrip() for ln in lines[-12:]))
    print("```\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="320n.onnx", help="file name from small_models.py")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    subprocess.run([str(PYTHON), "-m", "compileall", "-q", str(REPO / "convaudit")], check=True)
    argv, requirement = scan_argv(args.model)
    print(f"## `convaudit {' '.join(argv)}` ({requirement})\n")
    phases(argv, args.runs)
    components(args.model, args.runs)
    importtime(argv, args.runs, args.top)
    profile(argv, args.top)
    cold_warm(args.runs)


if __name__ == "__main__":
    main()
