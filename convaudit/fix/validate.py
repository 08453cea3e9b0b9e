"""Measure a rewrite with onnxruntime (CPU): output error, per-layer error, latency."""

from __future__ import annotations

import math
import statistics
import time
import warnings
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from convaudit.errors import FixError
from convaudit.fix.rewrite import split_spatial
from convaudit.safe_io import check_size, clip, open_regular, shown

Feed = dict[str, np.ndarray]
_NO_NPZ = "calibration file not found"

# onnxruntime type strings -> numpy dtypes for the input types models commonly declare.
_ORT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
}


def require_onnxruntime() -> Any:
    """The onnxruntime module, or a FixError saying how to install it (it is the `fix` extra)."""
    try:
        import onnxruntime
    except ImportError:
        raise FixError(
            "convaudit fix runs models with onnxruntime, which is not installed: "
            "pip install 'convaudit[fix]'"
        ) from None
    return onnxruntime


def session(model: str | Path | bytes, *, shown_as: str | Path | None = None) -> Any:
    """A single-threaded CPU onnxruntime session (quiet).

    ``shown_as`` is the file an error names: the user's model, not a temporary probe of it.
    """
    ort = require_onnxruntime()
    # Fatal only, globally and per session: onnxruntime's own coloured multi-line log lines
    # (written to stderr by C++) would break the one-line error contract; its errors still
    # come back as exceptions, turned into one FixError line below.
    ort.set_default_logger_severity(4)
    opts = ort.SessionOptions()
    opts.log_severity_level = 4
    # One thread: on a busy machine thread contention swamps the difference being measured,
    # and the before/after ratio of single-threaded runs is the stable figure.
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    source = model if isinstance(model, bytes) else str(model)
    try:
        return ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        where = shown_as if shown_as is not None else None if isinstance(model, bytes) else model
        raise FixError(
            f"onnxruntime cannot load the model ({clip(str(exc))})", path=where
        ) from None


