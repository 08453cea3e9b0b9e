"""Cases for the process-level campaign (campaign.py): each writes its files into a fresh folder
and says which CLI arguments run it and which files the run may write.

Every kind the issue lists has a builder: byte- and protobuf-level mutations of real exports,
hostile rule, config and baseline files, hostile external data (symlinks, FIFOs, devices, sizes),
odd values for every CLI flag of every command, and ``fix``'s inputs (.npz files, shapes,
widths, budgets, outputs). Outside files are never named: what a case must not read lives in
the case's own ``outside/`` folder, and every output path is inside the case folder.
"""

from __future__ import annotations

import io
import os
import random
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from mutate import (
    EDGE_INTS,
    EDGE_TEXT,
    baseline_text,
    config_text,
    conv_chain,
    mutate_bytes,
    mutate_proto,
    mutate_text,
    seed_model,
    small_real_models,
)

# Bytes a case keeps outside the model's folder: found in anything the run writes, they were
# read through a path that should have been refused.
CANARY = b"convaudit-fuzz-canary-" + bytes(range(32)) * 8


@dataclass
class Case:
    kind: str
    args: list[str]
    # paths the run may create or replace (reports, fix outputs); every other file in the case
    # folder must be left as it was
    outputs: set[Path] = field(default_factory=set)


def _model(rng: random.Random) -> onnx.ModelProto:
    models = small_real_models()
    source = rng.choice([*models, None])
    return conv_chain() if source is None else seed_model(source)


def _edge(rng: random.Random) -> str:
    return str(rng.choice((*EDGE_TEXT, *map(str, EDGE_INTS), "nan", "inf", "-inf", "1e400")))


def build_case(folder: Path, rng: random.Random) -> Case:
    """Write one case into ``folder``."""
    (folder / "outside").mkdir()
    (folder / "outside" / "secret.bin").write_bytes(CANARY)
    return BUILDERS[rng.choice(KINDS)](folder, rng)


def _scan_args(folder: Path, path: Path) -> tuple[list[str], set[Path]]:
    report = folder / "report.json"
    return ["scan", str(path), "--weights", "-f", "json", "-o", str(report)], {report}


def _bytes(folder: Path, rng: random.Random) -> Case:
    path = folder / "m.onnx"
    (folder / "w.bin").write_bytes(bytes(256))
    path.write_bytes(mutate_bytes(_model(rng).SerializeToString(), rng))
    return Case("bytes", *_scan_args(folder, path))


def _proto(folder: Path, rng: random.Random) -> Case:
    model = _model(rng)
    for _ in range(rng.randint(1, 4)):
        model = mutate_proto(model, rng)
    path = folder / "m.onnx"
    (folder / "w.bin").write_bytes(bytes(256))
    path.write_bytes(model.SerializeToString())
    return Case("proto", *_scan_args(folder, path))


def _rules(folder: Path, rng: random.Random) -> Case:
    from convaudit.rules.loader import builtin_dir, rule_files

    path = folder / "m.onnx"
    path.write_bytes(_model(rng).SerializeToString())
    rules = folder / "rules"
    rules.mkdir()
    text = rng.choice(rule_files(builtin_dir())).read_text(encoding="utf-8")
    text = text.replace("id: CA", "id: MY")  # CA ids are reserved: the copy would stop there
    (rules / "r.yaml").write_text(mutate_text(text, rng), encoding="utf-8")
    args, outs = _scan_args(folder, path)
    return Case("rules", [*args, "--rules-dir", str(rules)], outs)


def _config(folder: Path, rng: random.Random) -> Case:
    path = folder / "m.onnx"
    path.write_bytes(_model(rng).SerializeToString())
    text = config_text(rng)
    config = folder / rng.choice(("convaudit.toml", "pyproject.toml"))
    if config.name == "pyproject.toml":
        text = "[tool.convaudit]\n" + text
    config.write_text(mutate_text(text, rng) if rng.random() < 0.3 else text, encoding="utf-8")
    args, outs = _scan_args(folder, path)
    return Case("config", [*args, "--config", str(config)], outs)


def _baseline(folder: Path, rng: random.Random) -> Case:
    path = folder / "m.onnx"
    path.write_bytes(_model(rng).SerializeToString())
    (folder / "baseline.json").write_text(baseline_text(rng), encoding="utf-8")
    args, outs = _scan_args(folder, path)
    return Case("baseline", [*args, "--baseline", str(folder / "baseline.json")], outs)


