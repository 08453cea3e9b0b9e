"""Proof on trained models: ``convaudit fix --inputs ... --max-error E`` on five PyPI-wheel models.

For nudenet YOLOv8n, ddddocr common and common_det, PP-OCRv4 det and rec (trained_models.py) it
renders seeded calibration and disjoint held-out inputs (trained_inputs.py), runs the ``fix`` CLI
of this checkout at each --max-error, and measures every model it writes against the original on
the held-out set: MACs (``convaudit scan``), relative error, the task metric (trained_metrics.py)
and batch-1 latency. A configuration the CLI refuses or cannot meet is a row saying so.

    python benchmarks/bench_fix_trained.py [--models ppocr-det ...] [--calib 16] [--eval 32]
        [--errors 0.01 0.02 0.05] [--no-manual] [--no-auto] [--latency-runs 20]

Needs Pillow in the repo's .venv (``.venv/bin/pip install pillow``); see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
try:
    import PIL  # noqa: F401  (trained_inputs renders with it)
except ImportError:
    raise SystemExit("Pillow is missing: .venv/bin/pip install pillow (see README)") from None
import trained_metrics as tm  # noqa: E402
from trained_inputs import samples  # noqa: E402
from trained_models import CACHE, MODELS, TrainedModel, charset, fetch  # noqa: E402

CONVAUDIT = REPO / ".venv" / "bin" / "convaudit"
RESULTS = HERE / "results"


@dataclass(frozen=True, kw_only=True)
class Config:
    label: str
    args: tuple[str, ...]


@dataclass(kw_only=True)
class Row:
    model: str
    config: str
    command: str
    exit_code: int | None = None
    note: str = ""  # why nothing was measured, or the CLI's first stderr line
    written: bool = False
    fix_wall_s: float | None = None
    fix_reported_error: float | None = None  # fix's own figure (on its calibration inputs)
    layers_rewritten: list[str] = field(default_factory=list)
    widths: list[int] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)  # per rewritten layer: bottleneck | spatial
    macs_before: int | None = None
    macs_after: int | None = None
    heldout_error: float | None = None  # worst output, relative L2 over the held-out set
    heldout_worst_channel: str = ""
    metric_name: str = ""
    metric_before: float | None = None
    metric_after: float | None = None
    metric_detail: str = ""
    latency_1t_ms: tuple[float, float] | None = None
    latency_nt_ms: tuple[float, float] | None = None
    tuning: dict[str, Any] | None = None  # fix's JSON "tuning" (--tune-steps), as it reported it


def shape_arg(m: TrainedModel) -> str:
    return f"{m.input_name}={'x'.join(map(str, m.shape))}"


def scan_macs(path: Path, m: TrainedModel) -> int:
    cmd = [str(CONVAUDIT), "scan", str(path), "--input-shape", shape_arg(m), "--format", "json"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode not in (0, 1):  # 1: findings, still a full report
        raise RuntimeError(f"scan {path.name} exit {done.returncode}: {done.stderr.strip()[:300]}")
    return int(json.loads(done.stdout)["reports"][0]["totals"]["macs"])


@dataclass(frozen=True, kw_only=True)
class Reference:
    """What the original model gives on the held-out set; every row is compared with it."""

    outputs: list[list[np.ndarray]]
    texts: list[str]
    chars: list[str] | None
    macs: int


def task_metric(m: TrainedModel, ref: Reference, new: list[list[np.ndarray]], row: Row) -> None:
    if m.kind == "rec-ctc":
        assert ref.chars is not None
        # Spaces are dropped before comparing: a rendered gap is not reliably one space wide.
        norm = lambda s: s.replace(" ", "")  # noqa: E731
        a = [norm(s) for s in tm.decode_rec(ref.outputs, ref.chars, m.key)]
        b = [norm(s) for s in tm.decode_rec(new, ref.chars, m.key)]
        truth = [norm(s) for s in ref.texts]
        row.metric_name = "string accuracy"
        row.metric_before = float(np.mean([x == t for x, t in zip(a, truth, strict=True)]))
        row.metric_after = float(np.mean([x == t for x, t in zip(b, truth, strict=True)]))
        agree = float(np.mean([x == y for x, y in zip(a, b, strict=True)]))
        row.metric_detail = f"{100 * agree:.1f}% same strings as the original (n={len(a)})"
    elif m.kind == "det-ppocr":
        row.metric_name = "text-mask IoU"
        row.metric_before, row.metric_after = 1.0, tm.text_mask_iou(ref.outputs, new)
        frac = np.mean([float((o[0] > 0.3).mean()) for o in ref.outputs])
        row.metric_detail = f"mask covers {100 * frac:.1f}% of pixels (original, n={len(new)})"
    else:
        if m.kind == "det-yolox":
            dec = lambda o: tm.yolox_boxes(o[0], (m.shape[2], m.shape[3]))  # noqa: E731
        else:
            dec = lambda o: tm.yolov8_boxes(o[0])  # noqa: E731
        kept, total, found = tm.boxes_kept(
            [dec(o) for o in ref.outputs], [dec(o) for o in new], same_class=m.kind == "det-yolov8"
        )
        row.metric_name = "boxes kept (IoU≥0.5" + (
            ", same class)" if m.kind == "det-yolov8" else ")"
        )
        row.metric_before, row.metric_after = 1.0, kept / total if total else float("nan")
        row.metric_detail = f"{kept}/{total} kept, {found} found (n={len(new)})"


def describe_original(m: TrainedModel, ref: Reference) -> str:
    """What the original model does on the held-out set, so a metric has its scale."""
    probe = Row(model=m.label, config="original", command="")
    task_metric(m, ref, ref.outputs, probe)
    if m.kind == "rec-ctc":
        return f"{m.label}: string accuracy {100 * (probe.metric_before or 0):.1f}%"
    if m.kind == "det-ppocr":
        return f"{m.label}: {probe.metric_detail}"
    return f"{m.label}: {probe.metric_detail.split(' kept')[0].split('/')[1]} boxes"


def measure(
    m: TrainedModel,
    original: Path,
    out: Path,
    x_eval: np.ndarray,
    ref: Reference,
    row: Row,
    runs: int,
) -> None:
    row.macs_before, row.macs_after = ref.macs, scan_macs(out, m)
    new = tm.run_all(out, m.input_name, x_eval)
    errs = tm.output_errors(ref.outputs, new, m.feature_axis)
    worst = max(errs, key=lambda e: e.relative_l2)
    row.heldout_error = worst.relative_l2
    ch = [e for e in errs if e.worst_channel is not None]
    if ch:
        e = max(ch, key=lambda e: e.worst_channel_error or 0.0)
        row.heldout_worst_channel = (
            f"channel {e.worst_channel}: {100 * (e.worst_channel_error or 0):.1f}%"
        )
    task_metric(m, ref, new, row)
    a, b = tm.latency(original, out, m.input_name, x_eval, runs, threads=1)
    row.latency_1t_ms = (1000 * a, 1000 * b)
    a, b = tm.latency(original, out, m.input_name, x_eval, runs, threads=0)
    row.latency_nt_ms = (1000 * a, 1000 * b)


def run_config(
    m: TrainedModel,
    path: Path,
    calib: Path,
    cfg: Config,
    work: Path,
    x_eval: np.ndarray,
    ref: Reference,
    args: argparse.Namespace,
) -> Row:
    out = work / f"{m.key}.{len(list(work.glob('*.fixed*.onnx')))}.fixed.onnx"
    cmd = [str(CONVAUDIT), "fix", str(path), "-o", str(out), "--inputs", str(calib)]
    cmd += ["--input-shape", shape_arg(m), "--format", "json", *cfg.args]
    if m.feature_axis is not None:  # the output's layout, not a choice of layers or widths
        cmd += ["--channel-axis", str(m.feature_axis)]
    row = Row(
        model=m.label, config=cfg.label, command=" ".join(["convaudit", "fix", path.name, *cmd[4:]])
    )
    start = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.fix_timeout)
    except subprocess.TimeoutExpired:
        row.note = f"fix did not finish in {args.fix_timeout:.0f} s"
        return row
    row.fix_wall_s = time.perf_counter() - start
    row.exit_code = done.returncode
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    row.note = lines[0].strip() if lines else ""
    try:
        doc: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError:
        doc = {}
    if doc:
        done_layers = [x for x in doc.get("layers", []) if x.get("rewritten")]
        row.layers_rewritten = [str(x["name"]) for x in done_layers]
        row.widths = sorted({int(x["width"]) for x in done_layers if x.get("width")})
        row.kinds = [str(x.get("kind") or "bottleneck") for x in done_layers]
        row.fix_reported_error = doc.get("validation", {}).get("error")
        row.tuning = doc.get("tuning")
        if not doc.get("written"):
            # fix's own one-line message says why (no candidate, over budget) better than stderr
            row.note = str(doc.get("message") or row.note or "fix wrote nothing")
    row.written = out.exists()
    if row.written:
        try:
            measure(m, path, out, x_eval, ref, row, args.latency_runs)
        finally:
            for p in work.glob(out.name + "*"):
                p.unlink()
    return row


# ---- output ------------------------------------------------------------------------------


def _macs(n: int) -> str:
    return f"{n / 1e9:.2f}G" if n >= 1e9 else f"{n / 1e6:.0f}M"


def _metric(row: Row) -> str:
    if row.metric_after is None or row.metric_before is None:
        return ""
    fmt = (
        (lambda v: f"{v:.3f}")
        if row.metric_name == "text-mask IoU"
        else (lambda v: f"{100 * v:.1f}%")
    )
    before, after = fmt(row.metric_before), fmt(row.metric_after)
    return f"{row.metric_name} {before} → **{after}** ({row.metric_detail})"


def markdown(rows: list[Row], header: str) -> str:
    lines = [
        header,
        "",
        "| model | fix run | exit | MACs before → after "
        "| held-out error (worst output; worst channel) | task metric before → after "
        "| latency b1, 1 thread | latency b1, default threads |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if not r.written:
            why = r.note or "nothing written"
            err = (
                f" (fix's own error {100 * r.fix_reported_error:.1f}%)"
                if r.fix_reported_error is not None
                else ""
            )
            lines.append(
                f"| {r.model} | {r.config} | {r.exit_code} | not written: {why}{err} | | | | |"
            )
            continue
        assert r.macs_before and r.macs_after and r.heldout_error is not None
        assert r.latency_1t_ms and r.latency_nt_ms
        layers = f"{len(r.layers_rewritten)} layers r={','.join(map(str, r.widths))}"
        if "spatial" in r.kinds:
            layers += f" ({r.kinds.count('spatial')} spatial)"
        if r.tuning and r.tuning.get("applied"):
            t = r.tuning
            layers += f"; tuned {100 * t['error_before']:.1f}% → {100 * t['error_after']:.1f}%"
        elif r.tuning:
            layers += f"; not tuned: {r.tuning.get('reason')}"
        lat = lambda t: f"{t[0]:.1f} → {t[1]:.1f} ms ({t[0] / t[1]:.2f}x)"  # noqa: E731
        ch = f"; {r.heldout_worst_channel}" if r.heldout_worst_channel else ""
        factor = r.macs_before / r.macs_after
        lines.append(
            f"| {r.model} | {r.config}: {layers} | {r.exit_code} "
            f"| {_macs(r.macs_before)} → {_macs(r.macs_after)} (**{factor:.2f}x**) "
            f"| {100 * r.heldout_error:.1f}%{ch} | {_metric(r)} "
            f"| {lat(r.latency_1t_ms)} | {lat(r.latency_nt_ms)} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", nargs="*", default=[m.key for m in MODELS], choices=[m.key for m in MODELS]
    )
    parser.add_argument("--calib", type=int, default=16, help="calibration samples per model")
    parser.add_argument("--eval", type=int, default=32, help="held-out samples per model")
    parser.add_argument(
        "--errors", type=float, nargs="*", default=[0.01, 0.02, 0.05], help="--max-error values"
    )
    parser.add_argument("--no-auto", action="store_true", help="skip the fix --max-error E runs")
    parser.add_argument(
        "--no-manual", action="store_true", help="skip the hand-picked --node/--width runs"
    )
    parser.add_argument(
        "--manual-widths", type=int, nargs="*", default=None, help="override the hand-picked widths"
    )
    parser.add_argument(
        "--fix-args",
        type=shlex.split,
        default=[],
        help="more fix options in one string, e.g. '--kind bottleneck' (quoted, with a space)",
    )
    parser.add_argument("--latency-runs", type=int, default=20)
    parser.add_argument("--fix-timeout", type=float, default=1800.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", type=Path, default=CACHE)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not CONVAUDIT.exists():
        raise SystemExit(f"{CONVAUDIT} is missing: run `make test` (or `make demo`) once first")
    data = args.cache_dir / "data"
    work = args.cache_dir / "work"
    data.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    originals: list[str] = []
    for i, m in enumerate(MODELS):
        if m.key not in args.models:
            continue
        t0 = time.perf_counter()
        path = fetch(m, args.cache_dir)
        chars = charset(m, args.cache_dir) if m.kind == "rec-ctc" else None
        # Disjoint seeds: the held-out set is never rendered from the calibration stream.
        x_cal, _ = samples(m, chars, args.calib, seed=args.seed * 1000 + 10 * i + 1)
        x_eval, texts = samples(m, chars, args.eval, seed=args.seed * 1000 + 10 * i + 2)
        calib = data / f"{m.key}.calib.npz"
        np.savez(calib, **{m.input_name: x_cal})
        np.savez(data / f"{m.key}.eval.npz", **{m.input_name: x_eval})
        (data / f"{m.key}.eval.json").write_text(json.dumps({"texts": texts}, ensure_ascii=False))
        ref = Reference(
            outputs=tm.run_all(path, m.input_name, x_eval),
            texts=texts,
            chars=chars,
            macs=scan_macs(path, m),
        )
        originals.append(f"{describe_original(m, ref)} on {args.eval} held-out inputs")
        configs = (
            []
            if args.no_auto
            else [
                Config(
                    label=" ".join([f"--max-error {e:g}", *args.fix_args]),
                    args=("--max-error", f"{e:g}", *args.fix_args),
                )
                for e in args.errors
            ]
        )
        if not args.no_manual:
            for man in m.manual:
                for w in args.manual_widths or [man.width]:
                    nodes = tuple(a for n in man.nodes for a in ("--node", n))
                    configs.append(
                        Config(
                            label=f"by hand: {man.label}, --width {w}",
                            args=(*nodes, "--width", str(w)),
                        )
                    )
        for cfg in configs:
            print(f"{m.key}: {cfg.label} ...", file=sys.stderr, flush=True)
            rows.append(run_config(m, path, calib, cfg, work, x_eval, ref, args))
            print("  " + markdown(rows[-1:], "").splitlines()[-1], file=sys.stderr, flush=True)
        print(f"{m.key}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    header = (
        f"convaudit {commit}, {datetime.date.today()}, "
        f"{platform.machine()} {tm.default_threads()} CPUs, "
        f"Python {platform.python_version()}, onnxruntime {__import__('onnxruntime').__version__}; "
        f"{args.calib} calibration / {args.eval} held-out samples per model"
    )
    text = markdown(rows, header) + "\n\nThe originals: " + "; ".join(originals) + "."
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fix_trained.md").write_text(text + "\n")
    doc = {"header": header, "originals": originals, "rows": [asdict(r) for r in rows]}
    (args.out / "fix_trained.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