@contextmanager
def quiet_onnx() -> Iterator[None]:
    """onnx warns (Python UserWarning, on stderr) about unknown external-data keys: they are
    harmless to us, and stderr carries one error line at most."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Ignoring unknown external data key")
        yield


def load_full(path: Path, *, shown_as: Path | None = None) -> onnx.ModelProto:
    """``path`` with its weights, by onnx; its errors become one FixError line naming the model.

    The caller has checked every external-data entry first (``check_external_data``): onnx
    opens those files itself.
    """
    try:
        with quiet_onnx():
            return onnx.load(str(path), load_external_data=True)
    except (ValueError, OSError, onnx.checker.ValidationError) as exc:
        reason = clip(str(exc))
        raise FixError(f"onnx cannot load the model ({reason})", path=shown_as or path) from None


def _resolve(
    name: str,
    shape: Sequence[Any],
    input_shapes: Mapping[str, tuple[int, ...]],
    dims: Mapping[str, int],
) -> tuple[int, ...]:
    if name in input_shapes:
        return tuple(input_shapes[name])
    out = []
    for d in shape:
        if isinstance(d, int) and d >= 0:
            out.append(d)
        elif isinstance(d, str) and d in dims:
            out.append(dims[d])
        else:
            raise FixError(
                f"input {name!r} has an unresolved dim {d!r}: pass --inputs calib.npz, "
                f"--dim SYMBOL=N or --input-shape {name}=AxBxC"
            )
    return tuple(out)


def pinned_batch(
    sess: Any,
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
    dims: Mapping[str, int] | None = None,
) -> int:
    """The batch the runs use: the first input's leading dim as --input-shape or --dim pin it,
    or as the model fixes it; 1 when it is a dynamic dim left open (latency is quoted per run,
    and batch 1 is what a deployment usually serves)."""
    for i in sess.get_inputs():
        if i.name in (input_shapes or {}):
            pinned = tuple((input_shapes or {})[i.name])
            if pinned:
                return max(int(pinned[0]), 1)
            continue
        if not i.shape:
            continue
        lead = i.shape[0]
        if isinstance(lead, int) and lead > 0:
            return lead
        if isinstance(lead, str) and lead in (dims or {}):
            return max(int((dims or {})[lead]), 1)
        return 1
    return 1


def input_feeds(
    sess: Any,
    npz: str | Path | None,
    *,
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
    dims: Mapping[str, int] | None = None,
    seed: int = 0,
) -> tuple[list[Feed], str]:
    """Calibration feeds from an .npz keyed by input name, or one seeded random feed.

    The samples are run in batches of the pinned batch (``pinned_batch``): N samples at batch B
    are ceil(N / B) runs, the last one smaller when the model's batch dim is dynamic.
    """
    specs = {i.name: (i.shape, _ORT_TYPES.get(i.type)) for i in sess.get_inputs()}
    if npz is None:
        rng = np.random.default_rng(seed)
        feed: Feed = {}
        for name, (shape, dtype) in specs.items():
            dims_ = _resolve(name, shape, input_shapes or {}, dims or {})
            if dtype is None:
                raise FixError(
                    f"input {shown(name)}: unsupported type for random inputs: pass --inputs"
                )
            # Declared shapes are the model's word, not memory: 2^31-1 x ... is 56 TiB.
            check_size(
                # A 0 dim counts as 1: numpy refuses 0 x 2^31 x 2^31 as "too big" all the same.
                math.prod(max(d, 1) for d in dims_) * np.dtype(dtype).itemsize,
                f"a random feed for input {shown(name)} of shape {'x'.join(map(str, dims_))}",
                error=FixError,
            )
            if np.issubdtype(dtype, np.floating):
                feed[name] = rng.standard_normal(dims_).astype(dtype)
            else:
                feed[name] = np.zeros(dims_, dtype=dtype)
        return [feed], f"random normal (seed {seed})"
    path = Path(npz)
    arrays = read_npz(path)
    missing = sorted(set(specs) - set(arrays))
    if missing:
        raise FixError(
            f"calibration inputs lack {', '.join(missing)} (keys: {', '.join(sorted(arrays))})",
            path=path,
        )
    batch = pinned_batch(sess, input_shapes, dims)
    runs: int | None = None
    split: dict[str, list[np.ndarray]] = {}
    for name, (shape, dtype) in specs.items():
        a = arrays[name]
        if dtype is not None:
            a = a.astype(dtype, copy=False)
        _check_calibration_shape(path, name, a.shape, shape)
        if shape and a.ndim == len(shape) and a.ndim > 0:
            parts = [a[k : k + batch] for k in range(0, a.shape[0], batch)]
        else:
            parts = [a]
        if runs is not None and len(parts) != runs:
            raise FixError("calibration inputs disagree on the number of samples", path=path)
        runs = len(parts)
        split[name] = parts
    feeds = [{name: split[name][k] for name in specs} for k in range(runs or 0)]
    if not feeds or any(a.size == 0 for feed in feeds for a in feed.values()):
        raise FixError("calibration inputs hold no samples", path=path)
    return feeds, f"{path.name} ({len(feeds)} run{'s' if len(feeds) != 1 else ''})"


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a calibration .npz, each header checked against the memory budget before
    its data is read (a 300-byte header can declare 368 PiB), and every value finite."""
    with open_regular(path, error=FixError, what="calibration file", missing=_NO_NPZ) as fh:
        if fh.read(4) != b"PK\x03\x04":
            raise FixError("calibration file is not an .npz archive (np.savez)", path=path)
        fh.seek(0)
        try:
            total = 0
            with zipfile.ZipFile(fh) as archive:
                for member in archive.infolist():
                    with archive.open(member) as entry:
                        shape, dtype = _npy_header(entry)
                    total += math.prod(shape) * dtype.itemsize
                    check_size(total, "the calibration arrays", path=path, error=FixError)
            fh.seek(0)
            with np.load(fh, allow_pickle=False) as data:
                arrays = {k: np.asarray(data[k]) for k in data.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, NotImplementedError) as exc:
            reason = clip(str(exc))
            raise FixError(f"cannot read calibration inputs ({reason})", path=path) from None
    for name, a in arrays.items():
        if a.dtype.kind in "fc" and not np.all(np.isfinite(a)):
            raise FixError(f"calibration input {shown(name)} holds NaN or inf values", path=path)
    return arrays