# -- external data ------------------------------------------------------------------------------


def _external(folder: Path, rng: random.Random) -> Case:
    """A conv model whose weights live in model/w.bin, then one hostile edit of where they
    point or what the data file is; run by scan --weights or fix (both read the weights)."""
    model_dir = folder / "model"
    model_dir.mkdir()
    path = model_dir / "m.onnx"
    onnx.save_model(
        conv_chain(channels=128, size=4),  # wide enough for CA101: --weights reads its conv
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="w.bin",
        size_threshold=0,
    )
    saved = onnx.load(str(path), load_external_data=False)
    data = model_dir / "w.bin"
    secret = folder / "outside" / "secret.bin"
    edit = rng.randrange(9)
    if edit == 0:  # the data file is a link: outside, a device, /proc, a chain, a loop
        target = rng.choice(
            (str(secret), "../outside/secret.bin", "/dev/zero", "/proc/self/environ", "hop")
        )
        secret.write_bytes(data.read_bytes() + CANARY)
        data.unlink()
        data.symlink_to(target)
        if target == "hop":
            (model_dir / "hop").symlink_to(rng.choice((str(secret), "w.bin", "hop")))
    elif edit == 1:  # the data file is a FIFO, a folder, or missing
        data.unlink()
        choice = rng.randrange(3)
        if choice == 0:
            os.mkfifo(data)
        elif choice == 1:
            data.mkdir()
    elif edit == 2:  # a symlinked folder on the way
        (folder / "outside" / "d").mkdir()
        os.replace(data, folder / "outside" / "d" / "w.bin")
        (model_dir / "d").symlink_to(folder / "outside" / "d")
        _set_entries(saved, rng, location="d/w.bin")
    elif edit == 3:  # the file is shorter than its entries say, or sparse and huge
        with open(data, "r+b") as f:
            f.truncate(rng.choice((0, 7, 2**40)))
    else:  # hostile entries: location, offset, length
        key = rng.choice(("location", "offset", "length"))
        value = rng.choice(
            (
                _edge(rng),
                str(secret),
                "../outside/secret.bin",
                "w.bin\x00x",
                "./w.bin",
                "model/../w.bin",
                str(2**62),
                str(2**64),
                "0x10",
                "+5",
                "",
            )
        )
        _set_entries(saved, rng, **{key: value})
        if rng.random() < 0.2:  # an entry key onnx does not know
            _set_entries(saved, rng, checksum="x")
    path.write_bytes(saved.SerializeToString())
    if rng.random() < 0.3:
        out = folder / "out.onnx"
        args = ["fix", str(path), "-o", str(out), "--node", "conv", "--width", "8", "--force"]
        return Case("external", args, {out, folder / "out.onnx.data"})
    return Case("external", *_scan_args(folder, path))


def _set_entries(model: onnx.ModelProto, rng: random.Random, **entries: str) -> None:
    tensors = [t for t in model.graph.initializer if t.external_data]
    for t in rng.sample(tensors, rng.randint(1, len(tensors))):
        for key, value in entries.items():
            found = [e for e in t.external_data if e.key == key]
            entry = found[0] if found else t.external_data.add()
            entry.key, entry.value = key, value


# -- odd CLI arguments --------------------------------------------------------------------------


