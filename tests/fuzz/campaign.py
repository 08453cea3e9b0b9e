"""A timed fuzz campaign of the real CLI, one child process per case (``make fuzz``).

Each case (cases.py) writes a mutated model (bytes or protobuf), rule file, config, baseline,
hostile external data, odd CLI values or fix inputs into a fresh folder and runs the CLI on it
in a forked child with a memory cap (RLIMIT_AS, 4 GiB) and a wall-clock timeout (30 s), so
hangs and blow-ups are caught, not just exceptions. A case passes when the child exits 0, 1 or
2, an exit 2 printed exactly one error line on stderr that is not an internal error, no file
but the case's declared outputs was created or changed, and nothing written holds the bytes of
the case's outside/ file. Failing cases are kept under --out with a note of what failed.

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

from cases import CANARY, Case, build_case

MEMORY_CAP = 4 * 1024**3
TIMEOUT_S = 30.0


def _snapshot(folder: Path) -> dict[Path, bytes | None]:
    """Every entry under ``folder`` (links not followed) with its bytes (None: not a file)."""
    out: dict[Path, bytes | None] = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            p = Path(root) / name
            regular = p.is_file() and not p.is_symlink()
            # a sparse file of a terabyte is compared by size, not read
            small = regular and p.stat().st_size < 2**26
            out[p] = (
                p.read_bytes() if small else (str(p.lstat().st_size).encode() if regular else None)
            )
    return out


def check_effects(case: Case, folder: Path, before: dict[Path, bytes | None]) -> str | None:
    """An unsafe write (a file changed that is not a declared output, or a new stray file) or
    an unsafe read (the canary from outside/ found in something the run wrote)."""
    after = _snapshot(folder)
    # paths as the case wrote them (absolute, under the folder): links are not followed
    allowed = {Path(os.path.abspath(p)) for p in case.outputs} | {folder / "stderr.txt"}
    # -o may create the folders its path names
    made = {d for p in allowed for d in p.parents if d not in before}
    for p, data in after.items():
        if p in allowed or (p in made and data is None):
            if data is not None and CANARY in data:
                return f"unsafe read: {p.name} holds bytes of outside/secret.bin"
            continue
        if p not in before:
            return f"unsafe write: {p.relative_to(folder)} was created"
        if before[p] != data:
            return f"unsafe write: {p.relative_to(folder)} was changed"
    return None


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
    # warnings (a config entry that matched nothing) are lines of their own, not the error
    errors = [line for line in lines if not line.startswith("convaudit: warning: ")]
    if code == 2 and len(errors) != 1:
        return f"exit 2 with {len(errors)} stderr lines", code, stderr
    if any(len(line) > 2000 for line in lines):
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
    import onnxruntime  # noqa: F401  (fix cases)

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
            case = build_case(folder, random.Random(case_seed))
            before = _snapshot(folder)
            failure, code, stderr = run_case(case.args, folder)
            if failure is None:
                failure = check_effects(case, folder, before)
            cases += 1
            key = f"{case.kind}: exit {code}" if failure is None else failure
            counts[key] = counts.get(key, 0) + 1
            if failure is not None:
                failures += 1
                keep = opts.out / f"case-{case_seed}"
                shutil.copytree(folder, keep, dirs_exist_ok=True, symlinks=True)
                (keep / "failure.json").write_text(
                    json.dumps({"failure": failure, "args": case.args, "stderr": stderr}, indent=2)
                )
                print(
                    f"FAIL #{cases} case {case_seed} ({case.kind}): {failure}: "
                    f"{stderr.strip()[:300]}",
                    flush=True,
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