def _npy_header(entry: Any) -> tuple[tuple[int, ...], np.dtype[Any]]:
    """Shape and dtype from a .npy header, without reading the data (numpy's own parser)."""
    version = np.lib.format.read_magic(entry)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(entry)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(entry)
    else:
        raise ValueError(f"unsupported .npy version {version}")
    if dtype.hasobject:
        raise ValueError("object arrays are not read (they would need pickle)")
    return tuple(int(d) for d in shape), dtype


# Every HOLDOUT_EVERY-th run (the 4th, 8th, ...) is held out of the fit; with 2 or 3 runs, the
# last one. Interleaved rather than a tail, so a file sorted by kind is split evenly.
HOLDOUT_EVERY = 4


def split_holdout(runs: Sequence[Feed], path: str | Path) -> tuple[list[Feed], list[Feed]]:
    """(fit runs, held-out runs) of --inputs; refused when there are too few to hold one out."""
    if len(runs) < 2:
        raise FixError(
            f"holds {len(runs)} run: the error that decides the outcome is measured on inputs "
            "the fit did not see, so give at least 2 samples (batches), or --eval-inputs FILE",
            path=Path(path),
        )
    if len(runs) < HOLDOUT_EVERY:
        return list(runs[:-1]), [runs[-1]]
    held = [r for k, r in enumerate(runs) if k % HOLDOUT_EVERY == HOLDOUT_EVERY - 1]
    fit = [r for k, r in enumerate(runs) if k % HOLDOUT_EVERY != HOLDOUT_EVERY - 1]
    return fit, held


def _check_calibration_shape(
    path: Path, name: str, got: tuple[int, ...], declared: Sequence[Any]
) -> None:
    """The model's own dims, checked here so the error names the .npz (onnxruntime's does not)."""

    def text(dims: Sequence[Any]) -> str:
        return "x".join(str(d) if isinstance(d, int) and d > 0 else "?" for d in dims)

    fixed = [(i, d) for i, d in enumerate(declared) if isinstance(d, int) and d > 0]
    ok = len(got) == len(declared) and all(
        got[i] % d == 0 if i == 0 else got[i] == d for i, d in fixed
    )
    if not ok:
        raise FixError(
            f"calibration input {name!r} is {text(got)} where the model takes {text(declared)} "
            "(a leading dim may be any multiple of the batch)",
            path=path,
        )


def _run(sess: Any, feed: Feed) -> list[np.ndarray]:
    try:
        return [np.asarray(y) for y in sess.run(None, feed)]
    except Exception as exc:  # onnxruntime's errors are untyped (and span several lines)
        reason = " ".join(str(exc).split())
        raise FixError(f"onnxruntime failed to run the model ({reason})") from None


# A channel's reference norm is floored at CHANNEL_FLOOR times the output's RMS per element
# (scaled to the channel's size). Below that a channel is numerically zero next to the rest of
# its output (float32 keeps ~7 digits), and error / norm would be a ratio of rounding noise.
CHANNEL_FLOOR = 1e-4


@dataclass(frozen=True, kw_only=True)
class OutputError:
    """One graph output's relative L2 error, overall and per channel along axis 1."""

    error: float
    channels: tuple[float, ...] = ()  # empty for outputs of rank < 2
    worst_channel: int | None = None

    @property
    def worst(self) -> float:
        """The larger of the pooled and the worst channel's error (NaN counts as infinite)."""
        values = [self.error, *self.channels]
        return max(math.inf if not math.isfinite(v) else v for v in values)