def _flag_value(flag: str, folder: Path, rng: random.Random, edge: float = 0.4) -> str:
    """A value for ``flag``: an edge value with probability ``edge``, else valid-looking."""
    if rng.random() < edge:
        return _edge(rng)
    if flag in ("--jobs", "-j", "--top", "--default-dim", "--width"):
        return str(rng.choice((0, 1, 2, 3, -1, 10**6, 2**63)))
    if flag == "--shard":
        return rng.choice(("1/2", "2/2", "0/2", "3/2", "1/0", "a/b", "1/", "/", "1/2/3"))
    if flag in ("--input-shape",):
        return rng.choice(("x=1x16x6x6", "x=2x16x6x6", "x=0x16x6x6", "x=1x8", "x=", "=1", "y=1"))
    if flag == "--dim":
        return rng.choice(("batch=1", "*=0", "*=2", "=3", "a=", "a=-1", "*=" + "9" * 30))
    if flag in ("--max-macs", "--max-params"):
        return rng.choice(("4.1G", "0", "-1", "1e400", "nanG", "1_000", "25.6M", "1" * 40))
    if flag == "--max-increase":
        return rng.choice(("2%", "0", "-5%", "nan", "inf%", "1e400", "%", "2%%"))
    if flag in ("--format", "-f"):
        return rng.choice(("table", "json", "markdown", "sarif", "junit", "html", "github", "x"))
    if flag == "--report":
        name = rng.choice(("r.sarif", "", "outside", "m.onnx", "sub/r.json"))
        return f"{rng.choice(('sarif', 'json', 'x', ''))}={folder / name if name else ''}"
    if flag == "--fail-on":
        return rng.choice(("error", "warning", "info", "never", "ERROR", "x"))
    if flag in ("--select", "--ignore"):
        return rng.choice(("CA101", "CA", "", "*", "X" * 300, "CA101,CA102", "ca1"))
    if flag in ("--exclude", "--extend-exclude"):
        return rng.choice(("*.onnx", "[", "**/", "", "!m.onnx", "outside/**"))
    if flag in ("--rules-dir", "--config", "--baseline"):
        return str(rng.choice((folder, folder / "missing", folder / "m.onnx", folder / "outside")))
    if flag in ("--target-saving", "--max-error"):
        return rng.choice(("0", "0.05", "0.5", "-1", "nan", "inf", "1e300", "2"))
    if flag == "--node":
        return rng.choice(("conv", "pw", "relu", "missing", ""))
    return _edge(rng)


def _output_target(folder: Path, rng: random.Random) -> Path:
    """Where -o points: a new file, the model, the folder, a FIFO, a missing folder."""
    choice = rng.randrange(5)
    if choice == 0:
        fifo = folder / "fifo"
        if not fifo.exists():
            os.mkfifo(fifo)
        return fifo
    return rng.choice(
        (folder / "out.txt", folder / "m.onnx", folder, folder / "missing" / "out.txt")
    )


SCAN_FLAGS = (
    "--format", "--input-shape", "--dim", "--default-dim", "--report", "--jobs", "--shard",
    "--max-macs", "--max-params", "--config", "--rules-dir", "--select", "--ignore",
    "--fail-on", "--baseline", "--exclude", "--extend-exclude", "--top",
)  # fmt: skip
SCAN_SWITCHES = ("--weights", "--verbose", "--quiet", "--statistics", "--respect-gitignore")
DIFF_FLAGS = (
    "--format", "--max-increase", "--max-macs", "--max-params", "--input-shape", "--dim",
    "--default-dim", "--config", "--fail-on",
)  # fmt: skip


def _cli(folder: Path, rng: random.Random) -> Case:
    """One command with a few flags holding odd values, on a small model (or odd paths)."""
    path = folder / "m.onnx"
    path.write_bytes(_model(rng).SerializeToString())
    outputs: set[Path] = set()
    command = rng.choice(("scan", "scan", "scan", "rules", "config", "baseline"))
    # a bare group (`convaudit rules`) prints its help, as git and ruff do: always a command
    if command == "rules":
        args = ["rules", rng.choice(("list", "explain", "show", "", "x" * 300))]
        args += [rng.choice(("CA101", "X" * 300, "", "ca101", "CA9999"))] * rng.randint(0, 2)
        return Case("cli", args, outputs)
    if command == "config":
        return Case("cli", ["config", "show", *_flags(folder, rng, ("--config",), ())], outputs)
    if command == "baseline":
        out = _output_target(folder, rng)
        outputs.add(out)
        args = ["baseline", "create", str(rng.choice((path, folder, folder / "nope.onnx")))]
        args += ["-o", str(out), *_flags(folder, rng, SCAN_FLAGS[:3], ())]
        return Case("cli", args, outputs)
    target = rng.choice((str(path), str(folder), str(folder / "*.onnx"), "[", str(folder / "x")))
    args = ["scan", target, *_flags(folder, rng, SCAN_FLAGS, SCAN_SWITCHES)]
    for k, a in enumerate(args[:-1]):
        if a == "--report":
            outputs.add(Path(args[k + 1].partition("=")[2]))
    if rng.random() < 0.5:
        out = _output_target(folder, rng)
        outputs.add(out)
        args += ["-o", str(out)]
    return Case("cli", args, outputs)


