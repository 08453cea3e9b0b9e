"""A timed fuzz campaign of the real CLI, one child process per case (``make fuzz``).

Each case writes a mutated model (bytes or protobuf), rule file, config or baseline into a
fresh folder and runs ``convaudit scan`` on it in a forked child with a memory cap (RLIMIT_AS,
4 GiB) and a wall-clock timeout (30 s), so hangs and blow-ups are caught, not just exceptions.
A case passes when the child exits 0, 1 or 2, and an exit 2 printed exactly one stderr line
that is not an internal error. Failing cases are kept under --out with a note of what failed.

    python tests/fuzz/campaign.py --seconds 300 [--seed N] [--cases N] [--out fuzz-failures]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mutate import (
    baseline_text,
    config_text,
    conv_chain,
    mutate_bytes,
    mutate_proto,
    mutate_text,
    seed_model,
    small_real_models,
)

MEMORY_CAP = 4 * 1024**3
TIMEOUT_S = 30.0


def build_case(folder: Path, rng: random.Random) -> list[str]:
    """Write one case into ``folder``; return the CLI arguments that run it."""
    models = small_real_models()
    source = rng.choice([*models, None])
    model = conv_chain() if source is None else seed_model(source)
    kind = rng.choice(("bytes", "proto", "proto", "rules", "config", "baseline"))
    path = folder / "m.onnx"
    (folder / "w.bin").write_bytes(bytes(256))
    args = ["scan", str(path), "--weights", "-f", "json", "-o", str(folder / "report.json")]
    if kind == "bytes":
        path.write_bytes(mutate_bytes(model.SerializeToString(), rng))
        return args
    if kind == "proto":
        for _ in range(rng.randint(1, 4)):
            model = mutate_proto(model, rng)
        path.write_bytes(model.SerializeToString())
        return args
    path.write_bytes(model.SerializeToString())
    if kind == "rules":
        from convaudit.rules.loader import builtin_dir, rule_files

        rules = folder / "rules"
        rules.mkdir()
        text = rng.choice(rule_files(builtin_dir())).read_text(encoding="utf-8")
        (rules / "r.yaml").write_text(mutate_text(text, rng), encoding="utf-8")
        return [*args, "--rules-dir", str(rules)]
    if kind == "config":
        (folder / "convaudit.toml").write_text(config_text(rng), encoding="utf-8")
        return [*args, "--config", str(folder / "convaudit.toml")]
    (folder / "baseline.json").write_text(baseline_text(rng), encoding="utf-8")
    return [*args, "--baseline", str(folder / "baseline.json")]


def run_case(args: list[str], folder: Path) -> tuple[str | None, int | None, str]:
    """(failure or None, exit code, stderr) of the CLI on ``args`` in a capped child process."""
    err_path = folder / "stderr.txt"
    pid = os.fork()
    if pid == 0:  # the child: cap memory, silence stdout, run the CLI in-process
        code = 3
        try:
            resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))
            out = os.open(os.devnull, os.O_WRONLY)
            err = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(out, 1)
            os.dup2(err, 2)
            from convaudit.cli import app

            try:
                app(args, prog_name="convaudit")
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 3
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 3
        finally:
            sys.stderr.flush()
            os._exit(code)
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return f"hang: no exit within {TIMEOUT_S:g} s", None, ""
        time.sleep(0.005)
    stderr = err_path.read_text(encoding="utf-8", errors="replace") if err_path.exists() else ""
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}", None, stderr
    code = os.WEXITSTATUS(status)
    lines = stderr.splitlines()
    if code not in (0, 1, 2):
        return f"exit {code}", code, stderr
    if "internal error" in stderr or "Traceback" in stderr or "MemoryError" in stderr:
        return "internal error", code, stderr
    if code == 2 and len(lines) != 1:
        return f"exit 2 with {len(lines)} stderr lines", code, stderr
    if code == 2 and len(lines[0]) > 2000:
        return "an error line over 2,000 characters", code, stderr
    return None, code, stderr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--out", type=Path, default=Path("fuzz-failures"))
    parser.add_argument("--cases", type=int, default=None, help="stop after this many cases")
    opts = parser.parse_args()
    # Import what every child needs once, here: forked children share it instead of paying
    # for the onnx import per case.
    import convaudit.cli
    import convaudit.model.loader  # noqa: F401

    rng = random.Random(opts.seed)
    start = time.monotonic()
    counts: dict[str, int] = {}
    failures = 0
    cases = 0
    while time.monotonic() - start < opts.seconds and (opts.cases is None or cases < opts.cases):
        folder = Path(tempfile.mkdtemp(prefix="convaudit-fuzz-"))
        case_seed = rng.randrange(2**32)
        try:
            args = build_case(folder, random.Random(case_seed))
            failure, code, stderr = run_case(args, folder)
            cases += 1
            key = f"exit {code}" if failure is None else failure
            counts[key] = counts.get(key, 0) + 1
            if failure is not None:
                failures += 1
                keep = opts.out / f"case-{case_seed}"
                shutil.copytree(folder, keep, dirs_exist_ok=True)
                (keep / "failure.json").write_text(
                    json.dumps({"failure": failure, "args": args, "stderr": stderr}, indent=2)
                )
                print(
                    f"FAIL #{cases} case {case_seed}: {failure}: {stderr.strip()[:300]}", flush=True
                )
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    elapsed = time.monotonic() - start
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
    print(f"fuzz campaign (seed {opts.seed}): {cases} cases in {elapsed:.0f} s; {summary}")
    print(f"{failures} failure(s)" + (f", kept under {opts.out}/" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