class _ErrorSums:
    """Running sums of squared differences and references, per output and per axis-1 channel."""

    def __init__(self, names: Sequence[str], axis: int = 1) -> None:
        self.names = list(names)
        self.axis = axis
        self.num = dict.fromkeys(self.names, 0.0)
        self.den = dict.fromkeys(self.names, 0.0)
        self.size = dict.fromkeys(self.names, 0)
        self.ch_num: dict[str, np.ndarray | None] = dict.fromkeys(self.names, None)
        self.ch_den: dict[str, np.ndarray | None] = dict.fromkeys(self.names, None)
        self.ch_size: dict[str, int] = dict.fromkeys(self.names, 0)

    def add(self, name: str, a: np.ndarray, b: np.ndarray) -> None:
        if a.shape != b.shape or a.dtype != b.dtype:
            raise FixError(
                f"output {name!r} changed from {a.dtype}{list(a.shape)} to {b.dtype}{list(b.shape)}"
            )
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        d2 = (b64 - a64) ** 2
        self.num[name] += float(np.sum(d2))
        self.den[name] += float(np.sum(a64**2))
        self.size[name] += a64.size
        axis = self.axis if self.axis >= 0 else a64.ndim + self.axis
        if a64.ndim >= 2 and 0 < axis < a64.ndim and a64.shape[axis] > 0:
            axes = tuple(k for k in range(a64.ndim) if k != axis)
            n_c, d_c = np.sum(d2, axis=axes), np.sum(a64**2, axis=axes)
            prev_n, prev_d = self.ch_num[name], self.ch_den[name]
            self.ch_num[name] = n_c if prev_n is None else prev_n + n_c
            self.ch_den[name] = d_c if prev_d is None else prev_d + d_c
            self.ch_size[name] += a64.size // a64.shape[axis]

    def result(self) -> dict[str, OutputError]:
        out: dict[str, OutputError] = {}
        for n in self.names:
            pooled = _ratio(self.num[n], self.den[n])
            cn, cd = self.ch_num[n], self.ch_den[n]
            if cn is None or cd is None:
                out[n] = OutputError(error=pooled)
                continue
            mean_square = self.den[n] / max(self.size[n], 1)
            floor = CHANNEL_FLOOR**2 * mean_square * self.ch_size[n]
            per = tuple(_ratio(float(x), max(float(y), floor)) for x, y in zip(cn, cd, strict=True))
            worst = max(range(len(per)), key=lambda k: _finite_or_inf(per[k]))
            out[n] = OutputError(error=pooled, channels=per, worst_channel=worst)
        return out


def _finite_or_inf(v: float) -> float:
    return v if math.isfinite(v) else math.inf


def compare_outputs(
    before: Any, after: Any, feeds: Sequence[Feed], axis: int = 1
) -> dict[str, OutputError]:
    """Relative L2 error ‖after − before‖ / ‖before‖ per graph output over all feeds, and per
    channel along ``axis`` (the feature axis: 1 for NCHW), each against its own norm."""
    names = [o.name for o in before.get_outputs()]
    sums = _ErrorSums(names, axis)
    for feed in feeds:
        for name, a, b in zip(names, _run(before, feed), _run(after, feed), strict=True):
            sums.add(name, a, b)
    return sums.result()


def reference_outputs(before: Any, feeds: Sequence[Feed]) -> list[list[np.ndarray]]:
    """The original model's outputs on every feed, kept to compare several candidates with."""
    return [_run(before, feed) for feed in feeds]


def compare_to_reference(
    names: Sequence[str],
    reference: Sequence[list[np.ndarray]],
    after: Any,
    feeds: Sequence[Feed],
    axis: int = 1,
) -> dict[str, OutputError]:
    """``compare_outputs`` against outputs computed once (``reference_outputs``)."""
    sums = _ErrorSums(names, axis)
    for ref, feed in zip(reference, feeds, strict=True):
        for name, a, b in zip(names, ref, _run(after, feed), strict=True):
            sums.add(name, a, b)
    return sums.result()


def _ratio(num: float, den: float) -> float:
    if not (math.isfinite(num) and math.isfinite(den)):
        return math.inf
    return float(num**0.5 / den**0.5) if den else float(num**0.5)


def output_errors(before: Any, after: Any, feeds: Sequence[Feed]) -> dict[str, float]:
    """Relative L2 error ‖after − before‖ / ‖before‖ per graph output, over all feeds."""
    return {k: v.error for k, v in compare_outputs(before, after, feeds).items()}