def _flags(
    folder: Path,
    rng: random.Random,
    flags: tuple[str, ...],
    switches: tuple[str, ...],
    edge: float = 0.4,
) -> list[str]:
    args: list[str] = []
    for flag in rng.sample(flags, rng.randint(0, min(3, len(flags)))):
        args += [flag, _flag_value(flag, folder, rng, edge)]
    for switch in switches:
        if rng.random() < 0.2:
            args.append(switch)
    return args


def _diff(folder: Path, rng: random.Random) -> Case:
    base, head = folder / "base.onnx", folder / "head.onnx"
    model = _model(rng)
    base.write_bytes(model.SerializeToString())
    for _ in range(rng.randint(0, 3)):
        model = mutate_proto(model, rng)
    head.write_bytes(model.SerializeToString())
    out = folder / "diff.txt"
    args = ["diff", str(base), str(head), "-o", str(out), *_flags(folder, rng, DIFF_FLAGS, ())]
    return Case("diff", args, {out})


# -- fix's inputs -------------------------------------------------------------------------------


def _npz(path: Path, rng: random.Random) -> None:
    """Calibration samples for input x of the conv chain: right, wrong or hostile."""
    choice = rng.randrange(6)
    shape = rng.choice(((4, 16, 6, 6), (1, 16, 6, 6), (4, 8, 6, 6), (0, 16, 6, 6), (4,)))
    values = rng.choice((0.0, 1.0, float("nan"), float("inf"), None))
    with np.errstate(all="ignore"):  # NaN cast to int64 is the point, not a warning
        array = (
            np.random.default_rng(rng.randrange(2**32)).standard_normal(shape)
            if values is None
            else np.full(shape, values)
        ).astype(rng.choice((np.float32, np.float64, np.int64, np.float16)))
    name = rng.choice(("x", "x", "y", ""))
    if choice == 0:  # a header that declares far more than the bytes
        header = io.BytesIO()
        np.lib.format.write_array_header_2_0(
            header, {"descr": "<f4", "fortran_order": False, "shape": (2**20, 2**20, 16)}
        )
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("x.npy", header.getvalue() + bytes(64))
    elif choice == 1:  # a pickled object array: never unpickled
        np.savez(path, x=np.array([object()], dtype=object))
    else:
        np.savez(path, **{name or "arr_0": array})
        if choice == 2:
            path.write_bytes(mutate_bytes(path.read_bytes(), rng))


def _fix(folder: Path, rng: random.Random) -> Case:
    model = conv_chain(channels=16, size=6)
    if rng.random() < 0.3:
        model = mutate_proto(model, rng)
    path = folder / "m.onnx"
    path.write_bytes(model.SerializeToString())
    # mostly valid flags, so that most cases get past parsing to the fit and the rewrite
    out = folder / "out.onnx" if rng.random() < 0.8 else rng.choice((path, folder / "outside"))
    args = ["fix", str(path), "-o", str(out)]
    outputs = {folder / "out.onnx", folder / "out.onnx.data"}
    if rng.random() < 0.7:  # a rewrite the model allows, then what the flags below change
        args += ["--node", "conv", "--width", str(rng.choice((1, 8, 16, 24)))]
    fix_flags = ("--node", "--width", "--target-saving", "--max-error", "--input-shape")
    args += _flags(folder, rng, fix_flags[rng.randrange(2) :], ("--force", "--in-place"), 0.1)
    if "--in-place" in args:
        outputs |= {path, folder / "m.onnx.data"}
    if rng.random() < 0.6:
        _npz(folder / "calib.npz", rng)
        args += [rng.choice(("--inputs", "--eval-inputs")), str(folder / "calib.npz")]
    if rng.random() < 0.2:
        args += ["--format", "json"]
    return Case("fix", args, outputs)


# model mutations weigh most: the model is the input a pull request controls
KINDS = (
    *("bytes", "proto", "proto", "proto", "rules", "config", "baseline"),
    *("external", "external", "cli", "cli", "diff", "fix"),
)
BUILDERS = {
    "bytes": _bytes,
    "proto": _proto,
    "rules": _rules,
    "config": _config,
    "baseline": _baseline,
    "external": _external,
    "cli": _cli,
    "diff": _diff,
    "fix": _fix,
}