def latency(
    before: Any, after: Any, feed: Feed, *, min_pairs: int = 5, budget_s: float = 4.0
) -> tuple[float, float]:
    """Median seconds per run of each model, timed in alternation so drift hits both alike."""
    for sess in (before, after):  # warm-up: first runs allocate and pick kernels
        _run(sess, feed)
    sessions = (before, after)
    times: tuple[list[float], list[float]] = ([], [])
    start = time.perf_counter()
    pair = 0
    while pair < min_pairs or (time.perf_counter() - start < budget_s and pair < 50):
        for k in (0, 1) if pair % 2 == 0 else (1, 0):
            t0 = time.perf_counter()
            sessions[k].run(None, feed)
            times[k].append(time.perf_counter() - t0)
        pair += 1
    return statistics.median(times[0]), statistics.median(times[1])


def write_probe(model: onnx.ModelProto, tensors: Sequence[str], path: Path) -> None:
    """Save ``model`` with intermediate ``tensors`` exposed as extra outputs (mutates it).

    Always with external data: tensors are written one by one instead of serialising the whole
    model into one more in-memory copy of its weights.
    """
    present = {o.name for o in model.graph.output}
    extra = [t for t in dict.fromkeys(tensors) if t not in present]
    model.graph.output.extend(helper.make_empty_tensor_value_info(t) for t in extra)
    onnx.save_model(model, str(path), save_as_external_data=True, location=path.name + ".data")


def capture(
    sess: Any, tensors: Sequence[str], feeds: Sequence[Feed]
) -> Iterator[dict[str, np.ndarray]]:
    """Yield, per feed, the values of ``tensors`` from a session on a ``write_probe`` model."""
    names = [o.name for o in sess.get_outputs()]
    for feed in feeds:
        values = dict(zip(names, _run(sess, feed), strict=True))
        yield {t: values[t] for t in tensors}


def layer_error(
    conv: onnx.NodeProto,
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    u: np.ndarray,
    v: np.ndarray,
    opset: int,
    kind: str = "bottleneck",
) -> float:
    """Relative L2 error of the 1x1 + KxK pair (or the spatial Kh x 1 + 1 x Kw pair) against
    the (BN-folded) conv, on input ``x``.

    One tiny model computes both from the same ``x``: the error is this layer's alone.
    """
    dtype = x.dtype
    attrs = [a for a in conv.attribute]
    inits = [
        numpy_helper.from_array(np.asarray(w).astype(dtype), "w"),
        numpy_helper.from_array(np.asarray(u).astype(dtype), "u"),
        numpy_helper.from_array(np.asarray(v).astype(dtype), "v"),
    ]
    bias = []
    if b is not None:
        inits.append(numpy_helper.from_array(np.asarray(b).astype(dtype), "b"))
        bias = ["b"]
    ref = helper.make_node("Conv", ["x", "w", *bias], ["ref"])
    ref.attribute.extend(attrs)
    kxk = helper.make_node("Conv", ["mid", "v", *bias], ["new"])
    kxk.attribute.extend(attrs)
    if kind == "spatial":
        red, kxk = split_spatial(ref, kxk, u.shape[2], v.shape[3])
        red.input[:], red.output[:] = ["x", "u"], ["mid"]
    else:
        groups = x.shape[1] // u.shape[1]  # a grouped conv's 1x1 is grouped the same way
        red = helper.make_node(
            "Conv", ["x", "u"], ["mid"], kernel_shape=[1] * (u.ndim - 2), group=groups
        )
    elem = helper.np_dtype_to_tensor_dtype(dtype)
    graph = helper.make_graph(
        [ref, red, kxk],
        "layer",
        [helper.make_tensor_value_info("x", elem, list(x.shape))],
        [helper.make_tensor_value_info(n, elem, None) for n in ("ref", "new")],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", max(opset, 11))])
    model.ir_version = 8
    ref_y, new_y = _run(session(model.SerializeToString()), {"x": x})
    a, c = ref_y.astype(np.float64), new_y.astype(np.float64)
    den = float(np.linalg.norm(a))
    return float(np.linalg.norm(c - a)) / den if den else float(np.linalg.norm(c))
